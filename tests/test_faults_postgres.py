"""The fault and crash suites on PostgreSQL: a representative subset, so the store's guarantees the suites lean
on (write-ahead intents, links, the per-key lease, the audit trail) are proven on production's database too.

Why a subset: the suites run on SQLite in full (``tests/test_faults.py``, ``tests/test_worker_crash.py``);
doubling them would double the suite's longest minutes. What differs on PostgreSQL is the store, so one
system's lost-response scenarios (every create call of Tripletex and Qondor: each leaves only an intent behind
and the retry must find what was made) here, and the crash between commit and link in
``tests/test_worker_crash_postgres.py`` (its own module: the fleet's worker, alive until this module ends, polls
the same task queues) cover what the store does there. Skipped when PostgreSQL is not
available (failing instead with ``QONDOR_SYNC_REQUIRE_POSTGRES=1``, see ``tests/databases.py``).
"""

from __future__ import annotations

import pytest
import test_faults as faults
from test_faults import fleet  # noqa: F401 (the fault suite's fleet, here on this module's scenarios and store)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

TRIPLETEX_DROPS = [name for name in faults.DROP_SCENARIOS if name.startswith(f"{faults.TRIPLETEX}/")]


@pytest.fixture(scope="module")
def fleet_db_url(module_postgres_url: str) -> str:
    """The fleet's store on PostgreSQL (overrides ``test_faults.fleet_db_url``)."""
    return module_postgres_url


@pytest.mark.parametrize("scenario", TRIPLETEX_DROPS)
async def test_on_postgresql_a_committed_create_whose_response_is_lost_is_found_not_made_again(
    fleet: faults.Fleet, scenario: str  # noqa: F811
) -> None:
    await faults.test_a_committed_create_whose_response_is_lost_is_found_not_made_again(fleet, scenario)

