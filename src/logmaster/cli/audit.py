"""``logmaster audit ...``: check the hash chain of the audit trail, list entries."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from logmaster.cli.common import ConfigOpt, DataDirOpt, local_time, open_metadata, out

app = typer.Typer(help="The audit trail (append-only, hash-chained).", no_args_is_help=True)


@app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Recompute the chain; exit 1 when an entry was edited, deleted or reordered."""
    from dataclasses import asdict

    from logmaster.api.audit import verify_audit

    _settings, engine = open_metadata(config, data_dir)
    verdict = verify_audit(engine)
    if as_json:
        out.print_json(json.dumps(asdict(verdict)))
    elif verdict.ok:
        out.print(f"audit trail intact: {verdict.entries} entries, chain verified")
    else:
        out.print(
            f"[bold red]audit trail TAMPERED[/]: {verdict.entries} entries, head at "
            f"{verdict.head_seq}, first bad entry {verdict.first_bad_seq}"
        )
        for problem in verdict.problems:
            out.print(f"  - {escape(problem)}")
    if not verdict.ok:
        raise typer.Exit(1)


@app.command("list")
def audit_list(
    actor: Annotated[str | None, typer.Option(help="Only this user's actions.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action (prefix with '.').")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Newest N entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Show the newest audit entries."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from logmaster.api.models import AuditEntry, as_utc

    settings, engine = open_metadata(config, data_dir)
    query = sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(
            AuditEntry.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditEntry.action == action
        )
    zone = settings.devices.default_timezone
    table = Table("seq", "time", "actor", "from", "action", "target", "result", "details")
    with Session(engine) as session:
        for e in session.scalars(query):
            if as_json:
                out.print(
                    json.dumps(
                        {
                            "seq": e.seq,
                            "at": (as_utc(e.at) or e.at).isoformat(),
                            "actor": e.actor,
                            "source_ip": e.source_ip,
                            "action": e.action,
                            "target": e.target,
                            "result": e.result,
                            "details": json.loads(e.details),
                        },
                        ensure_ascii=False,
                    ),
                    highlight=False,
                    soft_wrap=True,
                )
                continue
            table.add_row(
                str(e.seq),
                local_time(e.at, zone),
                escape(e.actor or "-"),
                e.source_ip or "-",
                e.action,
                escape(e.target),
                e.result,
                escape(e.details),
            )
    if not as_json:
        out.print(table)
