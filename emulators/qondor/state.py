"""The emulator's in-memory Qondor: master data, the invoicing queue and its enforced state machine.

Why one lock around plain dicts: the emulator runs under uvicorn in a background thread while tests read
and seed from the test thread, and every operation is tiny, so one ``RLock`` is simpler and safer than
anything finer. Everything handed out is a deep copy, so callers can never mutate state behind the lock.

Records are stored as camelCase dicts (the wire form, with ``Decimal``/``datetime`` values), validated
through the domain models on the way in. Fields the domain models do not declare are kept verbatim, so a
seed can carry any public field (``legalName``, ``settingsLastEditedDate``, …) and get it back.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from domain.qondor import (
    ACTUAL_WRITE_FIELDS,
    UPDATE_CUSTOMER_FIELDS,
    ActualPaymentStatus,
    ContactPerson,
    Customer,
    InvoiceKind,
    Office,
    Project,
    ProjectManager,
    ProjectStatus,
    QondorCost,
    QondorInvoice,
    QondorSale,
    QueueStatus,
    SetAsFailed,
    SetAsPaid,
    SetAsProcessed,
)
from emulators.qondor.wire import format_datetime

STATUS_LABELS = {s: s.name.title() for s in QueueStatus}
PROJECT_STATUS_LABELS = {s: s.name.title() for s in ProjectStatus}
SET_AS_OPERATIONS = ("SetAsProcessed", "SetAsFailed", "SetAsPaid")
CUSTOMER_PUT_NOT_STORED = ("customerFields",)
"""Writable on ``PUT /Customer`` but never returned by CustomerDetails (its relation to ``customerInvoiceFields``
is undocumented), so the emulator does not store it, as ``POST /Customer`` does not."""
ACTUAL_CONTROLLERS: dict[str, type[BaseModel]] = {"Cost": QondorCost, "Sale": QondorSale}
"""The designed Sale and Cost controllers (docs/qondor-actuals-api.md), by controller name."""
REQUEST_LOG_LIMIT = 50_000
"""Oldest request-log entries are dropped beyond this (benchmarks); the counts are never truncated."""

_TRANSITIONS: dict[str, tuple[QueueStatus, QueueStatus]] = {
    "SetAsProcessed": (QueueStatus.UNPROCESSED, QueueStatus.PROCESSED),
    "SetAsFailed": (QueueStatus.UNPROCESSED, QueueStatus.FAILED),
    "SetAsPaid": (QueueStatus.PROCESSED, QueueStatus.PAID),
}


class EmulatorError(Exception):
    """A request the emulator refuses; the app turns it into Qondor's error body."""


class NotFoundError(EmulatorError):
    """404: unknown id, external reference, e-mail or number."""


class RuleViolation(EmulatorError):
    """400 FluentValidation-style business-rule error; ``errors`` maps PascalCase property -> messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = dict(errors)


class SeedError(EmulatorError):
    """An admin seed document is invalid; nothing of it was applied."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class RateLimitConfig:
    """Qondor's portal limit is 10 calls per second per subscription (API.md §4)."""

    enabled: bool = True
    limit: int = 10
    window_seconds: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "limit": self.limit, "windowSeconds": self.window_seconds}


def _aliases(model: type[BaseModel]) -> set[str]:
    names = set(model.model_fields)
    names |= {f.alias for f in model.model_fields.values() if f.alias}
    return names


def _normalise(model: type[BaseModel], raw: Mapping[str, Any], drop: Iterable[str] = ()) -> dict[str, Any]:
    """Validate ``raw`` with ``model``; return its camelCase dict plus the undeclared fields, nulls omitted."""
    dropped = set(drop)
    body = {k: v for k, v in raw.items() if k not in dropped}
    known = model.model_validate(body).model_dump(mode="python", by_alias=True, exclude_none=True)
    declared = _aliases(model)
    extras = {k: v for k, v in body.items() if k not in declared and v is not None}
    return {**extras, **known}


def _problems(where: str, exc: ValidationError) -> list[str]:
    return [f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]


def _parse_instant(value: Any) -> datetime | None:
    """A stored date/time (string or datetime) as an aware UTC datetime; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _unstamped(project: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in project.items() if k != "settingsLastEditedDate"}


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


class QondorState:
    """Everything the emulator knows. Public methods are thread-safe and return copies."""

    def __init__(self, *, rate_limit: RateLimitConfig | None = None,
                 clock: Callable[[], datetime] | None = None, monotonic: Callable[[], float] | None = None) -> None:
        """``clock`` stamps records; ``monotonic`` times the rate-limit windows (a test can control both, so a
        rate-limit test does not depend on how fast a busy machine sends)."""
        self._lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.monotonic = monotonic or time.monotonic
        self._default_rate_limit = copy.copy(rate_limit or RateLimitConfig())
        self._clear()

    def _clear(self) -> None:
        self.offices: dict[int, dict[str, Any]] = {}
        self.customers: dict[int, dict[str, Any]] = {}
        self.contact_persons: dict[int, dict[str, Any]] = {}
        self.customer_contacts: dict[int, list[int]] = {}
        self.projects: dict[int, dict[str, Any]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.history: dict[int, list[dict[str, Any]]] = {}
        self.set_as_calls: list[dict[str, Any]] = []
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self.request_counts: Counter[str] = Counter()
        self.rate_limit = copy.copy(self._default_rate_limit)
        self.refuse_repeats = False
        self._windows: dict[str, deque[float]] = {}
        self._request_seq = 0
        self.actuals: dict[str, dict[int, dict[str, Any]]] = {kind: {} for kind in ACTUAL_CONTROLLERS}
        self._actual_seq = 0

    def now(self) -> datetime:
        return self._clock()

    # --- admin ---------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all data, history, request log and rate-limit settings (back to the constructor's)."""
        with self._lock:
            self._clear()

    def seed(self, doc: Mapping[str, Any]) -> dict[str, int]:
        """Upsert offices, customers (with ``contactPersons``), projects (with ``projectManagers``) and invoices.

        All-or-nothing: every record is validated first; the first problem list raises :class:`SeedError`.
        References between records (an invoice's customer, a credit note's original) are deliberately not
        checked, so tests can seed broken data on purpose.
        """
        unknown = set(doc) - {"offices", "customers", "contactPersons", "projects", "invoices"}
        if unknown:
            raise SeedError([f"unknown seed keys: {', '.join(sorted(unknown))}"])
        problems: list[str] = []
        offices = self._prepare(doc.get("offices"), "offices", self._prepare_office, problems)
        customers = self._prepare(doc.get("customers"), "customers", self._prepare_customer, problems)
        loose = self._prepare(doc.get("contactPersons"), "contactPersons", self._prepare_loose_contact, problems)
        projects = self._prepare(doc.get("projects"), "projects", self._prepare_project, problems)
        invoices = self._prepare(doc.get("invoices"), "invoices", self._prepare_invoice, problems)
        if problems:
            raise SeedError(problems)
        with self._lock:
            for office in offices:
                self.offices[office["id"]] = office
            for customer, persons in customers:
                self.customers[customer["id"]] = customer
                for person in persons:
                    self._link_contact(person, customer["id"])
            for person, customer_ids in loose:
                for customer_id in customer_ids or [None]:
                    self._link_contact(person, customer_id)
            for project in projects:
                self.projects[project["id"]] = self._stamped(project)
            for invoice in invoices:
                self._store_new_invoice(invoice, via="seed")
        return {"offices": len(offices), "customers": len(customers),
                "contactPersons": sum(len(p) for _, p in customers) + len(loose),
                "projects": len(projects), "invoices": len(invoices)}

    def add_invoices(self, items: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> list[int]:
        """Add queue items; an item without ``id`` gets the next free one. Existing ids are refused.

        ``items`` is a list of invoices, or a seed document (e.g. :func:`~emulators.qondor.sample.bulk_invoices`):
        then its offices/customers/projects are upserted as by :meth:`seed` and its invoices added.
        """
        if isinstance(items, Mapping):
            master = {k: v for k, v in items.items() if k != "invoices"}
            with self._lock:
                if master:
                    self.seed(master)  # an upsert: harmless even if the invoices are then refused
                return self.add_invoices(items.get("invoices") or [])
        items = list(items)
        problems: list[str] = []
        with self._lock:
            next_id = max(self.invoices, default=0) + 1
            prepared = []
            for i, raw in enumerate(items):
                if not isinstance(raw, Mapping):
                    problems.append(f"invoices[{i}]: must be an object")
                    continue
                if raw.get("id") is None:
                    raw = {**raw, "id": next_id}
                    next_id += 1
                invoice = self._prepare_one(raw, f"invoices[{i}]", self._prepare_invoice, problems)
                if invoice is not None and invoice["id"] in self.invoices:
                    problems.append(f"invoices[{i}]: invoice {invoice['id']} already exists")
                prepared.append(invoice)
            if len({inv["id"] for inv in prepared if inv}) != len(prepared):
                problems.append("invoices: the same id appears more than once")
            if problems:
                raise SeedError(problems)
            for invoice in prepared:
                self._store_new_invoice(invoice, via="admin")
            return [inv["id"] for inv in prepared]

    def put_raw_invoice(self, doc: Mapping[str, Any]) -> int:
        """Store a queue item exactly as given, unvalidated: Qondor sending a malformed payload (a field missing,
        of the wrong type, an enum value the service does not know). Only ``id`` (an integer) and ``officeId``
        are needed to list it; ``status`` defaults to Unprocessed. An existing id is replaced."""
        body = dict(doc)
        invoice_id = body.get("id")
        if not isinstance(invoice_id, int) or "officeId" not in body:
            raise SeedError(["a raw invoice needs an integer id and an officeId"])
        body.setdefault("status", int(QueueStatus.UNPROCESSED))
        with self._lock:
            self.invoices[invoice_id] = copy.deepcopy(body)
            self.history[invoice_id] = [self._history_entry(QueueStatus.UNPROCESSED, "raw")]
        return invoice_id

    def _prepare(self, items: Any, where: str, prepare: Callable[[Mapping[str, Any]], Any],
                 problems: list[str]) -> list[Any]:
        if items is None:
            return []
        if not isinstance(items, list):
            problems.append(f"{where}: must be a list")
            return []
        out = []
        for i, raw in enumerate(items):
            if not isinstance(raw, Mapping):
                problems.append(f"{where}[{i}]: must be an object")
                continue
            prepared = self._prepare_one(raw, f"{where}[{i}]", prepare, problems)
            if prepared is not None:
                out.append(prepared)
        return out

    @staticmethod
    def _prepare_one(raw: Mapping[str, Any], where: str, prepare: Callable[[Mapping[str, Any]], Any],
                     problems: list[str]) -> Any:
        try:
            return prepare(raw)
        except ValidationError as exc:
            problems.extend(_problems(where, exc))
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: {exc}")
        return None

    @staticmethod
    def _prepare_office(raw: Mapping[str, Any]) -> dict[str, Any]:
        return _normalise(Office, raw)

    @staticmethod
    def _prepare_customer(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        persons = [_normalise(ContactPerson, p) for p in raw.get("contactPersons") or []]
        return _normalise(Customer, raw, drop=("contactPersons", "contact_persons")), persons

    @staticmethod
    def _prepare_loose_contact(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[int]]:
        customer_ids = [int(c) for c in raw.get("customerIds") or []]
        return _normalise(ContactPerson, raw, drop=("customerIds",)), customer_ids

    def _prepare_project(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        project = _normalise(Project, raw)
        for key in ("projectManagers", "projectLeaders"):
            people = raw.get(key) or []
            project[key] = [_normalise(ProjectManager, p) for p in people]
        if "status" in project:
            project["statusText"] = PROJECT_STATUS_LABELS[ProjectStatus(project["status"])]
        if not project.get("settingsLastEditedDate"):
            project["settingsLastEditedDate"] = format_datetime(self.now())
        return project

    def _stamped(self, project: dict[str, Any]) -> dict[str, Any]:
        """An upsert that changes a stored project is an edit in Qondor: it moves ``settingsLastEditedDate`` to now
        (unless the seed gives a later one), so ``Project/GetAll?changedAfter`` lists it, as the worker's project
        cache assumes of the real service (docs/qondor-invoice-api.md §9a). A new or otherwise unchanged project keeps
        the stamp the seed gives (now when it gives none). Caller holds the lock."""
        stored = self.projects.get(project["id"])
        if stored is None or _unstamped(stored) == _unstamped(project):
            return project
        given = _parse_instant(project.get("settingsLastEditedDate"))
        if given is None or given < self.now():
            project["settingsLastEditedDate"] = format_datetime(self.now())
        return project

    def _prepare_invoice(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Fill what a test may leave out (status, labels, totals, dates), then validate as QondorInvoice."""
        body = dict(raw)
        body.setdefault("status", int(QueueStatus.UNPROCESSED))
        body.setdefault("invoiceDate", self.now().date().isoformat())
        body.setdefault("createdUtc", self.now())
        lines = body.get("lines") or []
        for total, field in (("totalExclVat", "amountExclVat"), ("totalVat", "vatAmount"),
                             ("totalInclVat", "amountInclVat")):
            if body.get(total) is None:
                body[total] = sum((Decimal(str(line.get(field, 0))) for line in lines), Decimal(0))
        invoice = _normalise(QondorInvoice, body)
        invoice["kindText"] = InvoiceKind(invoice["kind"]).label
        invoice["statusText"] = STATUS_LABELS[QueueStatus(invoice["status"])]
        return invoice

    def _link_contact(self, person: dict[str, Any], customer_id: int | None) -> None:
        self.contact_persons[person["id"]] = person
        if customer_id is not None:
            linked = self.customer_contacts.setdefault(customer_id, [])
            if person["id"] not in linked:
                linked.append(person["id"])

    def _store_new_invoice(self, invoice: dict[str, Any], via: str) -> None:
        self.invoices[invoice["id"]] = invoice
        self.history[invoice["id"]] = [self._history_entry(QueueStatus(invoice["status"]), via)]

    def _history_entry(self, status: QueueStatus, via: str) -> dict[str, Any]:
        return {"status": int(status), "statusText": STATUS_LABELS[status], "atUtc": self.now(), "via": via}

    def snapshot(self) -> dict[str, Any]:
        """Everything, for ``GET /_admin/state`` and for assertions in tests."""
        with self._lock:
            return copy.deepcopy({
                "offices": [self.offices[i] for i in sorted(self.offices)],
                "customers": [self._customer_details(i) for i in sorted(self.customers)],
                "contactPersons": [
                    {**self.contact_persons[i],
                     "customerIds": sorted(c for c, ps in self.customer_contacts.items() if i in ps)}
                    for i in sorted(self.contact_persons)
                ],
                "projects": [self._project_details(i) for i in sorted(self.projects)],
                "invoices": [self.invoices[i] for i in sorted(self.invoices)],
                "history": {str(i): self.history.get(i, []) for i in sorted(self.invoices)},
                "setAsCalls": self.set_as_calls,
                **{f"{kind.lower()}s": [records[i] for i in sorted(records)] for kind, records in self.actuals.items()},
                "rateLimit": self.rate_limit.to_json(),
            })

    # --- Python helpers for tests (typed views of the stored data) -----------------------------------

    def invoice_model(self, invoice_id: int) -> QondorInvoice:
        """The stored invoice as the wire model (raises KeyError when unknown)."""
        with self._lock:
            return QondorInvoice.model_validate(copy.deepcopy(self.invoices[invoice_id]))

    def invoice_ids(self) -> list[int]:
        """Every stored invoice id (any status), ascending."""
        with self._lock:
            return sorted(self.invoices)

    def delete_invoice(self, invoice_id: int) -> None:
        """A queue item deleted in Qondor (a PM deletes a payment): later reads and SetAs* calls get 404."""
        with self._lock:
            self.invoices.pop(invoice_id, None)

    def revert_to_unprocessed(self, invoice_id: int) -> None:
        """Qondor lost (or reverted) a SetAsProcessed: the item is Unprocessed again, listed in the queue, without
        the external invoice number and reference the call had set ("not transferred" in Qondor's UI)."""
        with self._lock:
            invoice = self.invoices[invoice_id]
            invoice["status"] = int(QueueStatus.UNPROCESSED)
            invoice["statusText"] = STATUS_LABELS[QueueStatus.UNPROCESSED]
            for key in ("externalInvoiceNumber", "externalReference", "processedUtc"):
                invoice[key] = None
            self.history[invoice_id].append(self._history_entry(QueueStatus.UNPROCESSED, "reverted"))

    def status_of(self, invoice_id: int) -> QueueStatus:
        with self._lock:
            return QueueStatus(self.invoices[invoice_id]["status"])

    def history_of(self, invoice_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.history.get(invoice_id, []))

    def calls_for(self, invoice_id: int) -> list[dict[str, Any]]:
        """Every SetAs* call received for one invoice, in arrival order."""
        with self._lock:
            return copy.deepcopy([c for c in self.set_as_calls if c.get("invoiceId") == invoice_id])

    # --- request log and rate limit ------------------------------------------------------------------

    def log_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._request_seq += 1
            entry["seq"] = self._request_seq
            self.requests.append(entry)
            self.request_counts[f"{entry['method']} {entry.get('route') or entry['path']}"] += 1

    def request_log(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy({"requests": list(self.requests), "counts": dict(self.request_counts),
                                  "total": sum(self.request_counts.values())})

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.request_counts.clear()

    def count(self, method: str, route: str) -> int:
        """How many requests hit ``route`` (template, e.g. ``/Invoicing/v1/Invoice/{id}``) with ``method``."""
        with self._lock:
            return self.request_counts.get(f"{method.upper()} {route}", 0)

    def configure_rate_limit(self, *, enabled: bool | None = None, limit: int | None = None,
                             window_seconds: float | None = None) -> RateLimitConfig:
        with self._lock:
            if enabled is not None:
                self.rate_limit.enabled = enabled
            if limit is not None:
                if limit < 1:
                    raise ValueError("limit must be >= 1")
                self.rate_limit.limit = limit
            if window_seconds is not None:
                if window_seconds <= 0:
                    raise ValueError("windowSeconds must be > 0")
                self.rate_limit.window_seconds = window_seconds
            self._windows.clear()
            return RateLimitConfig(**asdict(self.rate_limit))

    def configure_repeats(self, *, refuse: bool) -> None:
        """How a repeated SetAs* (the item already at the call's target) is answered: a 200 no-op (the default)
        or, with ``refuse=True``, a 400 ProblemDetails like any other transition the state machine does not
        allow. Why: Qondor does not document which it does, and a sync that only works because a repeat is
        answered 200 would fail against a Qondor that refuses it (a retry after a lost response, a reset run).
        Back to the default on :meth:`reset`."""
        with self._lock:
            self.refuse_repeats = refuse

    def admit(self, key: str) -> float | None:
        """Count one call for ``key``; return None if allowed, else seconds until a slot frees (sliding window).

        Refused calls do not use up the window, as with APIM's rate-limit policy.
        """
        with self._lock:
            config = self.rate_limit
            if not config.enabled:
                return None
            now = self.monotonic()
            window = self._windows.setdefault(key, deque())
            while window and now - window[0] >= config.window_seconds:
                window.popleft()
            if len(window) >= config.limit:
                return max(config.window_seconds - (now - window[0]), 0.001)
            window.append(now)
            return None

    # --- public API reads ----------------------------------------------------------------------------

    def office_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy([self.offices[i] for i in sorted(self.offices)])

    def _customer_details(self, customer_id: int) -> dict[str, Any]:
        customer = dict(self.customers[customer_id])
        customer["contactPersons"] = [self.contact_persons[p] for p in self.customer_contacts.get(customer_id, [])
                                      if p in self.contact_persons]
        return customer

    def customer(self, customer_id: int) -> dict[str, Any]:
        with self._lock:
            if customer_id not in self.customers:
                raise NotFoundError(f"Customer {customer_id} was not found.")
            return copy.deepcopy(self._customer_details(customer_id))

    def customer_by_external_reference(self, reference: str) -> dict[str, Any]:
        """``Customer/GetByExternalReference``: exact match; 404 when none, 400 when several.

        Qondor calls the reference "your unique external reference" but neither documents the scope nor refuses
        duplicates anywhere public (API.md §9.7), so the emulator accepts duplicates on write and refuses to pick
        one on read (like ``Project/GetByProjectNo`` with an ambiguous number): a caller must never act on a
        customer chosen by chance.
        """
        with self._lock:
            matches = self._customer_ids_with_reference(reference)
            if not matches:
                raise NotFoundError(f"Customer with external reference '{reference}' was not found.")
            if len(matches) > 1:
                ids = ", ".join(str(i) for i in matches)
                raise RuleViolation({"ExternalReference": [
                    f"External reference '{reference}' is used by several customers ({ids})."]})
            return copy.deepcopy(self._customer_details(matches[0]))

    def _customer_ids_with_reference(self, reference: str) -> list[int]:
        return [i for i, c in sorted(self.customers.items()) if c.get("externalReference") == reference]

    def customer_summaries(self, office_id: int | None) -> list[dict[str, Any]]:
        """``Customer/GetAll``: the office's customers; without ``officeId`` the global (office-less) ones."""
        keys = ("id", "externalReference", "name", "organisationNumber", "city", "customerNumber", "officeId",
                "categoryId", "categoryName", "isActive", "invoiceEmail")
        with self._lock:
            rows = [c for _, c in sorted(self.customers.items()) if c.get("officeId") == office_id]
            return copy.deepcopy([{k: c[k] for k in keys if k in c} for c in rows])

    def customers_by_number(self, customer_number: str, office_id: int | None) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy([
                self._customer_details(i) for i, c in sorted(self.customers.items())
                if c.get("customerNumber") == customer_number and (office_id is None or c.get("officeId") == office_id)
            ])

    def contact_person(self, person_id: int) -> dict[str, Any]:
        with self._lock:
            if person_id not in self.contact_persons:
                raise NotFoundError(f"Contact person {person_id} was not found.")
            return copy.deepcopy(self.contact_persons[person_id])

    def contact_person_by(self, field: str, value: str) -> dict[str, Any]:
        """By ``email`` (case-insensitive) or ``externalReference`` (exact); the lowest id wins."""
        with self._lock:
            for person_id in sorted(self.contact_persons):
                stored = self.contact_persons[person_id].get(field)
                if stored is not None and (stored.lower() == value.lower() if field == "email" else stored == value):
                    return copy.deepcopy(self.contact_persons[person_id])
            raise NotFoundError(f"Contact person with {field} '{value}' was not found.")

    def _project_details(self, project_id: int) -> dict[str, Any]:
        project = dict(self.projects[project_id])
        customer = self.customers.get(project.get("customerId"))  # type: ignore[arg-type]
        if customer is not None:
            for source, target in (("name", "customerName"), ("customerNumber", "customerNumber"),
                                   ("externalReference", "customerExternalReference")):
                if source in customer:
                    project.setdefault(target, customer[source])
        office = self.offices.get(project.get("officeId"))  # type: ignore[arg-type]
        if office is not None:
            for source, target in (("name", "officeName"), ("internalName", "officeInternalName"),
                                   ("externalReference", "officeExternalReference")):
                if source in office:
                    project.setdefault(target, office[source])
        return project

    def project(self, project_id: int) -> dict[str, Any]:
        with self._lock:
            if project_id not in self.projects:
                raise NotFoundError(f"Project {project_id} was not found.")
            return copy.deepcopy(self._project_details(project_id))

    def project_by_no(self, project_no: str, office_id: int | None) -> dict[str, Any]:
        with self._lock:
            matches = [i for i, p in sorted(self.projects.items()) if p.get("projectNo") == project_no
                       and (office_id is None or p.get("officeId") == office_id)]
            if not matches:
                where = f" in office {office_id}" if office_id is not None else ""
                raise NotFoundError(f"Project with project number '{project_no}'{where} was not found.")
            if len(matches) > 1:
                raise RuleViolation({"OfficeId": [
                    f"Project number '{project_no}' exists in several offices; give officeId."]})
            return copy.deepcopy(self._project_details(matches[0]))

    def project_summaries(self, *, statuses: list[int], office_id: int | None, changed_after: datetime | None,
                          include_managers: bool, include_leaders: bool) -> list[dict[str, Any]]:
        """``Project/GetAll``. ``changedAfter`` compares with ``settingsLastEditedDate`` inclusively (>=), so an
        incremental sync that reuses the newest timestamp it saw may see a project twice but never misses one."""
        hidden = ("officeExternalReference", "customerExternalReference", "invoiceCopiesTo",
                  "customerNumberForBookingInvoicing", "teamId", "teamName", "teamExternalReference")
        with self._lock:
            rows = []
            for project_id in sorted(self.projects):
                project = self._project_details(project_id)
                if office_id is not None and project.get("officeId") != office_id:
                    continue
                if statuses and project.get("status") not in statuses:
                    continue
                if changed_after is not None:
                    edited = _parse_instant(project.get("settingsLastEditedDate"))
                    if edited is not None and edited < changed_after:
                        continue
                row = {k: v for k, v in project.items() if k not in hidden}
                if not include_managers:
                    row.pop("projectManagers", None)
                if not include_leaders:
                    row.pop("projectLeaders", None)
                rows.append(row)
            return copy.deepcopy(rows)

    # --- public API writes (customers) ---------------------------------------------------------------

    def create_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /Customer``: name mandatory, office must exist; returns CustomerDetails."""
        errors: dict[str, list[str]] = {}
        if not str(body.get("name") or "").strip():
            errors["Name"] = ["'Name' must not be empty."]
        with self._lock:
            office_id = body.get("officeId")
            if office_id is not None and office_id not in self.offices:
                errors["OfficeId"] = ["Invalid office ID.", "Office not found."]
            if errors:
                raise RuleViolation(errors)
            customer_id = max(self.customers, default=0) + 1
            customer = _normalise(Customer, {**body, "id": customer_id},
                                  drop=("contactPersons", "customerFields", "customerInvoiceFields"))
            customer.setdefault("isActive", True)
            self.customers[customer_id] = customer
            return copy.deepcopy(self._customer_details(customer_id))

    def put_customer(self, body: Mapping[str, Any]) -> None:
        """``PUT /Customer`` (UpdateCustomer): the customer by ``id``, else by ``externalReference``.

        A PUT *replaces* the writable fields (:data:`~domain.qondor.UPDATE_CUSTOMER_FIELDS`): one that is absent
        or null is cleared, so a caller must send back the whole customer it read. Read-only parts (``id``,
        ``officeId``, contact persons, category name, owner) are kept. ``name`` stays mandatory, as on create.
        """
        with self._lock:
            customer_id = self._customer_id_to_update(body)
            if not str(body.get("name") or "").strip():
                raise RuleViolation({"Name": ["'Name' must not be empty."]})
            kept = {k: v for k, v in self.customers[customer_id].items() if k not in UPDATE_CUSTOMER_FIELDS}
            given = {k: body[k] for k in UPDATE_CUSTOMER_FIELDS
                     if body.get(k) is not None and k not in CUSTOMER_PUT_NOT_STORED}
            self.customers[customer_id] = _normalise(Customer, {**kept, **given, "id": customer_id})

    def _customer_id_to_update(self, body: Mapping[str, Any]) -> int:
        customer_id = body.get("id")
        if customer_id is None and body.get("externalReference"):
            customer_id = self.customer_by_external_reference(body["externalReference"])["id"]
        if customer_id is None:
            raise RuleViolation({"Id": ["Either 'Id' or 'ExternalReference' must be given."]})
        if customer_id not in self.customers:
            raise NotFoundError(f"Customer {customer_id} was not found.")
        return customer_id

    def update_customer(self, body: Mapping[str, Any]) -> None:
        """Python helper, not the API: an edit made in Qondor's UI. Only the given (non-null) fields change.

        Tests use it to change a customer behind the sync's back; the API's ``PUT`` is :meth:`put_customer`.
        """
        with self._lock:
            customer_id = self._customer_id_to_update(body)
            changes = {k: v for k, v in body.items() if v is not None and k not in ("contactPersons",)}
            merged = {**self.customers[customer_id], **changes, "id": customer_id}
            self.customers[customer_id] = _normalise(Customer, merged)

    def set_customer_external_reference(self, customer_id: int, reference: str | None) -> None:
        """Admin: link a customer by hand (an operator typing the accounting id into Qondor); None clears it.

        No uniqueness check, as in Qondor's UI as far as anyone knows (API.md §9.7).
        """
        with self._lock:
            if customer_id not in self.customers:
                raise NotFoundError(f"Customer {customer_id} was not found.")
            if reference is None or not reference.strip():
                self.customers[customer_id].pop("externalReference", None)
            else:
                self.customers[customer_id]["externalReference"] = reference

    def customer_external_reference(self, customer_id: int) -> str | None:
        """Admin: the customer's external reference (None when unset). Raises NotFoundError when unknown."""
        with self._lock:
            if customer_id not in self.customers:
                raise NotFoundError(f"Customer {customer_id} was not found.")
            return self.customers[customer_id].get("externalReference")

    # --- invoicing queue -----------------------------------------------------------------------------

    def unprocessed(self, office_id: int | None) -> list[dict[str, Any]]:
        """The queue: Unprocessed items only (Failed/Processed/Paid never appear), ordered by id."""
        keys = ("id", "officeId", "kind", "kindText", "status", "statusText", "projectId", "projectNo", "createdUtc")
        with self._lock:
            return copy.deepcopy([
                {k: inv[k] for k in keys if k in inv}
                for _, inv in sorted(self.invoices.items())
                if inv["status"] == QueueStatus.UNPROCESSED and (office_id is None or inv["officeId"] == office_id)
            ])

    def invoices_in_period(self, office_id: int | None, date_from: date | None, date_to: date | None,
                           page: int, page_size: int) -> list[dict[str, Any]]:
        """[DESIGNED] ``GetAll``: one page of the items (any status) dated ``date_from``..``date_to`` inclusive,
        ordered by id, without lines, booker, custom fields or your-reference (no personal data; the
        reconciliation needs totals, states and what the SetAs* calls wrote)."""
        hidden = ("lines", "booker", "customInvoiceFields", "yourReference")
        with self._lock:
            chosen = [
                inv for _, inv in sorted(self.invoices.items())
                if (office_id is None or inv["officeId"] == office_id)
                and (date_from is None or date.fromisoformat(str(inv["invoiceDate"])) >= date_from)
                and (date_to is None or date.fromisoformat(str(inv["invoiceDate"])) <= date_to)
            ]
            start = (page - 1) * page_size
            return copy.deepcopy([
                {k: v for k, v in inv.items() if k not in hidden} for inv in chosen[start:start + page_size]
            ])

    def invoice(self, invoice_id: int) -> dict[str, Any]:
        with self._lock:
            if invoice_id not in self.invoices:
                raise NotFoundError(f"Invoice {invoice_id} was not found.")
            return copy.deepcopy(self.invoices[invoice_id])

    def record_rejected_call(self, operation: str, raw_body: Any, errors: Mapping[str, list[str]]) -> None:
        """Log a SetAs* call whose body could not be bound or validated (it never reached the state machine)."""
        invoice_id = raw_body.get("invoiceId") if isinstance(raw_body, Mapping) else None
        with self._lock:
            self._record_call(operation, invoice_id if isinstance(invoice_id, int) else None, raw_body,
                              "invalid", None, None, 400, "; ".join(m for ms in errors.values() for m in ms))

    def _record_call(self, operation: str, invoice_id: int | None, body: Any, outcome: str,
                     before: QueueStatus | None, after: QueueStatus | None, http_status: int,
                     error: str | None) -> None:
        self.set_as_calls.append({
            "seq": len(self.set_as_calls) + 1, "operation": operation, "invoiceId": invoice_id,
            "body": copy.deepcopy(body), "atUtc": self.now(), "outcome": outcome,
            "statusBefore": int(before) if before is not None else None,
            "statusAfter": int(after) if after is not None else None,
            "httpStatus": http_status, "error": error,
        })

    def transition(self, operation: str, body: SetAsProcessed | SetAsFailed | SetAsPaid, raw_body: Any) -> str:
        """Apply one SetAs* call; return ``"applied"`` or ``"repeat"`` (idempotent no-op, or a 400 recorded as
        ``"refused"`` under ``configure_repeats(refuse=True)``).

        Raises :class:`NotFoundError` for an unknown invoice and :class:`RuleViolation` (``errors.InvoiceId``)
        for every transition the state machine does not allow. A repeat keeps the values of the first call,
        except that a repeated SetAsProcessed may add an external invoice number the item does not have yet.
        """
        required, target = _TRANSITIONS[operation]
        invoice_id = body.invoice_id
        with self._lock:
            invoice = self.invoices.get(invoice_id)
            if invoice is None:
                message = f"Invoice {invoice_id} was not found."
                self._record_call(operation, invoice_id, raw_body, "notFound", None, None, 404, message)
                raise NotFoundError(message)
            current = QueueStatus(invoice["status"])
            if current == target and self.refuse_repeats:
                label = STATUS_LABELS[current]
                message = f"Invoice {invoice_id} is already {label}; it cannot be set as {label.lower()} again."
                self._record_call(operation, invoice_id, raw_body, "refused", current, current, 400, message)
                raise RuleViolation({"InvoiceId": [message]})
            if current == target:
                outcome = "completed" if self._completes(invoice, body) else "repeat"
                self._record_call(operation, invoice_id, raw_body, outcome, current, current, 200, None)
                return "repeat"
            if current != required:
                message = self._illegal(invoice_id, operation, current, required)
                self._record_call(operation, invoice_id, raw_body, "rejected", current, current, 400, message)
                raise RuleViolation({"InvoiceId": [message]})
            self._apply(invoice, body, target)
            self.history[invoice_id].append(self._history_entry(target, operation))
            self._record_call(operation, invoice_id, raw_body, "applied", current, target, 200, None)
            return "applied"

    @staticmethod
    def _completes(invoice: dict[str, Any], body: SetAsProcessed | SetAsFailed | SetAsPaid) -> bool:
        """A repeated SetAsProcessed may add the external invoice number the first call could not know (the
        finance system numbers an order when finance invoices it); it never changes a number already set."""
        number = body.external_invoice_number if isinstance(body, SetAsProcessed) else None
        if not number or invoice.get("externalInvoiceNumber"):
            return False
        invoice["externalInvoiceNumber"] = number
        return True

    @staticmethod
    def _illegal(invoice_id: int, operation: str, current: QueueStatus, required: QueueStatus) -> str:
        label = STATUS_LABELS[current]
        if current == QueueStatus.FAILED:
            return f"Invoice {invoice_id} is Failed; failed payments are final."
        if operation == "SetAsProcessed" and current == QueueStatus.PAID:
            return f"Invoice {invoice_id} is Paid; it was processed before and cannot be processed again."
        verb = {"SetAsProcessed": "processed", "SetAsFailed": "failed", "SetAsPaid": "paid"}[operation]
        return f"Invoice {invoice_id} is {label}; only {STATUS_LABELS[required]} invoices can be set as {verb}."

    def _apply(self, invoice: dict[str, Any], body: SetAsProcessed | SetAsFailed | SetAsPaid,
               target: QueueStatus) -> None:
        now = self.now()
        invoice["status"] = int(target)
        invoice["statusText"] = STATUS_LABELS[target]
        if isinstance(body, SetAsProcessed):
            invoice["processedUtc"] = now
            for attr, key in (("external_invoice_number", "externalInvoiceNumber"),
                              ("external_reference", "externalReference")):
                if getattr(body, attr) is not None:
                    invoice[key] = getattr(body, attr)
        elif isinstance(body, SetAsFailed):
            invoice["failedUtc"] = now
            invoice["failureMessage"] = body.message
        else:
            invoice["paidUtc"] = now
            invoice["paidDate"] = body.paid_date or now.date()
            invoice["paidAmount"] = body.paid_amount if body.paid_amount is not None else invoice["totalInclVat"]

    # --- Sale and Cost ("actuals", designed: docs/qondor-actuals-api.md) ---------------------------------------

    def _actual_records(self, controller: str) -> dict[int, dict[str, Any]]:
        if controller not in self.actuals:
            raise NotFoundError(f"Unknown controller {controller}.")
        return self.actuals[controller]

    def actual(self, controller: str, actual_id: int) -> dict[str, Any]:
        with self._lock:
            records = self._actual_records(controller)
            if actual_id not in records:
                raise NotFoundError(f"{controller} {actual_id} was not found.")
            return copy.deepcopy(records[actual_id])

    def actual_by_external_reference(self, controller: str, reference: str) -> dict[str, Any]:
        with self._lock:
            for record in self._actual_records(controller).values():
                if record["externalReference"] == reference:
                    return copy.deepcopy(record)
            raise NotFoundError(f"{controller} with external reference '{reference}' was not found.")

    def actuals_for_project(self, controller: str, project_id: int) -> list[dict[str, Any]]:
        with self._lock:
            records = self._actual_records(controller)
            return copy.deepcopy([records[i] for i in sorted(records) if records[i]["projectId"] == project_id])

    def create_actual(self, controller: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /{Sale|Cost}``: the project must exist, the external reference must be new to the controller,
        and excl. VAT + VAT must equal incl. VAT (designed rules); returns the stored record with its id."""
        with self._lock:
            records = self._actual_records(controller)
            record = self._valid_actual(controller, body)
            reference = record["externalReference"]
            taken = [i for i, r in records.items() if r["externalReference"] == reference]
            if taken:
                raise RuleViolation({"ExternalReference": [
                    f"External reference '{reference}' is already used by {controller.lower()} {taken[0]}."]})
            self._actual_seq += 1
            now = self.now()
            record.update(id=self._actual_seq, createdUtc=now, lastEditedUtc=now)
            records[self._actual_seq] = record
            return copy.deepcopy(record)

    def put_actual(self, controller: str, body: Mapping[str, Any]) -> None:
        """``PUT /{Sale|Cost}``: replaces the writable fields of record ``id`` (404 when unknown); its external
        reference may not collide with another record's."""
        with self._lock:
            records = self._actual_records(controller)
            actual_id = body.get("id")
            if not isinstance(actual_id, int):
                raise RuleViolation({"Id": ["'Id' must be given."]})
            if actual_id not in records:
                raise NotFoundError(f"{controller} {actual_id} was not found.")
            record = self._valid_actual(controller, body)
            reference = record["externalReference"]
            if any(r["externalReference"] == reference for i, r in records.items() if i != actual_id):
                raise RuleViolation({"ExternalReference": [f"External reference '{reference}' is already used."]})
            record.update(id=actual_id, createdUtc=records[actual_id]["createdUtc"], lastEditedUtc=self.now())
            records[actual_id] = record

    def delete_actual(self, controller: str, actual_id: int) -> None:
        with self._lock:
            records = self._actual_records(controller)
            if actual_id not in records:
                raise NotFoundError(f"{controller} {actual_id} was not found.")
            del records[actual_id]

    def _valid_actual(self, controller: str, body: Mapping[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        if not str(body.get("externalReference") or "").strip():
            errors["ExternalReference"] = ["'External Reference' must not be empty."]
        if body.get("projectId") not in self.projects:
            errors["ProjectId"] = ["Project not found."]
        if errors:
            raise RuleViolation(errors)
        given = {k: body[k] for k in ACTUAL_WRITE_FIELDS if body.get(k) is not None}
        record = _normalise(ACTUAL_CONTROLLERS[controller], given)
        if money(record["amountExclVat"] + record["vatAmount"]) != money(record["amountInclVat"]):
            raise RuleViolation({"AmountInclVat": ["'Amount Incl Vat' must equal 'Amount Excl Vat' + 'Vat Amount'."]})
        record["paymentStatusText"] = ActualPaymentStatus(record["paymentStatus"]).name.title()
        return record

    def actual_records(self, controller: str, project_id: int | None = None) -> list[dict[str, Any]]:
        """Test helper: every stored Sale or Cost (of one project), by id."""
        with self._lock:
            records = self._actual_records(controller)
            return copy.deepcopy([records[i] for i in sorted(records)
                                  if project_id is None or records[i]["projectId"] == project_id])
