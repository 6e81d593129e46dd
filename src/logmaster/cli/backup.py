"""Backups: ``logmaster backup --to DIR`` and ``logmaster restore --from DIR --to DATA_DIR``.

What a backup holds and why is in :mod:`logmaster.backup`. The passphrase that encrypts the
keys comes from ``--passphrase-file`` (mode 0600) or ``LOGMASTER_BACKUP_PASSPHRASE``; it is
never a command-line argument (it would show in ``ps``). Exit codes: 0 done, 1 done but a
sealed file had changed (the backup kept the earlier copy), 2 the backup or restore failed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, out, settings_from

PASSPHRASE_ENV = "LOGMASTER_BACKUP_PASSPHRASE"  # noqa: S105  -- a variable name

PassphraseOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help=f"File (mode 0600) whose first line encrypts the keys; else ${PASSPHRASE_ENV}.",
    ),
]


def _passphrase(path: Path | None) -> bytes:
    if path is not None:
        if not path.is_file():
            raise fail(f"passphrase file {path} does not exist")
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise fail(f"{path} is readable by others (mode {mode:04o}): chmod 600 it")
        lines = path.read_bytes().splitlines()
        value = lines[0] if lines else b""
    else:
        value = os.environ.get(PASSPHRASE_ENV, "").encode()
    if not value:
        raise fail(f"give --passphrase-file or set {PASSPHRASE_ENV} (it encrypts the keys)")
    return value


def backup(
    to: Annotated[Path, typer.Option("--to", help="Backup directory (created if missing).")],
    with_index: Annotated[
        bool,
        typer.Option(help="Also copy the SQLite index (else only its rebuild plan)."),
    ] = False,
    passphrase_file: PassphraseOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Back up while running: archive (incremental), metadata database, encrypted keys."""
    from logmaster.backup import BackupError
    from logmaster.backup import backup as run_backup

    settings = settings_from(config, data_dir)
    secret = _passphrase(passphrase_file)
    try:
        report = run_backup(settings, to, secret, with_index=with_index)
    except (BackupError, OSError) as exc:
        raise fail(f"backup failed / yedekleme başarısız: {exc}") from exc
    mib = report.copied_bytes / (1 << 20)
    out.print(
        f"backup {to}: {report.copied} files copied ({mib:.1f} MiB), {report.unchanged} "
        f"unchanged / {report.copied} dosya kopyalandı, {report.unchanged} değişmemiş",
        highlight=False,
    )
    for rel in report.changed_after_seal:
        out.print(
            f"CHANGED AFTER SEAL / MÜHÜRDEN SONRA DEĞİŞMİŞ: {rel} (the backup keeps the earlier "
            "copy; run `logmaster verify`)",
            highlight=False,
        )
    raise typer.Exit(1 if report.changed_after_seal else 0)


def restore(
    from_: Annotated[Path, typer.Option("--from", help="Backup directory.")],
    to: Annotated[Path, typer.Option("--to", help="New, empty data directory.")],
    database_url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL backups: the empty database to pg_restore into."),
    ] = None,
    passphrase_file: PassphraseOpt = None,
) -> None:
    """Restore a backup into an empty directory, checking every file's SHA-256."""
    from logmaster.backup import BackupError
    from logmaster.backup import restore as run_restore

    secret = _passphrase(passphrase_file)
    try:
        doc = run_restore(from_, to, secret, database_url=database_url)
    except (BackupError, OSError) as exc:
        raise fail(f"restore failed / geri yükleme başarısız: {exc}") from exc
    out.print(
        f"restored {len(doc['files'])} files of the backup of {doc['created']} into {to} / "
        "geri yüklendi",
        highlight=False,
    )
    if doc["metadata"]["kind"] == "postgres" and not database_url:
        out.print(
            "metadata is a PostgreSQL dump: pg_restore --no-owner --dbname=URL "
            f"{from_ / 'metadata' / doc['metadata']['file']}",
            highlight=False,
        )
    if not doc["index"]["copies"]:
        out.print(
            f"index: not in the backup; it is rebuilt from the archive: logmaster index --once "
            f"--data-dir {to} (or start LogMaster; the indexer catches up)",
            highlight=False,
        )
    toml = to / "logmaster.toml"
    old = doc["data_dir"]
    if toml.is_file() and to.absolute() != Path(old) and old in toml.read_text():
        out.print(
            f"note: {toml} still names {old}; edit it (or restore into {old}) before starting "
            "LogMaster with it",
            highlight=False,
        )
    out.print(f"check the seals: logmaster verify --data-dir {to}", highlight=False)
