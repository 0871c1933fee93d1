"""The sync store: links, tracked invoices, cursors and the audit trail, over SQLite or PostgreSQL.

Idempotency of every accounting write rests on this module, so each write is one atomic statement
(an upsert where a row may already exist) rather than read-then-write: two workers, a retried activity
or a crashed process can never leave two rows for one business key. The API is synchronous (SQLAlchemy
Core); activities call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Row, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from store.engine import make_engine
from store.models import INVOICE_STATES, ActualLinkRow, AuditRow, CursorRow, LinkRow, LockRow, TrackedInvoiceRow
from store.records import ActualLink, AuditEntry, Link, TrackedInvoice

DEFAULT_URL = "sqlite:///.qondor-sync/qondor-sync.db"
ALEMBIC_INI = Path(__file__).parent / "migrations" / "alembic.ini"
BULK_CHUNK = 1000

# Alembic's command API works through module-global proxies (``alembic.context``, ``alembic.op``), so two
# threads of one process must not migrate at once; other processes are held off by the lock in env.py.
_MIGRATE_LOCK = threading.Lock()

links_t = LinkRow.__table__
invoices_t = TrackedInvoiceRow.__table__
cursors_t = CursorRow.__table__
audit_t = AuditRow.__table__
locks_t = LockRow.__table__
actuals_t = ActualLinkRow.__table__

_LINK_KEY = (links_t.c.office_id, links_t.c.system, links_t.c.kind, links_t.c.qondor_key)
_INVOICE_KEY = (invoices_t.c.office_id, invoices_t.c.system, invoices_t.c.qondor_invoice_id)
_ACTUAL_KEY = (actuals_t.c.office_id, actuals_t.c.kind, actuals_t.c.external_reference)


def alembic_config(connection: Connection | None = None) -> Config:
    """The packaged Alembic configuration, bound to ``connection`` when given (see migrations/env.py)."""
    config = Config(str(ALEMBIC_INI))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones in the session's zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _link(row: Row[Any]) -> Link:
    m = row._mapping
    return Link(
        office_id=m["office_id"],
        system=m["system"],
        kind=m["kind"],
        qondor_key=m["qondor_key"],
        accounting_id=m["accounting_id"],
        fingerprint=m["fingerprint"],
        data=m["data"],
        intent_count=m["intent_count"],
        created_at=_utc(m["created_at"]),
        updated_at=_utc(m["updated_at"]),
    )


def _tracked(row: Row[Any]) -> TrackedInvoice:
    m = row._mapping
    return TrackedInvoice(
        office_id=m["office_id"],
        system=m["system"],
        qondor_invoice_id=m["qondor_invoice_id"],
        workflow_id=m["workflow_id"],
        invoice_date=m["invoice_date"],
        accounting_invoice_id=m["accounting_invoice_id"],
        accounting_order_id=m["accounting_order_id"],
        amount=m["amount"],
        state=m["state"],
        created_at=_utc(m["created_at"]),
        updated_at=_utc(m["updated_at"]),
    )


def _audit(row: Row[Any]) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=m["id"],
        at=_utc(m["at"]),
        office_id=m["office_id"],
        system=m["system"],
        action=m["action"],
        entity=m["entity"],
        accounting_id=m["accounting_id"],
        qondor_key=m["qondor_key"],
        workflow_id=m["workflow_id"],
        run_id=m["run_id"],
        activity=m["activity"],
        detail=m["detail"],
    )


def _check_state(state: str) -> str:
    if state not in INVOICE_STATES:
        raise ValueError(f"invoice state must be one of {', '.join(INVOICE_STATES)}, not {state!r}")
    return state


class Store:
    """Synchronous access to the store's tables; one instance per process, safe to share between threads."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = make_engine(url)
        self._dialect = self._engine.dialect.name

    @classmethod
    def from_env(cls) -> Store:
        """The store named by QONDOR_SYNC_DB_URL, else a SQLite file under ./.qondor-sync/."""
        return cls(os.environ.get("QONDOR_SYNC_DB_URL") or DEFAULT_URL)

    def __repr__(self) -> str:
        return f"Store({make_url(self._engine.url).render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    @property
    def engine(self) -> Engine:
        """For tools and tests (schema checks); application code uses the methods below."""
        return self._engine

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is there already (call at every start)."""
        with _MIGRATE_LOCK, self._engine.connect() as connection:
            command.upgrade(alembic_config(connection), "head")

    def dispose(self) -> None:
        self._engine.dispose()

    def _insert(self, table: Any) -> Any:
        """INSERT with the dialect's ON CONFLICT support (identical syntax on SQLite and PostgreSQL)."""
        return postgresql.insert(table) if self._dialect == "postgresql" else sqlite.insert(table)

    # -- links ---------------------------------------------------------------------------------------------

    @staticmethod
    def _link_where(office_id: int, system: str, kind: str, qondor_key: str) -> Sequence[Any]:
        return (
            links_t.c.office_id == office_id,
            links_t.c.system == str(system),
            links_t.c.kind == kind,
            links_t.c.qondor_key == str(qondor_key),
        )

    def get_link(self, office_id: int, system: str, kind: str, qondor_key: str) -> Link | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(links_t).where(*self._link_where(office_id, system, kind, qondor_key))).first()
        return _link(row) if row else None

    def begin_create(self, office_id: int, system: str, kind: str, qondor_key: str) -> Link:
        """Record the intent to create an entity before sending the create (write-ahead).

        Inserts a pending row (``accounting_id`` NULL, ``intent_count`` 1) if there is none; if a pending
        row exists, counts one more intent, so a caller that gets ``intent_count > 1`` knows an earlier
        attempt may have created the entity and must look it up before creating. A completed link is
        returned unchanged. One atomic upsert: concurrent callers always end up with exactly one row.
        """
        now = _now()
        stmt = self._insert(links_t).values(
            office_id=office_id,
            system=str(system),
            kind=kind,
            qondor_key=str(qondor_key),
            accounting_id=None,
            intent_count=1,
            created_at=now,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_LINK_KEY),
            set_={"intent_count": links_t.c.intent_count + 1, "updated_at": now},
            where=links_t.c.accounting_id.is_(None),
        ).returning(*links_t.c)
        with self._engine.begin() as conn:
            row = conn.execute(stmt).first()
            if row is None:  # the link is complete already; the conflict's WHERE left it alone
                row = conn.execute(select(links_t).where(*self._link_where(office_id, system, kind, qondor_key))).one()
        return _link(row)

    def complete_link(
        self,
        office_id: int,
        system: str,
        kind: str,
        qondor_key: str,
        accounting_id: str,
        *,
        fingerprint: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Link:
        """Record the accounting id (insert or update); the link is no longer pending.

        ``fingerprint`` and ``data`` are written when given and otherwise left as they are.
        """
        if not accounting_id:
            raise ValueError("complete_link needs the accounting id")
        now = _now()
        changes: dict[str, Any] = {"accounting_id": str(accounting_id), "updated_at": now}
        if fingerprint is not None:
            changes["fingerprint"] = fingerprint
        if data is not None:
            changes["data"] = data
        stmt = self._insert(links_t).values(
            office_id=office_id,
            system=str(system),
            kind=kind,
            qondor_key=str(qondor_key),
            intent_count=0,
            created_at=now,
            **changes,
        )
        stmt = stmt.on_conflict_do_update(index_elements=list(_LINK_KEY), set_=changes).returning(*links_t.c)
        with self._engine.begin() as conn:
            row = conn.execute(stmt).one()
        return _link(row)

    def update_link(
        self,
        office_id: int,
        system: str,
        kind: str,
        qondor_key: str,
        *,
        fingerprint: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Change the fingerprint and/or data of an existing link; KeyError if there is no such link."""
        changes: dict[str, Any] = {"updated_at": _now()}
        if fingerprint is not None:
            changes["fingerprint"] = fingerprint
        if data is not None:
            changes["data"] = data
        stmt = update(links_t).where(*self._link_where(office_id, system, kind, qondor_key)).values(**changes)
        with self._engine.begin() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise KeyError(f"no link for office {office_id} {system} {kind} {qondor_key}")

    def delete_link(self, office_id: int, system: str, kind: str, qondor_key: str) -> None:
        """Forget a link (e.g. the entity was deleted in the accounting system); a no-op if absent."""
        with self._engine.begin() as conn:
            conn.execute(links_t.delete().where(*self._link_where(office_id, system, kind, qondor_key)))

    def links(self, office_id: int, system: str | None = None, kind: str | None = None) -> list[Link]:
        """An office's links, optionally of one system and/or kind, ordered by system, kind and key."""
        stmt = select(links_t).where(links_t.c.office_id == office_id)
        if system is not None:
            stmt = stmt.where(links_t.c.system == str(system))
        if kind is not None:
            stmt = stmt.where(links_t.c.kind == kind)
        stmt = stmt.order_by(links_t.c.system, links_t.c.kind, links_t.c.qondor_key)
        with self._engine.connect() as conn:
            return [_link(row) for row in conn.execute(stmt)]

    # -- tracked invoices ---------------------------------------------------------------------------------

    @staticmethod
    def _invoice_where(office_id: int, system: str, qondor_invoice_id: int) -> Sequence[Any]:
        return (
            invoices_t.c.office_id == office_id,
            invoices_t.c.system == str(system),
            invoices_t.c.qondor_invoice_id == qondor_invoice_id,
        )

    def track_invoice(
        self,
        office_id: int,
        system: str,
        qondor_invoice_id: int,
        *,
        workflow_id: str,
        invoice_date: date,
        accounting_invoice_id: str | None = None,
        accounting_order_id: str | None = None,
        amount: Decimal | None = None,
    ) -> None:
        """Watch an invoice's payment (state 'open'); a repeat call updates it.

        Ids and amount left as None keep what an earlier call recorded, so a retry with less knowledge
        never erases an accounting id.
        """
        now = _now()
        changes: dict[str, Any] = {
            "workflow_id": workflow_id,
            "invoice_date": invoice_date,
            "state": "open",
            "updated_at": now,
        }
        optional = {
            "accounting_invoice_id": accounting_invoice_id,
            "accounting_order_id": accounting_order_id,
            "amount": amount,
        }
        changes.update({k: v for k, v in optional.items() if v is not None})
        stmt = self._insert(invoices_t).values(
            office_id=office_id,
            system=str(system),
            qondor_invoice_id=qondor_invoice_id,
            created_at=now,
            **{**optional, **changes},
        )
        stmt = stmt.on_conflict_do_update(index_elements=list(_INVOICE_KEY), set_=changes)
        with self._engine.begin() as conn:
            conn.execute(stmt)

    def bulk_track(self, office_id: int, system: str, invoices: Iterable[Mapping[str, Any]]) -> None:
        """Insert many tracked invoices at once (benchmark seeding); rows that exist already are skipped.

        Each mapping has ``qondor_invoice_id``, ``workflow_id`` and ``invoice_date`` and optionally
        ``accounting_invoice_id``, ``accounting_order_id``, ``amount`` and ``state`` (default 'open').
        """
        now = _now()
        stmt = self._insert(invoices_t).on_conflict_do_nothing(index_elements=list(_INVOICE_KEY))
        rows = (
            {
                "office_id": office_id,
                "system": str(system),
                "qondor_invoice_id": item["qondor_invoice_id"],
                "workflow_id": item["workflow_id"],
                "invoice_date": item["invoice_date"],
                "accounting_invoice_id": item.get("accounting_invoice_id"),
                "accounting_order_id": item.get("accounting_order_id"),
                "amount": item.get("amount"),
                "state": _check_state(item.get("state", "open")),
                "created_at": now,
                "updated_at": now,
            }
            for item in invoices
        )
        with self._engine.begin() as conn:
            while chunk := list(islice(rows, BULK_CHUNK)):
                conn.execute(stmt, chunk)

    def open_invoices(self, office_id: int, system: str) -> list[TrackedInvoice]:
        """The office's invoices in ``system`` still waiting for payment, oldest invoice date first."""
        stmt = (
            select(invoices_t)
            .where(
                invoices_t.c.office_id == office_id,
                invoices_t.c.system == str(system),
                invoices_t.c.state == "open",
            )
            .order_by(invoices_t.c.invoice_date, invoices_t.c.qondor_invoice_id)
        )
        with self._engine.connect() as conn:
            return [_tracked(row) for row in conn.execute(stmt)]

    def set_invoice_state(
        self,
        office_id: int,
        system: str,
        qondor_invoice_id: int,
        state: str,
        accounting_invoice_id: str | None = None,
    ) -> None:
        """Move a tracked invoice to 'open', 'paid', 'credited' or 'closed'; KeyError if it is not tracked.

        ``accounting_invoice_id`` records the invoice finance made from an order, when that is learnt.
        """
        changes: dict[str, Any] = {"state": _check_state(state), "updated_at": _now()}
        if accounting_invoice_id is not None:
            changes["accounting_invoice_id"] = str(accounting_invoice_id)
        stmt = update(invoices_t).where(*self._invoice_where(office_id, system, qondor_invoice_id)).values(**changes)
        with self._engine.begin() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise KeyError(f"invoice {qondor_invoice_id} of office {office_id} is not tracked in {system}")

    def tracked_invoice(self, office_id: int, system: str, qondor_invoice_id: int) -> TrackedInvoice | None:
        stmt = select(invoices_t).where(*self._invoice_where(office_id, system, qondor_invoice_id))
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return _tracked(row) if row else None

    # -- cursors ------------------------------------------------------------------------------------------

    def get_cursor(self, office_id: int, name: str) -> str | None:
        stmt = select(cursors_t.c.value).where(cursors_t.c.office_id == office_id, cursors_t.c.name == name)
        with self._engine.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def set_cursor(self, office_id: int, name: str, value: str) -> None:
        changes = {"value": value, "updated_at": _now()}
        stmt = self._insert(cursors_t).values(office_id=office_id, name=name, **changes)
        stmt = stmt.on_conflict_do_update(index_elements=[cursors_t.c.office_id, cursors_t.c.name], set_=changes)
        with self._engine.begin() as conn:
            conn.execute(stmt)

    # -- audit trail ------------------------------------------------------------------------------------------

    def audit(
        self,
        *,
        office_id: int,
        system: str,
        action: str,
        entity: str,
        accounting_id: str | None,
        qondor_key: str | None,
        workflow_id: str | None,
        run_id: str | None,
        activity: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record one write made in an accounting system or in Qondor (never secrets or personal data)."""
        with self._engine.begin() as conn:
            conn.execute(
                audit_t.insert().values(
                    at=_now(),
                    office_id=office_id,
                    system=str(system),
                    action=action,
                    entity=entity,
                    accounting_id=None if accounting_id is None else str(accounting_id),
                    qondor_key=None if qondor_key is None else str(qondor_key),
                    workflow_id=workflow_id,
                    run_id=run_id,
                    activity=activity,
                    detail=detail,
                )
            )

    def audit_entries(
        self,
        *,
        office_id: int | None = None,
        workflow_id: str | None = None,
        system: str | None = None,
        limit: int = 1000,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """The newest ``limit`` matching entries, returned oldest first (the order they happened in)."""
        stmt = select(audit_t)
        if office_id is not None:
            stmt = stmt.where(audit_t.c.office_id == office_id)
        if workflow_id is not None:
            stmt = stmt.where(audit_t.c.workflow_id == workflow_id)
        if system is not None:
            stmt = stmt.where(audit_t.c.system == str(system))
        if action is not None:
            stmt = stmt.where(audit_t.c.action == action)
        stmt = stmt.order_by(audit_t.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            entries = [_audit(row) for row in conn.execute(stmt)]
        entries.reverse()
        return entries

    # -- leases --------------------------------------------------------------------------------------------

    def try_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the lease ``name`` for ``owner`` (or renew it when ``owner`` holds it); False while someone
        else holds an unexpired lease. One upsert guarded by the expiry: atomic on SQLite and PostgreSQL."""
        now = _now()
        expires = datetime.fromtimestamp(now.timestamp() + ttl_seconds, UTC)
        stmt = self._insert(locks_t).values(name=name, owner=owner, expires_at=expires)
        stmt = stmt.on_conflict_do_update(
            index_elements=[locks_t.c.name],
            set_={"owner": owner, "expires_at": expires},
            where=(locks_t.c.owner == owner) | (locks_t.c.expires_at < now),
        )
        with self._engine.begin() as conn:
            conn.execute(stmt)
            holder = conn.execute(select(locks_t.c.owner).where(locks_t.c.name == name)).scalar_one()
        return holder == owner

    def unlock(self, name: str, owner: str) -> None:
        """Give the lease back (only its holder can)."""
        with self._engine.begin() as conn:
            conn.execute(locks_t.delete().where(locks_t.c.name == name, locks_t.c.owner == owner))

    # -- actual costs and sales written to Qondor (the cost and sales sync) ----------------------------------

    def actual_links(self, office_id: int, kind: str, references: Iterable[str]) -> dict[str, ActualLink]:
        """The links of these external references (one query per ``BULK_CHUNK``: a page costs one round trip)."""
        found: dict[str, ActualLink] = {}
        refs = iter(references)
        with self._engine.connect() as conn:
            while chunk := list(islice(refs, BULK_CHUNK)):
                stmt = select(actuals_t).where(
                    actuals_t.c.office_id == office_id,
                    actuals_t.c.kind == kind,
                    actuals_t.c.external_reference.in_(chunk),
                )
                for row in conn.execute(stmt):
                    link = _actual(row)
                    found[link.external_reference] = link
        return found

    def booked_invoice_ids(self, office_id: int, system: str, invoice_ids: Iterable[str]) -> set[str]:
        """Of these accounting-system invoice ids, those the invoice sync booked from Qondor's queue (one query per
        ``BULK_CHUNK``: a page of sales costs one round trip).

        Matched on the invoice link's recorded invoice id (``data.invoice_id``: set when the invoice is created, or,
        in order mode, when the sweep learns the invoice finance made from the order), never on the link's
        ``accounting_id`` alone, which is an order id in order mode (another number series)."""
        found: set[str] = set()
        ids = iter({str(i) for i in invoice_ids if i})
        invoice_id = links_t.c.data["invoice_id"].as_string()
        with self._engine.connect() as conn:
            while chunk := list(islice(ids, BULK_CHUNK)):
                stmt = select(invoice_id).where(
                    links_t.c.office_id == office_id,
                    links_t.c.system == str(system),
                    links_t.c.kind == "invoice",
                    invoice_id.in_(chunk),
                )
                found.update(str(value) for (value,) in conn.execute(stmt) if value is not None)
        return found

    def begin_actual(
        self, office_id: int, kind: str, reference: str, *, project_number: str | None, source_date: date | None,
        run: str,
    ) -> ActualLink:
        """Announce the create of an actual in Qondor (write-ahead). A pending row counts one more intent, so a
        caller seeing ``intent_count > 1`` looks it up by external reference before creating; a completed link
        is returned unchanged."""
        now = _now()
        stmt = self._insert(actuals_t).values(
            office_id=office_id, kind=kind, external_reference=reference, qondor_id=None,
            project_number=project_number, source_date=source_date, last_seen_run=run, intent_count=1,
            created_at=now, updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_ACTUAL_KEY),
            set_={"intent_count": actuals_t.c.intent_count + 1, "last_seen_run": _raised(run), "updated_at": now},
            where=actuals_t.c.qondor_id.is_(None),
        ).returning(*actuals_t.c)
        with self._engine.begin() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                row = conn.execute(select(actuals_t).where(*self._actual_where(office_id, kind, reference))).one()
        return _actual(row)

    def complete_actual(
        self, office_id: int, kind: str, reference: str, *, qondor_id: str, project_number: str | None,
        source_date: date | None, fingerprint: str, run: str,
    ) -> None:
        """Record what was written to Qondor (insert or update): its id, what was written, and the run that saw it."""
        now = _now()
        changes = {"qondor_id": str(qondor_id), "project_number": project_number, "source_date": source_date,
                   "fingerprint": fingerprint, "updated_at": now}
        stmt = self._insert(actuals_t).values(
            office_id=office_id, kind=kind, external_reference=reference, intent_count=0, created_at=now,
            last_seen_run=run, **changes,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_ACTUAL_KEY), set_={**changes, "last_seen_run": _raised(run)}
        )
        with self._engine.begin() as conn:
            conn.execute(stmt)

    def mark_actuals_seen(self, office_id: int, kind: str, references: Iterable[str], run: str) -> None:
        """The run read these actuals' source documents (unchanged ones included): not for removal."""
        refs = iter(references)
        with self._engine.begin() as conn:
            while chunk := list(islice(refs, BULK_CHUNK)):
                conn.execute(
                    update(actuals_t)
                    .where(actuals_t.c.office_id == office_id, actuals_t.c.kind == kind,
                           actuals_t.c.external_reference.in_(chunk))
                    .values(last_seen_run=_raised(run))
                )

    def unseen_actuals(
        self, office_id: int, kind: str, start: date, end: date, run: str, *, after: str | None = None,
        limit: int = 500,
    ) -> list[ActualLink]:
        """Actuals dated ``start``..``end`` that neither run ``run`` nor a later one saw, ordered by external
        reference from ``after``: their source documents were reversed, deleted or moved, so the sync removes them.

        Run keys sort by the run's start, and a mark only ever rises (:func:`_raised`), so two runs that overlap
        (the Schedule's and an operator's) never remove what the other one saw."""
        stmt = select(actuals_t).where(
            actuals_t.c.office_id == office_id,
            actuals_t.c.kind == kind,
            actuals_t.c.source_date >= start,
            actuals_t.c.source_date <= end,
            (actuals_t.c.last_seen_run < run) | actuals_t.c.last_seen_run.is_(None),
        )
        if after is not None:
            stmt = stmt.where(actuals_t.c.external_reference > after)
        stmt = stmt.order_by(actuals_t.c.external_reference).limit(limit)
        with self._engine.connect() as conn:
            return [_actual(row) for row in conn.execute(stmt)]

    def delete_actual(self, office_id: int, kind: str, reference: str) -> None:
        """Forget an actual removed from Qondor; a no-op if absent."""
        with self._engine.begin() as conn:
            conn.execute(actuals_t.delete().where(*self._actual_where(office_id, kind, reference)))

    def all_actuals(self, office_id: int, kind: str | None = None) -> list[ActualLink]:
        """An office's actual links (tools and tests), ordered by kind and external reference."""
        stmt = select(actuals_t).where(actuals_t.c.office_id == office_id)
        if kind is not None:
            stmt = stmt.where(actuals_t.c.kind == kind)
        stmt = stmt.order_by(actuals_t.c.kind, actuals_t.c.external_reference)
        with self._engine.connect() as conn:
            return [_actual(row) for row in conn.execute(stmt)]

    @staticmethod
    def _actual_where(office_id: int, kind: str, reference: str) -> Sequence[Any]:
        return (actuals_t.c.office_id == office_id, actuals_t.c.kind == kind,
                actuals_t.c.external_reference == reference)


def _raised(run: str) -> Any:
    """``last_seen_run`` set to ``run`` unless a later run (a greater key) saw the actual already."""
    column = actuals_t.c.last_seen_run
    return case((column.is_(None) | (column < run), run), else_=column)


def _actual(row: Row[Any]) -> ActualLink:
    m = row._mapping
    return ActualLink(
        office_id=m["office_id"], kind=m["kind"], external_reference=m["external_reference"],
        qondor_id=m["qondor_id"], project_number=m["project_number"], source_date=m["source_date"],
        fingerprint=m["fingerprint"], last_seen_run=m["last_seen_run"], intent_count=m["intent_count"],
    )
