"""Tracked invoices: the payment-tracking lifecycle, the sweep's query and bulk seeding."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from store import Store, TrackedInvoice

OFFICE = 3
TX = "tripletex"


def _track(store: Store, qid: int, day: date = date(2025, 1, 10), **kwargs: object) -> None:
    store.track_invoice(OFFICE, TX, qid, workflow_id=f"invoice-{OFFICE}-{qid}", invoice_date=day, **kwargs)  # type: ignore[arg-type]


def test_track_invoice_records_an_open_invoice(store: Store) -> None:
    store.track_invoice(
        OFFICE,
        TX,
        1001,
        workflow_id="invoice-3-1001",
        invoice_date=date(2025, 2, 1),
        accounting_invoice_id="555",
        amount=Decimal("1234.50"),
    )

    tracked = store.tracked_invoice(OFFICE, TX, 1001)

    assert isinstance(tracked, TrackedInvoice)
    assert tracked.state == "open"
    assert (tracked.workflow_id, tracked.invoice_date) == ("invoice-3-1001", date(2025, 2, 1))
    assert (tracked.accounting_invoice_id, tracked.accounting_order_id) == ("555", None)
    assert tracked.amount == Decimal("1234.50") and isinstance(tracked.amount, Decimal)
    assert store.tracked_invoice(OFFICE, TX, 9999) is None


def test_invoice_lifecycle_open_paid_reopened_credited(store: Store) -> None:
    _track(store, 1, accounting_order_id="ord-1")  # order mode: finance invoices it later

    store.set_invoice_state(OFFICE, TX, 1, "paid", accounting_invoice_id="inv-1")
    paid = store.tracked_invoice(OFFICE, TX, 1)
    _track(store, 1)  # a resync tracks it again: open, and nothing known is forgotten
    reopened = store.tracked_invoice(OFFICE, TX, 1)
    store.set_invoice_state(OFFICE, TX, 1, "credited")
    credited = store.tracked_invoice(OFFICE, TX, 1)

    assert paid is not None and reopened is not None and credited is not None
    assert (paid.state, paid.accounting_invoice_id, paid.accounting_order_id) == ("paid", "inv-1", "ord-1")
    assert (reopened.state, reopened.accounting_invoice_id, reopened.accounting_order_id) == ("open", "inv-1", "ord-1")
    assert credited.state == "credited"
    assert credited.created_at == paid.created_at
    assert credited.updated_at >= paid.updated_at


def test_retracking_updates_known_fields(store: Store) -> None:
    _track(store, 1, amount=Decimal("10.00"))
    _track(store, 1, day=date(2025, 3, 3), amount=Decimal("12.00"), accounting_invoice_id="77")

    tracked = store.tracked_invoice(OFFICE, TX, 1)

    assert tracked is not None
    assert (tracked.invoice_date, tracked.amount, tracked.accounting_invoice_id) == (
        date(2025, 3, 3),
        Decimal("12.00"),
        "77",
    )


def test_set_invoice_state_rejects_unknown_states_and_untracked_invoices(store: Store) -> None:
    _track(store, 1)

    with pytest.raises(ValueError, match="paid"):
        store.set_invoice_state(OFFICE, TX, 1, "lost")
    with pytest.raises(KeyError):
        store.set_invoice_state(OFFICE, TX, 2, "paid")
    tracked = store.tracked_invoice(OFFICE, TX, 1)
    assert tracked is not None and tracked.state == "open"


def test_open_invoices_filters_by_office_system_and_state_oldest_first(store: Store) -> None:
    _track(store, 30, day=date(2025, 1, 3))
    _track(store, 10, day=date(2025, 1, 1))
    _track(store, 21, day=date(2025, 1, 2))
    _track(store, 20, day=date(2025, 1, 2))
    _track(store, 40, day=date(2024, 12, 31))
    store.set_invoice_state(OFFICE, TX, 40, "paid")
    store.track_invoice(OFFICE, "finago", 50, workflow_id="w", invoice_date=date(2024, 1, 1))
    store.track_invoice(OFFICE + 1, TX, 60, workflow_id="w", invoice_date=date(2024, 1, 1))

    open_ids = [t.qondor_invoice_id for t in store.open_invoices(OFFICE, TX)]

    assert open_ids == [10, 20, 21, 30]
    assert [t.qondor_invoice_id for t in store.open_invoices(OFFICE, "finago")] == [50]
    assert store.open_invoices(OFFICE + 2, TX) == []


def test_closed_states_leave_the_open_list(store: Store) -> None:
    for qid in (1, 2, 3, 4):
        _track(store, qid)
    store.set_invoice_state(OFFICE, TX, 1, "paid")
    store.set_invoice_state(OFFICE, TX, 2, "credited")
    store.set_invoice_state(OFFICE, TX, 3, "closed")

    assert [t.qondor_invoice_id for t in store.open_invoices(OFFICE, TX)] == [4]


def test_bulk_track_seeds_ten_thousand_rows_quickly(store: Store) -> None:
    start = date(2024, 1, 1)
    rows = (
        {
            "qondor_invoice_id": i,
            "workflow_id": f"invoice-{OFFICE}-{i}",
            "invoice_date": start + timedelta(days=i % 365),
            "accounting_invoice_id": str(100_000 + i),
            "amount": Decimal(i) / 100,
            "state": "paid" if i % 10 == 0 else "open",
        }
        for i in range(1, 10_001)
    )

    store.bulk_track(OFFICE, TX, rows)  # its speed is measured by the benchmark's sweep phase, not asserted here
    open_now = store.open_invoices(OFFICE, TX)

    assert len(open_now) == 9_000
    one = store.tracked_invoice(OFFICE, TX, 1234)
    assert one is not None
    assert (one.amount, one.accounting_invoice_id, one.state) == (Decimal("12.34"), "101234", "open")
    assert [t.invoice_date for t in open_now] == sorted(t.invoice_date for t in open_now)


def test_bulk_track_skips_rows_that_exist(store: Store) -> None:
    _track(store, 1, day=date(2025, 1, 1), accounting_invoice_id="kept")

    store.bulk_track(
        OFFICE,
        TX,
        [
            {"qondor_invoice_id": 1, "workflow_id": "w", "invoice_date": date(2025, 1, 1)},
            {"qondor_invoice_id": 2, "workflow_id": "w", "invoice_date": date(2025, 1, 1)},
        ],
    )

    assert [t.qondor_invoice_id for t in store.open_invoices(OFFICE, TX)] == [1, 2]
    first = store.tracked_invoice(OFFICE, TX, 1)
    assert first is not None and first.accounting_invoice_id == "kept"


def test_bulk_track_rejects_an_unknown_state(store: Store) -> None:
    with pytest.raises(ValueError):
        store.bulk_track(
            OFFICE, TX, [{"qondor_invoice_id": 1, "workflow_id": "w", "invoice_date": date(2025, 1, 1), "state": "x"}]
        )
    assert store.open_invoices(OFFICE, TX) == []
