"""Alembic environment of the qondor-sync store.

``Store.migrate()`` hands its own connection in through ``config.attributes["connection"]`` (so an
in-memory SQLite database or a test's PostgreSQL schema is the one migrated); the ``alembic`` CLI instead
connects to ``QONDOR_SYNC_DB_URL``.

Every worker and CLI process migrates at start, so two may do it at once. The whole upgrade therefore
runs in one transaction that first takes a database-wide lock (a PostgreSQL advisory lock, or SQLite's
write lock through ``BEGIN IMMEDIATE``): the second process waits, then finds the schema at head and does
nothing. Both databases have transactional DDL, so a failed upgrade leaves no half-made tables behind.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, text

from store.engine import make_engine
from store.models import Base

# Any constant shared by all qondor-sync processes; the key of the PostgreSQL advisory lock.
MIGRATION_LOCK_KEY = 0x51_0D_0C_5C

config = context.config
target_metadata = Base.metadata


def _lock(connection: Connection) -> None:
    """Serialise concurrent upgrades; released when the surrounding transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # pysqlite does not BEGIN before DDL by itself; an explicit IMMEDIATE transaction takes the write
        # lock now (waiting out busy_timeout) and makes the DDL below atomic.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies for ALTERs
    )


def _run(connection: Connection) -> None:
    if connection.in_transaction():
        # The caller's transaction (a tool that already used this connection): it owns commit and locking.
        _configure(connection)
        context.run_migrations()
        return
    with connection.begin():
        _lock(connection)
        # Configure only now: Alembic sees a transaction already open and runs every revision inside it.
        # Configured before, it would commit after each revision on SQLite (no "transactional DDL" there),
        # releasing the lock half-way and letting a second process run the later revisions again.
        _configure(connection)
        context.run_migrations()


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the DDL for a DBA instead of running it."""
    url = os.environ.get("QONDOR_SYNC_DB_URL") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("QONDOR_SYNC_DB_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set QONDOR_SYNC_DB_URL to the database to migrate")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
