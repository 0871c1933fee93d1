"""The crash suite on PostgreSQL: a worker process killed between the invoice's commit and its link, with the
store on PostgreSQL shared by the killed and the new worker process (``tests/test_faults_postgres.py`` says why
only a subset; skipped without PostgreSQL unless ``QONDOR_SYNC_REQUIRE_POSTGRES=1``).

Why this one: it is the crash whose recovery rests on the store alone. The new process must read the dead
one's write-ahead intent from the database, look the invoice up and link it ("recovered"), not make it again.
"""

from __future__ import annotations

from typing import Any

import pytest
import test_worker_crash as crash
from test_worker_crash import crash_stack  # noqa: F401 (the crash suite's worker subprocesses)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


async def test_on_postgresql_a_worker_killed_between_commit_and_link_is_recovered(
    crash_stack: Any, postgres_url: str  # noqa: F811
) -> None:
    def on_postgresql(wrap: Any = None, system: str = "tripletex") -> Any:
        return crash_stack(wrap, system, db_url=postgres_url)

    await crash.test_a_worker_killed_after_the_invoice_was_committed_but_before_it_was_linked(on_postgresql)
