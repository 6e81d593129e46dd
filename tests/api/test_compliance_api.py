"""Compliance API: calendar, device days, violations, reports; scope, admin-only, audited."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent.parent / "archive"))

from archive_helpers import lines_for as archive_lines
from archive_helpers import write_batches

from logmaster.api.models import AuditEntry
from logmaster.archive.keys import KeyStore
from logmaster.archive.seal import SealRun
from logmaster.compliance.evaluator import Evaluator

DAY = dt.date(2026, 10, 15)
NEXT = DAY + dt.timedelta(days=1)
LATER = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _archive(api, add_device) -> None:
    """gw1 (L1) sealed on DAY; gw2 (L2) sealed on DAY, its NEXT left unsealed (a violation)."""
    add_device("gw1", location="L1")
    add_device("gw2", location="L2")
    settings = api.settings
    signer = KeyStore(settings.data_dir / "keys").init("ecdsa-p256")
    for slug, day in (("gw1", DAY), ("gw2", DAY), ("gw2", NEXT)):
        write_batches(settings.archive_dir, slug, [archive_lines(slug, day, 12)], day)
    run = SealRun(settings, signer=signer, now=LATER)
    run.seal_day(DAY)
    settings.compliance.verify_budget_s = 0
    ev = Evaluator(settings, api.engine)
    try:
        ev.run_once(LATER)
    finally:
        ev.cache.close()


def test_calendar_and_scope(api, add_device, admin, as_role, grant) -> None:
    """Admin sees both devices; an analyst granted gw1 sees gw1 only; others' devices 404."""
    _archive(api, add_device)
    params = {"from": DAY.isoformat(), "to": NEXT.isoformat()}
    body = admin.get("/compliance/status", params=params).json()
    cells = {(d["device"], c["day"]): c for d in body["devices"] for c in d["days"]}
    assert body["from"] == DAY.isoformat()
    assert cells["gw1", DAY.isoformat()]["state"] == "sealed"
    assert cells["gw1", DAY.isoformat()]["tsa"] == "builtin"
    assert cells["gw1", DAY.isoformat()]["accredited"] is False
    assert cells["gw2", NEXT.isoformat()]["state"] == "open"
    assert cells["gw2", NEXT.isoformat()]["lines"] == 12
    analyst = as_role("security_analyst")
    grant(user=analyst.username, device="gw1", actions=["view"])
    mine = analyst.get("/compliance/status", params=params).json()
    assert [d["device"] for d in mine["devices"]] == ["gw1"]
    assert analyst.get("/compliance/status", params={**params, "device": "gw2"}).status_code == 404
    assert analyst.get("/compliance/status/gw2").status_code == 404
    days = analyst.get("/compliance/status/gw1", params=params).json()
    assert days[0]["gaps"] and days[0]["first_received"].startswith("2026-10-15T00:00:00")
    viewer = as_role("viewer")
    grant(user=viewer.username, device="gw1", actions=["view"])
    assert viewer.get("/compliance/status").status_code == 403
    bad = admin.get("/compliance/status", params={"from": "2026-10-16", "to": "2026-10-15"})
    assert bad.status_code == 400
    assert admin.get("/compliance/status", params={"from": "2020-01-01"}).status_code == 400


def test_violations_scope(api, add_device, admin, as_role, grant) -> None:
    """gw2's overdue day is listed for the admin, never for a user without gw2."""
    _archive(api, add_device)
    rows = admin.get("/compliance/violations", params={"open": True}).json()
    subjects = {v["subject"] for v in rows}
    assert f"gw2 {NEXT.isoformat()}" in subjects
    analyst = as_role("security_analyst")
    grant(user=analyst.username, device="gw1", actions=["view"])
    mine = analyst.get("/compliance/violations").json()
    assert all("gw2" not in v["subject"] for v in mine)
    assert analyst.get("/compliance/violations", params={"device": "gw2"}).status_code == 404
    assert admin.get("/compliance/violations", params={"kind": "x"}).status_code == 400


def test_reports_admin_creates_scope_downloads(api, add_device, admin, as_role, grant, tmp_path):
    """Admin makes reports; an analyst sees the L1 report (all its devices granted), not the
    organisation's; downloads verify with openssl; everything is audited."""
    _archive(api, add_device)
    analyst = as_role("security_analyst")
    grant(user=analyst.username, device="gw1", actions=["view"])
    assert analyst.post("/compliance/reports", json={"month": "2026-10"}).status_code == 403
    assert admin.post("/compliance/reports", json={"month": "2026-13"}).status_code == 422
    r = admin.post("/compliance/reports", json={"month": "2026-10"})
    assert r.status_code == 201, r.text
    assert "compliance-2026-10.pdf.tsr" in r.json()["files"] and r.json()["stamped"]
    r = admin.post("/compliance/reports", json={"month": "2026-10", "location": "L1"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "compliance-2026-10-l1"
    nowhere = admin.post("/compliance/reports", json={"month": "2026-10", "location": "Yok"})
    assert nowhere.status_code == 400 and "Yok" in nowhere.json()["detail"]
    assert {e["name"] for e in admin.get("/compliance/reports").json()} == {
        "compliance-2026-10",
        "compliance-2026-10-l1",
    }
    assert [e["name"] for e in analyst.get("/compliance/reports").json()] == [
        "compliance-2026-10-l1"
    ]
    assert analyst.get("/compliance/reports/compliance-2026-10.pdf").status_code == 404
    assert analyst.get("/compliance/reports/..%2Fkeys%2Fsigning-key.pem").status_code == 404
    files = {}
    for suffix in (".pdf", ".pdf.p7s", ".pdf.tsr"):
        got = analyst.get(f"/compliance/reports/compliance-2026-10-l1{suffix}")
        assert got.status_code == 200, got.text
        files[suffix] = tmp_path / f"r{suffix}"
        files[suffix].write_bytes(got.content)
    assert got.headers["content-type"] == "application/timestamp-reply"
    assert files[".pdf"].read_bytes().startswith(b"%PDF")
    cms = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(files[".pdf.p7s"]),
         "-content", str(files[".pdf"]), "-CAfile",
         str(api.settings.data_dir / "keys" / "signing-cert.pem"), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cms.returncode == 0, cms.stderr
    text = subprocess.run(
        ["pdftotext", str(files[".pdf"]), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "gw1" in text and "gw2" not in text and "Konum / Location: L1" in text
    with Session(api.engine) as s:
        actions = set(
            s.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("compliance.%")))
        )
    assert actions >= {
        "compliance.report.create",
        "compliance.reports",
        "compliance.report.download",
    }
