"""``logmaster report`` and ``logmaster compliance ...``: reports, status, violations.

State words are shown in Turkish and English: SEALED/MÜHÜRLÜ, SILENCE/SESSİZ GÜN,
STAMP PENDING/DAMGA BEKLİYOR, OPEN/AÇIK, NO DATA/VERİ YOK. Dates are dd.mm.yyyy.
Exit codes: 0 done, 1 something needs attention (a violation open, a stamp queued, a day
not sealed), 2 a usage error.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from logmaster.cli.common import (
    ConfigOpt,
    DataDirOpt,
    fail,
    open_metadata,
    out,
    parse_date,
    settings_from,
)

compliance_app = typer.Typer(
    help="Compliance status per device-day, violations, on-demand evaluation.",
    no_args_is_help=True,
)

WORDS = {
    "sealed": "SEALED/MÜHÜRLÜ",
    "silence": "SILENCE/SESSİZ GÜN",
    "stamp_pending": "STAMP PENDING/DAMGA BEKLİYOR",
    "open": "OPEN/AÇIK",
    "no_data": "NO DATA/VERİ YOK",
}


def _month(value: str) -> tuple[int, int]:
    try:
        day = dt.date.fromisoformat(f"{value}-01")
    except ValueError as exc:
        raise fail(f"--month {value!r}: use YYYY-MM") from exc
    return day.year, day.month


def report(
    month: Annotated[str, typer.Option(help="The month to report (YYYY-MM).")],
    location: Annotated[str | None, typer.Option(help="Only the devices of this location.")] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write here instead of DATA_DIR/reports/YYYY-MM/."),
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write the monthly compliance report: JSON + PDF, each signed (.p7s) and stamped (.tsr)."""
    from logmaster.compliance.reports import ReportError, write_report

    year, mon = _month(month)
    settings, engine = open_metadata(config, data_dir)
    engine.dispose()
    try:
        written = write_report(settings, year, mon, location, out_dir=out_dir)
    except ReportError as exc:
        raise fail(str(exc)) from exc
    for path in written.files:
        out.print(str(path), highlight=False)
    for error in written.stamp_errors:
        out.print(
            f"stamp queued / damga kuyrukta: {escape(error)} (`logmaster seal --retry-stamps`)",
            highlight=False,
        )
    raise typer.Exit(1 if written.stamp_errors else 0)


@compliance_app.command("status")
def status(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="First day (YYYY-MM-DD); default 7 days ago.")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day; default today.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per day.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Per device and day: received lines, sealed, stamped (TSA), verified, gaps, parse failures."""
    from logmaster.compliance.status import StatusCache

    settings = settings_from(config, data_dir)
    today = dt.date.today()
    last = parse_date(to) or today
    first = parse_date(from_) or last - dt.timedelta(days=7)
    if first > last:
        raise fail("--from is after --to")
    if device and not (settings.archive_dir / device).is_dir():
        raise fail(f"no device {device!r} in the archive {settings.archive_dir}")
    cache = StatusCache(settings)
    try:
        rows = list(cache.statuses(first, last, [device] if device else None, fill=bool(device)))
    finally:
        cache.close()
    if as_json:
        for s in rows:
            print(json.dumps(s.to_json(), ensure_ascii=False))
    else:
        table = Table("Cihaz / Device", "Gün / Day", "Durum / State", "Satır / Lines",
                      "Damga / TSA", "Doğrulama / Verified", "Boşluk / Gaps (h)",
                      "Ayrıştırma hatası / Parse failures")  # fmt: skip
        for s in rows:
            tsa = "-" if not s.tsa else f"{s.tsa}{'' if s.accredited else ' (dahili/built-in)'}"
            rate = s.parse_failure_rate
            table.add_row(
                s.device,
                s.day.strftime("%d.%m.%Y"),
                WORDS.get(s.state, s.state),
                f"{s.lines:,}",
                tsa if s.stamped else ("-" if not s.sealed else f"{tsa} …"),
                s.verified or "-",
                f"{s.gap_seconds / 3600:.1f}",
                "-" if rate is None else f"%{rate * 100:.2f}",
            )
        out.print(table)
    past = [s for s in rows if s.day < today]
    raise typer.Exit(0 if all(s.state in ("sealed", "silence", "no_data") for s in past) else 1)


@compliance_app.command("violations")
def violations(
    open_only: Annotated[bool, typer.Option("--open", help="Only open violations.")] = False,
    device: Annotated[str | None, typer.Option(help="Only this device's.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Newest N.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List violations with their opening and resolution times (exit 1 while any is open)."""
    from sqlalchemy.orm import Session

    from logmaster.compliance.violations import KINDS, list_violations

    if kind is not None and kind not in KINDS:
        raise fail(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    settings, engine = open_metadata(config, data_dir)
    try:
        with Session(engine) as s:
            rows = [
                v.to_json()
                for v in list_violations(
                    s,
                    open_only=open_only,
                    devices={device} if device else None,
                    include_global=device is None,
                    kind=kind,
                    limit=limit,
                )
            ]
    finally:
        engine.dispose()
    if as_json:
        for v in rows:
            print(json.dumps(v, ensure_ascii=False))
    else:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(settings.devices.default_timezone)

        def when(iso: str | None) -> str:
            if not iso:
                return "açık / open"
            return dt.datetime.fromisoformat(iso).astimezone(zone).strftime("%d.%m.%Y %H:%M")

        table = Table("Tür / Kind", "Konu / Subject", "Önem / Severity", "Açıldı / Opened",
                      "Giderildi / Resolved", "Açıklama / Message")  # fmt: skip
        for v in rows:
            table.add_row(
                f"{v['title_tr']} / {v['title']}",
                v["subject"],
                v["severity"],
                when(v["opened_at"]),
                when(v["resolved_at"]),
                escape(v["message_tr"]),
            )
        out.print(table)
    raise typer.Exit(1 if any(v["resolved_at"] is None for v in rows) else 0)


@compliance_app.command("evaluate")
def evaluate(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run one evaluation pass now: open and resolve violations, queue and send their alerts."""
    from logmaster.compliance.alerts import Dispatcher
    from logmaster.compliance.evaluator import Evaluator

    settings, engine = open_metadata(config, data_dir)
    dispatcher = Dispatcher(settings, engine)
    evaluator = Evaluator(settings, engine, dispatcher=dispatcher)
    try:
        outcome = evaluator.run_once()
        sent, failed = dispatcher.deliver_due()
    finally:
        evaluator.close()
        engine.dispose()
    if outcome.error:
        raise fail(f"evaluation failed: {outcome.error}")
    for v in outcome.opened:
        out.print(f"AÇILDI / OPENED    {v['kind']:<18} {escape(v['subject'])}", highlight=False)
    for v in outcome.resolved:
        out.print(f"GİDERİLDİ / RESOLVED {v['kind']:<16} {escape(v['subject'])}", highlight=False)
    out.print(
        f"{outcome.open_now} open violations; {outcome.verified} days verified; alerts "
        f"{sent} sent, {failed} failed (retried later)",
        highlight=False,
    )
    raise typer.Exit(1 if outcome.open_now else 0)


@compliance_app.command("verify")
def verify(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Verify seals (like `logmaster verify`) and record the verdicts in the status."""
    from logmaster.compliance.status import StatusCache, verify_and_record

    settings = settings_from(config, data_dir)
    cache = StatusCache(settings)
    try:
        verdicts = verify_and_record(settings, cache, device, parse_date(from_), parse_date(to))
    finally:
        cache.close()
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    out.print(
        f"{len(verdicts)} device-days recorded: "
        + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"),
        highlight=False,
    )
    raise typer.Exit(0 if set(counts) <= {"OK"} else 1)
