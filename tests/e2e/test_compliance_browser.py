"""The compliance screen in a real browser (shared server of conftest.py): the calendar heatmap
across devices, the violations list, monthly report downloads (a real PDF, valid JSON, both
signed), and an evidence bundle export with progress, checked with verify.sh and openssl.

Two devices of their own: ``ip-127.0.1.11`` (today's file sealed by the test, its lines three
hours behind the receive time: a clock_skew violation) and ``ip-127.0.1.12`` (today open, a
retention below 730 days set with a reason: a retention_at_risk violation).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from console_support import ZONE, check_bundle, open_page, seal_today, settle, shot, sign_in
from e2e_support import ADMIN_PASSWORD, Server

pytestmark = pytest.mark.slow

SEALED = "ip-127.0.1.11"  # --first-sender 11
OPEN = "ip-127.0.1.12"  # --first-sender 12


def _bsd(t: dt.datetime) -> str:
    return f"{t.strftime('%b')} {t.day:2d} {t.strftime('%H:%M:%S')}"


def _send(server: Server, tmp_path: Path, lines: list[str], sender: int) -> None:
    f = tmp_path / f"lines-{uuid.uuid4().hex[:6]}.log"
    f.write_text("\n".join(lines) + "\n")
    server.loadgen(
        "--from-file", str(f), "--rate", str(len(lines) * 10), "--seconds", "0.1",
        "--first-sender", str(sender),
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Lines of both devices indexed, SEALED's day sealed, the violations evaluated."""
    tmp = tmp_path_factory.mktemp("compliance")
    marker = f"cmark{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(ZONE)
    skewed = now - dt.timedelta(hours=3)
    _send(server, tmp, [f"<134>{_bsd(skewed)} fw11 app: {marker} a{i}" for i in range(40)], 11)
    _send(server, tmp, [f"<134>{_bsd(now)} fw12 app: {marker} b{i}" for i in range(25)], 12)
    with server.api() as api:
        deadline = time.monotonic() + 30
        while True:
            found = api.get(
                "/api/v1/search/events", params={"q": marker, "from": "-1d", "limit": 200}
            ).json()["events"]
            if len(found) >= 65:
                break
            assert time.monotonic() < deadline, f"only {len(found)} lines indexed"
            time.sleep(0.3)
        for slug in (SEALED, OPEN):
            r = api.post(f"/api/v1/devices/{slug}/approve")
            assert r.status_code == 200, r.text
        r = api.put(
            f"/api/v1/retention/devices/{OPEN}",
            json={"days": 365, "allow_short_retention": True, "reason": "e2e: test site"},
        )
        assert r.status_code == 200, r.text
    today = seal_today(server.data_dir, SEALED)
    evaluate = subprocess.run(
        [sys.executable, "-m", "logmaster", "compliance", "evaluate",
         "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert evaluate.returncode in (0, 1), evaluate.stdout + evaluate.stderr
    return {"today": today, "marker": marker}


def test_calendar_heatmap_across_devices(
    browser: Any, server: Server, world: dict[str, Any]
) -> None:
    """One row per device, one cell per day; today is sealed for one device and open for the
    other, as the API says; the tooltip names the TSA."""
    today = world["today"].isoformat()
    with server.api() as api:
        status = api.get("/api/v1/compliance/status", params={"from": today, "to": today}).json()
    expected = {d["device"]: d["days"][0]["state"] for d in status["devices"]}
    assert expected[SEALED] == "sealed" and expected[OPEN] == "open", expected
    with open_page(browser, server.url) as page:
        sign_in(page, "admin", ADMIN_PASSWORD)
        page.get_by_test_id("nav-compliance").click()
        heat = page.get_by_test_id("compliance-heatmap")
        heat.wait_for()
        cell = heat.locator(f"[data-device='{SEALED}'][data-day='{today}']")
        assert cell.get_attribute("data-state") == "sealed"
        assert (
            heat.locator(f"[data-device='{OPEN}'][data-day='{today}']").get_attribute("data-state")
            == "open"
        )
        devices = set(heat.locator("[data-testid=heat-cell]").evaluate_all(
            "cells => cells.map(c => c.dataset.device)"
        ))  # fmt: skip
        assert devices == set(expected), (devices, expected)
        days = heat.locator(f"[data-device='{SEALED}']").count()
        assert days == 30, days  # the screen's 30 days, every device the same columns
        cell.hover()
        tip = page.get_by_role("tooltip")
        tip.wait_for()
        assert SEALED in tip.inner_text() and "TSA builtin" in tip.inner_text()
        assert "mühürlü" in tip.inner_text().lower(), tip.inner_text()
        settle(page)
        shot(page, "50-compliance-calendar")


def test_violations_list(browser: Any, server: Server, world: dict[str, Any]) -> None:
    """The clock skew of the sealed device and the short retention are listed, in Turkish, with
    the device; a violation that is not open is not listed while 'open only' is on."""
    with server.api() as api:
        open_rows = api.get("/api/v1/compliance/violations", params={"open": True}).json()
    kinds = {(v["kind"], v["device"]) for v in open_rows}
    assert ("clock_skew", SEALED) in kinds and ("retention_at_risk", OPEN) in kinds, kinds
    with open_page(browser, server.url) as page:
        sign_in(page, "admin", ADMIN_PASSWORD)
        page.goto("/compliance")
        page.get_by_test_id("tab-violations").click()
        rows = page.get_by_test_id("violation-row")
        rows.first.wait_for()
        assert rows.count() == len(open_rows)
        skew = page.locator(
            f"[data-testid=violation-row][data-kind=clock_skew]:has-text('{SEALED}')"
        )
        assert skew.count() == 1
        assert "saat" in skew.inner_text().lower(), skew.inner_text()  # Turkish message
        short = page.locator(
            f"[data-testid=violation-row][data-kind=retention_at_risk]:has-text('{OPEN}')"
        )
        assert short.count() == 1
        settle(page)
        shot(page, "51-compliance-violations")


def test_monthly_report_downloads(
    browser: Any, server: Server, world: dict[str, Any], tmp_path: Path
) -> None:
    """An admin makes this month's report; the PDF download is a PDF, the JSON download is valid
    JSON naming the devices, and its .p7s signature verifies with openssl."""
    month = world["today"].strftime("%Y-%m")
    with open_page(browser, server.url) as page:
        sign_in(page, "admin", ADMIN_PASSWORD)
        page.goto("/compliance")
        page.get_by_test_id("tab-reports").click()
        page.get_by_role("textbox", name="Ay", exact=True).fill(month)
        page.get_by_test_id("report-create").click()
        row = page.locator(f"[data-testid=report-row][data-month='{month}']").first
        row.wait_for(timeout=60_000)
        row.get_by_test_id("report-file-pdf").wait_for()
        settle(page)
        shot(page, "52-compliance-reports")
        files = {}
        for ext in ("pdf", "json", "json.p7s"):
            with page.expect_download() as download:
                row.get_by_test_id(f"report-file-{ext}").click()
            path = tmp_path / download.value.suggested_filename
            download.value.save_as(path)
            files[ext] = path
    pdf = files["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:], pdf[:16]
    assert files["pdf"].name == f"compliance-{month}.pdf"
    report = json.loads(files["json"].read_text(encoding="utf-8"))
    text = json.dumps(report)
    assert month in text and SEALED in text and OPEN in text
    signer = server.data_dir / "keys" / "signing-cert.pem"
    check = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(files["json.p7s"]),
         "-content", str(files["json"]), "-CAfile", str(signer), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


PROGRESS_PROBE = """
() => {
  window.__progress = [];
  const seen = () => {
    const el = document.querySelector('[data-testid=bundle-progress]');
    if (!el) return;
    const step = el.dataset.state + ':' + el.dataset.pct;
    if (window.__progress[window.__progress.length - 1] !== step) window.__progress.push(step);
  };
  new MutationObserver(seen).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-pct'],
  });
}
"""


def test_evidence_bundle_export_with_progress(
    browser: Any, server: Server, world: dict[str, Any], tmp_path: Path
) -> None:
    """Export today's bundle of the sealed device: the progress box follows the job to 100 %;
    the download passes its own verify.sh and openssl's signature and timestamp checks."""
    today = world["today"].isoformat()
    with open_page(browser, server.url) as page:
        sign_in(page, "admin", ADMIN_PASSWORD)
        page.goto("/compliance")
        page.get_by_test_id("tab-bundles").click()
        page.get_by_test_id("bundle-device").click()
        page.get_by_role("option", name=SEALED, exact=True).click()
        page.evaluate(PROGRESS_PROBE)
        page.get_by_test_id("bundle-start").click()
        box = page.get_by_test_id("bundle-progress")
        box.wait_for()
        page.get_by_test_id("bundle-download").wait_for(timeout=60_000)
        assert box.get_attribute("data-state") == "done"
        assert box.get_attribute("data-pct") == "100"
        assert SEALED in box.inner_text()
        steps = page.evaluate("window.__progress")
        pcts = [int(s.split(":")[1]) for s in steps]
        assert steps and steps[-1] == "done:100" and pcts == sorted(pcts), steps
        settle(page)
        shot(page, "53-compliance-bundle")
        with page.expect_download() as download:
            page.get_by_test_id("bundle-download").click()
        path = tmp_path / "bundle.zip"
        download.value.save_as(path)
    manifests = check_bundle(path, tmp_path / "bundle")
    assert any(SEALED in m and today.replace("-", "/")[:7] in m for m in manifests), manifests
