"""The cost and sales sync under faults, for every registered accounting system: Qondor commits a Sale or Cost write
and its answer is lost (the page attempt fails and Temporal retries it), Qondor answers 500, the accounting system
answers 429 / 503 while the run pages through it, and 24SevenOffice quarantines the identity mid-run. The end
state in Qondor must equal a clean run's: every actual once, with the source's amounts and payment status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from actuals_support import actual_state, expected, ledger, qondor_seed, reseed, run_actuals, seed_documents
from directory_support import unpaced_finago
from temporalio.testing import WorkflowEnvironment

from harness import Stack, every_system, new_stack, wait_until

pytestmark = pytest.mark.e2e
TRANSACTIONS = r"TransactionService\.asmx$"


@pytest.fixture
async def make(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def build(system: str) -> Stack:
        office = unpaced_finago() if system == "finago" else {}
        stack = new_stack(temporal_env.client, tmp_path, system=system, seed=qondor_seed(0), **office)
        reseed(stack)
        stack.start_worker()
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        await stack.close()


def qondor_fault(stack: Stack, **rule: Any) -> None:
    stack.qondor_app.state.faults.add(rule)


def reads_fault(stack: Stack, **rule: Any) -> dict[str, Any]:
    """A fault on the accounting system's reads of costs and sales."""
    if stack.system.value == "finago":
        where: dict[str, Any] = {"path": TRANSACTIONS, "action": "GetTransactions"}
    else:
        where = {"method": "GET", "path": "^/v2/(supplierInvoice|invoice|ledger)"}
    return where | rule


@every_system
async def test_lost_answers_on_qondor_writes_leave_a_clean_runs_state(make: Callable[..., Stack], system: str) -> None:
    stack = make(system)
    book = ledger(stack)
    ids = seed_documents(stack, book)
    qondor_fault(stack, method="POST", path="^/Cost/v1/Cost$", mode="drop_after_commit", after=1, times=1)
    qondor_fault(stack, method="POST", path="^/Sale/v1/Sale$", mode="drop_after_commit", times=1)

    result = await run_actuals(stack, page_size=3)

    assert actual_state(stack) == expected(stack)
    assert (result.costs.new, result.sales.new, result.costs.failed, result.sales.failed) == (7, 2, 0, 0)
    assert all(r.applied == r.times for r in stack.qondor_app.state.faults.rules()), "every armed fault happened"

    book.set_paid(ids["F-2"])
    book.reverse(ids["F-3"])
    qondor_fault(stack, method="PUT", path="^/Cost/v1/Cost$", mode="drop_after_commit", times=1)
    qondor_fault(stack, method="DELETE", path="^/Cost/v1/Cost/", mode="drop_after_commit", times=1)

    result = await run_actuals(stack, page_size=3)

    assert actual_state(stack) == expected(stack, paid=frozenset({"F-2"}), removed=frozenset({"F-3"}))
    assert (result.costs.updated, result.costs.removed, result.costs.failed) == (1, 1, 0)
    assert all(r.applied == r.times for r in stack.qondor_app.state.faults.rules())


@every_system
async def test_429_and_5xx_while_paging_end_like_a_clean_run(make: Callable[..., Stack], system: str) -> None:
    stack = make(system)
    seed_documents(stack, ledger(stack))
    stack.accounting.faults.add(reads_fault(stack, mode="status", status=429, retry_after=1, after=1, times=2,
                                            headers={"X-Rate-Limit-Reset": "1", "X-Rate-Limit-Remaining": "0"}))
    stack.accounting.faults.add(reads_fault(stack, mode="status", status=503, after=4, times=2))
    qondor_fault(stack, method="POST", path="^/Cost/v1/Cost$", mode="status", status=500, after=2, times=1)
    qondor_fault(stack, method="POST", path="^/Sale/v1/Sale$", mode="status", status=429, retry_after=0.2, times=1)

    result = await run_actuals(stack, page_size=2)

    assert actual_state(stack) == expected(stack)
    assert (result.costs.new, result.sales.new, result.costs.failed, result.sales.failed) == (7, 2, 0, 0)
    assert all(r.applied == r.times for r in stack.accounting.faults.rules()), "every armed fault happened"
    assert all(r.applied == r.times for r in stack.qondor_app.state.faults.rules())


async def test_the_24sevenoffice_quarantine_while_paging_is_waited_out(make: Callable[..., Stack]) -> None:
    """The identity's hourly budget runs out mid-run: the run waits (it fails nothing) and ends like a clean run.
    As in the directory's quarantine test, the emulator's clock is set ten minutes before the end of an hour
    already past, so the client keeps asking while the hour lasts; moving the clock past the hour ends it."""
    stack = make("finago")
    seed_documents(stack, ledger(stack), costs_count=12)
    books = stack.accounting
    real = books.now()
    books.advance(-timedelta(minutes=real.minute, seconds=real.second + 600))
    books.hourly_limit = books.request_count + 3
    run = asyncio.create_task(run_actuals(stack, page_size=2))

    async def quarantined() -> bool:
        return books.request_count >= books.hourly_limit + 3  # refused calls count too

    await wait_until(quarantined, 60, "calls refused by the quarantine", 0.05)
    assert not run.done(), "the quarantine came after the run"
    books.hourly_limit = 7200
    books.advance(timedelta(minutes=10, seconds=1))
    result = await asyncio.wait_for(run, 120)

    assert actual_state(stack) == expected(stack, costs_count=12)
    assert result.costs.failed == 0 and result.sales.failed == 0 and result.error is None
