"""The emulator's in-memory 24SevenOffice client: credentials, sessions, clock, hourly limit and entities.

Why one re-entrant lock: uvicorn serves the app in a background thread while the test thread seeds and
inspects the state, so every mutation and multi-step read runs under ``state.lock``; handlers never await
while holding it.

Entities are dicts in the WSDL's own shape (``Id``, ``Name``, ``EmailAddresses: {"Invoice": {...}}``,
arrays as ``{"InvoiceRow": [...]}``), so SOAP handlers render them without a mapping layer. Keys starting
with ``_`` are the emulator's bookkeeping (``_deactivated`` on a project, ``_open_item`` on a ledger entry):
never rendered, visible over the admin API.

All times are naive UTC (what the API returns); ``state.clock`` is replaceable in tests and
``clock_offset`` moves it (both used to reach a quarantine and to step past the hour).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from emulators.faults import FaultInjector

TABLES: tuple[str, ...] = (
    "companies", "products", "categories", "projects", "project_statuses", "project_types", "departments",
    "payment_methods", "accounts", "orders", "vat_types",
)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Identity:
    """An identity is a user's access to one client (company). All identities share the one dataset; each
    has its own hourly request counter, as the real limit is per identity."""

    id: str
    client_name: str
    client_id: int
    user_name: str = "API User"


@dataclass
class Credential:
    """What ``Login`` accepts: application id + username + password, and the identities the user has."""

    application_id: str
    username: str
    password: str
    identity_ids: list[str]


@dataclass
class Session:
    id: str
    identity_id: str
    username: str
    last_used: datetime


@dataclass(frozen=True)
class RateDecision:
    """The outcome of counting one request against its identity's hour."""

    blocked: bool
    exceeded_by: int
    remaining: int
    reset_at: datetime


class LoginRefused(Exception):
    """``Login`` with unknown credentials; the message becomes the fault's inner text."""


@dataclass
class FinagoState:
    """Everything the emulated 24SevenOffice holds. ``FinagoState()`` comes with the default seed
    (``seed.apply_defaults``); ``FinagoState(defaults=False)`` is empty (no credentials either)."""

    defaults: bool = True
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    faults: FaultInjector = field(default_factory=FaultInjector, repr=False)
    clock: Callable[[], datetime] = field(default=utc_now, repr=False)

    def __post_init__(self) -> None:
        self.reset()

    # ------------------------------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Back to a fresh client: entities, credentials, sessions, counters, settings and faults."""
        from accounting.finago.emulator.seed import apply_defaults  # seed builds on state; imported late

        with self.lock:
            self.tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in TABLES}
            self.transactions: list[dict[str, Any]] = []
            self._date_index: tuple[list[dict[str, Any]], list[int], dict[datetime, list[int]]] | None = None
            self.credentials: list[Credential] = []
            self.identities: dict[str, Identity] = {}
            self.sessions: dict[str, Session] = {}
            self.session_ttl = timedelta(hours=12)
            self.hourly_limit: int | None = 7200
            self.clock_offset = timedelta(0)
            self.login_count = 0
            self.request_count = 0
            self.operation_counts: Counter[str] = Counter()
            self._hours: dict[str, tuple[datetime, int]] = {}
            self._ids: dict[str, itertools.count[int]] = {}
            self._numbers: Counter[str] = Counter()
            self.faults.clear()
            if self.defaults:
                apply_defaults(self)

    # ------------------------------------------------------------------------------------------ clock

    def now(self) -> datetime:
        """The emulator's UTC time, second precision (what ``DateChanged`` and the limit use)."""
        return (self.clock() + self.clock_offset).replace(microsecond=0)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward (e.g. past the hour that ends a quarantine)."""
        with self.lock:
            self.clock_offset += delta
            return self.now()

    # ------------------------------------------------------------------------------------------ entities

    def new_id(self, table: str, start: int = 1) -> int:
        """Sequential ids per table, never reusing one that was pinned by a seed or a save."""
        with self.lock:
            counter = self._ids.setdefault(table, itertools.count(start))
            while True:
                candidate = next(counter)
                if candidate not in self.tables.get(table, {}):
                    return candidate

    def next_number(self, series: str, start: int = 1) -> int:
        """Sequential numbers (invoice numbers, link ids, transaction numbers)."""
        with self.lock:
            self._numbers[series] = max(self._numbers[series], start - 1) + 1
            return self._numbers[series]

    def get(self, table: str, entity_id: Any) -> dict[str, Any] | None:
        try:
            return self.tables[table].get(int(entity_id))
        except (TypeError, ValueError):
            return None

    def put(self, table: str, entity: dict[str, Any]) -> dict[str, Any]:
        """Store an entity under its ``Id`` (assigned when missing)."""
        with self.lock:
            if not entity.get("Id"):
                entity["Id"] = self.new_id(table)
            self.tables[table][int(entity["Id"])] = entity
            return entity

    def all(self, table: str) -> list[dict[str, Any]]:
        with self.lock:
            return [self.tables[table][key] for key in sorted(self.tables[table])]

    # ------------------------------------------------------------------------------------------ auth

    def add_identity(self, identity_id: str | None = None, client_name: str = "Qondor Demo AS",
                     client_id: int | None = None) -> Identity:
        """Register an identity (a client the API user can work on)."""
        with self.lock:
            identity = Identity(str(identity_id or uuid.uuid4()), client_name,
                                client_id or 1000 + len(self.identities) + 1)
            self.identities[identity.id] = identity
            return identity

    def add_credential(self, application_id: str, username: str, password: str,
                       identity_ids: list[str] | None = None) -> Credential:
        """Register a credential set; without identities it gets a new one. The first identity is the default."""
        with self.lock:
            ids = [str(i) for i in identity_ids] if identity_ids else [self.add_identity().id]
            for identity_id in ids:
                if identity_id not in self.identities:
                    self.add_identity(identity_id)
            credential = Credential(str(application_id).lower(), username, password, ids)
            self.credentials.append(credential)
            return credential

    def login(self, application_id: str | None, username: str | None, password: str | None,
              identity_id: str | None = None) -> Session:
        """Check a credential and open a session (counted in ``login_count`` even when refused).

        Refusals raise :class:`LoginRefused`; the SOAP layer answers them with a ``soap:Server`` fault (the
        real answer to bad credentials is unverified: NOTES.md §2)."""
        with self.lock:
            self.login_count += 1
            app_id = str(application_id or "").lower()
            if not any(c.application_id == app_id for c in self.credentials):
                raise LoginRefused("Invalid ApplicationId")
            credential = next((c for c in self.credentials if c.application_id == app_id
                               and c.username.lower() == (username or "").lower() and c.password == password), None)
            if credential is None:
                raise LoginRefused("Invalid username or password")
            chosen = str(identity_id).lower() if identity_id else credential.identity_ids[0]
            if chosen not in credential.identity_ids:
                raise LoginRefused("Provided IdentityId is blocked. Please use GetIdentitiesWithCredential to get a "
                                   "list of available Identities and reauthenticate with a valid IdentityId")
            session = Session(secrets.token_hex(12), chosen, credential.username, self.now())
            self.sessions[session.id] = session
            return session

    def credential_of(self, username: str | None, password: str | None, application_id: str | None
                      ) -> Credential | None:
        with self.lock:
            return next((c for c in self.credentials if c.application_id == str(application_id or "").lower()
                         and c.username.lower() == (username or "").lower() and c.password == password), None)

    def session(self, session_id: str | None, *, touch: bool = True) -> Session | None:
        """The live session for a cookie value; idle sessions older than ``session_ttl`` die here."""
        if not session_id:
            return None
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                return None
            if self.now() - session.last_used > self.session_ttl:
                del self.sessions[session_id]
                return None
            if touch:
                session.last_used = self.now()
            return session

    def expire_sessions(self) -> int:
        """Every session dies now (the next call with any cookie gets ``Session is not authenticated``)."""
        with self.lock:
            count = len(self.sessions)
            self.sessions.clear()
            return count

    # ------------------------------------------------------------------------------------------ limit

    def count_request(self, identity_id: str) -> RateDecision:
        """Count one request in the identity's clock hour. Over ``hourly_limit`` it is blocked until the hour
        ends (blocked requests count too, so ``exceeded_by`` keeps growing like the real message)."""
        with self.lock:
            now = self.now()
            hour = now.replace(minute=0, second=0)
            start, count = self._hours.get(identity_id, (hour, 0))
            if start != hour:
                count = 0
            count += 1
            self._hours[identity_id] = (hour, count)
            limit = self.hourly_limit
            reset_at = hour + timedelta(hours=1)
            if limit is None:
                return RateDecision(False, 0, 0, reset_at)
            return RateDecision(count > limit, max(0, count - limit), max(0, limit - count), reset_at)

    def record_operation(self, service: str, operation: str) -> None:
        with self.lock:
            self.request_count += 1
            self.operation_counts[f"{service}.{operation}"] += 1

    # ------------------------------------------------------------------------------------------ ledger

    def entries_dated(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Ledger entries whose ``Date`` lies in [start, end], in posting order. An index by day, extended as
        entries are appended (the ledger only appends, and an entry's Date never changes), spares a read of a
        large ledger (the benchmark's 100,000 entries) a scan of all of it."""
        with self.lock:
            if self._date_index is None or self._date_index[0] is not self.transactions:
                self._date_index = (self.transactions, [0], {})
            entries, done, by_day = self._date_index
            for position in range(done[0], len(entries)):
                by_day.setdefault(entries[position]["Date"], []).append(position)
            done[0] = len(entries)
            positions = sorted(p for day, found in by_day.items() if start <= day <= end for p in found)
            return [entries[p] for p in positions]

    def transactions_of_invoice(self, invoice_no: int | str) -> list[dict[str, Any]]:
        """Ledger entries posted for an invoice number (its own voucher and the payments/credits on it)."""
        with self.lock:
            return [t for t in self.transactions if str(t.get("_open_item")) == str(invoice_no)
                    or str(t.get("InvoiceNo")) == str(invoice_no)]

    # ------------------------------------------------------------------------------------------ finance actions

    def register_payment(self, invoice_id: int, amount: Decimal | int | str, date: datetime | None = None,
                         account_no: int = 1920) -> list[dict[str, Any]]:
        """What a person does in the UI: pay (part of) an invoice. Returns the posted entries."""
        from accounting.finago.emulator import ledger

        return ledger.register_payment(self, int(invoice_id), Decimal(str(amount)), date, account_no)

    def invoice_order(self, order_id: int, date: datetime | None = None) -> dict[str, Any]:
        """Invoice an order saved as Offer/ForInvoicing/Web...: invoice number, DateInvoiced, ledger entry."""
        from accounting.finago.emulator import invoicing

        return invoicing.invoice_order(self, int(order_id), date)

    def deactivate_project(self, project_id: int, deactivated: bool = True) -> dict[str, Any]:
        """Deactivate (or reactivate) a project, as in the UI; it moves to ``GetDeactivatedProjects``."""
        from accounting.finago.emulator.services import project

        return project.set_deactivated(self, int(project_id), deactivated)

    def delete_company(self, company_id: int) -> bool:
        with self.lock:
            return self.tables["companies"].pop(int(company_id), None) is not None
