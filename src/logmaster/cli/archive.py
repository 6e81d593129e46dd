"""``logmaster archive ...``: verify and inspect the archive."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, out, parse_date, settings_from

app = typer.Typer(help="Inspect and verify the archive.", no_args_is_help=True)


@app.command("verify")
def archive_verify(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    date: Annotated[str | None, typer.Option(help="Only this day (YYYY-MM-DD).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Recompute the hash chains; exit 1 naming the first line that does not match."""
    from logmaster.archive.verify import day_files, verify_day

    settings = settings_from(config, data_dir)
    failed = checked = 0
    for dev, day, path in day_files(settings.archive_dir, device, parse_date(date)):
        report = verify_day(dev, day, path)
        checked += 1
        if report.ok:
            note = f" ({'; '.join(report.notes)})" if report.notes else ""
            out.print(f"OK    {dev} {day} {report.lines} lines{note}", highlight=False)
        else:
            failed += 1
            out.print(f"FAIL  {dev} {day} {path}: {'; '.join(report.problems)}", highlight=False)
    if checked == 0:
        raise fail("no day files match (check --data-dir, --device and --date)")
    out.print(f"{checked} day files checked, {failed} failed", highlight=False)
    raise typer.Exit(1 if failed else 0)


@app.command("stats")
def archive_stats(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    date: Annotated[str | None, typer.Option(help="Only this day (YYYY-MM-DD).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Lines, bytes and chain state per device-day (from the chain files, no rehashing)."""
    from logmaster.archive.verify import day_files, stats_day

    settings = settings_from(config, data_dir)
    table = Table("device", "day", "lines", "bytes", "chain")
    for dev, day, path in day_files(settings.archive_dir, device, parse_date(date)):
        st = stats_day(dev, day, path)
        table.add_row(
            st.device, st.day.strftime("%d.%m.%Y"), f"{st.lines:,}", f"{st.size:,}", st.state
        )
    out.print(table)
