"""Sealing: manifest bytes and fields, OpenSSL interop, silences, pending stamps, daily lists."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from archive_helpers import DAY, ZONE, write_batches
from seal_support import LATER, Data, DownTsa, make_data

from logmaster.archive import chain, merkle
from logmaster.archive.line import INCOMPLETE, Clock, format_line, truncated_marker
from logmaster.archive.manifest import load
from logmaster.archive.seal import SealRun, daily_lists
from logmaster.archive.seal_status import seal_status
from logmaster.archive.stamps import pending_stamps, retry_stamps
from logmaster.archive.verdict import verify_days

NEXT = DAY + dt.timedelta(days=1)


@pytest.fixture
def data(tmp_path: Path) -> Data:
    return make_data(tmp_path)


def test_manifest_bytes_and_fields(data: Data) -> None:
    """Sorted keys, 2-space indent, trailing LF; hash, root, chain head, counts as the file."""
    path = data.write("gw1", n=40)
    [result] = data.seal()
    assert result.state == "sealed"
    part = data.part("gw1")
    raw, man = load(part.manifest)
    assert raw == (json.dumps(man, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    content = path.read_bytes()
    assert man["format"] == "logmaster-manifest/1"
    assert (man["device"], man["date"], man["timezone"], man["part"]) == (
        "gw1",
        DAY.isoformat(),
        "Europe/Istanbul",
        0,
    )
    assert man["file"] == {"name": "28.log", "path": "gw1/2026/11/28.log"}
    assert man["sha256"] == hashlib.sha256(content).hexdigest()
    assert man["size"] == len(content) and man["lines"] == 40
    assert man["merkle_root"] == merkle.root_of(content.split(b"\n")[:-1]).hex()
    sidecar = chain.read_sidecar(part.chain)
    assert man["chain_head"] == sidecar.records[-1].sha256.hex()
    assert man["genesis"] is True and man["previous_manifest_sha256"] is None
    assert man["sequence"] == 1 and man["chain_problems"] == []
    assert man["first_received"] == "2026-11-28T00:00:00+03:00"
    assert man["stamp"] == {"mode": "manifest", "tsa": "builtin", "accredited": False}
    assert (
        man["signing_key"]["certificate_sha256"]
        == data.signer.certificate.fingerprint(
            __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()
        ).hex()
    )
    assert man["index"]["state"] == "index_incomplete"  # nothing indexed in this test
    assert part.p7s.exists() and part.tsr.exists()
    assert seal_status(data.root, "gw1", DAY).state == "sealed"


def test_days_chain_through_previous_manifest(data: Data) -> None:
    """The next day's manifest names the SHA-256 of the previous day's manifest file."""
    data.write("gw1", DAY)
    data.write("gw1", NEXT)
    data.seal(DAY)
    data.seal(NEXT)
    first = data.part("gw1", DAY).manifest.read_bytes()
    _raw, second = load(data.part("gw1", NEXT).manifest)
    assert second["previous_manifest_sha256"] == hashlib.sha256(first).hexdigest()
    assert second["genesis"] is False and second["sequence"] == 2


def test_openssl_accepts_signature_and_stamp(data: Data) -> None:
    """`openssl cms -verify` takes the .p7s and `openssl ts -verify` the .tsr."""
    data.write("gw1")
    data.seal()
    part = data.part("gw1")
    cms = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(part.p7s),
         "-content", str(part.manifest), "-CAfile", str(data.keys.cert_path),
         "-purpose", "any", "-out", os.devnull],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert cms.returncode == 0, cms.stderr
    ts = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(part.manifest), "-in", str(part.tsr),
         "-CAfile", str(data.settings.data_dir / "tsa" / "ca-cert.pem")],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert ts.returncode == 0 and "Verification: OK" in ts.stdout, ts.stdout + ts.stderr
    # And openssl refuses a manifest changed by one byte.
    changed = part.folder / "changed.json"
    changed.write_bytes(part.manifest.read_bytes().replace(b'"lines": 30', b'"lines": 31'))
    bad = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(part.p7s),
         "-content", str(changed), "-CAfile", str(data.keys.cert_path), "-purpose", "any",
         "-out", os.devnull],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0


def test_counters_gaps_and_clock_offset(data: Data) -> None:
    """Truncated/incomplete markers, escaped bytes, silence gaps and clock offset are stated."""
    clock = Clock(ZONE)
    midnight = int(dt.datetime.combine(DAY, dt.time(), ZONE).timestamp())
    lines = [
        format_line(clock.stamp(midnight + 600), 0, b"10.0.0.1", b"<13>Nov 28 00:10:05 h a: x"),
        format_line(clock.stamp(midnight + 660), 0, b"10.0.0.1", b"a\xffb\xfe", INCOMPLETE),
        format_line(
            clock.stamp(midnight + 8 * 3600), 0, b"10.0.0.1", b"y" * 10, truncated_marker(99)
        ),
        format_line(clock.stamp(midnight + 8 * 3600 + 1), 0, b"10.0.0.1", b"a \\[truncated 5]"),
    ]
    write_batches(data.root, "gw1", [lines])
    data.seal()
    _raw, man = load(data.part("gw1").manifest)
    assert man["counters"]["truncated"] == 1
    assert man["counters"]["incomplete"] == 1
    assert man["counters"]["invalid_utf8_bytes"] == 2
    gaps = man["silence_gaps"]["gaps"]
    assert [g["seconds"] for g in gaps] == [8 * 3600 - 660, 16 * 3600 - 1]
    assert gaps[0]["from"] == "2026-11-28T00:11:00+03:00"
    assert man["clock_offset"]["sampled_lines"] == 1
    assert man["clock_offset"]["median_s"] == 5.0


def test_declared_silence_for_an_approved_device(data: Data) -> None:
    """An approved device that sent nothing gets a manifest with no file; it verifies."""
    import sqlalchemy as sa

    from logmaster.collector.devices import add_device
    from logmaster.db import Device, make_engine, migrate

    migrate(data.settings.db_url)
    engine = make_engine(data.settings.db_url)
    add_device(engine, "quiet", ["10.9.9.9"], timezone="Europe/Istanbul")
    add_device(engine, "pend", ["10.9.9.8"], timezone="Europe/Istanbul", status="pending")
    # Registered the day before DAY whatever today is: silence is declared only for days the
    # device existed.
    with engine.begin() as conn:
        conn.execute(
            sa.update(Device).values(
                created_at=dt.datetime.combine(DAY, dt.time(), dt.UTC) - dt.timedelta(days=1)
            )
        )
    engine.dispose()
    results = data.seal()
    assert [(r.device, r.state) for r in results] == [("quiet", "silence")]
    _raw, man = load(data.part("quiet").manifest)
    assert man["declared_silence"] is True and man["lines"] == 0 and man["file"] is None
    assert man["silence_gaps"]["gaps"][0]["seconds"] == 86400
    [verdict] = verify_days(data.settings, workers=1)
    assert verdict.verdict == "OK" and verdict.declared_silence
    # Nothing is declared before the device existed.
    assert data.seal(DAY - dt.timedelta(days=3)) == []


def test_a_day_not_over_is_not_sealed(data: Data) -> None:
    """Before the device's local midnight the day stays open."""
    data.write("gw1")
    before = dt.datetime(2026, 11, 28, 20, 59, tzinfo=dt.UTC)  # 23:59 in Istanbul
    [result] = data.seal(now=before)
    assert result.state == "not_over"
    assert not data.part("gw1").manifest.exists()
    [result] = data.seal(now=dt.datetime(2026, 11, 28, 21, 0, 1, tzinfo=dt.UTC))
    assert result.state == "sealed"


def test_failed_stamp_is_queued_and_retried_with_back_off(data: Data) -> None:
    """A TSA that does not answer leaves the day PENDING; retries double their wait."""
    data.write("gw1")
    down = DownTsa()
    [result] = data.seal(stamper=down)
    assert result.state == "stamp_pending" and "no answer" in result.message
    part = data.part("gw1")
    assert part.manifest.exists() and part.p7s.exists() and not part.tsr.exists()
    assert seal_status(data.root, "gw1", DAY).state == "stamp_pending"
    [v] = verify_days(data.settings, workers=1)
    assert v.verdict == "PENDING"
    [item] = pending_stamps(data.settings)
    first_wait = item.next_attempt
    assert retry_stamps(data.settings, down) == (0, 1)  # not due yet: not tried
    assert down.calls == 1
    assert retry_stamps(data.settings, down, force=True) == (0, 1)
    [item] = pending_stamps(data.settings)
    assert item.attempts == 2 and item.next_attempt - first_wait >= 59
    # The TSA is back: the stamp lands, the day verifies.
    assert retry_stamps(data.settings, force=True) == (1, 0)
    assert part.tsr.exists() and pending_stamps(data.settings) == []
    [v] = verify_days(data.settings, workers=1)
    assert v.verdict == "OK", v.reasons


def test_daily_mode_stamps_one_list(tmp_path: Path) -> None:
    """Stamp mode daily: one signed, stamped list of every manifest's SHA-256 per run."""
    data = make_data(tmp_path, seal={"stamp_mode": "daily"})
    for dev in ("gw1", "gw2", "gw3"):
        data.write(dev)
    data.seal()
    [lst] = daily_lists(data.root, DAY)
    assert lst == data.root / "_daily/2026/11/28.list.json"
    body = json.loads(lst.read_bytes())
    assert [m["path"] for m in body["manifests"]] == [
        f"{d}/2026/11/28.manifest.json" for d in ("gw1", "gw2", "gw3")
    ]
    for m in body["manifests"]:
        assert m["sha256"] == hashlib.sha256((data.root / m["path"]).read_bytes()).hexdigest()
    assert Path(str(lst) + ".tsr").exists() and Path(str(lst) + ".p7s").exists()
    ts = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(lst), "-in", f"{lst}.tsr",
         "-CAfile", str(data.settings.data_dir / "tsa" / "ca-cert.pem")],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert ts.returncode == 0 and "Verification: OK" in ts.stdout, ts.stderr
    assert not data.part("gw1").tsr.exists()
    assert {v.verdict for v in verify_days(data.settings, workers=1)} == {"OK"}
    assert seal_status(data.root, "gw2", DAY).state == "sealed"
    # A later run for the same date gets its own list.
    data.write("gw4")
    data.seal()
    assert [p.name for p in daily_lists(data.root, DAY)] == ["28.list.json", "28.2.list.json"]
    # A list whose stamp is missing leaves its days pending.
    Path(str(lst) + ".tsr").unlink()
    verdicts = {v.device: v.verdict for v in verify_days(data.settings, workers=1)}
    assert verdicts == {"gw1": "PENDING", "gw2": "PENDING", "gw3": "PENDING", "gw4": "OK"}


def test_cli_seal_and_verify(data: Data) -> None:
    """`logmaster seal` then `logmaster verify --json`: exit 0 and one object per day."""
    day = dt.date(2026, 11, 20)  # over in the real clock too
    data.write("gw1", day)
    env = {**os.environ, "LOGMASTER_SEAL__COMPRESSION": "none"}
    base = [sys.executable, "-m", "logmaster"]
    d = str(data.settings.data_dir)
    sealed = subprocess.run(
        [*base, "seal", "--data-dir", d, "--date", "2026-11-20"],
        check=False, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert sealed.returncode == 0, sealed.stdout + sealed.stderr
    assert "SEALED/MÜHÜRLENDİ" in sealed.stdout and "20.11.2026" in sealed.stdout
    verified = subprocess.run(
        [*base, "verify", "--data-dir", d, "--json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    [obj] = [json.loads(x) for x in verified.stdout.splitlines()]
    assert obj["verdict"] == "OK" and obj["day"] == "2026-11-20" and obj["lines"] == 30
    future = subprocess.run(
        [*base, "seal", "--data-dir", d, "--date", "2026-11-20"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert future.returncode == 0 and "nothing to seal" in future.stdout
    data.write("gw2", dt.date(2099, 1, 1))
    future = subprocess.run(
        [*base, "seal", "--data-dir", d, "--date", "2099-01-01"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert future.returncode == 2 and "not over" in future.stderr
    assert LATER.year == 2026


def test_node_kernel_drops_of_the_day_reach_the_manifest(data: Data) -> None:
    """The collector's per-day counter file gives the day's kernel drops, across a restart."""
    from logmaster.collector.daycounters import DayCounters, read_day
    from logmaster.collector.stats import ListenerStats

    udp = ListenerStats("udp://127.0.0.1:514", kernel_drops=40)  # before this collector
    counters = DayCounters(data.root, "Europe/Istanbul", lambda: [udp])
    counters()
    udp.kernel_drops = 47
    counters.written_at = 0.0
    counters()
    today = dt.datetime.now(ZONE).date()
    assert read_day(data.root, today) == {"kernel_drops": 7}
    restarted = DayCounters(
        data.root, "Europe/Istanbul", lambda: [ListenerStats("u", kernel_drops=3)]
    )
    restarted()
    restarted.written_at = 0.0
    restarted.listeners = lambda: [ListenerStats("u", kernel_drops=5)]
    restarted()
    assert read_day(data.root, today) == {"kernel_drops": 9}
    data.write("gw1", today, n=5)
    data.seal(today)
    _raw, man = load(data.part("gw1", today).manifest)
    assert man["counters"]["node_kernel_drops"] == 9
    data.write("gw2", DAY - dt.timedelta(days=5))
    data.seal(DAY - dt.timedelta(days=5))
    _raw, man = load(data.part("gw2", DAY - dt.timedelta(days=5)).manifest)
    assert man["counters"]["node_kernel_drops"] is None


def test_index_figures_and_compression_after_indexing(data: Data) -> None:
    """With the day indexed, the manifest states its parse figures and the CLI compresses it."""
    from logmaster.index.indexer import Indexer

    day = dt.date(2026, 11, 20)
    data.write("gw1", day)
    indexer = Indexer.from_settings(data.settings)
    try:
        assert indexer.catch_up() == 30
    finally:
        indexer.close()
    d = str(data.settings.data_dir)
    sealed = subprocess.run(
        [sys.executable, "-m", "logmaster", "seal", "--data-dir", d, "--date", "2026-11-20"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert sealed.returncode == 0, sealed.stdout + sealed.stderr
    assert "compression: 1 compressed" in sealed.stdout
    _raw, man = load(data.part("gw1", day).manifest)
    assert man["index"]["state"] == "complete"
    assert man["index"]["lines_indexed"] == 30
    assert man["index"]["parse_failures"] + man["index"]["parsed_lines"] == 30
    assert not data.part("gw1", day).log.exists()
    assert {v.verdict for v in verify_days(data.settings, workers=1)} == {"OK"}


def test_encrypted_key_with_a_passphrase_file(tmp_path: Path) -> None:
    """seal.key_passphrase_file opens an encrypted key; a file others can read is refused."""
    from logmaster.archive.keys import KeyStore
    from logmaster.archive.seal import SealError
    from logmaster.config import load_settings

    secret = tmp_path / "passphrase"
    secret.write_text("correct horse\n")
    os.chmod(secret, 0o600)
    settings = load_settings(
        None, data_dir=tmp_path / "data", seal={"key_passphrase_file": str(secret)}
    )
    KeyStore(settings.data_dir / "keys").init("ecdsa-p256", passphrase=b"correct horse")
    data = Data(settings, KeyStore(settings.data_dir / "keys").signer(b"correct horse"))
    data.write("gw1", dt.date(2026, 11, 20))
    run = SealRun(settings, now=LATER)  # the signer comes from the key store and the file
    assert [r.state for r in run.seal_day(dt.date(2026, 11, 20))] == ["sealed"]
    os.chmod(secret, 0o644)
    data.write("gw2", dt.date(2026, 11, 20))
    with pytest.raises(SealError, match="readable by others"):
        SealRun(settings, now=LATER).seal_day(dt.date(2026, 11, 20))
