"""Retention and legal holds: ``logmaster retention show|set|purge``, ``logmaster hold …``.

Nothing here deletes a day inside retention (archive/retention.py refuses it, whoever asks);
``purge`` removes only device-days past retention that no legal hold covers, after writing a
signed, time-stamped deletion receipt. Changes are recorded in the audit trail as
``cli:<os user>``. Exit codes: 0 done, 1 something was refused or blocked, 2 usage error.
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, open_metadata, out, parse_date

app = typer.Typer(help="Retention of sealed device-days and their purge.", no_args_is_help=True)
hold_app = typer.Typer(help="Legal holds: days that no purge may touch.", no_args_is_help=True)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _print(text: str) -> None:
    out.print(text, highlight=False, markup=False, soft_wrap=True)


def _session(config: Any, data_dir: Any) -> tuple[Any, Any, Any]:
    from sqlalchemy.orm import Session

    settings, engine = open_metadata(config, data_dir)
    return settings, engine, Session(engine)


@app.command("show")
def show(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Each device's retention (days, whether a short retention was allowed) and what is due."""
    from logmaster.archive import retention as rt
    from logmaster.archive.seal import archive_devices

    settings, engine, session = _session(config, data_dir)
    with session:
        devices = [device] if device else archive_devices(settings.archive_dir)
        for p in rt.overview(session, settings, devices):
            if device and p.device != device:
                continue
            short = (
                "  SHORT / KISA (allow_short_retention, set by "
                f"{p.set_by} on {p.set_at:%d.%m.%Y}: {p.reason})"
                if p.short and p.set_at
                else ""
            )
            _print(f"{p.device:<32} {p.days:>5} days ({p.source}){short}")
        due = rt.plan(settings, session, device=device)
    engine.dispose()
    words = {"purge": "due / silinebilir", "held": "HELD / askıda", "unsealed": "UNSEALED"}
    for d in due:
        _print(f"past retention: {d.device} {d.day:%d.%m.%Y} {words[d.state]} {d.why}".rstrip())


@app.command("set")
def set_(
    device: Annotated[str, typer.Argument(help="Device slug.")],
    days: Annotated[int, typer.Argument(help="Days kept after each day ended.")],
    allow_short: Annotated[
        bool,
        typer.Option(
            "--allow-short",
            help="Allow fewer than 730 days (Law 5651 asks for two years): audited and shown "
            "in reports.",
        ),
    ] = False,
    reason: Annotated[str, typer.Option(help="Why (required below 730 days).")] = "",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set a device's retention."""
    from logmaster.archive import retention as rt

    settings, engine, session = _session(config, data_dir)
    with session:
        try:
            p = rt.set_retention(
                session,
                settings,
                device,
                days,
                actor=_actor(),
                allow_short_retention=allow_short,
                reason=reason,
            )
        except rt.RetentionError as exc:
            raise fail(str(exc)) from exc
    engine.dispose()
    _print(f"{p.device}: {p.days} days" + (" (short retention, audited)" if p.short else ""))


@app.command("purge")
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove device-days past retention (not held), with a signed deletion receipt."""
    from logmaster.archive import retention as rt

    settings, engine = open_metadata(config, data_dir)
    try:
        result = rt.purge(settings, engine, actor=_actor(), dry_run=dry_run, device=device)
    except rt.RetentionError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    verb = "would remove" if dry_run else "removed"
    for d in result.purged:
        _print(f"{verb}: {d.device} {d.day:%d.%m.%Y}")
    for d in result.blocked:
        _print(f"kept / korundu: {d.device} {d.day:%d.%m.%Y}: {d.state} {d.why}".rstrip())
    if result.receipt is not None:
        _print(
            f"deletion receipt / silme makbuzu: {result.receipt} ({result.removed_files} files, "
            f"{result.removed_bytes:,} bytes)"
        )
    if result.stamp_error:
        _print(f"receipt stamp pending (retried with the seal queue): {result.stamp_error}")
    if not result.purged:
        _print("nothing past retention to remove / saklama süresi dolan gün yok")
    raise typer.Exit(1 if result.blocked else 0)


@hold_app.command("add")
def hold_add(
    from_: Annotated[str, typer.Option("--from", help="First day held, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last day held, YYYY-MM-DD.")],
    reason: Annotated[str, typer.Option(help="Why (the request, the case).")],
    device: Annotated[
        str | None, typer.Option(help="Device slug; without it the hold covers every device.")
    ] = None,
    case: Annotated[str, typer.Option("--case", help="Case or file reference.")] = "",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Place a legal hold: no purge removes these days until it is released."""
    from logmaster.archive import retention as rt

    first, last = parse_date(from_), parse_date(to)
    assert first is not None and last is not None
    _settings, engine, session = _session(config, data_dir)
    with session:
        try:
            hold = rt.add_hold(
                session, device, first, last, reason=reason, case_ref=case, actor=_actor()
            )
        except rt.RetentionError as exc:
            raise fail(str(exc)) from exc
        _print(f"placed {hold.describe()}")
    engine.dispose()


@hold_app.command("list")
def hold_list(
    all_: Annotated[bool, typer.Option("--all", help="Released holds too.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The legal holds (active ones unless --all)."""
    from logmaster.archive import retention as rt

    _settings, engine, session = _session(config, data_dir)
    with session:
        holds = rt.list_holds(session, include_released=all_)
        for h in holds:
            state = (
                f"released by {h.released_by} on {h.released_at:%d.%m.%Y}: {h.release_reason}"
                if h.released_at
                else "ACTIVE / ETKİN"
            )
            who = h.device or "* (all devices)"
            _print(
                f"#{h.id} {who} {h.first_day:%d.%m.%Y}..{h.last_day:%d.%m.%Y}"
                f" {state}; placed by {h.created_by} on {h.created_at:%d.%m.%Y}: {h.reason}"
                + (f" [case {h.case_ref}]" if h.case_ref else "")
            )
        if not holds:
            _print("no legal holds / yasal saklama kaydı yok")
    engine.dispose()


@hold_app.command("release")
def hold_release(
    hold_id: Annotated[int, typer.Argument(help="The hold's number (logmaster hold list).")],
    reason: Annotated[str, typer.Option(help="Why it is released.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Release a legal hold (it stays listed with --all)."""
    from logmaster.archive import retention as rt

    _settings, engine, session = _session(config, data_dir)
    with session:
        try:
            hold = rt.release_hold(session, hold_id, reason=reason, actor=_actor())
        except rt.RetentionError as exc:
            raise fail(str(exc)) from exc
        _print(f"released {hold.describe()}")
    engine.dispose()
