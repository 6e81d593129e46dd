"""Seals and their verification: ``logmaster seal`` and ``logmaster verify``.

Verdict words are shown in English and Turkish: OK/TAMAM, FAIL/HATA, PENDING/BEKLİYOR,
UNSEALED/MÜHÜRSÜZ. Exit codes: 0 when everything asked for is sealed (seal) or verified
(verify), 1 when something failed or is not verified, 2 for a usage error.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, out, parse_date, settings_from

WORDS = {
    "OK": "OK/TAMAM",
    "FAIL": "FAIL/HATA",
    "PENDING": "PENDING/BEKLİYOR",
    "UNSEALED": "UNSEALED/MÜHÜRSÜZ",
    "sealed": "SEALED/MÜHÜRLENDİ",
    "silence": "SILENCE/SESSİZ GÜN",
    "stamp_pending": "STAMP PENDING/ZAMAN DAMGASI BEKLİYOR",
    "not_over": "NOT OVER/GÜN BİTMEDİ",
    "error": "ERROR/HATA",
}


def _day(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def seal(
    date: Annotated[
        str | None, typer.Option(help="Seal this day (YYYY-MM-DD), the device's local day.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    retry_stamps: Annotated[
        bool, typer.Option("--retry-stamps", help="Try every queued (pending) stamp now.")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="Run the daily schedule (seal after each local midnight + delay)."
        ),
    ] = False,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up",
            help="One pass of the schedule: seal every due day not sealed yet, retry stamps, "
            "purge past retention (for a timer).",
        ),
    ] = False,
    compress: Annotated[
        bool,
        typer.Option(help="Compress the sealed day files (seal.compression) once indexed."),
    ] = True,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Seal device-days: manifest, signature (.p7s), timestamp (.tsr); or retry stamps."""
    from logmaster.archive import seal as sealing
    from logmaster.archive import stamps
    from logmaster.archive.tsa import TsaError

    settings = settings_from(config, data_dir)
    if retry_stamps:
        try:
            done, left = stamps.retry_stamps(settings, force=True)
        except TsaError as exc:
            raise fail(str(exc)) from exc
        out.print(f"{done} stamps obtained, {left} still pending", highlight=False)
        raise typer.Exit(1 if left else 0)
    if catch_up:
        import threading

        from logmaster.archive.sealer import Sealer

        Sealer(settings).run(threading.Event(), once=True)
        return
    if follow:
        import signal
        import threading

        from logmaster.archive.sealer import Sealer

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        out.print(f"sealing {settings.archive_dir} daily", highlight=False)
        from logmaster.compliance import service

        service.run(settings, stop)
        return
    day = parse_date(date)
    if day is None:
        raise fail("give --date YYYY-MM-DD (or --retry-stamps)")
    run = sealing.SealRun(settings)
    try:
        results = run.seal_day(day, device)
    except (sealing.SealError, TsaError) as exc:
        raise fail(str(exc)) from exc
    if not results:
        out.print(f"nothing to seal on {_day(day)}", highlight=False)
    bad = 0
    for r in results:
        part = f" supplement {r.part}" if r.part else ""
        why = f": {r.message}" if r.message else ""
        out.print(f"{WORDS[r.state]:<20} {r.device} {_day(r.day)}{part}{why}", highlight=False)
        bad += r.state in ("error", "not_over")
    if results and all(r.state == "not_over" for r in results):
        raise fail(f"{_day(day)} is not over yet for these devices: seal it after midnight")
    if compress and settings.seal.compression != "none":
        from logmaster.archive.compress import compress_sealed
        from logmaster.archive.manifest import parts

        todo = [
            p
            for r in results
            if r.state in ("sealed", "stamp_pending")
            for p in parts(settings.archive_dir, r.device, r.day)
            if p.index == r.part
        ]
        if todo:
            counts = compress_sealed(
                settings.archive_dir, todo, settings.seal.compression, run.index_stats(day)
            )
            out.print(
                "compression: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())),
                highlight=False,
            )
    raise typer.Exit(1 if bad else 0)


def verify(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per day.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Verify seals: file hashes, chains, Merkle roots, manifest chain, signatures, stamps."""
    from logmaster.archive.verdict import verify_days

    settings = settings_from(config, data_dir)
    first, last = parse_date(from_), parse_date(to)
    if first and last and first > last:
        raise fail("--from is after --to")
    if device and not (settings.archive_dir / device).is_dir():
        raise fail(f"no device {device!r} in the archive {settings.archive_dir}")
    verdicts = verify_days(settings, device, first, last)
    if not verdicts:
        raise fail("no device-days match (check --data-dir, --device, --from and --to)")
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
        if as_json:
            print(json.dumps(v.to_json(), ensure_ascii=False))
            continue
        extra = " (declared silence / sessiz gün)" if v.declared_silence else ""
        out.print(
            f"{WORDS[v.verdict]:<18} {v.device} {_day(v.day)} {v.lines:,} lines{extra}",
            highlight=False,
        )
        for r in v.reasons:
            where = f" supplement {r.part}" if r.part else ""
            out.print(f"    {r.code}{where}: {r.message}", highlight=False)
        for note in v.notes:
            out.print(f"    note: {note}", highlight=False)
    summary = ", ".join(f"{n} {WORDS[k]}" for k, n in sorted(counts.items()))
    if not as_json:
        out.print(f"{len(verdicts)} device-days: {summary}", highlight=False)
    raise typer.Exit(0 if set(counts) == {"OK"} else 1)
