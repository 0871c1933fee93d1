"""Database fixtures: ``store_url`` runs a test on SQLite and on PostgreSQL (store and end-to-end tests).

PostgreSQL is found, once per session, in this order:

1. ``QONDOR_SYNC_TEST_PG_URL`` when set (used as given; no silent fallback if it does not answer);
2. the local server at ``postgresql+psycopg://postgres@127.0.0.1:5432/test``;
3. a ``testcontainers`` PostgreSQL 15 container when a Docker engine answers;
4. otherwise the PostgreSQL variants are skipped with the reasons, or fail when
   ``QONDOR_SYNC_REQUIRE_POSTGRES=1`` (CI sets it, so a broken database can never pass as "skipped").

Each PostgreSQL test gets a fresh schema, selected through ``search_path`` in the URL and dropped afterwards,
so tests and concurrent runs against one database never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

LOCAL_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_IMAGE = "postgres:15-alpine"


def _masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _probe(url: str) -> str | None:
    """None when ``url`` accepts a connection, else why not."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        engine.dispose()


def _docker_problem() -> str | None:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return None
    except Exception as exc:
        return f"no Docker engine ({type(exc).__name__})"


@pytest.fixture(scope="session")
def postgres_base_url() -> Iterator[str]:
    """A reachable PostgreSQL URL for the whole session (see the module docstring for the order)."""
    reasons: list[str] = []
    explicit = os.environ.get("QONDOR_SYNC_TEST_PG_URL")
    if explicit:
        why = _probe(explicit)
        if why is None:
            yield explicit
            return
        reasons.append(f"QONDOR_SYNC_TEST_PG_URL={_masked(explicit)}: {why}")
    else:
        why = _probe(LOCAL_PG_URL)
        if why is None:
            yield LOCAL_PG_URL
            return
        reasons.append(f"{LOCAL_PG_URL}: {why}")
        docker_why = _docker_problem()
        if docker_why is None:
            try:
                from testcontainers.community.postgres import PostgresContainer
            except ImportError:  # testcontainers < 4.10
                from testcontainers.postgres import PostgresContainer

            with PostgresContainer(PG_IMAGE, driver="psycopg") as container:
                yield container.get_connection_url()
            return
        reasons.append(docker_why)

    message = "PostgreSQL is not available: " + "; ".join(reasons)
    if os.environ.get("QONDOR_SYNC_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{message} (QONDOR_SYNC_REQUIRE_POSTGRES=1, so this is an error, not a skip)", pytrace=False)
    pytest.skip(
        f"{message}. To run the PostgreSQL variants, point QONDOR_SYNC_TEST_PG_URL at a reachable server, "
        "run one on 127.0.0.1:5432 (user postgres, database test) or provide a Docker engine"
    )


@pytest.fixture
def postgres_url(postgres_base_url: str) -> Iterator[str]:
    """``postgres_base_url`` pointed at a fresh, empty schema that is dropped after the test."""
    yield from _private_schema(postgres_base_url)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_base_url: str) -> Iterator[str]:
    """Like ``postgres_url``, for a module's shared fixtures (the fault suite's fleet on PostgreSQL)."""
    yield from _private_schema(postgres_base_url)


def _private_schema(postgres_base_url: str) -> Iterator[str]:
    """A fresh schema selected through ``search_path``: tests never see each other's rows; dropped afterwards."""
    schema = f"qs_test_{uuid.uuid4().hex[:12]}"
    base = make_url(postgres_base_url)
    options = " ".join(filter(None, [base.query.get("options"), f"-csearch_path={schema}"]))
    url = base.update_query_dict({"options": options}).render_as_string(hide_password=False)
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL of an empty database: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
