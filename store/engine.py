"""Engine construction for the two supported databases, SQLite and PostgreSQL.

SQLite is the zero-setup default for one machine; it must still take writes from the worker's activity
threads and from a CLI process at the same time, hence WAL (readers never block the writer), a busy
timeout (a second writer waits instead of failing) and ``check_same_thread=False`` (activities call the
store through ``asyncio.to_thread``). PostgreSQL is for production; ``pool_pre_ping`` there lets a
long-lived worker survive a database restart. A SQLite file has no server to lose, so it gets no ping: that
was one more statement on every store call.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def _json_default(value: Any) -> Any:
    """Make audit details and link data JSON-safe without losing meaning (amounts stay exact strings)."""
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _enable_wal(cursor: Any) -> None:
    """Switch a database file to WAL once (the mode is stored in the file).

    The switch needs an exclusive lock and SQLite does not wait for it through busy_timeout, so two
    processes opening a brand-new file together would see "database is locked": retry until the timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, memory: bool) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not memory:
            _enable_wal(cursor)
    finally:
        cursor.close()


def make_engine(url: str | URL) -> Engine:
    """An engine for ``sqlite:///file.db``, ``sqlite://`` (memory) or ``postgresql+psycopg://...``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"unsupported database {backend!r}; use sqlite:/// or postgresql+psycopg://")
    if backend == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, json_serializer=json_dumps)

    memory = is_sqlite_memory(parsed)
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        "json_serializer": json_dumps,
    }
    if memory:
        # One shared connection, or every pooled connection would see its own empty database.
        kwargs["poolclass"] = StaticPool
    else:
        Path(parsed.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "connect", lambda conn, rec: _sqlite_pragmas(conn, rec, memory=memory))
    return engine
