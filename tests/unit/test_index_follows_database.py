"""With a PostgreSQL database_url and no [index] backend, the index moves to the same database."""

from __future__ import annotations

from pathlib import Path

import pytest

from logmaster.config import load_settings

PG = "postgresql+psycopg://logmaster@127.0.0.1/logmaster"


def test_database_url_alone_moves_the_index(tmp_path: Path) -> None:
    """One setting is enough: backend postgres, postgres_url = database_url."""
    s = load_settings(None, data_dir=tmp_path, database_url=PG)
    assert (s.index.backend, s.index.postgres_url) == ("postgres", PG)


def test_environment_variable_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGMASTER_DATABASE_URL in the environment has the same effect."""
    monkeypatch.setenv("LOGMASTER_DATABASE_URL", PG)
    s = load_settings(None, data_dir=tmp_path)
    assert (s.index.backend, s.index.postgres_url) == ("postgres", PG)


def test_explicit_backend_wins(tmp_path: Path) -> None:
    """backend = "sqlite" keeps the embedded index; an explicit postgres_url is kept."""
    s = load_settings(None, data_dir=tmp_path, database_url=PG, index={"backend": "sqlite"})
    assert s.index.backend == "sqlite"
    other = "postgresql://logmaster@127.0.0.1/logindex"
    s = load_settings(None, data_dir=tmp_path, database_url=PG, index={"postgres_url": other})
    assert (s.index.backend, s.index.postgres_url) == ("postgres", other)


def test_embedded_default_unchanged(tmp_path: Path) -> None:
    """No database_url: SQLite metadata, SQLite index."""
    s = load_settings(None, data_dir=tmp_path)
    assert (s.index.backend, s.index.postgres_url) == ("sqlite", None)
