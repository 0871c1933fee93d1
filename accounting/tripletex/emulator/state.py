"""The emulator's in-memory Tripletex company: entities, sessions, clock, rate-limit windows, request log.

Why one lock: uvicorn serves the app in a background thread while the test thread reads and seeds the
state, so every mutation (and every multi-step read) runs under ``state.lock``. Handlers never await
while holding it.

Entities are stored as dicts in Tripletex's JSON shape (``{"id": n}`` for references, ``Decimal`` for
amounts). Keys starting with ``_`` are the emulator's bookkeeping (an invoice's ``_sent``: whether it went to
the customer; ``_payments``): never rendered by the API, visible in ``GET /_admin/state`` and ``payments_of``.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from accounting.tripletex.emulator.errors import not_found
from emulators.faults import FaultInjector

TABLES: tuple[str, ...] = (
    "customer", "contact", "employee", "department", "project", "order", "orderLine", "invoice",
    "projectInvoiceDetails", "paymentType", "vatType", "product", "currency", "address", "deliveryAddress",
    "supplier", "supplierInvoice", "voucher", "voucherType", "posting", "account",
)

ENTITLEMENT_TEMPLATES: tuple[str, ...] = (
    "NONE_PRIVILEGES", "ALL_PRIVILEGES", "INVOICING_MANAGER", "PERSONELL_MANAGER", "ACCOUNTANT", "AUDITOR",
    "DEPARTMENT_LEADER",
)
PROJECT_MANAGER_TEMPLATES: frozenset[str] = frozenset({"ALL_PRIVILEGES", "INVOICING_MANAGER", "DEPARTMENT_LEADER"})
"""Templates that give "project manager" access in the emulator (the real mapping is not documented: these
three are the templates whose Tripletex role sets include managing projects; the others do not)."""


@dataclass
class Session:
    """A session token made by ``/token/session/:create``; it dies at midnight starting ``expiration_date``."""

    id: int
    token: str
    consumer_token: str
    employee_token: str
    employee_id: int
    expiration_date: date

    @property
    def rate_key(self) -> str:
        """Rate limits are counted per employee per API consumer."""
        return f"{self.consumer_token}/{self.employee_id}"


@dataclass
class RateLimitConfig:
    """``limit`` requests per ``period_seconds`` (None: unlimited). The real API publishes no numbers."""

    limit: int | None = 10_000
    period_seconds: float = 60.0
    include_reset_on_429: bool = False  # the real 429 lacks X-Rate-Limit-Reset (issue #103)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int | None
    request_id: str
    dropped: bool = False
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method, "path": self.path, "query": self.query, "status": self.status,
            "requestId": self.request_id, "dropped": self.dropped, "at": self.at,
        }


class TripletexState:
    """Everything the emulated company holds. ``TripletexState()`` comes with the default reference data
    (company, VAT types, currencies, payment types, the API user and a token pair); see ``seed.py``."""

    def __init__(self, *, defaults: bool = True) -> None:
        self.lock = threading.RLock()
        self.faults = FaultInjector()
        self.rate_limit = RateLimitConfig()
        self._defaults = defaults
        self.reset()

    # ------------------------------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Back to a fresh company: entities, sessions, faults, request log and rate windows are cleared."""
        from accounting.tripletex.emulator.seed import apply_defaults  # seed builds on state; imported late

        with self.lock:
            self.tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in TABLES}
            self.token_pairs: dict[tuple[str, str], int] = {}
            self.sessions: dict[str, Session] = {}
            self.entitlements: dict[int, set[str]] = {}
            self.company: dict[str, Any] = {}
            self.company_has_bank_account = True
            self.requests: list[RequestRecord] = []
            self.rate_limit = RateLimitConfig()
            self._windows: dict[str, tuple[float, int]] = {}
            self._ids = itertools.count(10_001)
            self._numbers: Counter[str] = Counter()
            self._today: date | None = None
            self.faults.clear()
            if self._defaults:
                apply_defaults(self)

    # ------------------------------------------------------------------------------------------ clock

    def today(self) -> date:
        """The emulator's date (real today unless a test pinned it with ``set_today``)."""
        return self._today or date.today()

    def set_today(self, day: date | None) -> None:
        self._today = day

    # ------------------------------------------------------------------------------------------ entities

    def new_id(self) -> int:
        return next(self._ids)

    def next_number(self, series: str, start: int = 1) -> int:
        """Sequential numbers (invoice numbers, order numbers...), starting at ``start``."""
        with self.lock:
            if self._numbers[series] < start - 1:
                self._numbers[series] = start - 1
            self._numbers[series] += 1
            return self._numbers[series]

    def insert(self, table: str, entity: dict[str, Any]) -> dict[str, Any]:
        """Store a new entity, assigning ``id`` (unless seeded with one) and ``version`` 0."""
        with self.lock:
            if entity.get("id") is None:
                entity["id"] = self.new_id()
            elif entity["id"] >= 10_001:
                self._ids = itertools.count(max(entity["id"] + 1, next(self._ids)))
            entity["version"] = 0
            self.tables[table][entity["id"]] = entity
            return entity

    def get(self, table: str, entity_id: Any) -> dict[str, Any] | None:
        try:
            return self.tables.get(table, {}).get(int(entity_id))
        except (TypeError, ValueError):
            return None

    def require(self, table: str, entity_id: Any) -> dict[str, Any]:
        """The entity, or 404 code 6000."""
        entity = self.get(table, entity_id)
        if entity is None:
            raise not_found(f"{table} {entity_id}")
        return entity

    def all(self, table: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.tables[table].values())

    def payments_of(self, invoice_id: int) -> list[dict[str, Any]]:
        """Payments registered on an invoice (prepayment and ``:payment`` calls): date, paymentTypeId, amount."""
        with self.lock:
            return [dict(p) for p in self.require("invoice", invoice_id).get("_payments", [])]

    @staticmethod
    def touch(entity: dict[str, Any]) -> None:
        """Record a change: every persisted object carries a ``version`` that increments on change."""
        entity["version"] = entity.get("version", 0) + 1

    # ------------------------------------------------------------------------------------------ sessions

    def add_token_pair(self, consumer_token: str, employee_token: str, employee_id: int) -> None:
        with self.lock:
            self.token_pairs[(consumer_token, employee_token)] = employee_id

    def create_session(self, consumer_token: str, employee_token: str, expiration_date: date) -> Session:
        with self.lock:
            employee_id = self.token_pairs[(consumer_token, employee_token)]
            session = Session(
                id=self.new_id(), token=secrets.token_urlsafe(24), consumer_token=consumer_token,
                employee_token=employee_token, employee_id=employee_id, expiration_date=expiration_date,
            )
            self.sessions[session.token] = session
            return session

    def valid_session(self, token: str) -> Session | None:
        """The session if it exists and has not expired (it expires at 00:00 on its expiration date)."""
        with self.lock:
            session = self.sessions.get(token)
            if session is None or self.today() >= session.expiration_date:
                return None
            return session

    def expire_sessions(self) -> int:
        """Admin: every session dies now (the next call with any token gets 401)."""
        with self.lock:
            count = len(self.sessions)
            self.sessions.clear()
            return count

    # ------------------------------------------------------------------------------------------ rate limit

    def rate_check(self, key: str, now: float | None = None) -> RateDecision | None:
        """Count one request in ``key``'s window. None when rate limiting is off."""
        config = self.rate_limit
        if config.limit is None:
            return None
        now = time.monotonic() if now is None else now
        with self.lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= config.period_seconds:
                start, count = now, 0
            count += 1
            self._windows[key] = (start, count)
        reset = max(0, int(-(-(start + config.period_seconds - now) // 1)))  # ceil of the seconds left
        return RateDecision(count <= config.limit, config.limit, max(0, config.limit - count), reset)

    def configure_rate_limit(self, config: RateLimitConfig) -> None:
        with self.lock:
            self.rate_limit = config
            self._windows.clear()

    # ------------------------------------------------------------------------------------------ request log

    def log_request(self, record: RequestRecord) -> None:
        with self.lock:
            self.requests.append(record)

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()
