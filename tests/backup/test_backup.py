"""``logmaster backup`` / ``restore``: a restored data directory verifies day by day; backups are
incremental, never overwrite a sealed file with a changed one, keep the keys encrypted, and
refuse damaged backups, wrong passphrases and non-empty targets."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from backup_support import cli, write_day

from logmaster.archive.seal import SealRun
from logmaster.backup import BackupError, backup, restore
from logmaster.config import load_settings

DAYS = [dt.date(2026, 11, 20), dt.date(2026, 11, 21)]
DEVICES = ["gw1", "fw2"]
PASSPHRASE = b"correct horse battery staple"


@dataclass
class Setup:
    data: Path
    passfile: Path
    tmp: Path

    def seal_day(self, day: dt.date) -> None:
        seal_day(self.data, day)


def seal_day(data: Path, day: dt.date) -> None:
    """Write the devices' day files and seal them (in process: the CLI costs seconds)."""
    for device in DEVICES:
        write_day(data / "archive", device, day)
    results = SealRun(load_settings(None, data_dir=data)).seal_day(day, None)
    assert {r.state for r in results} == {"sealed"}, results


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a signing key and two sealed days of two devices."""
    data = tmp_path_factory.mktemp("template") / "data"
    cli("init", "--data-dir", str(data))
    if not (data / "keys" / "signing-key.pem").exists():  # newer `init` makes the key itself
        cli("keys", "init", "-a", "ecdsa-p256", "-d", str(data))
    for day in DAYS:
        seal_day(data, day)
    return data


@pytest.fixture
def setup(template: Path, tmp_path: Path) -> Setup:
    data = tmp_path / "data"
    shutil.copytree(template, data)  # copy2: mtimes kept, so sealed files stay "sealed"
    passfile = tmp_path / "passphrase"
    passfile.write_bytes(PASSPHRASE + b"\n")
    passfile.chmod(0o600)
    return Setup(data, passfile, tmp_path)


def _verify_days(data: Path) -> dict[str, int]:
    r = cli("verify", "--json", "-d", str(data), check=False)
    counts: dict[str, int] = {}
    for line in r.stdout.splitlines():
        verdict = json.loads(line)["verdict"]
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def test_restore_into_empty_directory_verifies_every_day(setup: Setup) -> None:
    dest, restored = setup.tmp / "backup", setup.tmp / "restored"
    r = cli(
        "backup", "--to", str(dest), "-d", str(setup.data), "--passphrase-file", str(setup.passfile)
    )
    assert "files copied" in r.stdout
    # Nothing secret in the clear in the backup.
    key_pem = (setup.data / "keys" / "signing-key.pem").read_bytes()
    for path in dest.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert not (dest / "files" / "keys").exists()

    r = cli(
        "restore",
        "--from",
        str(dest),
        "--to",
        str(restored),
        "--passphrase-file",
        str(setup.passfile),
    )
    assert "logmaster index --once" in r.stdout  # the index is rebuilt, and the operator is told
    assert _verify_days(restored) == {"OK": len(DAYS) * len(DEVICES)}
    assert (restored / "keys" / "signing-key.pem").read_bytes() == key_pem
    assert (restored / "keys" / "signing-key.pem").stat().st_mode & 0o777 == 0o600
    assert (restored / "keys").stat().st_mode & 0o777 == 0o700
    assert (restored / "logmaster.db").stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(restored / "logmaster.db") as db:
        assert db.execute("select count(*) from alembic_version").fetchone() == (1,)
    # The restored directory can seal on: the key and the built-in TSA came back.
    seal_day(restored, dt.date(2026, 11, 22))
    assert _verify_days(restored) == {"OK": 3 * len(DEVICES)}


def test_second_backup_copies_only_new_files(setup: Setup) -> None:
    settings = load_settings(None, data_dir=setup.data)
    dest = setup.tmp / "backup"
    first = backup(settings, dest, PASSPHRASE)
    day_files = {
        p.relative_to(setup.data).as_posix()
        for p in (setup.data / "archive").rglob("*")
        if p.is_file()
    }
    assert set(first.copied_files) >= day_files
    again = backup(settings, dest, PASSPHRASE)
    assert again.copied_files == []
    assert again.unchanged == first.copied

    new_day = dt.date(2026, 11, 22)
    setup.seal_day(new_day)
    third = backup(settings, dest, PASSPHRASE)
    expected = set()
    for device in DEVICES:
        folder = f"archive/{device}/2026/11"
        expected |= {
            f"{folder}/22.log",
            f"{folder}/22.log.chain",
            f"{folder}/22.manifest.json",
            f"{folder}/22.manifest.json.p7s",
            f"{folder}/22.manifest.json.tsr",
            f"archive/{device}/seal-head.json",
        }
    assert set(third.copied_files) == expected
    # The chain sidecar is copied before its day file (a live file's copy covers its chain).
    order = third.copied_files
    assert order.index("archive/gw1/2026/11/22.log.chain") < order.index(
        "archive/gw1/2026/11/22.log"
    )
    manifest = json.loads((dest / "backup.json").read_text())
    assert manifest["files"]["archive/gw1/2026/11/22.log"]["sealed"] is True
    assert len(list((dest / "runs").glob("*.json"))) >= 1


def test_a_changed_sealed_file_never_replaces_the_good_copy(setup: Setup) -> None:
    dest, restored = setup.tmp / "backup", setup.tmp / "restored"
    args = ["-d", str(setup.data), "--passphrase-file", str(setup.passfile)]
    cli("backup", "--to", str(dest), *args)
    victim = setup.data / "archive" / "gw1" / "2026" / "11" / "20.log"
    with victim.open("ab") as f:
        f.write(b"2026-11-20T23:59:59.000000+03:00 10.0.0.1 <13>inserted later\n")
    r = cli("backup", "--to", str(dest), *args, check=False)
    assert r.returncode == 1
    assert "archive/gw1/2026/11/20.log" in r.stdout
    assert "MÜHÜRDEN SONRA" in r.stdout
    assert b"inserted later" not in (dest / "files" / "archive/gw1/2026/11/20.log").read_bytes()
    cli(
        "restore",
        "--from",
        str(dest),
        "--to",
        str(restored),
        "--passphrase-file",
        str(setup.passfile),
    )
    assert _verify_days(restored) == {"OK": 4}
    assert _verify_days(setup.data).get("FAIL") == 1  # the live copy is the damaged one


def test_wrong_passphrase_and_damage_are_refused(setup: Setup) -> None:
    settings = load_settings(None, data_dir=setup.data)
    dest = setup.tmp / "backup"
    backup(settings, dest, PASSPHRASE)
    target = setup.tmp / "restored"
    with pytest.raises(BackupError, match="wrong passphrase"):
        restore(dest, target, b"not the right passphrase")
    assert not target.exists() or not any(target.iterdir())  # nothing half restored

    copy = dest / "files" / "archive" / "fw2" / "2026" / "11" / "21.log"
    data = bytearray(copy.read_bytes())
    data[10] ^= 1
    copy.write_bytes(bytes(data))
    r = cli(
        "restore",
        "--from",
        str(dest),
        "--to",
        str(target),
        "--passphrase-file",
        str(setup.passfile),
        check=False,
    )
    assert r.returncode == 2
    assert "21.log does not match its SHA-256" in r.stdout + r.stderr


def test_restore_refuses_a_non_empty_target(setup: Setup) -> None:
    dest = setup.tmp / "backup"
    backup(load_settings(None, data_dir=setup.data), dest, PASSPHRASE)
    with pytest.raises(BackupError, match="not empty"):
        restore(dest, setup.data, PASSPHRASE)


def test_passphrase_rules(setup: Setup) -> None:
    dest = str(setup.tmp / "backup")
    setup.passfile.chmod(0o644)
    r = cli(
        "backup",
        "--to",
        dest,
        "-d",
        str(setup.data),
        "--passphrase-file",
        str(setup.passfile),
        check=False,
    )
    assert r.returncode == 2 and "chmod 600" in r.stdout + r.stderr
    r = cli(
        "backup",
        "--to",
        dest,
        "-d",
        str(setup.data),
        check=False,
        env={"LOGMASTER_BACKUP_PASSPHRASE": ""},
    )
    assert r.returncode == 2 and "passphrase" in r.stdout + r.stderr
    with pytest.raises(BackupError, match="at least 12"):
        backup(load_settings(None, data_dir=setup.data), Path(dest), b"short")
    with pytest.raises(BackupError, match="outside the data directory"):
        backup(load_settings(None, data_dir=setup.data), setup.data / "bk", PASSPHRASE)


def test_with_index_copies_the_sqlite_index(setup: Setup) -> None:
    cli("index", "--once", "-d", str(setup.data))
    dest, restored = setup.tmp / "backup", setup.tmp / "restored"
    settings = load_settings(None, data_dir=setup.data)
    backup(settings, dest, PASSPHRASE, with_index=True)
    copies = json.loads((dest / "backup.json").read_text())["index"]["copies"]
    assert any(name.startswith("events-2026-11-20") for name in copies)
    restore(dest, restored, PASSPHRASE)
    r = cli(
        "search",
        "message",
        "--data-dir",
        str(restored),
        "--from",
        "2026-11-20",
        "--to",
        "2026-11-21",
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    # Found without any indexer run in the restored directory: the copies are in use.
    m = re.search(r"(\d+) events match", r.stdout + r.stderr)
    assert m and int(m.group(1)) > 0, r.stdout


# --- PostgreSQL metadata ------------------------------------------------------------------


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    names = [f"lm_backup_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        for name in names:
            c.execute(f'CREATE DATABASE "{name}"')
    yield (
        f"postgresql+psycopg://postgres@127.0.0.1:5432/{names[0]}",
        f"postgresql+psycopg://postgres@127.0.0.1:5432/{names[1]}",
    )
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        for name in names:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(url: str) -> dict[str, int]:
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as c:
        names = [r[0] for r in c.execute(
            "select tablename from pg_tables where schemaname = 'public'")]  # fmt: skip
        return {n: c.execute(f'select count(*) from "{n}"').fetchone()[0] for n in names}  # type: ignore[index]


@pytest.mark.postgres
def test_postgres_metadata_round_trip(tmp_path: Path, pg_databases: tuple[str, str]) -> None:
    source_url, target_url = pg_databases
    data = tmp_path / "data"
    env = {"LOGMASTER_DATABASE_URL": source_url}
    cli("init", "--data-dir", str(data), env=env)
    cli("device", "add", "gw1", "--ip", "10.0.0.1", "-d", str(data), env=env, check=False)
    before = _tables(source_url)
    assert "alembic_version" in before
    settings = load_settings(None, data_dir=data, database_url=source_url)
    dest = tmp_path / "backup"
    backup(settings, dest, PASSPHRASE)
    assert json.loads((dest / "backup.json").read_text())["metadata"]["kind"] == "postgres"
    restore(dest, tmp_path / "restored", PASSPHRASE, database_url=target_url)
    assert _tables(target_url) == before
    assert os.listdir(tmp_path / "restored")
