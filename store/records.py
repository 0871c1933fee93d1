"""Plain, frozen values the store hands out.

Activities pass these across threads and into Temporal payloads, so they carry no session or lazy
loading: ids are ``str``, dates ``date``, amounts ``Decimal`` and timestamps timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    """What the store knows about one Qondor key in one accounting system."""

    office_id: int
    system: str
    kind: str
    qondor_key: str
    accounting_id: str | None
    fingerprint: str | None
    data: dict[str, Any] | None
    intent_count: int
    created_at: datetime
    updated_at: datetime

    @property
    def pending(self) -> bool:
        """True while a create was announced (``begin_create``) but its id is not recorded yet."""
        return self.accounting_id is None


@dataclass(frozen=True, slots=True)
class TrackedInvoice:
    """A synced invoice whose payment is watched while its state is 'open'."""

    office_id: int
    system: str
    qondor_invoice_id: int
    workflow_id: str
    invoice_date: date
    accounting_invoice_id: str | None
    accounting_order_id: str | None
    amount: Decimal | None
    state: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded write in an accounting system or in Qondor."""

    id: int
    at: datetime
    office_id: int
    system: str
    action: str
    entity: str
    accounting_id: str | None
    qondor_key: str | None
    workflow_id: str | None
    run_id: str | None
    activity: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ActualLink:
    """An actual cost or sale written to Qondor (``qondor_id`` None: a create was announced, not confirmed)."""

    office_id: int
    kind: str
    external_reference: str
    qondor_id: str | None
    project_number: str | None
    source_date: date | None
    fingerprint: str | None
    last_seen_run: str | None
    intent_count: int

    @property
    def pending(self) -> bool:
        return self.qondor_id is None
