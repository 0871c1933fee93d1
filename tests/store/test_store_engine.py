"""Engine set-up: where the default database lives, SQLite's concurrency settings, unsupported URLs."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import text

from store import DEFAULT_URL, Store

# fork starts a writer in milliseconds (spawn re-imports SQLAlchemy and Alembic: seconds on a busy machine);
# the children build their own Store and never touch the parent's connections.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def test_from_env_defaults_to_a_sqlite_file_under_dot_qondor_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QONDOR_SYNC_DB_URL", raising=False)

    with Store.from_env() as store:
        store.migrate()
        store.set_cursor(1, "c", "v")

    assert DEFAULT_URL == "sqlite:///.qondor-sync/qondor-sync.db"
    assert (tmp_path / ".qondor-sync" / "qondor-sync.db").is_file()


def test_from_env_uses_qondor_sync_db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "nested" / "dir" / "sync.db"
    monkeypatch.setenv("QONDOR_SYNC_DB_URL", f"sqlite:///{target}")

    with Store.from_env() as store:
        store.migrate()

    assert target.is_file()


def test_sqlite_file_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store, store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_repr_hides_the_password() -> None:
    store = Store("postgresql+psycopg://sync:s3cret-pw@db.example:5432/sync")

    assert "s3cret-pw" not in repr(store)
    assert "db.example" in repr(store)
    store.dispose()


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        Store("mysql://u@localhost/db")


def _write_intents(url: str, office_id: int, count: int, start: object) -> None:
    store = Store(url)
    start.wait(timeout=30)  # type: ignore[attr-defined]
    for i in range(count):
        store.begin_create(office_id, "tripletex", "customer", f"C-{i}")
        store.audit(
            office_id=office_id,
            system="tripletex",
            action="create",
            entity="customer",
            accounting_id=None,
            qondor_key=f"C-{i}",
            workflow_id=None,
            run_id=None,
            activity=None,
        )
    store.dispose()


def test_sqlite_takes_writes_from_two_processes_at_once(tmp_path: Path) -> None:
    """WAL + busy_timeout: a CLI process writing beside the worker must wait, not fail with 'database is locked'."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    context = multiprocessing.get_context(START_METHOD)
    start = context.Barrier(2)
    with Store(url) as store:
        store.migrate()
        writers = [context.Process(target=_write_intents, args=(url, 1, 80, start)) for _ in range(2)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(timeout=60)

        assert [w.exitcode for w in writers] == [0, 0]
        assert len(store.links(1)) == 80
        assert all(link.intent_count == 2 for link in store.links(1))
        assert len(store.audit_entries(office_id=1)) == 160
