"""Fault tests: whatever fails, every sample invoice is synced exactly once.

Each scenario syncs the sample office (an invoice of every kind) while the emulators misbehave: a write is
committed and its response lost (each create call alone, all of them at once, the credit orders of partial
credit notes), 429 storms, sessions expiring mid-run, the queue delivered twice or stale, 5xx bursts. Every
scenario ends with the same assertions on the emulators (:func:`assert_synced_exactly_once`): each invoice
exists once in Tripletex (by the order reference carrying the Qondor key), no business key or order reference
is duplicated, the card invoice holds one payment, each Qondor credit note is one credit note of the right
invoice and amount, and in Qondor every item reached Processed (Paid for the card payment) through legal
transitions only, no SetAs* call refused.

Why one fleet: a scenario takes seconds of real time (Temporal's retry backoff, the credit note waiting for
its original), so the scenarios of this file run *at once*, each on its own office with its own emulators on
loopback (real sockets: a lost response is a real ``RemoteProtocolError``), served by one worker whose office
file lists them all (one worker, because every worker polls the same task queues). The module fixture starts
the scenarios the session selected; each test waits for its own and asserts.
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
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from accounting.tripletex.emulator import PAYMENT_TYPE_CARD, RateLimitConfig
from domain.qondor import QueueStatus
from domain.rules import invoice_reference
from domain.sync import SyncState, invoice_workflow_id
from emulators.faults import FaultRule
from emulators.qondor.app import DEFAULT_SUBSCRIPTION_KEY
from harness import Stack, new_stack, wait_until
from store import Store
from workers.demo import tripletex_duplicates
from workers.devstack import demo_config, office_document
from workers.worker import SyncWorker, WorkerSettings

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506
PROCESSED_ITEMS = (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT)  # the sample's items that end Processed
INVOICED_ITEMS = (OFFER_1, OFFER_2, FORM, BOOKING, CARD)  # CREDIT becomes a credit note of OFFER_2's invoice
SETTLE_SECONDS = 60.0
"""Bound on one scenario. They all run at once and share the CPU: a scenario alone takes ~5 s, the whole
fleet ~20-35 s on two busy cores."""

Driver = Callable[["Run"], Awaitable[None]]
SCENARIOS: dict[str, Driver] = {}


def scenario(name: str) -> Callable[[Driver], Driver]:
    def register(driver: Driver) -> Driver:
        SCENARIOS[name] = driver
        return driver

    return register


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
    def processed(self) -> tuple[int, ...]:
        """Items that end Processed in Qondor (the card payment ends Paid)."""
        return (OFFER_1, OFFER_2, FORM, BOOKING, *self.credits)

    def tripletex_fault(self, rule: dict[str, Any]) -> FaultRule:
        armed = self.stack.tripletex.faults.add(rule)
        self.rules.append(armed)
        return armed

    def qondor_fault(self, rule: dict[str, Any]) -> FaultRule:
        armed = self.stack.qondor_app.state.faults.add(rule)
        self.rules.append(armed)
        return armed

    def tripletex_log(self) -> list[Any]:
        with self.stack.tripletex.lock:
            return list(self.stack.tripletex.requests)


class Fleet:
    def __init__(self, runs: dict[str, Run], tasks: dict[str, asyncio.Task]) -> None:
        self.runs = runs
        self.tasks = tasks

    async def finished(self, name: str) -> Run:
        """The scenario's run once its driver returned (its exception, if it raised)."""
        await asyncio.wait_for(asyncio.shield(self.tasks[name]), SETTLE_SECONDS + 15)
        return self.runs[name]


@pytest.fixture(scope="module")
async def fleet(
    request: pytest.FixtureRequest, temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fleet]:
    selected = sorted({
        item.callspec.params["scenario"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "scenario" in item.callspec.params
    })
    tmp = tmp_path_factory.mktemp("faults")
    client = temporal_env.client
    runs = {name: Run(name, new_stack(client, tmp, loopback=True)) for name in selected}
    config = demo_config([  # Qondor pacing off (as with the harness), except where Qondor's own limit is tested
        office_document(r.stack.office_id, r.stack.servers[0].url, r.stack.servers[1].url,
                        qondor_calls_per_second=9.0 if r.name == "429:qondor" else 0)
        for r in runs.values()
    ])
    store = Store(f"sqlite:///{tmp}/fleet.db")
    store.migrate()
    worker = SyncWorker(client, config, store, None,
                        WorkerSettings(qondor_activities_per_second=None, accounting_activities_per_second={},
                                       graceful_shutdown=timedelta(seconds=2)))
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stop))
    for run in runs.values():
        run.stack.worker = worker  # Stack.discover polls through the fleet's worker
    tasks = {name: asyncio.create_task(SCENARIOS[name](run), name=f"scenario {name}") for name, run in runs.items()}
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


def invoices_by_reference(stack: Stack) -> dict[str, list[dict]]:
    """Tripletex invoices (not credit notes, which share their original's order) per order reference."""
    orders = {o["id"]: o for o in stack.tripletex.all("order")}
    out: dict[str, list[dict]] = {}
    for invoice in stack.tripletex.all("invoice"):
        if invoice.get("isCreditNote"):
            continue
        for ref in invoice.get("orders") or []:
            reference = orders[ref["id"]].get("reference")
            if reference:
                out.setdefault(reference, []).append(invoice)
    return out


def assert_synced_exactly_once(run: Run) -> None:
    stack, office = run.stack, run.stack.office_id
    tx = stack.tripletex
    invoices = invoices_by_reference(stack)
    original = invoices[invoice_reference(office, run.q(OFFER_2))][0]
    # tripletex_duplicates counts credit notes per credited invoice: several partial ones are expected there.
    several_credits = {f"credit note of {original['id']}": len(run.credits)} if len(run.credits) > 1 else {}
    assert tripletex_duplicates(tx) == several_credits, run.name

    expected = {invoice_reference(office, run.q(n)) for n in INVOICED_ITEMS}
    assert set(invoices) == expected, run.name
    assert {ref: len(found) for ref, found in invoices.items()} == dict.fromkeys(expected, 1), run.name
    for n in INVOICED_ITEMS:
        made = invoices[invoice_reference(office, run.q(n))][0]
        qondor_invoice = stack.qondor.invoice_model(run.q(n))
        assert Decimal(str(made["amount"])) == qondor_invoice.total_incl_vat, f"{run.name}: amount of {n}"
        assert str(made["invoiceNumber"]) == qondor_invoice.external_invoice_number, f"{run.name}: number of {n}"

    # Parties: the sample's four customers (one of them invoiced three times), its projects, one per key.
    assert len(tx.all("customer")) == 4, run.name
    assert sorted(p["number"] for p in tx.all("project")) == sorted(
        p["projectNo"] for p in stack.qondor.snapshot()["projects"]
    ), run.name
    assert len(tx.all("contact")) == 3, run.name

    card = invoices[invoice_reference(office, run.q(CARD))][0]
    payments = tx.payments_of(card["id"])
    assert len(payments) == 1 and payments[0]["paymentTypeId"] == PAYMENT_TYPE_CARD, f"{run.name}: {payments}"
    assert Decimal(str(card["amountOutstanding"])) == 0, run.name

    # One credit note per Qondor credit note, each crediting OFFER_2's invoice with the Qondor amount.
    credit_notes = {str(c["invoiceNumber"]): c for c in tx.all("invoice") if c.get("isCreditNote")}
    assert len(credit_notes) == len(run.credits), f"{run.name}: {len(credit_notes)} credit notes"
    for n in run.credits:
        qondor_credit = stack.qondor.invoice_model(run.q(n))
        made = credit_notes.get(qondor_credit.external_invoice_number or "")
        assert made is not None and made["creditedInvoice"] == original["id"], f"{run.name}: credit note {n}"
        assert Decimal(str(made["amount"])) == qondor_credit.total_incl_vat, f"{run.name}: amount of {n}"
    orders = [o.get("reference") for o in tx.all("order") if o.get("reference")]
    assert len(orders) == len(set(orders)), f"{run.name}: an order reference twice: {sorted(orders)}"

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
            assert rule.applied == rule.times, f"{run.name}: rule {rule.method} {rule.path} fired {rule.applied}x"


# --- 1. commit, then lose the response, on every create call --------------------------------------------


@dataclass(frozen=True)
class Drop:
    system: str  # "tripletex" | "qondor"
    method: str
    path: str
    then: str  # the request that shows the retry looked for what the lost call made (method and path regex)


DROPS = {
    "customer": Drop("tripletex", "POST", r"^/v2/customer$", r"GET /v2/customer$"),
    "contact": Drop("tripletex", "POST", r"^/v2/contact$", r"GET /v2/contact$"),
    "employee": Drop("tripletex", "POST", r"^/v2/employee$", r"GET /v2/employee$"),
    "entitlement": Drop("tripletex", "PUT", r"^/v2/employee/entitlement/:grantEntitlementsByTemplate$",
                        r"PUT /v2/employee/entitlement/:grantEntitlementsByTemplate$"),
    "project": Drop("tripletex", "POST", r"^/v2/project$", r"GET /v2/project$"),
    "invoice": Drop("tripletex", "POST", r"^/v2/invoice$", r"GET /v2/invoice$"),
    "credit-note": Drop("tripletex", "PUT", r"^/v2/invoice/\d+/:createCreditNote$", r"GET /v2/invoice$"),
    # SetAs* repeat the same transition after a lost answer (Qondor treats a repeat as an idempotent no-op).
    "set-as-processed": Drop("qondor", "PUT", r"/Invoicing/v1/Invoice/SetAsProcessed$",
                             r"PUT /Invoicing/v1/Invoice/SetAsProcessed$"),
    "set-as-paid": Drop("qondor", "PUT", r"/Invoicing/v1/Invoice/SetAsPaid$", r"PUT /Invoicing/v1/Invoice/SetAsPaid$"),
}


def _drop_driver(drop: Drop) -> Driver:
    async def drive(run: Run) -> None:
        rule = {"method": drop.method, "path": drop.path, "mode": "drop_after_commit", "times": 1}
        (run.tripletex_fault if drop.system == "tripletex" else run.qondor_fault)(rule)
        await discover_and_settle(run)

    return drive


for _key, _drop in DROPS.items():
    scenario(f"drop:{_key}")(_drop_driver(_drop))


def _around_the_drop(run: Run, drop: Drop) -> tuple[str, int | None, list[str]]:
    """The lost request ("METHOD path"), the status its handler answered, and the requests after it."""
    if drop.system == "tripletex":
        log = [(f"{r.method} {r.path}", r.status, r.dropped) for r in run.tripletex_log()]
    else:
        log = [(f"{e['method']} {e['path']}", e["status"], bool(e.get("dropped"))) for e in run.stack.qondor.requests]
    lost = [i for i, (*_, dropped) in enumerate(log) if dropped]
    assert len(lost) == 1, f"{run.name}: exactly one response lost, not {len(lost)}"
    request, status, _ = log[lost[0]]
    return request, status, [r for r, *_ in log[lost[0] + 1:]]


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", [f"drop:{key}" for key in DROPS])
async def test_a_committed_create_whose_response_is_lost_is_found_not_made_again(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    drop = DROPS[scenario.split(":", 1)[1]]
    assert_rules_spent(run)
    request, status, after = _around_the_drop(run, drop)
    # The write was committed (its handler answered 2xx) and only then was the response lost ...
    method, path = request.split(" ", 1)
    assert method == drop.method and re.search(drop.path, path) and status is not None and 200 <= status < 300
    # ... a retry looked for what it made (a lookup, or the idempotent call repeated) ...
    assert any(re.search(drop.then, r) for r in after), f"{scenario}: no lookup after the lost response"
    # ... and found it: nothing exists twice, everything is synced and reported.
    assert_synced_exactly_once(run)


EVERY_CREATE = {  # how many times the sample's sync makes each call (four customers, three contacts, ...)
    "customer": 4, "contact": 3, "employee": 2, "entitlement": 2, "project": 3, "invoice": 5, "credit-note": 1,
    "set-as-processed": 6, "set-as-paid": 1,
}


@scenario("drop:every-create")
async def _drop_every_create(run: Run) -> None:
    """Every create call of the run loses its response once: companies matched by organisation number and
    the private booker by e-mail, the card invoice with its payment, every SetAsProcessed."""
    for key, times in EVERY_CREATE.items():
        drop = DROPS[key]
        rule = {"method": drop.method, "path": drop.path, "mode": "drop_after_commit", "times": times}
        (run.tripletex_fault if drop.system == "tripletex" else run.qondor_fault)(rule)
    await discover_and_settle(run)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", ["drop:every-create"])
async def test_every_create_losing_its_response_once_still_syncs_each_invoice_once(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert_rules_spent(run)  # each rule fired as often as the sync makes that call: nothing was made twice
    lost = [r for r in run.tripletex_log() if r.dropped]
    assert len(lost) == sum(n for k, n in EVERY_CREATE.items() if DROPS[k].system == "tripletex")
    assert all(r.status is not None and 200 <= r.status < 300 for r in lost)
    assert sum(1 for e in run.stack.qondor.requests if e.get("dropped")) == 7
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
    run.tripletex_fault({"method": "POST", "path": r"^/v2/order$", "mode": "drop_after_commit", "times": 1})
    run.tripletex_fault({"method": "POST", "path": r"^/v2/order$", "mode": "status", "status": 500, "after": 1,
                         "times": 1})
    await discover_and_settle(run)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", ["partial-credit-notes"])
async def test_partial_credit_notes_are_each_booked_once_when_their_credit_order_fails(
    fleet: Fleet, scenario: str
) -> None:
    run = await fleet.finished(scenario)
    assert_rules_spent(run)
    # The lost order was found and invoiced, not made again; the refused one was made on the retry, whose
    # lookup did not take the other partial credit note of the same invoice for its own.
    assert_synced_exactly_once(run)
    assert len(run.stack.tripletex.all("order")) == 7  # five invoices' orders and the two credit orders
    assert any(r.method == "GET" and r.path == "/v2/order" for r in run.tripletex_log())


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


scenario("429:tripletex-without-reset")(_tripletex_storm(False))
scenario("429:tripletex-with-reset")(_tripletex_storm(True))


@scenario("429:qondor")
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
@pytest.mark.parametrize("scenario", ["429:tripletex-without-reset", "429:tripletex-with-reset", "429:qondor"])
async def test_429_storms_are_waited_out_without_failing_or_duplicating(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert_rules_spent(run)
    if scenario.startswith("429:tripletex"):
        refused = [r for r in run.tripletex_log() if r.status == 429]
        assert len(refused) >= 8, f"only {len(refused)} requests were rate limited"
        assert any(r.method in ("POST", "PUT") for r in refused), "no write was rate limited"
    else:
        refused = [e for e in run.stack.qondor.requests if e["status"] == 429]
        assert len(refused) >= 8, f"only {len(refused)} Qondor requests were rate limited"
    assert_synced_exactly_once(run)


# --- 3. sessions expire mid-run -----------------------------------------------------------------------------


@scenario("session-expiry")
async def _session_expiry(run: Run) -> None:
    tx = run.stack.tripletex
    # Invoices take a little longer, so some are in flight when the sessions die.
    run.tripletex_fault({"method": "POST", "path": r"^/v2/invoice$", "mode": "latency", "seconds": 0.3,
                         "times": None})
    assert await run.stack.discover() == (6, 6)
    await wait_until(lambda: _true(len(tx.all("invoice")) >= 1), SETTLE_SECONDS, "a first invoice", 0.05)
    # Every session dies now. Tripletex work is still to come whatever the timing: the credit note can only be
    # made after its original is booked and reported to Qondor.
    run.notes["expired"] = tx.expire_sessions()
    await settle(run)


async def _true(value: bool) -> bool:
    return value


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", ["session-expiry"])
async def test_an_expired_session_is_renewed_transparently(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert run.notes["expired"] >= 1
    log = run.tripletex_log()
    assert any(r.status == 401 for r in log), "no request met the expired session"
    assert sum(1 for r in log if r.path == "/v2/token/session/:create" and r.status == 201) >= 2
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
    run.tripletex_fault({"method": "POST", "path": r"^/v2/invoice$", "mode": "latency", "seconds": 0.5,
                         "times": None})
    assert await stack.discover() == (6, 6)
    assert await stack.discover() == (6, 6)  # the next poll sees the same queue
    await asyncio.gather(stack.discover(), stack.discover())  # two pollers at once (e.g. during a rollout)
    await wait_until(lambda: _true(len(stack.tripletex.all("invoice")) >= 1), SETTLE_SECONDS, "a first invoice", 0.05)
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


async def _executions(run: Run) -> dict[str, list[str]]:
    """Workflow id -> run ids of every InvoiceSync execution of the office (open or closed)."""
    out: dict[str, list[str]] = {}
    query = f"OfficeId={run.stack.office_id} AND WorkflowType='InvoiceSync'"
    async for wf in run.stack.client.list_workflows(query):
        out.setdefault(wf.id, []).append(wf.run_id)
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", ["duplicate-delivery"])
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


@scenario("5xx:reads")
async def _server_errors_on_reads(run: Run) -> None:
    # More in a row than the clients retry themselves (Tripletex: 3 GET retries; Qondor: 503 only), so
    # activities fail and Temporal retries them too.
    for path, status, times in ((r"^/v2/customer$", 500, 5), (r"^/v2/project$", 502, 2),
                                (r"^/v2/employee$", 503, 4), (r"^/v2/ledger/vatType$", 500, 4)):
        run.tripletex_fault({"method": "GET", "path": path, "mode": "status", "status": status, "times": times})
    for path, status, times in ((r"/Invoicing/v1/Invoice/\d+$", 500, 3), (r"/Customer/v1/Customer/\d+$", 502, 2),
                                (r"/Project/v1/Project/GetByProjectNo$", 503, 4)):
        run.qondor_fault({"method": "GET", "path": path, "mode": "status", "status": status, "times": times})
    await discover_and_settle(run)


@scenario("5xx:writes")
async def _server_errors_on_writes(run: Run) -> None:
    # Refused before the handler runs (nothing committed): the retry must create, exactly once.
    for method, path, status, times in (
        ("POST", r"^/v2/customer$", 503, 2), ("POST", r"^/v2/contact$", 500, 1), ("POST", r"^/v2/employee$", 502, 1),
        ("PUT", r"^/v2/employee/entitlement/", 500, 1), ("POST", r"^/v2/project$", 503, 2),
        ("POST", r"^/v2/invoice$", 500, 3), ("PUT", r":createCreditNote$", 502, 1),
        ("POST", r"^/v2/token/session/:create$", 503, 1),
    ):
        run.tripletex_fault({"method": method, "path": path, "mode": "status", "status": status, "times": times})
    for path, status, times in ((r"/SetAsProcessed$", 500, 2), (r"/SetAsProcessed$", 503, 2),
                                (r"/SetAsPaid$", 502, 1)):
        run.qondor_fault({"method": "PUT", "path": path, "mode": "status", "status": status, "times": times})
    await discover_and_settle(run)


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", ["5xx:reads", "5xx:writes"])
async def test_5xx_bursts_are_retried_and_never_fail_an_invoice(fleet: Fleet, scenario: str) -> None:
    run = await fleet.finished(scenario)
    assert_rules_spent(run)
    assert_synced_exactly_once(run)

