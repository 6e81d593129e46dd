"""``logmaster migrate-to-postgres`` and ``logmaster db upgrade``: an embedded installation (real
collector, real indexer, users, audit entries) moved to a scratch PostgreSQL database, then
served from it."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from logdata_support import ISTANBUL, api, start_site, syslog

__all__ = ["api", "start_site"]

pytestmark = pytest.mark.postgres

MAC = "02:00:00:00:00:07"
LAN = "192.168.88.17"
PUBLIC = "203.0.113.77"
# UTC+14 and UTC-10: the two devices' local days always differ, so the index has two days.
KIR, HNL = "Pacific/Kiritimati", "Pacific/Honolulu"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logmaster", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def _build_embedded(add_device, start_site, admin, as_role, grant) -> tuple[Any, str]:
    """Two devices 24 hours apart (so two archive days), NAT/DHCP/hotspot lines, users, grants."""
    add_device("gw-m", sources=["127.0.1.31"], location="M", timezone=KIR)
    add_device("dhcp-m", sources=["127.0.1.32"], location="M", timezone=HNL)
    site = start_site()
    t = dt.datetime.now(ISTANBUL) - dt.timedelta(minutes=2)
    site.send(
        "127.0.1.32",
        syslog("dhcp-m", f"dhcpd[812]: DHCPACK on {LAN} to {MAC} (phone) via eth0", 190, t, HNL),
        *[syslog("dhcp-m", f"dhcpd[812]: lease check {n} beta", 190, t, HNL) for n in range(40)],
    )
    site.send(
        "127.0.1.31",
        syslog("gw-m", f"hotspot,account,info,debug zeynep ({LAN}): logged in", 134, t, KIR),
        syslog(
            "gw-m",
            "firewall,info forward: in:bridge out:ether1, connection-state:new src-mac "
            f"{MAC}, proto TCP (SYN), {LAN}:50000->93.184.216.34:443, "
            f"NAT ({LAN}:50000->{PUBLIC}:40000)->93.184.216.34:443, len 60",
            134,
            t + dt.timedelta(seconds=30),
            KIR,
        ),
        *[syslog("gw-m", f"system,info alpha event {n}", 134, t, KIR) for n in range(60)],
    )
    site.wait_archived(103)
    assert site.index() == 103
    site.collector.stop()
    viewer = as_role("viewer")
    grant(user=viewer.username, device="gw-m", actions=["view"])
    assert admin.post("/users", json=_new_user("auditor1")).status_code == 201
    return site, (t + dt.timedelta(seconds=31)).isoformat()


def _new_user(name: str) -> dict[str, Any]:
    return {"username": name, "password": "An0ther-Str0ng-Pass!", "roles": ["viewer"]}


def _search(client, q: str) -> list[tuple[str, str]]:
    r = client.get("/search/events", params={"q": q, "from": "-3d", "limit": 1000})
    assert r.status_code == 200, r.text
    return sorted((e["id"], e["message"]) for e in r.json()["events"])


def test_embedded_install_moves_to_postgres(
    api, add_device, start_site, admin, as_role, grant, start_api, signin, pg_metadata_url
):
    """Every table, every index day and the sessions arrive with their ids; counts match; the
    API then runs on PostgreSQL alone (index included) and the audit chain verifies."""
    data_dir: Path = api.settings.data_dir
    _site, at = _build_embedded(add_device, start_site, admin, as_role, grant)
    days = sorted(p.name for p in (data_dir / "index").glob("events-*.db"))
    assert len(days) == 2, days  # UTC+14 and UTC-10: always two different local days
    before = {q: _search(admin, q) for q in ("alpha", "beta", "device:dhcp-m", "")}
    assert len(before["alpha"]) == 60 and len(before[""]) == 103
    chain_before = admin.get("/attribution", params={"ip": PUBLIC, "port": 40000, "at": at})
    assert chain_before.json()["chains"][0]["users"] == ["zeynep"]
    api.stop()

    run = cli("migrate-to-postgres", "--to", pg_metadata_url, "--data-dir", str(data_dir))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "migration complete" in run.stdout and "DIFFERENT" not in run.stdout
    assert f'database_url = "{pg_metadata_url}"' in run.stdout
    for day in days:
        assert f"index {day[7:17]} events" in run.stdout
    with sqlite3.connect(data_dir / "logmaster.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        sqlite_counts = {
            t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in tables
            if t != "alembic_version"
        }
    with psycopg.connect(pg_metadata_url.replace("+psycopg", "")) as pg:
        for table, count in sqlite_counts.items():
            assert pg.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == count, table
        assert pg.execute("SELECT count(*) FROM events").fetchone()[0] == 103
        assert pg.execute("SELECT count(*) FROM sessions").fetchone()[0] >= 2

    # A second run refuses the filled target.
    again = cli("migrate-to-postgres", "--to", pg_metadata_url, "--data-dir", str(data_dir))
    assert again.returncode == 2 and "already holds LogMaster data" in again.stderr

    env = {"LOGMASTER_DATABASE_URL": pg_metadata_url}
    upgrade = cli("db", "upgrade", "--data-dir", str(data_dir), env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "(newest), nothing to do" in upgrade.stdout and "index " in upgrade.stdout
    verify = cli("audit", "verify", "--data-dir", str(data_dir), env=env)
    assert verify.returncode == 0 and "audit trail intact" in verify.stdout, verify.stdout

    # Served from PostgreSQL: only database_url given, the index follows it.
    pg_api = start_api(data_dir=data_dir, database_url=pg_metadata_url, index={"workers": 0})
    try:
        _check_served(pg_api, signin, before, at, data_dir, env)
    finally:
        # The test server runs without lifespan: close the index connections of its threads.
        pg_api.app.state.logdata.index.close()
        pg_api.app.state.logdata.read_engine.dispose()


def _check_served(pg_api, signin, before, at, data_dir, env) -> None:
    assert pg_api.settings.index.backend == "postgres"
    admin2 = signin("admin", pg_api.admin_password, server=pg_api)
    after = {q: _search(admin2, q) for q in before}
    assert after == before  # same events, same ids
    event_id = before["alpha"][0][0]
    assert admin2.get(f"/events/{event_id}").status_code == 200
    chain = admin2.get("/attribution", params={"ip": PUBLIC, "port": 40000, "at": at}).json()
    assert chain["chains"][0]["users"] == ["zeynep"]
    assert chain["chains"][0]["macs"] == [MAC]
    # Sequences moved past the copied ids: new rows do not collide.
    assert admin2.post("/users", json=_new_user("auditor2")).status_code == 201
    verify = cli("audit", "verify", "--data-dir", str(data_dir), env=env)
    assert verify.returncode == 0 and "audit trail intact" in verify.stdout, verify.stdout


def test_migration_refuses_wrong_source_and_target(api, pg_metadata_url, tmp_path):
    """A PostgreSQL source, a SQLite target, or a missing installation: exit 2 with a reason."""
    data_dir = str(api.settings.data_dir)
    r = cli("migrate-to-postgres", "--to", f"sqlite:///{tmp_path}/x.db", "--data-dir", data_dir)
    assert r.returncode == 2 and "must be a PostgreSQL URL" in r.stderr
    r = cli(
        "migrate-to-postgres",
        "--to",
        pg_metadata_url,
        "--data-dir",
        data_dir,
        env={"LOGMASTER_DATABASE_URL": pg_metadata_url},
    )
    assert r.returncode == 2 and "already uses postgresql" in r.stderr
    r = cli("migrate-to-postgres", "--to", pg_metadata_url, "--data-dir", str(tmp_path / "none"))
    assert r.returncode == 2 and "no metadata database" in r.stderr


def test_db_upgrade_reports_revisions(tmp_path, pg_metadata_url):
    """From an empty database to the newest revision, then nothing to do; status exits 0."""
    env = {"LOGMASTER_DATABASE_URL": pg_metadata_url}
    first = cli("db", "upgrade", "--data-dir", str(tmp_path), env=env)
    assert first.returncode == 0, first.stderr
    assert "upgraded from revision (empty) to" in first.stdout
    assert "schema version" in first.stdout  # the index tables, in the same database
    second = cli("db", "upgrade", "--data-dir", str(tmp_path), env=env)
    assert "nothing to do" in second.stdout
    status = cli("db", "status", "--data-dir", str(tmp_path), env=env)
    assert status.returncode == 0 and "index backend postgres" in status.stdout
    (tmp_path / "new").mkdir()
    embedded = cli("db", "status", "--data-dir", str(tmp_path / "new"))
    assert embedded.returncode == 1 and "revision (empty)" in embedded.stdout
