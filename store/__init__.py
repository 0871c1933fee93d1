"""The sync store (SQLAlchemy 2 + Alembic): links, tracked invoices, cursors and the audit trail.

``Store(url)`` works on SQLite (file or ``sqlite://`` memory) and PostgreSQL alike; call ``migrate()``
at start. Everything it returns is a frozen dataclass from ``store.records``.
"""

from store.records import AuditEntry, Link, TrackedInvoice
from store.store import DEFAULT_URL, Store

__all__ = ["DEFAULT_URL", "AuditEntry", "Link", "Store", "TrackedInvoice"]
