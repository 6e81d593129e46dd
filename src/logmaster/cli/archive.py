"""``logmaster archive ...``: verify and inspect the archive; Merkle proofs of single lines."""

from __future__ import annotations

from pathlib import Path
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
    days = day_files(settings.archive_dir, device, parse_date(date), compressed=True)
    for dev, day, path in days:
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


@app.command("prove")
def archive_prove(
    device: Annotated[str, typer.Option(help="The device.")],
    date: Annotated[str, typer.Option(help="The day (YYYY-MM-DD).")],
    line: Annotated[
        list[int],
        typer.Option(help="Line number in the day file (1 = first); repeat for several lines."),
    ],
    supplement: Annotated[int, typer.Option(help="Supplement number (0 = the day file).")] = 0,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a JSON Merkle inclusion proof that a line belongs to a sealed day.

    The proof reveals that line only. Check it with `logmaster archive check-proof`, or by hand
    with printf and openssl (steps in the proof's "check" field). Several --line: a JSON array
    of proofs, all made in one pass over the day file.
    """
    import json

    from logmaster.archive import manifest as mf
    from logmaster.archive import merkle
    from logmaster.archive.reader import open_day, resolve

    settings = settings_from(config, data_dir)
    day = parse_date(date)
    assert day is not None
    part = mf.Part(settings.archive_dir, device, day, supplement)
    if not part.manifest.exists():
        raise fail(f"{part.label} is not sealed: no {part.manifest.name}")
    data, man = mf.load(part.manifest)
    if resolve(part.log) is None:
        raise fail(f"{part.label}: the day file is missing")
    size = int(man.get("lines") or 0)
    mismatch = f"{part.label}: the day file does not match its manifest (run `logmaster verify`)"
    with open_day(part.log) as fh:
        # Whole lines only, LF cut; a torn tail is not a line (as when sealing).
        lines = (raw[:-1] for raw in fh if raw.endswith(b"\n"))
        try:
            proofs = merkle.proofs(lines, size, line)
        except IndexError as exc:
            raise fail(str(exc)) from exc
        except ValueError as exc:
            raise fail(mismatch) from exc
    for proof in proofs:
        if proof["merkle_root"] != man.get("merkle_root"):
            raise fail(mismatch)
        proof.update(
            device=device,
            date=day.isoformat(),
            part=supplement,
            manifest=part.manifest.relative_to(settings.archive_dir).as_posix(),
            manifest_sha256=mf.sha256_hex(data),
            check=merkle.MANUAL_CHECK,
        )
    body = proofs[0] if len(proofs) == 1 else proofs
    print(json.dumps(body, indent=2, ensure_ascii=False))


@app.command("check-proof")
def archive_check_proof(
    proof_file: Annotated[Path, typer.Argument(help="The proof (JSON) from `archive prove`.")],
    manifest: Annotated[
        Path | None,
        typer.Option(help="The day's manifest; its merkle_root must be the proof's root."),
    ] = None,
) -> None:
    """Check a Merkle inclusion proof (and that its root is the sealed manifest's)."""
    import json

    from logmaster.archive import merkle
    from logmaster.archive.manifest import load, sha256_hex

    try:
        proof = json.loads(proof_file.read_text())
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read {proof_file}: {exc}") from exc
    expected = None
    size = None
    if manifest is not None:
        try:
            data, man = load(manifest)
        except (OSError, ValueError) as exc:
            raise fail(f"cannot read {manifest}: {exc}") from exc
        expected = man.get("merkle_root")
        size = int(man.get("lines") or 0)
        if proof.get("manifest_sha256") not in (None, sha256_hex(data)):
            raise fail("the proof was made for another manifest (manifest_sha256 differs)")
    try:
        merkle.check_proof(proof, expected, size)
    except merkle.ProofError as exc:
        out.print(f"FAIL/HATA: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    what = "the manifest's merkle_root" if expected else "the proof's merkle_root"
    out.print(f"OK/TAMAM: line {proof['line']} belongs to the tree with {what}", highlight=False)
