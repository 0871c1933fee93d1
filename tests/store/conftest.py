"""The store tests' ``store`` fixture; ``store_url`` and the PostgreSQL discovery live in tests/databases.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from store import Store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on ``store_url``."""
    s = Store(store_url)
    s.migrate()
    try:
        yield s
    finally:
        s.dispose()
