"""actual_links: the actual costs and sales the cost and sales sync wrote to Qondor

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" auto-increments.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "actual_links",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("external_reference", sa.String(length=255), nullable=False),
        sa.Column("qondor_id", sa.String(length=64), nullable=True),
        sa.Column("project_number", sa.String(length=64), nullable=True),
        sa.Column("source_date", sa.Date(), nullable=True),
        sa.Column("fingerprint", sa.String(length=128), nullable=True),
        sa.Column("last_seen_run", sa.String(length=64), nullable=True),
        sa.Column("intent_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actual_links")),
        sa.UniqueConstraint(
            "office_id", "kind", "external_reference", name=op.f("uq_actual_links_office_id_kind_external_reference")
        ),
    )
    op.create_index("ix_actual_links_window", "actual_links", ["office_id", "kind", "source_date"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_actual_links_window", table_name="actual_links")
    op.drop_table("actual_links")
