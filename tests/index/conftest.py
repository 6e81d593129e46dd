"""Index fixtures: an empty index of every backend in ``logmaster.index.BACKENDS``.

PostgreSQL: one fresh database per test module on the server of the test machine and of CI
(``TEST_PG_DSN``, trust auth), dropped WITH (FORCE) at the end; each test gets its own schema in
it (through ``search_path``), so tests start from an empty index and still create the tables.
"""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from logmaster.index import BACKENDS, backend_class
from logmaster.index.base import IndexBackend

PG_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

OpenIndex = Callable[[], IndexBackend]


def _pg_url(dbname: str, schema: str | None = None) -> str:
    info = psycopg.conninfo.conninfo_to_dict(PG_DSN)
    login = urllib.parse.quote(str(info.get("user", "postgres")))
    if info.get("password"):
        login += ":" + urllib.parse.quote(str(info["password"]))
    host, port = info.get("host", "127.0.0.1"), info.get("port", "5432")
    url = f"postgresql://{login}@{host}:{port}/{dbname}"
    if schema is not None:
        url += "?options=" + urllib.parse.quote(f"-csearch_path={schema}")
    return url


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test module; its URL."""
    name = f"lm_idx_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_DSN} is required for the postgres tests: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The URL of a new, empty schema (as search_path) in this module's database."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return _pg_url(pg_database.rsplit("/", 1)[1], schema)


def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url: str = request.getfixturevalue("pg_url")
    return url


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / "index"


# How to make the constructor argument of an empty index, per backend. A backend added to
# BACKENDS without an entry here fails its tests instead of silently going untested.
_TARGETS: dict[str, Callable[[pytest.FixtureRequest, Path], object]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(
    params=[
        *(
            pytest.param(name, marks=pytest.mark.postgres if name == "postgres" else ())
            for name in BACKENDS
        ),
        # The SQLite index split into shards (one writer process each) must answer the same.
        pytest.param("sqlite-3-shards"),
    ]
)
def open_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenIndex]:
    """Opens the same (initially empty) index each time it is called; all closed at the end."""
    name: str = request.param
    name, _, shards = name.partition("-")
    if name not in _TARGETS:
        pytest.fail(f"no test target for index backend {name!r}: add one to tests/index/conftest")
    target = _TARGETS[name](request, tmp_path)
    opened: list[IndexBackend] = []

    def open_() -> IndexBackend:
        if shards:
            backend = backend_class(name)(target, shards=int(shards.split("-")[0]))  # type: ignore[call-arg]
        else:
            backend = backend_class(name)(target)  # type: ignore[call-arg]
        opened.append(backend)
        return backend

    yield open_
    for backend in opened:
        backend.close()


@pytest.fixture
def index(open_index: OpenIndex) -> IndexBackend:
    """An empty index of each backend."""
    return open_index()
