"""Verification after a retention purge: a receipt-covered gap verifies, any other gap fails."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_helpers import DAY
from seal_support import Data, make_data
from sqlalchemy.engine import Engine

from logmaster.archive import retention as rt
from logmaster.archive.keys import KeyStore
from logmaster.archive.verdict import DayVerdict, verify_days
from logmaster.db import make_engine, migrate

# Days before DAY (28.11.2026), whose lines are older than the real stamps of the seals.
DAYS = [DAY - dt.timedelta(days=4 - i) for i in range(4)]
# 25.11.2028 (Istanbul): DAYS[0] and DAYS[1] are past a 730-day retention, the others are not.
NOW = dt.datetime(2028, 11, 25, 12, tzinfo=dt.UTC)
KEPT, NEXT = DAYS[2], DAYS[3]


@pytest.fixture
def data(tmp_path: Path) -> Data:
    d = make_data(tmp_path)
    migrate(d.settings.db_url)
    for day in DAYS:
        d.write("gw1", day, n=12)
        d.write("fw2", day, n=4)
        d.seal(day)
    return d


@pytest.fixture
def engine(data: Data) -> Iterator[Engine]:
    eng = make_engine(data.settings.db_url)
    yield eng
    eng.dispose()


def purge(data: Data, engine: Engine, now: dt.datetime = NOW) -> Path:
    result = rt.purge(data.settings, engine, actor="tester", signer=data.signer, now=now)
    assert result.receipt is not None and not result.stamp_error
    return result.receipt


def verdicts(data: Data, device: str | None = None) -> dict[tuple[str, dt.date], DayVerdict]:
    return {(v.device, v.day): v for v in verify_days(data.settings, device, workers=1)}


def codes(v: DayVerdict) -> set[str]:
    return {r.code for r in v.reasons}


def cli_verify(data: Data) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logmaster", "verify", "--data-dir", str(data.settings.data_dir)],
        check=False,
        capture_output=True,
        text=True,
    )


def test_purge_past_retention_then_verify_exits_0(data: Data, engine: Engine) -> None:
    """The first remaining day links to a purged manifest listed in a valid receipt: OK."""
    receipt = purge(data, engine)
    found = verdicts(data)
    assert set(found) == {(dev, d) for dev in ("gw1", "fw2") for d in (KEPT, NEXT)}
    for dev in ("gw1", "fw2"):
        v = found[(dev, KEPT)]
        assert v.verdict == "OK", v.reasons
        assert f"previous day purged under receipt {receipt.name}" in " ".join(v.notes)
    done = cli_verify(data)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"previous day purged under receipt {receipt.name}" in done.stdout
    # Devices verified in parallel processes come to the same verdicts.
    parallel = {(v.device, v.day): v.verdict for v in verify_days(data.settings, workers=2)}
    assert set(parallel.values()) == {"OK"}


def test_day_removed_by_hand_still_fails(data: Data, engine: Engine) -> None:
    """A day removed without a receipt, next to purged ones, is day_removed; verify exits 1."""
    purge(data, engine)
    for p in data.part("gw1", KEPT).folder.glob(f"{KEPT:%d}.*"):
        p.unlink()
    found = verdicts(data)
    assert codes(found[("gw1", NEXT)]) == {"day_removed"}
    assert found[("fw2", KEPT)].verdict == "OK"
    done = cli_verify(data)
    assert done.returncode == 1 and "day_removed" in done.stdout


def test_day_removed_by_hand_without_any_purge_fails(data: Data) -> None:
    """Without a receipt at all the first remaining day is day_removed, as before."""
    for day in DAYS[:2]:
        for p in data.part("gw1", day).folder.glob(f"{day:%d}.*"):
            p.unlink()
    assert codes(verdicts(data, "gw1")[("gw1", KEPT)]) == {"day_removed"}


def test_edited_receipt_fails(data: Data, engine: Engine) -> None:
    """A receipt changed after signing no longer covers the gap: receipt_invalid, exit 1."""
    receipt = purge(data, engine)
    receipt.write_bytes(receipt.read_bytes().replace(b'"tester"', b'"someone"'))
    found = verdicts(data)
    for dev in ("gw1", "fw2"):
        v = found[(dev, KEPT)]
        assert codes(v) == {"receipt_invalid"}, v.reasons
        assert receipt.name in v.reasons[0].message
    done = cli_verify(data)
    assert done.returncode == 1 and "receipt_invalid" in done.stdout


def test_day_removed_by_hand_and_added_to_a_receipt_fails(data: Data, engine: Engine) -> None:
    """Listing a hand-removed day in an existing receipt breaks the receipt's signature."""
    receipt = purge(data, engine)
    part = data.part("gw1", KEPT)
    described = rt._describe_day(data.root, "gw1", KEPT)
    for p in part.folder.glob(f"{KEPT:%d}.*"):
        p.unlink()
    body = json.loads(receipt.read_bytes())
    body["days"].append(described)
    receipt.write_bytes(json.dumps(body, indent=2, sort_keys=True).encode() + b"\n")
    assert "receipt_invalid" in codes(verdicts(data, "gw1")[("gw1", NEXT)])


def test_receipt_signed_by_a_foreign_key_fails(data: Data, engine: Engine, tmp_path: Path) -> None:
    """A receipt re-signed by a key that is not in the key store: receipt_invalid."""
    receipt = purge(data, engine)
    foreign = KeyStore(tmp_path / "foreign").init("ecdsa-p256")
    receipt.with_name(receipt.name + ".p7s").write_bytes(
        foreign.sign_detached(receipt.read_bytes())
    )
    [reason] = verdicts(data, "gw1")[("gw1", KEPT)].reasons
    assert reason.code == "receipt_invalid" and "not in the key store" in reason.message


def test_receipt_with_a_foreign_stamp_fails(data: Data, engine: Engine) -> None:
    """The stamp of another file under the receipt: receipt_invalid naming the imprint."""
    receipt = purge(data, engine)
    other = data.part("gw1", KEPT).tsr.read_bytes()
    receipt.with_name(receipt.name + ".tsr").write_bytes(other)
    [reason] = verdicts(data, "gw1")[("gw1", KEPT)].reasons
    assert reason.code == "receipt_invalid" and "imprint" in reason.message


def test_receipt_stamp_pending_makes_the_day_pending(data: Data, engine: Engine) -> None:
    """A receipt whose stamp is still queued leaves the linking day PENDING, not OK."""
    receipt = purge(data, engine)
    receipt.with_name(receipt.name + ".tsr").unlink()
    v = verdicts(data, "gw1")[("gw1", KEPT)]
    assert v.verdict == "PENDING" and "stamp pending" in " ".join(v.notes)


def test_every_day_purged_leaves_no_day_removed(data: Data, engine: Engine) -> None:
    """The device's newest sealed day purged under a receipt is not reported as removed."""
    later = NOW + dt.timedelta(days=5)
    purge(data, engine, now=later)
    assert verdicts(data, "gw1") == {}
    for path in (data.settings.data_dir / "archive" / "_receipts").glob("*.receipt.json"):
        path.write_bytes(path.read_bytes().replace(b'"tester"', b'"someone"'))
    [v] = verdicts(data, "gw1").values()
    assert codes(v) == {"receipt_invalid"} and v.day == NEXT
