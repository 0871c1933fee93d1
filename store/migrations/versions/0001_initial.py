"""initial schema: links, tracked_invoices, cursors, audit_log

Generated with ``alembic revision --autogenerate`` against an empty database, then checked by hand:
plain ``op.create_index`` instead of batch blocks (creating an index needs no table copy on SQLite),
indexes dropped with their tables. ``tests/store/test_migrations.py`` asserts that the migrated schema
matches ``store.models`` on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 00:56:48
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" auto-increments.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("qondor_key", sa.String(length=255), nullable=False),
        sa.Column("accounting_id", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=128), nullable=True),
        sa.Column("data", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("intent_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint(
            "office_id", "system", "kind", "qondor_key", name=op.f("uq_links_office_id_system_kind_qondor_key")
        ),
    )

    op.create_table(
        "tracked_invoices",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("qondor_invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("invoice_date", sa.Date(), nullable=False),
        sa.Column("accounting_invoice_id", sa.String(length=255), nullable=True),
        sa.Column("accounting_order_id", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("state", sa.String(length=16), server_default=sa.text("'open'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('open', 'paid', 'credited', 'closed')", name=op.f("ck_tracked_invoices_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_invoices")),
        sa.UniqueConstraint(
            "office_id",
            "system",
            "qondor_invoice_id",
            name=op.f("uq_tracked_invoices_office_id_system_qondor_invoice_id"),
        ),
    )
    op.create_index(
        "ix_tracked_invoices_open", "tracked_invoices", ["office_id", "system", "state", "invoice_date"], unique=False
    )

    op.create_table(
        "cursors",
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("office_id", "name", name=op.f("pk_cursors")),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("accounting_id", sa.String(length=255), nullable=True),
        sa.Column("qondor_key", sa.String(length=255), nullable=True),
        sa.Column("workflow_id", sa.String(length=255), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("activity", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_office", "audit_log", ["office_id", "id"], unique=False)
    op.create_index("ix_audit_log_workflow", "audit_log", ["workflow_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_workflow", table_name="audit_log")
    op.drop_index("ix_audit_log_office", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("cursors")
    op.drop_index("ix_tracked_invoices_open", table_name="tracked_invoices")
    op.drop_table("tracked_invoices")
    op.drop_table("links")
