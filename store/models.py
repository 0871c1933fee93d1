"""Tables of the sync store, as SQLAlchemy 2 declarative models.

The models are the single source of truth for the schema: the Alembic revisions in ``migrations/versions``
are checked against them by a test (no drift), so a change here needs a new revision next to it.

Constraint names come from a naming convention so that migrations can refer to them by name on both
SQLite and PostgreSQL. Timestamps are stored as UTC; the store hands them out timezone-aware.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

INVOICE_STATES = ("open", "paid", "credited", "closed")

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LinkRow(Base):
    """A Qondor key (customer, project, invoice, ...) and the id it has in one accounting system.

    A row with ``accounting_id`` NULL is a write-ahead intent: a create was about to be sent. Finding one
    means an earlier attempt may have created the entity, so the caller looks it up before creating again.
    """

    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("office_id", "system", "kind", "qondor_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    office_id: Mapped[int] = mapped_column(Integer)
    system: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    qondor_key: Mapped[str] = mapped_column(String(255))
    accounting_id: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    intent_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrackedInvoiceRow(Base):
    """A synced invoice (one per Qondor queue item) whose payment the sweep still watches while 'open'."""

    __tablename__ = "tracked_invoices"
    __table_args__ = (
        UniqueConstraint("office_id", "system", "qondor_invoice_id"),
        CheckConstraint("state IN ('open', 'paid', 'credited', 'closed')", name="state"),
        # The payment sweep asks for one office's open invoices of one system, oldest first.
        Index("ix_tracked_invoices_open", "office_id", "system", "state", "invoice_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    office_id: Mapped[int] = mapped_column(Integer)
    system: Mapped[str] = mapped_column(String(32))
    qondor_invoice_id: Mapped[int] = mapped_column(BigInteger)
    workflow_id: Mapped[str] = mapped_column(String(255))
    invoice_date: Mapped[date] = mapped_column(Date)
    accounting_invoice_id: Mapped[str | None] = mapped_column(String(255))
    accounting_order_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    state: Mapped[str] = mapped_column(String(16), server_default=text("'open'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CursorRow(Base):
    """Where an incremental read (a payment sweep, a cost import) got to, per office and name."""

    __tablename__ = "cursors"

    office_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """One write made in an accounting system (or in Qondor), with the workflow and activity that made it."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_office", "office_id", "id"),
        Index("ix_audit_log_workflow", "workflow_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    office_id: Mapped[int] = mapped_column(Integer)
    system: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    accounting_id: Mapped[str | None] = mapped_column(String(255))
    qondor_key: Mapped[str | None] = mapped_column(String(255))
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(String(64))
    activity: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class LockRow(Base):
    """A lease on a business key ("office:system:kind:key") while one sync finds-else-creates it.

    Concurrent syncs for invoices of the same customer, project or project manager would otherwise both
    find nothing and both create (Tripletex even accepts two customers with one organisation number).
    A lease, not a session lock: a crashed holder's claim expires, and the same owner may re-take it.
    """

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActualLinkRow(Base):
    """An actual cost or sale this integration wrote to Qondor, keyed by its external reference.

    ``qondor_id`` NULL is a write-ahead intent (a create was about to be sent: look it up by external reference
    before creating again). ``fingerprint`` is what was last written, so an unchanged actual costs no write;
    ``last_seen_run`` names the last run that read its source document, so the run's removal phase finds the
    actuals whose document was reversed, deleted or moved (dated inside the window, not seen by the run).
    """

    __tablename__ = "actual_links"
    __table_args__ = (
        UniqueConstraint("office_id", "kind", "external_reference"),
        # The removal phase asks for one office's actuals of one kind dated inside the run's window.
        Index("ix_actual_links_window", "office_id", "kind", "source_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    office_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    external_reference: Mapped[str] = mapped_column(String(255))
    qondor_id: Mapped[str | None] = mapped_column(String(64))
    project_number: Mapped[str | None] = mapped_column(String(64))
    source_date: Mapped[date | None] = mapped_column(Date)
    fingerprint: Mapped[str | None] = mapped_column(String(128))
    last_seen_run: Mapped[str | None] = mapped_column(String(64))
    intent_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
