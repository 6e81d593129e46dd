"""Retention and legal hold: no deletion inside retention, receipts openssl accepts, holds."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from archive_helpers import DAY
from seal_support import Data, make_data
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from logmaster.api.models import AuditEntry
from logmaster.archive import retention as rt
from logmaster.db import make_engine, migrate

DAYS = [DAY + dt.timedelta(days=i) for i in range(3)]
# 29.11.2028 (Istanbul) is 732, 731 and 730 days after the three days: the first two are past
# a 730-day retention, the third is not.
NOW = dt.datetime(2028, 11, 29, 12, tzinfo=dt.UTC)


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


def purge(data: Data, engine: Engine, **kw: object) -> rt.PurgeResult:
    return rt.purge(data.settings, engine, actor="tester", signer=data.signer, now=NOW, **kw)  # type: ignore[arg-type]


def audit_actions(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    with Session(engine) as s:
        rows = s.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
        return [(r.action, r.target, json.loads(r.details)) for r in rows]


def test_past_retention_rule() -> None:
    """A day is kept for ``days`` full days after it ended."""
    assert not rt.past_retention(DAY, 730, DAY + dt.timedelta(days=730))
    assert rt.past_retention(DAY, 730, DAY + dt.timedelta(days=731))


def test_purge_refuses_inside_retention(data: Data, engine: Engine) -> None:
    """Nothing inside retention is deleted: the plan is empty and purge_day refuses."""
    inside = dt.datetime(2028, 11, 27, 12, tzinfo=dt.UTC)  # 730 days after 28.11.2026
    result = rt.purge(data.settings, engine, actor="t", signer=data.signer, now=inside)
    assert result.purged == [] and result.receipt is None
    with Session(engine) as s, pytest.raises(rt.RetentionError, match="inside its retention"):
        rt.purge_day(data.settings, s, "gw1", DAYS[0], inside.date())
    assert data.part("gw1", DAYS[0]).log.exists()


def test_purge_past_retention_writes_a_verifiable_receipt(data: Data, engine: Engine) -> None:
    """Days past retention go, with a receipt that openssl cms and openssl ts accept."""
    manifest = data.part("gw1", DAYS[0]).manifest.read_bytes()
    result = purge(data, engine)
    gone = sorted((d.device, d.day) for d in result.purged)
    assert gone == sorted((dev, day) for dev in ("fw2", "gw1") for day in DAYS[:2])
    for dev in ("gw1", "fw2"):
        assert not list(data.part(dev, DAYS[0]).folder.glob("28.*"))
        assert not list(data.part(dev, DAYS[1]).folder.glob("29.*"))
        assert data.part(dev, DAYS[2]).manifest.exists()
    receipt = result.receipt
    assert receipt is not None and receipt.parent.name == "_receipts"
    body = json.loads(receipt.read_bytes())
    day0 = next(d for d in body["days"] if d["device"] == "gw1" and d["date"] == "2026-11-28")
    import hashlib

    assert day0["parts"][0]["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert {f["path"] for f in day0["files"]} >= {
        "gw1/2026/11/28.log",
        "gw1/2026/11/28.log.chain",
        "gw1/2026/11/28.manifest.json",
        "gw1/2026/11/28.manifest.json.p7s",
        "gw1/2026/11/28.manifest.json.tsr",
    }
    assert body["purged_by"] == "tester" and body["retention"]["gw1"]["days"] == 730
    keys = data.settings.data_dir / "keys" / "signing-cert.pem"
    cms = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", f"{receipt}.p7s",
         "-content", str(receipt), "-CAfile", str(keys), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cms.returncode == 0, cms.stderr
    ts = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(receipt), "-in", f"{receipt}.tsr",
         "-CAfile", str(data.settings.data_dir / "tsa" / "ca-cert.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ts.returncode == 0, ts.stderr
    # A changed receipt no longer verifies.
    receipt.write_bytes(receipt.read_bytes().replace(b'"tester"', b'"someone"'))
    cms = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", f"{receipt}.p7s",
         "-content", str(receipt), "-CAfile", str(keys), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cms.returncode != 0
    assert rt.purged_manifests(data.settings)[hashlib.sha256(manifest).hexdigest()] == receipt
    [(_action, target, details)] = [a for a in audit_actions(engine) if a[0] == "retention.purge"]
    assert target.startswith("_receipts/") and details["count"] == 4
    # Nothing left to do: a second run removes nothing and writes no receipt.
    again = purge(data, engine)
    assert again.purged == [] and again.receipt is None


def test_legal_hold_blocks_purge_until_released(data: Data, engine: Engine) -> None:
    """A held day survives purges; released, it goes with the next purge."""
    with Session(engine) as s:
        hold = rt.add_hold(s, "gw1", DAYS[0], DAYS[0], reason="savcılık talebi", actor="admin")
        everyone = rt.add_hold(s, None, DAYS[1], DAYS[1], reason="court order", actor="admin")
        hold_id, everyone_id = hold.id, everyone.id
    result = purge(data, engine)
    assert [(d.device, d.day) for d in result.purged] == [("fw2", DAYS[0])]
    assert {(d.device, d.day, d.state) for d in result.blocked} == {
        ("gw1", DAYS[0], "held"),
        ("gw1", DAYS[1], "held"),
        ("fw2", DAYS[1], "held"),
    }
    assert data.part("gw1", DAYS[0]).log.exists()
    with Session(engine) as s, pytest.raises(rt.RetentionError, match="legal hold"):
        rt.purge_day(data.settings, s, "gw1", DAYS[0], NOW.date())
    with Session(engine) as s:
        rt.release_hold(s, hold_id, reason="case closed", actor="admin")
        with pytest.raises(rt.RetentionError, match="already released"):
            rt.release_hold(s, hold_id, reason="again", actor="admin")
        assert [h.id for h in rt.list_holds(s)] == [everyone_id]
        assert len(rt.list_holds(s, include_released=True)) == 2
    result = purge(data, engine)
    assert [(d.device, d.day) for d in result.purged] == [("gw1", DAYS[0])]
    actions = [a[0] for a in audit_actions(engine)]
    assert actions.count("hold.add") == 2 and actions.count("hold.release") == 1


def test_short_retention_needs_the_explicit_setting(data: Data, engine: Engine) -> None:
    """Below 730 days only with allow_short_retention and a reason; audited; shown."""
    with Session(engine) as s:
        with pytest.raises(rt.RetentionError, match="below the legal minimum"):
            rt.set_retention(s, data.settings, "gw1", 365, actor="admin")
        with pytest.raises(rt.RetentionError, match="needs a reason"):
            rt.set_retention(
                s, data.settings, "gw1", 365, actor="admin", allow_short_retention=True
            )
        with pytest.raises(rt.RetentionError, match="at least 1 day"):
            rt.set_retention(s, data.settings, "gw1", 0, actor="admin", allow_short_retention=True)
        p = rt.set_retention(
            s, data.settings, "gw1", 365, actor="admin", allow_short_retention=True,
            reason="test lab, no subscribers",
        )  # fmt: skip
        assert p.days == 365 and p.allow_short_retention and p.short
        [gw1, fw2] = sorted(rt.overview(s, data.settings, ["gw1", "fw2"]), key=lambda x: x.device)[
            ::-1
        ]
        assert (gw1.device, gw1.allow_short_retention, gw1.source) == ("gw1", True, "device")
        assert (fw2.days, fw2.allow_short_retention, fw2.source) == (730, False, "default")
        # Raised again above the minimum, the flag goes away.
        assert not rt.set_retention(s, data.settings, "gw1", 1000, actor="admin").short
    sets = [d for a, t, d in audit_actions(engine) if a == "retention.set"]
    assert sets[0]["allow_short_retention"] is True and sets[0]["days"] == 365
    assert sets[1]["previous_days"] == 365
    # The database refuses a short row without the flag too (migration 0004 check constraint).
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(
            sa.insert(rt.RetentionPolicy).values(
                device="x", days=10, allow_short_retention=False, set_by="sql",
                set_at=dt.datetime.now(dt.UTC),
            )
        )  # fmt: skip


def test_short_retention_purges_earlier(data: Data, engine: Engine) -> None:
    """With 1 day allowed explicitly, a day two days old goes; the receipt names the policy."""
    with Session(engine) as s:
        rt.set_retention(
            s, data.settings, "fw2", 1, actor="admin", allow_short_retention=True, reason="lab"
        )
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    result = rt.purge(data.settings, engine, actor="t", signer=data.signer, now=now)
    assert [(d.device, d.day) for d in result.purged] == [("fw2", DAYS[0]), ("fw2", DAYS[1])]
    assert result.receipt is not None
    body = json.loads(result.receipt.read_bytes())
    assert body["retention"]["fw2"] == {
        "days": 1,
        "allow_short_retention": True,
        "source": "device",
    }


def test_unsealed_day_is_not_purged(data: Data, engine: Engine) -> None:
    """A day past retention with an unsealed part stays (it was never sealed: seal it first)."""
    data.write("gw1", DAYS[0], n=2, start=50)  # a supplement, not sealed
    result = purge(data, engine, device="gw1", dry_run=True)
    assert ("gw1", DAYS[0], "unsealed") in {(d.device, d.day, d.state) for d in result.blocked}
    assert result.receipt is None and data.part("gw1", DAYS[0]).log.exists()


def test_purge_drops_index_days_without_files(data: Data, engine: Engine) -> None:
    """Index partitions of purged days go once no device has a file of that day."""
    from logmaster.index import open_index
    from logmaster.index.indexer import Indexer

    indexer = Indexer.from_settings(data.settings)
    try:
        indexer.catch_up()
    finally:
        indexer.close()
    with Session(engine) as s:  # keep gw1's first day: its index day must stay
        rt.add_hold(s, "gw1", DAYS[0], DAYS[0], reason="case", actor="admin")
    result = purge(data, engine)
    assert result.index_days_dropped == [DAYS[1]]
    backend = open_index(data.settings)
    try:
        assert set(backend.days()) == {DAYS[0], DAYS[2]}
    finally:
        backend.close()


def test_auto_purge_runs_once_a_day(data: Data, engine: Engine) -> None:
    """The scheduler's hook purges once per day, and not at all with auto_purge off."""
    first = rt.auto_purge(data.settings, now=NOW)
    assert first is not None and len(first.purged) == 4
    assert rt.auto_purge(data.settings, now=NOW + dt.timedelta(hours=1)) is None
    later = rt.auto_purge(data.settings, now=NOW + dt.timedelta(days=1))
    assert later is not None and [(d.device, d.day) for d in later.purged] == [
        ("fw2", DAYS[2]),
        ("gw1", DAYS[2]),
    ]
    assert [a for a, _t, d in audit_actions(engine) if a == "retention.purge"] == [
        "retention.purge"
    ] * 2
    off = data.settings.model_copy(
        update={"retention": data.settings.retention.model_copy(update={"auto_purge": False})}
    )
    assert rt.auto_purge(off, now=NOW + dt.timedelta(days=5)) is None
