"""Monthly compliance report: figures, PDF text in Turkish, signature and stamp (openssl)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from compliance_support import Data, DownTsa, make_data, register
from sqlalchemy.orm import Session

from logmaster.archive.retention import set_retention
from logmaster.archive.stamps import pending_stamps, retry_stamps
from logmaster.compliance import reports
from logmaster.compliance.evaluator import Evaluator
from logmaster.compliance.reports import ReportError, build_report, list_reports, write_report
from logmaster.db import make_engine

UTC = dt.UTC
CREATED = dt.datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # 25.11 01:00 Istanbul
REPORT_TIME = dt.datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ORG = "Örnek Şirketi A.Ş."


def _day(d: int) -> dt.date:
    return dt.date(2026, 11, d)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """25..30.11: gw-ist sends every day; ank-fw stays silent on 27.11 (a declared silence)
    and its 30.11 is never sealed; 26.11 of gw-ist is sealed late (a resolved violation)."""
    data = make_data(
        tmp_path_factory.mktemp("report"),
        compliance={"organisation": ORG, "verify_budget_s": 0, "clock_skew_max_s": 10**6},
    )
    register(data, "gw-ist", location="İstanbul Merkez", created=CREATED, last_seen=REPORT_TIME)
    register(data, "ank-fw", location="Ankara Şube", n=2, created=CREATED, last_seen=REPORT_TIME)
    for d in range(25, 31):
        data.write("gw-ist", day=_day(d), n=24)
        if d != 27:
            data.write("ank-fw", day=_day(d), n=12)
    ev = Evaluator(data.settings)
    try:
        for d in (25, 27, 28, 29):
            data.seal(_day(d), now=dt.datetime(2026, 11, d, 22, 0, tzinfo=UTC))
        data.seal(_day(26), "ank-fw", now=dt.datetime(2026, 11, 26, 22, 0, tzinfo=UTC))
        # 26.11 of gw-ist is still open at 27.11 04:00 UTC: past the 6 h deadline.
        opened = ev.run_once(dt.datetime(2026, 11, 27, 4, 0, tzinfo=UTC)).opened
        assert [v["subject"] for v in opened] == ["gw-ist 2026-11-26"]
        data.seal(_day(26), "gw-ist", now=dt.datetime(2026, 11, 27, 5, 0, tzinfo=UTC))
        data.seal(_day(30), "gw-ist", now=REPORT_TIME)
        resolved = ev.run_once(dt.datetime(2026, 11, 27, 5, 0, tzinfo=UTC)).resolved
        assert [v["subject"] for v in resolved] == ["gw-ist 2026-11-26"]
        with Session(ev.engine) as s:
            set_retention(
                s,
                data.settings,
                "ank-fw",
                400,
                actor="admin",
                allow_short_retention=True,
                reason="sözleşme gereği",
            )
    finally:
        ev.close()
    return data


def test_figures(month: Data) -> None:
    """Coverage per device, silences count as sealed, stamps by TSA, violations, retention."""
    rep = build_report(month.settings, 2026, 11, now=REPORT_TIME)
    assert rep["format"] == "logmaster-compliance-report/1" and rep["organisation"] == ORG
    assert rep["period"] == {"from": "2026-11-01", "to": "2026-11-30"} and rep["complete"]
    devices = {d["device"]: d for d in rep["devices"]}
    gw, ank = devices["gw-ist"], devices["ank-fw"]
    assert (gw["expected_days"], gw["sealed_days"], gw["coverage"]) == (6, 6, 1.0)
    assert gw["lines"] == 6 * 24 and gw["location"] == "İstanbul Merkez"
    assert (ank["expected_days"], ank["sealed_days"], ank["unsealed_days"]) == (6, 5, 1)
    assert ank["silence_days"] == 1 and ank["coverage"] == round(5 / 6, 4)
    assert gw["stamps"] == [{"tsa": "builtin", "accredited": False, "days": 6}]
    assert rep["stamps_by_tsa"] == [{"tsa": "builtin", "accredited": False, "days": 11}]
    [v] = rep["violations"]
    assert v["kind"] == "seal_overdue" and v["resolved_at"] is not None
    assert rep["violation_summary"] == {
        "seal_overdue": {"opened": 1, "resolved": 1, "open_at_end": 0}
    }
    assert ank["retention"]["days"] == 400 and ank["retention"]["below_minimum"]
    assert ank["retention"]["reason"] == "sözleşme gereği"
    assert rep["retention"]["below_minimum"] == ["ank-fw"]
    assert rep["totals"]["expected_days"] == 12 and rep["totals"]["sealed_days"] == 11


def test_location_report(month: Data) -> None:
    """A location's report holds only its devices and not the global violations."""
    rep = build_report(month.settings, 2026, 11, "Ankara Şube", now=REPORT_TIME)
    assert [d["device"] for d in rep["devices"]] == ["ank-fw"] and rep["violations"] == []
    with pytest.raises(ReportError, match="no device has the location"):
        build_report(month.settings, 2026, 11, "Nowhere", now=REPORT_TIME)
    with pytest.raises(ReportError, match="not started"):
        build_report(month.settings, 2026, 12, now=REPORT_TIME)


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def test_pdf_json_signed_and_stamped(month: Data, tmp_path: Path) -> None:
    """PDF text in Turkish with the device names; .p7s and .tsr pass openssl's own checks."""
    written = write_report(month.settings, 2026, 11, signer=month.signer, now=REPORT_TIME)
    assert written.stamp_errors == []
    assert written.json.parent == month.settings.data_dir / "reports" / "2026-11"
    assert written.pdf.name == "compliance-2026-11.pdf"
    raw = subprocess.run(
        ["pdftotext", str(written.pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    text = " ".join(raw.split())  # table cells wrap: compare with single spaces
    for needle in (
        "Aylık 5651 Uyum Raporu",
        f"Kuruluş / Organisation: {ORG}",
        "gw-ist",
        "ank-fw",
        "İstanbul",
        "Ankara Şube",
        "Gün mühürlenmedi",
        "Day not sealed",
        "24 satır mühürlenmedi",
        "akredite DEĞİL",
        "alt sınırın altında",
        "sözleşme gereği",
        "01.11.2026 – 30.11.2026",
    ):
        assert needle in text, needle
    assert json.loads(written.json.read_bytes())["organisation"] == ORG
    cert = str(month.keys.cert_path)
    tsa_ca = str(month.settings.data_dir / "tsa" / "ca-cert.pem")
    for path in (written.json, written.pdf):
        p7s, tsr = f"{path}.p7s", f"{path}.tsr"
        cms = _openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", p7s,
                       "-content", str(path), "-CAfile", cert, "-purpose", "any",
                       "-out", os.devnull)  # fmt: skip
        assert cms.returncode == 0, cms.stderr
        ts = _openssl("ts", "-verify", "-data", str(path), "-in", tsr, "-CAfile", tsa_ca)
        assert ts.returncode == 0 and "Verification: OK" in ts.stdout, ts.stdout + ts.stderr
    # One byte changed in the PDF: the signature no longer verifies.
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(written.pdf.read_bytes().replace(b"/Producer", b"/Producex", 1))
    bad = _openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", f"{written.pdf}.p7s",
                   "-content", str(changed), "-CAfile", cert, "-purpose", "any",
                   "-out", os.devnull)  # fmt: skip
    assert bad.returncode != 0
    listed = [r for r in list_reports(month.settings) if r["location"] is None]
    assert listed and listed[0]["stamped"] and "compliance-2026-11.pdf.tsr" in listed[0]["files"]


def test_location_file_names(month: Data) -> None:
    """Turkish location names become plain file names."""
    written = write_report(
        month.settings, 2026, 11, "İstanbul Merkez", signer=month.signer, now=REPORT_TIME
    )
    assert written.pdf.name == "compliance-2026-11-istanbul-merkez.pdf"
    assert reports.report_file(month.settings, "2026-11", written.pdf.name) == written.pdf
    for bad in ("../keys/signing-key.pem", "compliance-2026-11.pdf/../x", "other.pdf"):
        with pytest.raises(ValueError):
            reports.report_file(month.settings, "2026-11", bad)


def test_stamp_failure_is_queued(month: Data, tmp_path: Path) -> None:
    """A TSA that does not answer: the report is written and signed, its stamps queued."""
    out = tmp_path / "out"
    written = write_report(
        month.settings, 2026, 11, out_dir=out, signer=month.signer, stamper=DownTsa(),
        now=REPORT_TIME,
    )  # fmt: skip
    assert len(written.stamp_errors) == 2 and "no answer" in written.stamp_errors[0]
    assert not Path(f"{written.pdf}.tsr").exists() and Path(f"{written.pdf}.p7s").exists()
    assert {p.target for p in pending_stamps(month.settings)} >= {written.json, written.pdf}
    retry_stamps(month.settings, force=True)
    assert Path(f"{written.pdf}.tsr").exists() and Path(f"{written.json}.tsr").exists()


def test_missing_font_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without DejaVu the error names the Debian package."""
    from logmaster.compliance import report_pdf

    monkeypatch.setattr(report_pdf, "FONT_DIRS", (tmp_path,))
    with pytest.raises(ReportError, match="fonts-dejavu-core"):
        report_pdf._font_file(report_pdf.FONT)


def test_report_with_the_callers_engine(month: Data) -> None:
    """build_report takes an engine of the caller (the API passes its own)."""
    engine = make_engine(month.settings.db_url)
    try:
        rep = build_report(month.settings, 2026, 11, engine=engine, now=REPORT_TIME)
    finally:
        engine.dispose()
    assert rep["totals"]["devices"] == 2


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logmaster", *args], capture_output=True, text=True, check=False
    )


def test_cli(month: Data, tmp_path: Path) -> None:
    """`logmaster report`, `compliance status` and `compliance violations` on the same data."""
    data_dir = str(month.settings.data_dir)
    r = _cli("report", "--month", "2026-11", "--location", "Ankara Şube", "--out",
             str(tmp_path), "--data-dir", data_dir)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "compliance-2026-11-ankara-sube.pdf.tsr").exists()
    assert "compliance-2026-11-ankara-sube.json.p7s" in r.stdout
    bad = _cli("report", "--month", "2026-13", "--data-dir", data_dir)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
    r = _cli("compliance", "status", "--device", "ank-fw", "--from", "2026-11-26", "--to",
             "2026-11-30", "--json", "--data-dir", data_dir)  # fmt: skip
    states = [json.loads(line)["state"] for line in r.stdout.splitlines()]
    assert states == ["sealed", "silence", "sealed", "sealed", "open"]
    # Exit 1 once 30.11 is over and still not sealed (the test may run on that very day).
    assert r.returncode == (1 if dt.date.today() > dt.date(2026, 11, 30) else 0)
    r = _cli("compliance", "violations", "--json", "--data-dir", data_dir)
    [v] = [json.loads(line) for line in r.stdout.splitlines()]
    assert v["kind"] == "seal_overdue" and r.returncode == 0  # resolved: nothing open
    r = _cli("compliance", "violations", "--kind", "nonsense", "--data-dir", data_dir)
    assert r.returncode == 2 and "unknown kind" in r.stderr
