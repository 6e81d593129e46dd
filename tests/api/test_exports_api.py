"""Exports and retention through the API: permission export, scope 404, audited, verifiable ZIPs."""

from __future__ import annotations

import datetime as dt
import gc
import io
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from logdata_support import ISTANBUL, api, start_site, syslog

from conftest import ADMIN_PASSWORD
from logmaster.archive.keys import KeyStore
from logmaster.archive.seal import SealRun

__all__ = ["api", "start_site"]

TOOLS = (
    "sh", "sha256sum", "openssl", "sed", "grep", "awk", "cat", "sort", "od", "tr", "mktemp",
    "rm", "wc", "cut", "head", "dirname", "basename",
)  # fmt: skip
MAC = "02:00:00:00:00:01"
LAN = "192.168.88.10"
PUBLIC = "203.0.113.10"


@pytest.fixture(scope="module")
def tool_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with only the tools verify.sh may use (no Python, no LogMaster)."""
    folder = tmp_path_factory.mktemp("tools")
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found
        (folder / tool).symlink_to(found)
    return str(folder)


def seal_today(api) -> dt.date:
    """Seal today's days (as if the day were over): real key, built-in TSA."""
    signer = KeyStore(api.settings.data_dir / "keys").init("ecdsa-p256")
    today = dt.datetime.now(ISTANBUL).date()
    later = dt.datetime.combine(today + dt.timedelta(days=2), dt.time(), ISTANBUL)
    results = SealRun(api.settings, signer=signer, now=later).seal_day(today)
    assert results and all(r.state == "sealed" for r in results), results
    return today


def gateway_day(add_device, start_site, api) -> dt.date:
    add_device("gw1", sources=["127.0.1.1"])
    add_device("gw2", sources=["127.0.1.2"])
    site = start_site()
    site.send("127.0.1.1", *[syslog("gw1", f"app: line {i}") for i in range(20)])
    site.send("127.0.1.2", syslog("gw2", "app: other"))
    site.wait_archived(21)
    site.index()
    site.collector.stop()
    return seal_today(api)


def verify(zip_bytes: bytes, folder: Path, tool_path: str) -> tuple[int, str]:
    folder.mkdir()
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        zf.extractall(folder)
    proc = subprocess.run(
        [os.path.join(tool_path, "sh"), "verify.sh"],
        cwd=folder, env={"PATH": tool_path}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def test_export_returns_a_verifiable_bundle(
    add_device, start_site, admin, as_role, grant, api, tool_path, tmp_path
):
    """Admin exports a day (with a query): the ZIP verifies with openssl; the export is audited."""
    today = gateway_day(add_device, start_site, api)
    body = {
        "device": "gw1",
        "from": today.isoformat(),
        "to": today.isoformat(),
        "query": '"line 7"',
    }
    r = admin.post("/exports", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert f"logmaster-gw1-{today:%Y%m%d}" in r.headers["content-disposition"]
    code, output = verify(r.content, tmp_path / "a", tool_path)
    assert code == 0, output
    assert output.count("the line belongs to") == 1
    assert not list((api.settings.data_dir / "exports").glob("*.zip"))  # temp file removed
    entry = admin.get("/audit", params={"action": "export"}).json()["entries"][0]
    assert entry["target"] == f"gw1 {today}..{today}" and entry["actor"] == "admin"
    # Scope: an analyst with export on gw2 only gets 404 for gw1, a viewer gets 403.
    analyst = as_role("security_analyst")
    grant(user=analyst.username, device="gw2", actions=["view", "export"])
    assert analyst.post("/exports", json=body).status_code == 404
    assert analyst.post("/exports", json={**body, "device": "nope"}).status_code == 404
    r = analyst.post("/exports", json={**body, "device": "gw2", "query": None})
    assert r.status_code == 200
    viewer = as_role("viewer")
    grant(user=viewer.username, device="gw1", actions=["view"])
    assert viewer.post("/exports", json=body).status_code == 403
    # Nothing sealed in the range: a clear 422, audited as failed.
    r = admin.post("/exports", json={**body, "from": "2020-01-01", "to": "2020-01-02"})
    assert r.status_code == 422 and "no sealed day" in r.json()["detail"]
    bad = admin.post("/exports", json={**body, "from": today.isoformat(), "to": "2020-01-01"})
    assert bad.status_code == 400


def test_export_failing_at_the_end_closes_its_zip(add_device, start_site, admin, api):
    """The signing certificate gone: the export fails at its last step (the certificates) with
    a clear 422 and a failed job, and the half-written ZIP is closed then, not left to the
    garbage collector (which would close it after its file, an error under filterwarnings)."""
    today = gateway_day(add_device, start_site, api)
    keys = api.settings.data_dir / "keys"
    keys.rename(keys.with_name("keys-away"))
    body = {"device": "gw1", "from": today.isoformat(), "to": today.isoformat()}
    r = admin.post("/exports", json=body)
    assert r.status_code == 422 and "no signing certificate" in r.json()["detail"], r.text
    job = admin.post("/exports/jobs", json=body).json()["id"]
    deadline = time.monotonic() + 30
    while (state := admin.get(f"/exports/jobs/{job}").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["state"] == "failed" and "no signing certificate" in state["error"], state
    assert not list((api.settings.data_dir / "exports").glob("*.zip"))
    gc.collect()  # an unclosed ZipFile would report "seek of closed file" here


def test_background_job_with_progress(
    add_device, start_site, admin, as_role, api, tool_path, tmp_path
):
    """POST /exports/jobs -> poll -> download; another user cannot see the job."""
    today = gateway_day(add_device, start_site, api)
    body = {"device": "gw1", "from": today.isoformat(), "to": today.isoformat()}
    r = admin.post("/exports/jobs", json=body)
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    deadline = time.monotonic() + 30
    while (state := admin.get(f"/exports/jobs/{job}").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["state"] == "done" and state["bytes_done"] == state["bytes_total"] > 0
    other = as_role("security_analyst")
    assert other.get(f"/exports/jobs/{job}").status_code == 404
    assert other.get(f"/exports/jobs/{job}/bundle").status_code == 404
    r = admin.get(f"/exports/jobs/{job}/bundle")
    assert r.status_code == 200
    code, output = verify(r.content, tmp_path / "j", tool_path)
    assert code == 0, output
    assert admin.get("/exports/jobs/../../x").status_code == 404


def attribution_site(add_device, start_site, api) -> str:
    """gw-a (NAT + hotspot) and dhcp-a at location A, sealed; returns the moment to ask."""
    add_device("gw-a", sources=["127.0.1.1"], location="A")
    add_device("dhcp-a", sources=["127.0.1.2"], location="A")
    site = start_site()
    t = dt.datetime.now(ISTANBUL) - dt.timedelta(minutes=2)
    site.send(
        "127.0.1.2",
        syslog("dhcp-a", f"dhcpd[812]: DHCPACK on {LAN} to {MAC} (ayse-phone) via eth0", 190, t),
    )
    site.send(
        "127.0.1.1",
        syslog("gw-a", f"hotspot,account,info,debug ayse ({LAN}): logged in", 134, t),
        syslog(
            "gw-a",
            "firewall,info forward: in:bridge out:ether1, connection-state:new src-mac "
            f"{MAC}, proto TCP (SYN), {LAN}:50000->93.184.216.34:443, "
            f"NAT ({LAN}:50000->{PUBLIC}:40000)->93.184.216.34:443, len 60",
            134,
            t + dt.timedelta(seconds=30),
        ),
    )
    site.wait_archived(3)
    site.index()
    site.collector.stop()
    seal_today(api)
    return (t + dt.timedelta(seconds=31)).isoformat()


def test_attribution_report_export(add_device, start_site, admin, api, tool_path, tmp_path):
    """The attribution answer as a bundle: each hop's line cited with a proof; verify.sh OK."""
    at = attribution_site(add_device, start_site, api)
    r = admin.post("/exports/attribution", json={"ip": PUBLIC, "port": 40000, "at": at})
    assert r.status_code == 200, r.text
    folder = tmp_path / "attr"
    code, output = verify(r.content, folder, tool_path)
    assert code == 0, output
    assert output.count("the line belongs to") == 3  # NAT, DHCP and hotspot lines
    report = json.loads((folder / "report.json").read_text())
    (chain,) = report["chains"]
    assert chain["internal_ip"] == LAN and chain["users"] == ["ayse"]
    cite = chain["nat"]["evidence"][0]
    assert cite["line"].endswith("len 60") and cite["verifiable"]
    line = (folder / cite["proof"] / "line").read_bytes()
    day_file = (folder / cite["file"]).read_bytes()
    assert day_file[cite["offset"] :].split(b"\n", 1)[0] == line
    text = (folder / "report.md").read_text()
    assert "Atıf raporu / Attribution report" in text and "len 60" in text
    assert "akredite" in (folder / "VERIFY.md").read_text()
    entry = admin.get("/audit", params={"action": "export"}).json()["entries"][0]
    assert entry["target"].startswith(f"attribution {PUBLIC}:40000@")
    # The same from the command line.
    from typer.testing import CliRunner

    from logmaster.cli import app

    out = tmp_path / "cli.zip"
    res = CliRunner().invoke(
        app,
        ["export", "--attribution", "--ip", PUBLIC, "--port", "40000", "--at", at,
         "--data-dir", str(api.settings.data_dir), "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    code, output = verify(out.read_bytes(), tmp_path / "cli", tool_path)
    assert code == 0, output
    assert json.loads((tmp_path / "cli" / "report.json").read_text())["chains"][0]["users"] == [
        "ayse"
    ]


def test_retention_routes(add_device, admin, as_role, grant, api):
    """Viewing needs view_compliance and shows the permitted devices only (plus holds on every
    device); changes are admin-only and audited; no delete route."""
    add_device("gw1")
    add_device("gw2")
    analyst = as_role("security_analyst")  # has view_compliance
    grant(user=analyst.username, device="gw1", actions=["view"])
    viewer = as_role("viewer")
    assert viewer.get("/retention").status_code == 403
    assert analyst.get("/retention").status_code == 200
    assert analyst.put("/retention/devices/gw1", json={"days": 1000}).status_code == 403
    r = admin.put("/retention/devices/gw1", json={"days": 100})
    assert r.status_code == 422 and "below the legal minimum" in r.json()["detail"]
    r = admin.put(
        "/retention/devices/gw1",
        json={"days": 100, "allow_short_retention": True, "reason": "test lab"},
    )
    assert r.status_code == 200 and r.json()["allow_short_retention"] is True
    policies = {p["device"]: p for p in analyst.get("/retention").json()}
    assert policies["gw1"]["days"] == 100 and policies["gw1"]["set_by"] == "admin"
    assert dt.datetime.fromisoformat(policies["gw1"]["set_at"]).utcoffset() == dt.timedelta(0)
    assert "gw2" not in policies and "gw2" in {p["device"] for p in admin.get("/retention").json()}
    entry = admin.get("/audit", params={"action": "retention.set"}).json()["entries"][0]
    assert entry["target"] == "gw1" and entry["actor"] == "admin"
    hold = {"device": None, "from": "2026-01-01", "to": "2026-01-31", "reason": "court order"}
    assert analyst.post("/retention/holds", json=hold).status_code == 403
    r = admin.post("/retention/holds", json=hold)
    assert r.status_code == 201, r.text
    hold_id = r.json()["id"]
    other = admin.post("/retention/holds", json={**hold, "device": "gw2"}).json()["id"]
    assert [h["id"] for h in analyst.get("/retention/holds").json()] == [hold_id]
    assert [h["id"] for h in admin.get("/retention/holds").json()] == [hold_id, other]
    assert admin.post(f"/retention/holds/{other}/release", json={"reason": "x"}).status_code == 200
    bad = admin.post("/retention/holds", json={**hold, "from": "2026-02-01"})
    assert bad.status_code == 422
    r = admin.post(f"/retention/holds/{hold_id}/release", json={"reason": "closed"})
    assert r.status_code == 200 and r.json()["released_by"] == "admin"
    assert admin.post("/retention/holds/999/release", json={"reason": "x"}).status_code == 404
    big = admin.post(f"/retention/holds/{2**63}/release", json={"reason": "x"})
    assert big.status_code == 422  # bounded id: not a 500 from the database
    assert analyst.get("/retention/holds").json() == []
    released = analyst.get("/retention/holds", params={"include_released": True}).json()
    assert [h["id"] for h in released] == [hold_id]
    assert dt.datetime.fromisoformat(released[0]["released_at"]).utcoffset() == dt.timedelta(0)
    assert analyst.get("/retention/due").status_code == 200
    assert admin.delete("/retention/devices/gw1").status_code == 405
    assert admin.delete(f"/retention/holds/{hold_id}").status_code == 405


@pytest.mark.postgres
def test_retention_on_postgres(pg_api, signin):
    """Migration 0004 on PostgreSQL: policies, holds and the short-retention constraint."""
    import sqlalchemy as sa

    from logmaster.archive.retention import RetentionPolicy

    srv = pg_api
    admin = signin("admin", ADMIN_PASSWORD, server=srv)
    r = admin.put(
        "/retention/devices/gw1", json={"days": 30, "allow_short_retention": True, "reason": "lab"}
    )
    assert r.status_code == 200 and r.json()["allow_short_retention"] is True
    hold = {"device": "gw1", "from": "2026-01-01", "to": "2026-01-02", "reason": "case 7"}
    hold_id = admin.post("/retention/holds", json=hold).json()["id"]
    assert (
        admin.post(f"/retention/holds/{hold_id}/release", json={"reason": "done"}).status_code
        == 200
    )
    with pytest.raises(sa.exc.IntegrityError), srv.engine.begin() as conn:
        conn.execute(
            sa.insert(RetentionPolicy).values(
                device="x", days=10, allow_short_retention=False, set_by="sql",
                set_at=dt.datetime.now(dt.UTC),
            )
        )  # fmt: skip


def test_attribution_export_hides_other_devices(
    add_device, start_site, as_role, grant, api, tool_path, tmp_path
):
    """Export + attribute on gw-a only: the DHCP hop is 'not permitted', its day not included."""
    at = attribution_site(add_device, start_site, api)
    analyst = as_role("security_analyst")
    grant(user=analyst.username, device="gw-a", actions=["view", "export", "attribute"])
    r = analyst.post("/exports/attribution", json={"ip": PUBLIC, "port": 40000, "at": at})
    assert r.status_code == 200, r.text
    folder = tmp_path / "a"
    code, output = verify(r.content, folder, tool_path)
    assert code == 0, output
    report = json.loads((folder / "report.json").read_text())
    (chain,) = report["chains"]
    assert chain["nat"]["permitted"] and chain["users"] == ["ayse"]
    (lease,) = chain["leases"]
    assert lease == {"kind": "dhcp", "permitted": False, "note": lease["note"]}
    assert chain["macs"] == []
    assert not (folder / "archive" / "dhcp-a").exists()
    assert "dhcp-a" not in (folder / "report.md").read_text()
    assert not [p for p in folder.rglob("*") if p.is_file() and b"DHCPACK" in p.read_bytes()]
    viewer = as_role("viewer")
    assert viewer.post("/exports/attribution", json={"ip": PUBLIC, "at": at}).status_code == 403
