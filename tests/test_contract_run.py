"""The Tripletex contract over whole runs: every request the worker sends to Tripletex, and every response it
gets, conforms to Tripletex's OpenAPI spec (v2.74.00, see tests/contract/tripletex_spec.py).

The worker's Tripletex transport is wrapped by the capturing transport, so what is checked is exactly what
the product put on the wire: the ensure steps (create, and link+update of a customer finance already has),
invoices, card payments, credit notes, orders, a resync's update, the lookups after a lost response, the
workflows' fallback payment checks and the payment sweep's list call."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
from contract.tripletex_spec import CapturingTransport, Exchange, assert_conforms
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from accounting.tripletex.adapter import CHECK_FIELDS, LOOKUP_FIELDS, SWEEP_FIELDS
from accounting.tripletex.emulator.gateway import normalised_path
from accounting.tripletex.emulator.seed import apply_seed
from domain.qondor import QueueStatus
from domain.sync import OfficeRunInput, SweepResult, SyncState
from emulators.qondor.sample import sample_office_data
from harness import Stack, new_stack, stack_queues, wait_until
from workers.demo import tripletex_duplicates
from workflows.office import PaymentSweep

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506


def captured_stack(env: WorkflowEnvironment, tmp_path: Path, **overrides: object) -> tuple[Stack, CapturingTransport]:
    """A stack whose worker reaches Tripletex through a capturing transport (and Qondor directly)."""
    stack = new_stack(env.client, tmp_path, **overrides)
    capture = CapturingTransport(httpx.ASGITransport(app=stack.tripletex_app))
    stack.start_worker({"qondor": httpx.ASGITransport(app=stack.qondor_app), "tripletex": capture})
    return stack, capture


async def sweep(client: Client, office_id: int) -> SweepResult:
    return await client.execute_workflow(
        PaymentSweep.run,
        OfficeRunInput(office_id=office_id, accounting_system="tripletex"),
        id=f"test-contract-sweep-{office_id}",
        task_queue=stack_queues(office_id).workflow,
    )


def operations(exchanges: list[Exchange]) -> Counter[str]:
    return Counter(f"{e.method} {normalised_path(e.path)}" for e in exchanges)


def gets(capture: CapturingTransport, path: str, fields: str) -> list[Exchange]:
    """The GET calls of ``path`` that asked for exactly these ``fields`` (tells the callers apart)."""
    return [
        e for e in capture.exchanges if e.method == "GET" and e.path == path and e.url.params.get("fields") == fields
    ]


def checks(capture: CapturingTransport) -> list[Exchange]:
    """The workflows' own fallback payment checks (GET /invoice/{id} with the check's fields)."""
    return [e for e in capture.exchanges if e.method == "GET" and e.url.params.get("fields") == CHECK_FIELDS]


async def test_a_whole_invoice_mode_run_conforms_to_the_tripletex_spec(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # Fallback payment checks every 3 s (GET /invoice/{id}); the first POST /invoice loses its response, so the
    # retry looks the invoice up by reference.
    stack, capture = captured_stack(temporal_env, tmp_path, payment_fallback_check_days=3 / 86400)
    try:
        stack.tripletex.faults.add({"method": "POST", "path": "^/v2/invoice$", "mode": "drop_after_commit"})
        base = stack.office_id * 1000
        # Finance already has the card payer (Norsk Arrangørforum) as a customer: it is linked and updated.
        forum = next(c for c in stack.qondor.snapshot()["customers"] if c["id"] == base + 3)
        [known] = apply_seed(
            stack.tripletex,
            {"customers": [{"name": "Arrangørforum", "organizationNumber": forum["organisationNumber"]}]},
        )["customers"]
        await stack.discover()
        for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
            await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT, SyncState.CREDITED)
        card = await stack.wait_for_state(base + CARD, SyncState.PAID)
        assert tripletex_duplicates(stack.tripletex) == {}
        assert card.refs.customer_id == str(known) and len(stack.tripletex.all("customer")) == 4
        assert stack.tripletex.get("customer", known)["name"] == forum["legalName"]

        # A resync after the customer and the project changed in Qondor (PUT /customer, PUT /project), a payment,
        # and the sweep's list call.
        stack.qondor.update_customer({"id": base + 2, "legalName": "Solberg & Dahl Advokatfirma ANS", "city": "Oslo"})
        partner = next(p for p in sample_office_data(stack.office_id)["projects"] if p["id"] == base + 302)
        stack.qondor.seed({"projects": [{**partner, "name": "Solberg & Dahl partnersamling 2026"}]})
        await stack.handle(base + FORM).signal("resync")

        async def updated() -> bool:
            ops = operations(capture.exchanges)  # the customer: the link's update, then the resync's
            return ops["PUT /v2/customer/{id}"] >= 2 and ops["PUT /v2/project/{id}"] >= 1

        await wait_until(updated, 20, "the resync's updates")
        status = await stack.status(base + OFFER_1)
        assert status.invoice is not None and status.invoice.invoice_id and status.invoice.amount
        await stack.tripletex_pay(int(status.invoice.invoice_id), Decimal(status.invoice.amount))
        await sweep(stack.client, stack.office_id)  # (a fallback check may have seen some of it first)
        await stack.wait_for_state(base + OFFER_1, SyncState.PAID)
        await stack.wait_for_qondor(base + OFFER_1, QueueStatus.PAID)

        async def checked() -> bool:
            return operations(checks(capture))["GET /v2/invoice/{id}"] >= 1

        await wait_until(checked, 20, "a fallback payment check")
    finally:
        await stack.close()

    ops = operations(capture.exchanges)
    for expected in (
        "POST /v2/token/session/:create",
        "GET /v2/customer",
        "POST /v2/customer",
        "PUT /v2/customer/{id}",
        "POST /v2/contact",
        "GET /v2/employee",
        "POST /v2/employee",
        "PUT /v2/employee/entitlement/:grantEntitlementsByTemplate",
        "GET /v2/project",
        "POST /v2/project",
        "GET /v2/ledger/vatType",
        "POST /v2/invoice",
        "PUT /v2/invoice/{id}/:createCreditNote",
    ):
        assert ops[expected] >= 1, f"the run made no {expected} call: {dict(ops)}"
    # Only the resync rewrote a project (the conference project, shared by a private booker's and a company's
    # invoice, is not rewritten for each invoice's customer).
    assert ops["PUT /v2/project/{id}"] == 1
    assert gets(capture, "/v2/invoice", SWEEP_FIELDS), "the payment sweep's list call"
    assert gets(capture, "/v2/invoice", LOOKUP_FIELDS), "the lookup by reference after the lost response"
    assert any(e.error for e in capture.exchanges), "the lost response"
    assert_conforms(capture.exchanges)


async def test_a_whole_order_mode_run_conforms_to_the_tripletex_spec(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # The first POST /order loses its response: the retry finds the order through GET /order by reference.
    stack, capture = captured_stack(temporal_env, tmp_path, invoice_mode="order")
    try:
        stack.tripletex.faults.add({"method": "POST", "path": "^/v2/order$", "mode": "drop_after_commit"})
        base = stack.office_id * 1000
        await stack.discover()
        for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
            await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT)
        await stack.wait_for_state(base + CARD, SyncState.PAID)
        status = await stack.status(base + FORM)
        assert status.invoice is not None and status.invoice.order_id
        async with stack.tripletex_client() as finance:
            invoice = await finance.invoice_order(int(status.invoice.order_id), invoice_date=date(2026, 4, 20))
        await stack.tripletex_pay(invoice["id"], Decimal(str(invoice["amount"])))
        result = await sweep(stack.client, stack.office_id)
        assert result.paid == 1
        await stack.wait_for_qondor(base + FORM, QueueStatus.PAID)
        assert tripletex_duplicates(stack.tripletex) == {}
    finally:
        await stack.close()

    ops = operations(capture.exchanges)
    # Five orders, one of whose responses was lost: the retry found it by reference instead of sending it again.
    assert ops["POST /v2/order"] == 5 and sum(1 for e in capture.exchanges if e.error) == 1
    assert ops["POST /v2/invoice"] == 1  # the card payment
    assert ops["GET /v2/order"] >= 1, "the lookup by reference after the lost response"
    assert gets(capture, "/v2/invoice", SWEEP_FIELDS), "the payment sweep's list call"
    assert_conforms(capture.exchanges)


async def test_a_whole_cost_and_sales_run_conforms_to_the_tripletex_spec(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """ActualsSync over a captured transport, in pages of two: the supplier invoices with their postings, the
    project-linked invoices and the credited originals' lookup all conform, and the run reads nothing else."""
    from actuals_seed import CostLine
    from actuals_support import DAY, DUE, costs, ledger, number, qondor_seed, reseed, run_actuals, sales

    from accounting.tripletex.actuals import COST_FIELDS, SALE_FIELDS

    stack = new_stack(temporal_env.client, tmp_path, seed=qondor_seed(0))
    reseed(stack)
    capture = CapturingTransport(httpx.ASGITransport(app=stack.tripletex_app))
    stack.start_worker({"qondor": httpx.ASGITransport(app=stack.qondor_app), "tripletex": capture})
    try:
        book = ledger(stack)
        p1, p2 = number(stack.office_id, 1), number(stack.office_id, 2)
        for n in range(3):
            book.add_cost(number=f"F-{n}", supplier="Lydteknikk AS", invoice_date=DAY, due_date=DUE, lines=[
                CostLine(p1, Decimal("100.00"), Decimal("25.00")), CostLine(p2, Decimal("40.00"), Decimal("10.00"))])
        sold = book.add_sale(number="30001", customer="Fjord Konferanse AS", project_number=p1, invoice_date=DAY,
                             due_date=DUE, amount_excl_vat=Decimal("800.00"), vat=Decimal("200.00"))
        book.add_sale(number="30002", customer="Fjord Konferanse AS", project_number=p2, invoice_date=DAY,
                      due_date=DUE, amount_excl_vat=Decimal("500.00"), vat=Decimal("125.00"))
        book.reverse(sold)  # a credit note: the original's lookup by id

        result = await run_actuals(stack, page_size=2)

        assert result.error is None and len(costs(stack)) == 6 and len(sales(stack)) == 1
        assert len(gets(capture, "/v2/supplierInvoice", COST_FIELDS)) >= 3, "several pages of supplier invoices"
        assert gets(capture, "/v2/invoice", SALE_FIELDS) and gets(capture, "/v2/invoice", "id,isCredited")
        assert set(operations(capture.exchanges)) <= {
            "POST /v2/token/session/:create", "GET /v2/supplierInvoice", "GET /v2/invoice"}
        assert_conforms(capture.exchanges)
    finally:
        await stack.close()
