"""Cursors and the audit trail."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from store import AuditEntry, Store


def test_cursor_is_none_until_set_then_holds_the_last_value(store: Store) -> None:
    assert store.get_cursor(1, "payments") is None

    store.set_cursor(1, "payments", "2025-01-01T00:00:00Z")
    store.set_cursor(1, "payments", "2025-01-02T00:00:00Z")
    store.set_cursor(2, "payments", "other office")
    store.set_cursor(1, "costs", "c")

    assert store.get_cursor(1, "payments") == "2025-01-02T00:00:00Z"
    assert store.get_cursor(2, "payments") == "other office"
    assert store.get_cursor(1, "costs") == "c"


def _audit(store: Store, **overrides: object) -> None:
    entry: dict[str, object] = {
        "office_id": 1,
        "system": "tripletex",
        "action": "create",
        "entity": "customer",
        "accounting_id": "4711",
        "qondor_key": "C-1",
        "workflow_id": "invoice-1-100",
        "run_id": "run-a",
        "activity": "ensure_customer",
        "detail": None,
    }
    entry.update(overrides)
    store.audit(**entry)  # type: ignore[arg-type]


def test_audit_entry_round_trips_with_json_detail(store: Store) -> None:
    before = datetime.now(UTC)
    detail = {
        "request": {"name": "Acme AS", "orgNo": "999888777"},
        "lines": [1, 2.5, None, True],
        "amount": Decimal("100.10"),  # stored as its exact string
        "due": date(2025, 3, 1),
        "note": "blåbærsyltetøy",
    }
    _audit(store, detail=detail)

    [entry] = store.audit_entries(office_id=1)

    assert isinstance(entry, AuditEntry)
    assert (entry.office_id, entry.system, entry.action, entry.entity) == (1, "tripletex", "create", "customer")
    assert (entry.accounting_id, entry.qondor_key) == ("4711", "C-1")
    assert (entry.workflow_id, entry.run_id, entry.activity) == ("invoice-1-100", "run-a", "ensure_customer")
    assert entry.detail == {
        "request": {"name": "Acme AS", "orgNo": "999888777"},
        "lines": [1, 2.5, None, True],
        "amount": "100.10",
        "due": "2025-03-01",
        "note": "blåbærsyltetøy",
    }
    assert entry.at.tzinfo is UTC and before <= entry.at <= datetime.now(UTC)


def test_audit_allows_missing_optional_fields(store: Store) -> None:
    _audit(store, accounting_id=None, qondor_key=None, workflow_id=None, run_id=None, activity=None)

    [entry] = store.audit_entries()

    assert (entry.accounting_id, entry.qondor_key, entry.workflow_id, entry.run_id, entry.activity, entry.detail) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_audit_entries_filter_and_keep_the_newest_in_order(store: Store) -> None:
    for n in range(5):
        _audit(store, accounting_id=str(n), workflow_id="wf-a")
    _audit(store, office_id=2, accounting_id="o2")
    _audit(store, system="finago", accounting_id="fin", workflow_id="wf-b")
    _audit(store, system="qondor", action="set_status", entity="invoice", accounting_id=None, workflow_id="wf-a")

    by_workflow = [e.accounting_id for e in store.audit_entries(workflow_id="wf-a")]
    newest_three = [e.accounting_id for e in store.audit_entries(workflow_id="wf-a", limit=3)]
    office_two = [e.accounting_id for e in store.audit_entries(office_id=2)]
    finago = [e.accounting_id for e in store.audit_entries(office_id=1, system="finago")]
    everything = store.audit_entries()

    assert by_workflow == ["0", "1", "2", "3", "4", None]
    assert newest_three == ["3", "4", None]
    assert office_two == ["o2"]
    assert finago == ["fin"]
    assert len(everything) == 8
    assert [e.id for e in everything] == sorted(e.id for e in everything)
