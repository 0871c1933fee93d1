"""The Tripletex payment sweep over several pages: an office with more invoices than one ``GET /invoice`` page
(1,000) still has a paid invoice found when it sits on a later page.

Why: the sweep reads pages until a short one (``TripletexClient.pages``); a sweep that read only the first page
would never see the invoices beyond it paid, and their syncs would wait for payment for ever.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from test_invoice_sync import FORM, ids, sweep

from accounting.tripletex.emulator import invoicing, writes
from accounting.tripletex.emulator.state import TripletexState
from domain.qondor import QueueStatus
from domain.sync import SyncState
from harness import Stack

PAGE = 1000
SEEDED = 1_100
"""Other invoices of the office, all dated today (inside the sweep's window) and made before the sample's, so
the sample's invoices come after a full first page."""


def seed_invoices(state: TripletexState, n: int) -> list[dict[str, Any]]:
    """``n`` open invoices dated today, fast: clones of one the emulator made through its own rules (as
    ``workers/bench.py`` seeds its sweep phase)."""
    with state.lock:
        today = state.today()
        customer = writes.create_customer(state, {"name": "Other Customer AS", "organizationNumber": "811111112"})
        template = invoicing.create_invoice(state, {
            "invoiceDate": today.isoformat(),
            "orders": [{"customer": {"id": customer["id"]}, "orderDate": today.isoformat(),
                        "deliveryDate": today.isoformat(),
                        "orderLines": [{"count": 1, "unitPriceExcludingVatCurrency": 1000, "vatType": {"id": 3},
                                        "description": "Other"}]}],
        }, send_to_customer=False, payment_type_id=None, paid_amount=None)
        template_order = state.require("order", template["orders"][0]["id"])
        made = [template]
        for _ in range(n - 1):
            order = state.insert("order", {**template_order, "id": None, "number": str(state.next_number("order")),
                                           "reference": None})
            number = state.next_number("invoice")
            invoice = {**template, "id": None, "invoiceNumber": number, "kid": invoicing._kid(number),
                       "orders": [{"id": order["id"]}], "_payments": [], "projectInvoiceDetails": None,
                       "postings": [dict(p) for p in template.get("postings") or []]}  # not one list shared by all
            made.append(state.insert("invoice", {k: v for k, v in invoice.items()
                                                 if v is not None or k.startswith("_")}))
        return made


async def test_a_paid_invoice_on_a_later_page_is_found_and_the_pages_counted(stack: Stack) -> None:
    q, books = ids(stack), stack.books
    seed_invoices(stack.tripletex, SEEDED)
    await stack.discover()
    await stack.wait_for_state(q[FORM], SyncState.AWAITING_PAYMENT)
    booked = books.one(q[FORM])
    assert booked.invoice_id is not None

    # The tracked invoice is not on the first page the sweep reads (the same query as the sweep's).
    async with stack.tripletex_client() as client:
        first_page = await anext(aiter(client.iter_invoice_pages(date_from=date.today(), date_to=date.max,
                                                                  fields="id")))
    assert len(first_page) == PAGE and int(booked.invoice_id) not in {i["id"] for i in first_page}
    assert len(stack.tripletex.all("invoice")) > PAGE

    await books.pay(booked)
    result = await sweep(stack)
    assert result.pages == 2, result
    assert result.paid >= 1 and result.signalled >= 1, result
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PAID
    assert stack.qondor.invoice_model(q[FORM]).paid_amount == booked.amount
