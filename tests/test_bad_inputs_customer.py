"""End-to-end, for every registered accounting system: an invoice whose customer finance deleted or deactivated
in the accounting system, after an earlier invoice to it was synced (the store links the customer to its id) or
before the first sync.

Assertions are on the emulated Qondor, accounting system and Slack; docs/bad-inputs.md has the table.
"""

from __future__ import annotations

import contextlib
from datetime import date
from typing import Any

import test_bad_inputs
from test_bad_inputs import party_of, seed_customer
from test_errors import slack, slack_server, wait_for_alerts  # noqa: F401  (fixtures)
from test_slack import FakeSlack

from domain.config import AccountingSystem
from domain.qondor import InvoiceKind, QueueStatus
from domain.sync import SyncState
from emulators.qondor.sample import company, line, office, project, project_manager
from emulators.qondor.sample import invoice as queue_item
from harness import Stack, every_system, wait_until

WHEN = date(2026, 9, 1)
stack = test_bad_inputs.stack
"""The fixture: an office with an empty Qondor and Slack configured, worker not started."""


def two_invoices(office_id: int) -> dict[str, Any]:
    """One customer and project, and two invoices to it (ids base+701, base+702)."""
    base = office_id * 1000
    pm = project_manager(base + 700, "Pia", "Prosjekt", office_id, main=True)
    customer = company(base + 700, office_id, "Slettet Kunde AS", org_seed=base + 700, email_domain="slettet.example")
    customer.pop("externalReference")
    proj = project(base + 700, office_id, "Prosjekt 700", customer, [pm], WHEN)
    items = [queue_item(base + n, office_id, InvoiceKind.CUSTOMER_OFFER_INVOICE,
                        [line(1, "3000", "Møterom", n - 700, "1000.00")], invoice_date=WHEN, project=proj,
                        customer_id=customer["id"]) for n in (701, 702)]
    return {"offices": [office(office_id)], "customers": [customer], "projects": [proj], "invoices": items}


def remove_customer(stack: Stack, customer_id: int, *, deactivate: bool) -> None:
    """What finance does in the accounting system: delete the customer, or deactivate it (Tripletex ``isInactive``;
    24SevenOffice's company list flag ``Active``)."""
    state = stack.accounting
    table = "customer" if stack.system is AccountingSystem.TRIPLETEX else "companies"
    with state.lock:
        if not deactivate:
            state.tables[table].pop(customer_id)
        elif table == "customer":
            state.tables[table][customer_id]["isInactive"] = True
        else:
            state.tables[table][customer_id]["_active"] = False


def customers(stack: Stack) -> list[int]:
    table = "customer" if stack.system is AccountingSystem.TRIPLETEX else "companies"
    return [c["id" if table == "customer" else "Id"] for c in stack.accounting.all(table)]


async def run_first(stack: Stack) -> dict[str, Any]:
    """Sync the first invoice; returns the second (not in Qondor's queue yet)."""
    doc = two_invoices(stack.office_id)
    first, second = doc["invoices"]
    stack.qondor.seed({**doc, "invoices": [first]})
    stack.start_worker()
    await stack.discover()
    await stack.wait_for_state(first["id"], SyncState.AWAITING_PAYMENT, timeout=180)
    return second


async def run_second(stack: Stack, second: dict[str, Any], *states: SyncState) -> Any:
    stack.qondor.add_invoices([second])
    await stack.discover()
    return await stack.wait_for_state(second["id"], *states, timeout=180)


async def resync(stack: Stack, invoice_id: int) -> None:
    """The operator's resync, sent again until the sync leaves needs attention: the workflow counts resyncs only
    once its alert activity has returned, so one sent in that moment is not seen (reported as a workflow race)."""

    async def moved() -> bool:
        await stack.handle(invoice_id).signal("resync")
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: _left_attention(stack, invoice_id), 5, "the resync to be seen")
            return True
        return False

    await wait_until(moved, 180, f"invoice {invoice_id} to leave needs attention after a resync", interval=0)


async def _left_attention(stack: Stack, invoice_id: int) -> bool:
    return (await stack.status(invoice_id)).state is not SyncState.NEEDS_ATTENTION


@every_system
async def test_a_customer_deactivated_after_its_first_invoice_is_invoiced_again(stack: Stack) -> None:
    second = await run_first(stack)
    [customer_id] = customers(stack)
    remove_customer(stack, customer_id, deactivate=True)
    await run_second(stack, second, SyncState.AWAITING_PAYMENT)
    assert party_of(stack, second["id"]).id == customer_id and customers(stack) == [customer_id]
    assert stack.qondor.status_of(second["id"]) == QueueStatus.PROCESSED
    assert stack.books.duplicates() == {}


@every_system
async def test_a_customer_finance_deactivated_before_the_first_sync_is_used_not_duplicated(stack: Stack) -> None:
    doc = two_invoices(stack.office_id)
    org = doc["customers"][0]["organisationNumber"]
    existing = seed_customer(stack, "Slettet Kunde AS (inaktiv)", org=org)
    remove_customer(stack, existing, deactivate=True)
    stack.qondor.seed({**doc, "invoices": doc["invoices"][:1]})
    stack.start_worker()
    await stack.discover()
    first = doc["invoices"][0]["id"]
    await stack.wait_for_state(first, SyncState.AWAITING_PAYMENT, timeout=180)
    assert party_of(stack, first).id == existing and customers(stack) == [existing]
    assert stack.books.duplicates() == {}


@every_system
async def test_a_deleted_customer_needs_attention_then_a_resync_creates_it_again(
    stack: Stack, slack: FakeSlack  # noqa: F811
) -> None:
    """The store links the Qondor customer to the deleted id, so the accounting system refuses the invoice: an
    operator looks (needs attention, one alert); nothing is booked, Qondor keeps the item Unprocessed.

    The link is dropped (Tripletex: the refusal names ``customer.id``; 24SevenOffice: the linked company is looked
    up after the refusal, and the customer's External Reference holding its id is cleared too), so the resync the
    message asks for creates the customer again and books the invoice."""
    second = await run_first(stack)
    [customer_id] = customers(stack)
    remove_customer(stack, customer_id, deactivate=False)
    status = await run_second(stack, second, SyncState.NEEDS_ATTENTION)
    message = status.last_error or ""
    assert message.startswith(f"Invoice {second['id']}") and str(customer_id) in message, message
    assert stack.qondor.status_of(second["id"]) == QueueStatus.UNPROCESSED
    [alert] = await wait_for_alerts(slack, second["id"])
    assert alert["blocks"][0]["text"]["text"] == "Invoice needs attention: configuration"
    assert set(stack.books.invoices()) == {second["id"] - 1}
    label = "Tripletex" if stack.system is AccountingSystem.TRIPLETEX else "24SevenOffice"
    assert f"no longer exists in {label}" in message and "resync" in message, message
    await resync(stack, second["id"])
    await stack.wait_for_state(second["id"], SyncState.AWAITING_PAYMENT, timeout=180)
    [recreated] = customers(stack)
    assert recreated != customer_id and party_of(stack, second["id"]).id == recreated
    assert stack.qondor.status_of(second["id"]) == QueueStatus.PROCESSED
    assert stack.books.duplicates() == {} and len(await wait_for_alerts(slack, second["id"])) == 1
    if stack.system is AccountingSystem.FINAGO:  # the customer's External Reference names the new company
        assert stack.qondor.customer_external_reference(second["customerId"]) == str(recreated)
