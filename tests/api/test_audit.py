"""The audit trail: what is recorded, who may read it, append-only, tamper detection."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import ADMIN_PASSWORD, ApiServer, SignedIn
from logmaster.api.audit import record, verify_audit
from logmaster.db import make_engine


def _entries(admin: SignedIn, **params: str) -> list[dict[str, object]]:
    r = admin.get("/audit", params={"limit": "1000", **params})
    assert r.status_code == 200, r.text
    entries: list[dict[str, object]] = r.json()["entries"]
    return entries


def test_signins_and_admin_changes_are_recorded(
    api: ApiServer,
    client: object,
    admin: SignedIn,
    signin: Callable[..., SignedIn],
    make_user: Callable[..., tuple[str, str]],
) -> None:
    """Sign-in success and failure, user creation and grants are audited: who, where, what."""
    name, _ = make_user("viewer")
    api.client().post("/auth/login", json={"username": name, "password": "wrong"})
    r = admin.post(
        "/users",
        json={"username": "newbie", "password": "An0ther-Str0ng-Pass", "roles": ["viewer"]},
    )
    assert r.status_code == 201, r.text
    entries = _entries(admin)
    logins = [e for e in entries if e["action"] == "auth.login"]
    assert any(e["actor"] == "admin" and e["result"] == "ok" for e in logins)
    failed = next(e for e in logins if e["actor"] == name)
    assert failed["result"] == "failed" and failed["source_ip"] == "127.0.0.1"
    created = next(
        e for e in entries if e["action"] == "user.create" and e["target"] == "user:newbie"
    )
    assert created["actor"] == "admin" and created["details"] == {
        "roles": ["viewer"],
        "source": "local",
    }
    # Filters: action prefix and actor.
    assert {e["action"] for e in _entries(admin, action="auth.")} <= {"auth.login", "auth.lockout"}
    assert verify_audit(api.engine).ok


def test_users_see_only_their_own_entries(
    admin: SignedIn, as_role: Callable[..., SignedIn]
) -> None:
    """Without view_audit the audit search returns the caller's own actions only."""
    viewer = as_role("viewer")
    own = viewer.get("/audit").json()["entries"]
    assert own and {e["actor"] for e in own} == {viewer.username}
    assert viewer.get("/audit", params={"actor": "admin"}).json()["entries"] == []
    assert viewer.get("/audit/verify").status_code == 403
    assert admin.get("/audit/verify").json()["ok"] is True


def test_no_route_deletes_or_edits_audit_entries(client: object, api: ApiServer) -> None:
    """The schema has no PUT/PATCH/DELETE under /audit."""
    schema = api.client().get("/openapi.json").json()
    for path, ops in schema["paths"].items():
        if path.startswith("/api/v1/audit"):
            assert set(ops) == {"get"}, path


def _db(api: ApiServer) -> Path:
    return api.settings.data_dir / "logmaster.db"


def test_database_refuses_update_and_delete(api: ApiServer, admin: SignedIn) -> None:
    """Triggers refuse UPDATE and DELETE on audit_entries (SQLite)."""
    conn = sqlite3.connect(_db(api))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_entries SET result = 'ok' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_entries")
    with pytest.raises(sqlite3.IntegrityError, match="forward"):
        conn.execute("UPDATE audit_head SET seq = 0")
    conn.close()


@pytest.mark.postgres
def test_postgres_refuses_update_delete_truncate(
    pg_api: ApiServer, signin: Callable[..., SignedIn]
) -> None:
    """Triggers refuse UPDATE, DELETE and TRUNCATE on audit_entries (PostgreSQL)."""
    srv = pg_api
    signin("admin", ADMIN_PASSWORD, server=srv)
    for statement in (
        "UPDATE audit_entries SET result = 'x'",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), srv.engine.begin() as c:
            c.exec_driver_sql(statement)
    assert verify_audit(srv.engine).ok


def _verify_cli(api: ApiServer) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "logmaster",
            "audit",
            "verify",
            "--data-dir",
            str(api.settings.data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _tamper(api: ApiServer, *statements: str) -> None:
    """What someone with the database file can do: drop the triggers and change rows."""
    conn = sqlite3.connect(_db(api))
    conn.execute("DROP TRIGGER IF EXISTS audit_entries_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_entries_no_delete")
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()


def _fill(api: ApiServer, n: int = 6) -> None:
    for i in range(n):
        record(
            api.engine,
            actor="t",
            source_ip="10.0.0.1",
            action="test",
            target=f"t{i}",
            result="ok",
            details={"i": i},
        )


def test_verify_detects_an_edit(api: ApiServer) -> None:
    """Changing one field of one entry is found, and named, by `logmaster audit verify`."""
    _fill(api)
    ok = _verify_cli(api)
    assert ok.returncode == 0 and "intact" in ok.stdout
    _tamper(api, "UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 3")
    bad = _verify_cli(api)
    assert bad.returncode == 1
    assert "TAMPERED" in bad.stdout and "entry 3 does not match" in bad.stdout
    verdict = verify_audit(api.engine)
    assert not verdict.ok and verdict.first_bad_seq == 3 and len(verdict.problems) == 1


def test_verify_detects_deletion_in_the_middle_and_at_the_end(api: ApiServer) -> None:
    """A gap in the sequence and a cut tail are both found."""
    _fill(api)
    _tamper(api, "DELETE FROM audit_entries WHERE seq = 2")
    verdict = verify_audit(api.engine)
    assert not verdict.ok and verdict.first_bad_seq == 2
    assert "missing" in verdict.problems[0]


def test_verify_detects_a_cut_tail(api: ApiServer) -> None:
    """Deleting the newest entries is found through the audit head."""
    _fill(api)
    last = verify_audit(api.engine).head_seq
    _tamper(api, f"DELETE FROM audit_entries WHERE seq >= {last - 1}")
    verdict = verify_audit(api.engine)
    assert not verdict.ok and "deleted at the end" in verdict.problems[0]


def test_verify_detects_reordering(api: ApiServer) -> None:
    """Swapping the contents of two entries (keeping their numbers) is found."""
    _fill(api)
    _tamper(
        api,
        "UPDATE audit_entries SET seq = -2 WHERE seq = 2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = -2",
    )
    verdict = verify_audit(api.engine)
    assert not verdict.ok and verdict.first_bad_seq == 2


WRITER = textwrap.dedent("""
    import sys
    from logmaster.api.audit import record
    from logmaster.db import make_engine
    engine = make_engine(sys.argv[1])
    for i in range(int(sys.argv[2])):
        record(engine, actor=sys.argv[3], source_ip=None, action="test", target=str(i),
               result="ok", details={})
""")


def _concurrent(url: str, processes: int = 4, each: int = 40) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, str(each), f"w{p}"])
        for p in range(processes)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0


def test_concurrent_writers_keep_one_chain_sqlite(api: ApiServer) -> None:
    """Four processes appending at once leave one unbroken chain (SQLite)."""
    before = verify_audit(api.engine).entries
    _concurrent(api.settings.db_url)
    verdict = verify_audit(api.engine)
    assert verdict.ok, verdict.problems
    assert verdict.entries == before + 160 == verdict.head_seq


@pytest.mark.postgres
def test_concurrent_writers_keep_one_chain_postgres(
    start_api: Callable[..., ApiServer], pg_metadata_url: str
) -> None:
    """Four processes appending at once leave one unbroken chain (PostgreSQL)."""
    srv = start_api(database_url=pg_metadata_url)
    before = verify_audit(srv.engine).entries
    _concurrent(pg_metadata_url)
    engine = make_engine(pg_metadata_url)
    verdict = verify_audit(engine)
    engine.dispose()
    assert verdict.ok, verdict.problems
    assert verdict.entries == before + 160 == verdict.head_seq


def test_audit_list_cli(api: ApiServer, admin: SignedIn) -> None:
    """`logmaster audit list --json` prints the newest entries."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "logmaster",
            "audit",
            "list",
            "--json",
            "--action",
            "auth.login",
            "--data-dir",
            str(api.settings.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"actor": "admin"' in out and '"action": "auth.login"' in out
