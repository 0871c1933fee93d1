"""Fault tests, for every registered accounting system: whatever fails, every sample invoice is synced exactly once.

Each scenario syncs the sample office (an invoice of every kind) while the emulators misbehave: a write is
committed and its response lost (each save call alone, all of them at once, the credit orders of partial
credit notes), 429 storms (Tripletex) or the hourly quarantine (24SevenOffice), sessions expiring mid-run,
the queue delivered twice or stale, 5xx bursts. Every scenario ends with the same assertions on the
emulators (:func:`assert_synced_exactly_once`, read through ``tests/books.py``): each invoice exists once in
the accounting system (by the key carrying the Qondor id), no customer, project, order or payment is
duplicated, the card invoice holds one card payment, each Qondor credit note is one credit note of the right
invoice and amount, and in Qondor every item reached Processed (Paid for the card payment) through legal
transitions only, no SetAs* call refused.

Scenarios are registered per system (``tripletex/drop:customer``, ``finago/drop:company``, ...): the drops
come from each system's books, the rest is written once unless a fault only exists in one system.

Why one fleet: a scenario takes seconds of real time (Temporal's retry backoff, the credit note waiting for
its original), so the scenarios of this file run *at once*, each on its own office with its own emulators on
loopback (real sockets: a lost response is a real ``RemoteProtocolError``), served by one worker whose office
file lists them all, on the fleet's own task queues (one worker, not one per scenario: dozens of workers would
only add pollers on two cores). The module fixture starts the scenarios the session selected; each test waits
for its own and asserts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from books import BOOKS, QONDOR_DROPS, Books, Drop
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from accounting.tripletex.emulator import RateLimitConfig
from domain.config import AccountingSystem
from domain.qondor import QueueStatus
from domain.sync import SyncState, invoice_workflow_id
from emulators.faults import FaultRule
from emulators.qondor.app import DEFAULT_SUBSCRIPTION_KEY
from harness import SYSTEM_NAMES, Stack, new_stack, stack_queues, wait_until
from store import Store
from workers.devstack import demo_config, office_document
from workers.worker import SyncWorker, WorkerSettings

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506
PROCESSED_ITEMS = (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT)  # the sample's items that end Processed
INVOICED_ITEMS = (OFFER_1, OFFER_2, FORM, BOOKING, CARD)  # CREDIT becomes a credit note of OFFER_2's invoice
SETTLE_SECONDS = 120.0
"""Bound on one scenario. They all run at once and share the CPU (one process: the worker and every emulator):
a scenario alone takes ~5 s (Tripletex) or ~10 s (24SevenOffice), the whole fleet of both systems ~1-2 min
on two busy cores."""

FLEET_SIZE = 16
"""Scenarios driven at once (the others wait for a slot, their clock not yet running): both systems' fleets at
once would starve each other on two cores."""

Driver = Callable[["Run"], Awaitable[None]]
SCENARIOS: dict[str, Driver] = {}
"""``system/name`` -> driver: each scenario once per system it applies to."""
TRIPLETEX, FINAGO = AccountingSystem.TRIPLETEX.value, AccountingSystem.FINAGO.value


def scenario(name: str, systems: tuple[str, ...] = tuple(SYSTEM_NAMES)) -> Callable[[Driver], Driver]:
    def register(driver: Driver) -> Driver:
        for system in systems:
            SCENARIOS[f"{system}/{name}"] = driver
        return driver

    return register


def scenarios(*names: str) -> list[str]:
    """The registered ``system/name`` ids of these scenario names, for ``parametrize``."""
    return [key for key in SCENARIOS if key.split("/", 1)[1] in names]


# --- the fleet ------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One scenario: its stack (office + emulators), the rules it armed, and what it noted on the way."""

    name: str
    stack: Stack
    rules: list[FaultRule] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    credits: tuple[int, ...] = (CREDIT,)
    """The credit notes in the queue (all of OFFER_2's invoice): the sample's one, or more (partial ones)."""

    def q(self, n: int) -> int:
        return self.stack.office_id * 1000 + n

    @property
    def system(self) -> str:
        return self.stack.system.value

    @property
    def books(self) -> Books:
        return self.stack.books

    @property
    def processed(self) -> tuple[int, ...]:
        """Items that end Processed in Qondor (the card payment ends Paid)."""
        return (OFFER_1, OFFER_2, FORM, BOOKING, *self.credits)

    def accounting_fault(self, rule: dict[str, Any]) -> FaultRule:
        armed = self.stack.accounting.faults.add(rule)
        self.rules.append(armed)
        return armed

    def fault(self, drop: Drop, **rule: Any) -> FaultRule:
        """Arm a rule on the call a :class:`Drop` names (the accounting system's, or Qondor's)."""
        return (self.accounting_fault if drop.target == "accounting" else self.qondor_fault)(drop.rule | rule)

    def qondor_fault(self, rule: dict[str, Any]) -> FaultRule:
        armed = self.stack.qondor_app.state.faults.add(rule)
        self.rules.append(armed)
        return armed

    def log(self) -> list[Any]:
        """The accounting emulator's requests, in order (``books.Logged``)."""
        return self.books.log()


class Fleet:
    def __init__(self, runs: dict[str, Run], tasks: dict[str, asyncio.Task]) -> None:
        self.runs = runs
        self.tasks = tasks

    async def finished(self, name: str) -> Run:
        """The scenario's run once its driver returned (its exception, if it raised)."""
        await asyncio.shield(self.tasks[name])  # each scenario bounds its own waits (SETTLE_SECONDS)
        return self.runs[name]


def office(run: Run) -> dict[str, Any]:
    """The scenario's office entry. Qondor pacing off (as with the harness), except where Qondor's own limit is
    tested; 24SevenOffice's client-side pacing (7000 calls/hour, ~2/s after a burst) raised likewise, except
    where the hourly limit is tested: the fleet's dozens of concurrent syncs would otherwise queue for it."""
    doc = office_document(run.stack.office_id, run.stack.servers[0].url, run.stack.servers[1].url, system=run.system,
                          qondor_calls_per_second=9.0 if run.name.endswith("/429:qondor") else 0)
    if run.system == FINAGO and not run.name.endswith("/quarantine"):
        doc["accounting"]["max_calls_per_hour"] = 360_000
    return doc


@pytest.fixture(scope="module")
def fleet_db_url() -> str | None:
    """The fleet's store: None for a SQLite file (here); ``tests/test_faults_postgres.py`` overrides it with a
    PostgreSQL schema to run a subset of the scenarios there."""
    return None


@pytest.fixture(scope="module")
async def fleet(
    request: pytest.FixtureRequest, temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory,
    fleet_db_url: str | None,
) -> AsyncIterator[Fleet]:
    selected = sorted({
        item.callspec.params["scenario"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "scenario" in item.callspec.params
    })
    tmp = tmp_path_factory.mktemp("faults")
    client = temporal_env.client
    runs = {name: Run(name, new_stack(client, tmp, loopback=True, system=name.split("/")[0])) for name in selected}
    config = demo_config([office(run) for run in runs.values()])
    store = Store(fleet_db_url or f"sqlite:///{tmp}/fleet.db")
    store.migrate()
    queues = stack_queues(min(run.stack.office_id for run in runs.values()) if runs else 0)
    for run in runs.values():
        run.stack.queues = queues  # the fleet's worker serves every scenario's office
    worker = SyncWorker(client, config, store, None,
                        WorkerSettings(qondor_activities_per_second=None, accounting_activities_per_second={},
                                       graceful_shutdown=timedelta(seconds=2), task_queues=queues))
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stop))
    for run in runs.values():
        run.stack.worker = worker  # Stack.discover polls through the fleet's worker
    slots = asyncio.Semaphore(FLEET_SIZE)

    async def drive(name: str, run: Run) -> None:
        async with slots:
            await SCENARIOS[name](run)

    tasks = {name: asyncio.create_task(drive(name, run), name=f"scenario {name}") for name, run in runs.items()}
    try:
        yield Fleet(runs, tasks)
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        stop.set()
        await worker_task
        # Stack.close() one by one would stop the servers one after the other; stop them all at once.
        servers = [server for run in runs.values() for server in run.stack.servers]
        for run in runs.values():
            run.stack.servers = []
        await asyncio.gather(*(run.stack.close() for run in runs.values()),
                             *(asyncio.to_thread(server.stop) for server in servers))
        store.dispose()


# --- waiting and the shared assertions ------------------------------------------------------------------


async def settle(run: Run) -> None:
    """Wait until every item reached its final status in Qondor, then until its workflow agrees."""
    stack = run.stack

    async def qondor_done() -> bool:
        return all(stack.qondor.status_of(run.q(n)) == QueueStatus.PROCESSED for n in run.processed) and (
            stack.qondor.status_of(run.q(CARD)) == QueueStatus.PAID
        )

    await wait_until(qondor_done, SETTLE_SECONDS, f"{run.name}: every item processed in Qondor", interval=0.25)
    for n in run.processed:
        await stack.wait_for_state(run.q(n), SyncState.AWAITING_PAYMENT, timeout=15)
    await stack.wait_for_state(run.q(CARD), SyncState.PAID, timeout=15)


async def discover_and_settle(run: Run) -> None:
    items = len(run.processed) + 1
    assert await run.stack.discover() == (items, items)
    await settle(run)


def assert_synced_exactly_once(run: Run) -> None:
    stack, books = run.stack, run.books
    invoices = books.invoices()
    original = invoices[run.q(OFFER_2)][0]
    found = books.duplicates()
    if run.system == TRIPLETEX and len(run.credits) > 1:  # Tripletex counts credit notes per credited invoice
        found.pop(f"credit note of {original.id}", None)
    assert found == {}, f"{run.name}: duplicates {found}"

    expected = {run.q(n) for n in INVOICED_ITEMS}
    assert set(invoices) == expected, run.name
    assert {key: len(made) for key, made in invoices.items()} == dict.fromkeys(expected, 1), run.name
    for n in INVOICED_ITEMS:
        [made] = invoices[run.q(n)]
        qondor_invoice = stack.qondor.invoice_model(run.q(n))
        assert made.amount == qondor_invoice.total_incl_vat, f"{run.name}: amount of {n}"
        assert books.reported(qondor_invoice) == books.expect_reported(made), f"{run.name}: reported {n}"

    # Parties: the sample's three companies (one of them invoiced three times) and its private booker, its
    # projects, one per key.
    assert books.customers() == (3, 1), run.name
    assert books.projects() == books.expected_projects(), run.name
    if run.system == TRIPLETEX:  # Tripletex only: the companies' contact persons
        assert len(stack.tripletex.all("contact")) == 3, run.name

    card = invoices[run.q(CARD)][0]
    assert card.payments == card.card_payments == 1, f"{run.name}: {card}"
    assert card.paid, run.name

    # One credit note per Qondor credit note, each crediting OFFER_2's invoice with the Qondor amount.
    credit_notes = books.credit_notes()
    assert set(credit_notes) == {run.q(n) for n in run.credits}, f"{run.name}: credit notes {credit_notes}"
    for n in run.credits:
        [made] = credit_notes[run.q(n)]
        qondor_credit = stack.qondor.invoice_model(run.q(n))
        assert made.credits == original.id, f"{run.name}: credit note {n}"
        assert made.amount == qondor_credit.total_incl_vat, f"{run.name}: amount of {n}"
        assert books.reported(qondor_credit) == books.expect_reported(made), f"{run.name}: reported {n}"

    # Qondor: legal transitions only, each made once; no SetAs* call was refused.
    for n in (*run.processed, CARD):
        item = run.q(n)
        want = [QueueStatus.UNPROCESSED, QueueStatus.PROCESSED] + ([QueueStatus.PAID] if n == CARD else [])
        assert [QueueStatus(h["status"]) for h in stack.qondor.history_of(item)] == want, f"{run.name}: {n}"
        outcomes = [(c["operation"], c["outcome"]) for c in stack.qondor.calls_for(item)]
        assert all(outcome in ("applied", "repeat") for _, outcome in outcomes), f"{run.name}: {n}: {outcomes}"
        applied = [op for op, outcome in outcomes if outcome == "applied"]
        assert applied == ["SetAsProcessed"] + (["SetAsPaid"] if n == CARD else []), f"{run.name}: {n}: {outcomes}"


def assert_rules_spent(run: Run) -> None:
    """Every armed fault actually fired as often as it was meant to (a rule that never fires proves nothing)."""
    for rule in run.rules:
        if rule.times is not None:
            assert rule.applied == rule.times, (
                f"{run.name}: rule {rule.method} {rule.path} {rule.action or ''} fired {rule.applied}x"
            )


# --- 1. commit, then lose the response, on every create call --------------------------------------------


def _drop_driver(key: str) -> Driver:
    async def drive(run: Run) -> None:
        run.fault(run.books.drops[key], mode="drop_after_commit", times=1)
        await discover_and_settle(run)

    return drive


DROP_SCENARIOS: list[str] = []
for _system, _books in BOOKS.items():
    for _key, _drop in _books.drops.items():
        if _drop.target == "qondor" and _key in QONDOR_DROPS and _system is not AccountingSystem.TRIPLETEX:
            continue  # Qondor's own calls, the same for every system: alone once, and in every system's every-create
        scenario(f"drop:{_key}", (_system.value,))(_drop_driver(_key))
        DROP_SCENARIOS.append(f"{_system.value}/drop:{_key}")


def _qondor_key(entry: dict[str, Any]) -> int | None:
    """The Qondor id a request is about: a SetAs* body's invoice, a customer update's customer, a read's path id."""
    body = entry.get("body")
    if isinstance(body, dict):
        return body.get("invoiceId", body.get("id"))
    tail = entry["path"].rsplit("/", 1)[-1]
    return int(tail) if entry["method"] == "GET" and tail.isdigit() else None


def _retried_for_the_same_key(run: Run, drop: Drop) -> bool:
    """After the lost Qondor call, a call matching ``drop.then`` about the same id (invoice or customer)."""
    log = list(run.stack.qondor.requests)
    [lost] = [i for i, e in enumerate(log) if e.get("dropped")]
    key = _qondor_key(log[lost])
    assert key is not None, f"{run.name}: the lost call names no id: {log[lost]}"
    return any(re.search(drop.then, f"{e['method']} {e['path']}") and _qondor_key(e) == key for e in log[lost + 1:])


def _around_the_drop(run: Run, drop: Drop) -> tuple[str, int | None, list[str]]:
    """The lost request (its call), the status its handler answered, and the calls after it."""
    if drop.target == "accounting":
        log = [(r.call, r.status, r.dropped) for r in run.log()]
    else:
        log = [(f"{e['method']} {e['path']}", e["status"], bool(e.get("dropped"))) for e in run.stack.qondor.requests]
    lost = [i for i, (*_, dropped) in enumerate(log) if dropped]
    assert len(lost) == 1, f"{run.name}: exactly one response lost, not {len(lost)}"
    request, status, _ = log[lost[0]]
    return request, status, [r for r, *_ in log[lost[0] + 1:]]


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", DROP_SCENARIOS)
async def test_a_committed_create_whose_response_is_lost_is_found_not_made_again(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    drop = run.books.drops[scenario.split(":", 1)[1]]
    assert_rules_spent(run)
    request, status, after = _around_the_drop(run, drop)
    # The write was committed (its handler answered 2xx) and only then was the response lost ...
    assert re.search(drop.call, request) and status is not None and 200 <= status < 300, (request, status)
    # ... a retry looked for what it made (a lookup, or the idempotent call repeated), for the same item: other
    # syncs run alongside, so only the lost call's own key (in the call, or in a lookup's answer where the system
    # cannot filter by it) shows that this sync did not take the lost answer for a success ...
    if drop.target == "qondor":
        assert any(re.search(drop.then, r) for r in after), f"{scenario}: no retry after the lost response"
        assert _retried_for_the_same_key(run, drop), f"{scenario}: no retry for the lost call's own item"
    else:
        key, looked = drop.looked_for(run.log())
        assert looked, f"{scenario}: no {drop.then} after the lost response was about its item ({key})"
    # ... and the emulators' state holds each thing once (by business key: assert_synced_exactly_once), so what the
    # lost call made was found, not made again; everything is synced and reported.
    assert_synced_exactly_once(run)


@scenario("drop:every-create")
async def _drop_every_create(run: Run) -> None:
    """Every save call of the run loses its response once (as often as the sample's sync makes it): companies
    matched by organisation number and the private booker by e-mail, projects, every invoice, the card
    payment, the credit note, every write to Qondor."""
    for drop in run.books.drops.values():
        run.fault(drop, mode="drop_after_commit", times=drop.per_run)
    await discover_and_settle(run)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", scenarios("drop:every-create"))
async def test_every_create_losing_its_response_once_still_syncs_each_invoice_once(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    # Each rule fired as often as the sample's sync makes that call, so every create lost its answer once (had a
    # retry made something again, assert_synced_exactly_once below would find it twice).
    assert_rules_spent(run)
    drops = run.books.drops.values()
    lost = [r for r in run.log() if r.dropped]
    assert len(lost) == sum(d.per_run for d in drops if d.target == "accounting")
    assert all(r.status is not None and 200 <= r.status < 300 for r in lost)
    qondor_lost = sum(1 for e in run.stack.qondor.requests if e.get("dropped"))
    assert qondor_lost == sum(d.per_run for d in drops if d.target == "qondor")
    assert_synced_exactly_once(run)


PARTIAL = 507


def _partial_credit_notes(run: Run) -> None:
    """OFFER_2 is credited in two parts: the sample's credit note keeps its first line, a second credit note
    (PARTIAL) takes the second. Partial credits are a credit order, then its invoicing as a credit note."""
    invoices = run.stack.qondor.snapshot()["invoices"]
    first = next(i for i in invoices if i["id"] == run.q(CREDIT))
    second = {**first, "id": run.q(PARTIAL), "invoiceNumber": f"{run.stack.office_id}-{run.q(PARTIAL)}"}
    first["lines"], second["lines"] = first["lines"][:1], first["lines"][1:2]
    for doc in (first, second):
        for total, amount in (("totalExclVat", "amountExclVat"), ("totalVat", "vatAmount"),
                              ("totalInclVat", "amountInclVat")):
            doc[total] = sum(Decimal(str(line[amount])) for line in doc["lines"])
    run.stack.qondor.seed({"invoices": [first, second]})
    run.credits = (CREDIT, PARTIAL)


@scenario("partial-credit-notes")
async def _partial_credits(run: Run) -> None:
    _partial_credit_notes(run)
    # One credit order is committed and its answer lost; the other one's is refused (nothing committed).
    if run.system == TRIPLETEX:
        credit_order = {"method": "POST", "path": r"^/v2/order$"}
    else:
        credit_order = run.books.drops["credit-note"].rule
    run.accounting_fault(credit_order | {"mode": "drop_after_commit", "times": 1})
    run.accounting_fault(credit_order | {"mode": "status", "status": 503, "after": 1, "times": 1})
    await discover_and_settle(run)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", scenarios("partial-credit-notes"))
async def test_partial_credit_notes_are_each_booked_once_when_their_credit_order_fails(
    fleet: Fleet, scenario: str
) -> None:
    run = await fleet.finished(scenario)
    assert_rules_spent(run)
    # The lost order was found and invoiced, not made again; the refused one was made on the retry, whose
    # lookup did not take the other partial credit note of the same invoice for its own.
    assert_synced_exactly_once(run)
    if run.system == TRIPLETEX:
        assert len(run.stack.tripletex.all("order")) == 7  # five invoices' orders and the two credit orders
        assert any(r.call == "GET /v2/order" for r in run.log())
    else:
        assert len(run.stack.accounting.all("orders")) == 7  # five invoices' orders and the two credit orders
        assert any(r.call == "GetInvoices" for r in run.log())


# --- 2. 429 storms ----------------------------------------------------------------------------------------


def _tripletex_storm(include_reset: bool) -> Driver:
    async def drive(run: Run) -> None:
        # One call per 0.25 s for the API user: a step's back-to-back calls (a lookup, then the create) and the
        # six concurrent syncs' calls are refused again and again, however busy the machine is.
        run.stack.tripletex.configure_rate_limit(
            RateLimitConfig(limit=1, period_seconds=0.25, include_reset_on_429=include_reset)
        )
        await discover_and_settle(run)

    return drive


scenario("429:tripletex-without-reset", (TRIPLETEX,))(_tripletex_storm(False))
scenario("429:tripletex-with-reset", (TRIPLETEX,))(_tripletex_storm(True))


@scenario("429:qondor", (TRIPLETEX,))  # Qondor's own limit: the same for every system
async def _qondor_storm(run: Run) -> None:
    # Three calls per 0.5 s (Retry-After on every 429; the office keeps the client's default pacing of 9 calls/s),
    # and two extra 429s with Retry-After on the writes.
    run.stack.qondor.configure_rate_limit(enabled=True, limit=3, window_seconds=0.5)
    run.qondor_fault({"method": "PUT", "path": r"/SetAsProcessed$", "mode": "status", "status": 429,
                      "retry_after": 1, "times": 2})
    run.qondor_fault({"method": "PUT", "path": r"/SetAsPaid$", "mode": "status", "status": 429,
                      "retry_after": 0.5, "times": 1})
    await discover_and_settle(run)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "scenario", scenarios("429:tripletex-without-reset", "429:tripletex-with-reset", "429:qondor")
)
async def test_429_storms_are_waited_out_without_failing_or_duplicating(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert_rules_spent(run)
    if "/429:tripletex" in scenario:
        refused = [r for r in run.log() if r.status == 429]
        assert len(refused) >= 8, f"only {len(refused)} requests were rate limited"
        assert any(r.call.split()[0] in ("POST", "PUT") for r in refused), "no write was rate limited"
    else:
        # The three injected 429s on writes always fire (assert_rules_spent); how many more the emulator's own
        # limit refuses depends on how fast a busy machine sends, so only the guaranteed ones are required.
        refused = [e for e in run.stack.qondor.requests if e["status"] == 429]
        assert len(refused) >= 3, f"only {len(refused)} Qondor requests were rate limited"
    assert_synced_exactly_once(run)


# --- 3. sessions expire mid-run -----------------------------------------------------------------------------


@scenario("session-expiry")
async def _session_expiry(run: Run) -> None:
    books = run.books
    # Invoices take a little longer, so some are in flight when the sessions die.
    run.accounting_fault(books.invoice_save | {"mode": "latency", "seconds": 0.3, "times": None})
    assert await run.stack.discover() == (6, 6)
    await wait_until(lambda: _true(bool(books.invoices())), SETTLE_SECONDS, "a first invoice", 0.05)
    # Every session dies now. Accounting work is still to come whatever the timing: the credit note can only be
    # made after its original is booked and reported to Qondor.
    run.notes["expired"] = run.stack.accounting.expire_sessions()
    await settle(run)


async def _true(value: bool) -> bool:
    return value


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", scenarios("session-expiry"))
async def test_an_expired_session_is_renewed_transparently(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert run.notes["expired"] >= 1
    log = run.log()
    if run.system == TRIPLETEX:
        assert any(r.status == 401 for r in log), "no request met the expired session"
        assert sum(1 for r in log if r.call.endswith(" /v2/token/session/:create") and r.status == 201) >= 2
    else:  # a session fault (HTTP 500), HasSession says false, a new Login
        assert any(r.call == "HasSession" for r in log), "no request met the expired session"
        assert sum(1 for r in log if r.call == "Login" and r.status == 200) >= 2
    assert_synced_exactly_once(run)


# --- 4. the queue delivers items more than once -------------------------------------------------------------


async def _executions(run: Run) -> dict[str, list[str]]:
    """Workflow id -> run ids of every InvoiceSync execution of the office (open or closed)."""
    out: dict[str, list[str]] = {}
    query = f"OfficeId={run.stack.office_id} AND WorkflowType='InvoiceSync'"
    async for wf in run.stack.client.list_workflows(query):
        out.setdefault(wf.id, []).append(wf.run_id)
    return out


@scenario("duplicate-delivery")
async def _duplicate_delivery(run: Run) -> None:
    stack = run.stack
    url = f"{stack.servers[0].url}/Invoicing/v1/Invoice/GetAllUnprocessedInvoices"
    async with httpx.AsyncClient(headers={"Ocp-Apim-Subscription-Key": DEFAULT_SUBSCRIPTION_KEY}) as http:
        listing = (await http.get(url, params={"officeId": stack.office_id})).raise_for_status().json()
    assert len(listing) == 6
    # Slow invoice creation down so the deliveries below land while the workflows run.
    run.accounting_fault(run.books.invoice_save | {"mode": "latency", "seconds": 0.5, "times": None})
    assert await stack.discover() == (6, 6)
    assert await stack.discover() == (6, 6)  # the next poll sees the same queue
    await asyncio.gather(stack.discover(), stack.discover())  # two pollers at once (e.g. during a rollout)
    await wait_until(lambda: _true(bool(run.books.invoices())), SETTLE_SECONDS, "a first invoice", 0.05)
    # Qondor delivers the items again while their workflows run.
    running = [(await stack.handle(run.q(n)).describe()).status for n in (*run.processed, CARD)]
    run.notes["running_at_redelivery"] = running.count(WorkflowExecutionStatus.RUNNING)
    run.notes["redelivery"] = await stack.discover()
    await settle(run)
    # A queue read taken before an item's sync completed is acted on after it completed (a long queue, a
    # lagging Qondor read): the completed card payment's sync must neither run again nor stop the poll.
    run.notes["card_run"] = (await stack.handle(run.q(CARD)).describe()).run_id
    run.qondor_fault({"method": "GET", "path": r"/GetAllUnprocessedInvoices$", "mode": "status", "status": 200,
                      "body": listing, "times": 1})
    run.notes["stale_delivery"] = await stack.discover()


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", scenarios("duplicate-delivery"))
async def test_a_queue_item_delivered_again_gets_no_second_workflow(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert_rules_spent(run)
    assert run.notes["running_at_redelivery"] >= 1, "the re-delivery came after every workflow had ended"
    assert run.notes["redelivery"][0] >= 1
    # The stale listing: the five running syncs are joined, the completed one is left alone (and no error).
    assert run.notes["stale_delivery"] == (6, 5)
    card = await run.stack.handle(run.q(CARD)).describe()
    assert card.status == WorkflowExecutionStatus.COMPLETED and card.run_id == run.notes["card_run"]
    expected = {invoice_workflow_id(run.stack.office_id, run.q(n)) for n in (*run.processed, CARD)}

    async def listed() -> dict[str, list[str]] | None:
        found = await _executions(run)
        return found if set(found) == expected else None  # visibility is eventually consistent

    executions = await wait_until(listed, 10, "every workflow in visibility")
    assert {wf: len(runs) for wf, runs in executions.items()} == dict.fromkeys(expected, 1)
    assert_synced_exactly_once(run)


# --- 5. 5xx bursts ------------------------------------------------------------------------------------------


COMPANY = r"/CRM/Company/V001/CompanyService\.asmx$"
PROJECT = r"/Project/V001/ProjectService\.asmx$"
INVOICES = r"/Economy/InvoiceOrder/V001/InvoiceService\.asmx$"
PRODUCTS = r"/Logistics/Product/V001/ProductService\.asmx$"
AUTHENTICATE = r"/authenticate/v001/authenticate\.asmx$"
IIS_ERROR = "<html><body>Server Error in '/' Application.</body></html>"
"""What IIS answers when ASMX itself crashes: HTTP 500 without a SOAP fault (transient, unlike a fault)."""

SERVER_ERRORS: dict[str, dict[str, list[dict[str, Any]]]] = {
    # More in a row than the clients retry themselves (Tripletex: 3 GET retries; 24SevenOffice: 3 read
    # retries; Qondor: 503 only), so activities fail and Temporal retries them too. Writes are refused before
    # the handler runs (nothing committed): the retry must create, exactly once.
    TRIPLETEX: {
        "reads": [{"method": "GET", "path": path, "status": status, "times": times} for path, status, times in (
            (r"^/v2/customer$", 500, 5), (r"^/v2/project$", 502, 2), (r"^/v2/employee$", 503, 4),
            (r"^/v2/ledger/vatType$", 500, 4))],
        "writes": [{"method": method, "path": path, "status": status, "times": times}
                   for method, path, status, times in (
            ("POST", r"^/v2/customer$", 503, 2), ("POST", r"^/v2/contact$", 500, 1),
            ("POST", r"^/v2/employee$", 502, 1), ("PUT", r"^/v2/employee/entitlement/", 500, 1),
            ("POST", r"^/v2/project$", 503, 2), ("POST", r"^/v2/invoice$", 500, 3),
            ("PUT", r":createCreditNote$", 502, 1), ("POST", r"^/v2/token/session/:create$", 503, 1))],
    },
    # ASMX answers every fault with HTTP 500 and a SOAP fault, which is a refusal, not a burst: the bursts are
    # the gateway's 502/503/504 and IIS's fault-less 500.
    FINAGO: {
        "reads": [{"method": "POST", "path": path, "action": action, "status": status, "times": times}
                  | ({"body": IIS_ERROR} if status == 500 else {}) for path, action, status, times in (
            (COMPANY, "GetCompanies", 502, 5), (PROJECT, "GetSingleProject", 503, 2),
            (PRODUCTS, "GetProducts", 500, 4), (PROJECT, "GetProjectStatuses", 504, 4))],
        "writes": [{"method": "POST", "path": path, "action": action, "status": status, "times": times}
                   | ({"body": IIS_ERROR} if status == 500 else {}) for path, action, status, times in (
            (COMPANY, "SaveCompanies", 503, 2), (PROJECT, "SaveProject", 502, 2), (INVOICES, "SaveInvoices", 500, 3),
            (INVOICES, "SaveInvoices", 504, 1), (AUTHENTICATE, "Login", 503, 1))],
    },
}


@scenario("5xx:reads")
async def _server_errors_on_reads(run: Run) -> None:
    for rule in SERVER_ERRORS[run.system]["reads"]:
        run.accounting_fault(rule | {"mode": "status"})
    for path, status, times in ((r"/Invoicing/v1/Invoice/\d+$", 500, 3), (r"/Customer/v1/Customer/\d+$", 502, 2),
                                (r"/Project/v1/Project/GetByProjectNo$", 503, 4)):
        run.qondor_fault({"method": "GET", "path": path, "mode": "status", "status": status, "times": times})
    await discover_and_settle(run)


@scenario("5xx:writes")
async def _server_errors_on_writes(run: Run) -> None:
    for rule in SERVER_ERRORS[run.system]["writes"]:
        run.accounting_fault(rule | {"mode": "status"})
    for path, status, times in ((r"/SetAsProcessed$", 500, 2), (r"/SetAsProcessed$", 503, 2),
                                (r"/SetAsPaid$", 502, 1)):
        run.qondor_fault({"method": "PUT", "path": path, "mode": "status", "status": status, "times": times})
    await discover_and_settle(run)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", scenarios("5xx:reads", "5xx:writes"))
async def test_5xx_bursts_are_retried_and_never_fail_an_invoice(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert_rules_spent(run)
    assert_synced_exactly_once(run)


# --- 6. 24SevenOffice's hourly limit: quarantined until the hour ends --------------------------------------


@scenario("quarantine", (FINAGO,))
async def _quarantine(run: Run) -> None:
    """The identity's hourly budget runs out mid-run: every call is refused (the quarantine fault) until the
    emulator's clock hour ends. The client waits it out (a transient retry, never a failed invoice).

    The emulator's clock is set back to just before the end of an hour that ended in real time, so the reset
    the service announces (``APILimitReset``) is already due for the client: it keeps asking, paced, while the
    hour lasts; moving the emulator's clock past the hour then ends the quarantine (the test cannot wait an
    hour, nor make a client in the worker process see the emulator's clock)."""
    state, stack = run.stack.accounting, run.stack
    real = state.now()
    state.advance(-timedelta(minutes=real.minute, seconds=real.second + 600))  # 10 minutes before the hour ends
    state.hourly_limit = 12  # the sample's sync makes many more calls than that
    assert await stack.discover() == (6, 6)

    async def quarantined() -> bool:
        return sum(1 for r in run.log() if r.status == 500) >= 3

    await wait_until(quarantined, SETTLE_SECONDS, "calls refused by the quarantine", 0.05)
    run.notes["items_done_in_quarantine"] = sum(
        1 for n in (*run.processed, CARD) if stack.qondor.status_of(run.q(n)) != QueueStatus.UNPROCESSED
    )
    await asyncio.sleep(1.0)  # the client keeps asking (paced) while the hour lasts
    run.notes["refused"] = sum(1 for r in run.log() if r.status == 500)
    state.hourly_limit = 7200  # the real budget: the rest of the run fits in the next hour
    state.advance(timedelta(minutes=10, seconds=1))
    await settle(run)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", scenarios("quarantine"))
async def test_the_hourly_quarantine_is_waited_out_and_never_fails_an_invoice(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert run.notes["items_done_in_quarantine"] < 6, "the quarantine came after the run"
    assert run.notes["refused"] >= 3
    # No item failed or was retried as a failure: each went Unprocessed -> Processed (-> Paid) once.
    assert_synced_exactly_once(run)

