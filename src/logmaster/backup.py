"""Online backups of a data directory and their restore (``logmaster backup`` / ``restore``).

A backup directory holds the newest state of one data directory, made incrementally:

- ``files/`` — the archive and every other plain file of the data directory, mirrored. A run
  copies only files that are new or whose size or mtime changed; sealed files never change, so
  after the first run a day costs one copy. Each copy is hashed while it is written. A day's
  hash-chain sidecar (``.log.chain``) is copied before its day file, so a copy of a file being
  written has at least the lines its chain covers (the writer re-chains the rest on reopening).
  A file sealed when the backup last saw it (its day had a manifest and the file is not newer
  than the manifest) is never overwritten: if it changed since, the run reports it
  (``changed_after_seal``), keeps the good copy and exits 1.
  Files that left the data directory (retention, compression) stay in ``files/`` but are not
  listed in the newest manifest, so a restore does not bring them back.
- ``metadata/logmaster.db`` — the SQLite metadata database through SQLite's online backup API
  (a consistent snapshot while LogMaster writes), or ``metadata/logmaster.pgdump``
  (``pg_dump --format=custom``) for PostgreSQL.
- ``index/`` — the index is rebuilt from the archive (``logmaster index --once``), so by
  default only ``index/plan.json`` says how; ``--with-index`` also copies the SQLite index
  files (backup API).
- ``secrets.enc`` — ``keys/`` (signing key and certificates), ``tsa/`` (the built-in TSA's CA)
  and ``tls/`` as a tar encrypted with AES-256-GCM under a key derived from the passphrase with
  scrypt. Nothing secret is stored in the clear.
- ``backup.json`` — the manifest: every file with its size, mtime and SHA-256; ``runs/`` keeps
  the manifest of each run. :func:`restore` checks every hash before it trusts a byte.

The archive can also be copied with rsync at any time; this adds the consistent database
snapshot, the encrypted keys and the hashes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from logmaster.config import Settings

log = logging.getLogger(__name__)

FORMAT = "logmaster-backup-1"
SECRETS_MAGIC = b"LOGMASTER-SECRETS-1\n"
SECRET_DIRS = ("keys", "tsa", "tls")
# Not copied: locks, sockets of the running processes, SQLite files taken by the backup API.
SKIP_TOP = {"run", "index", "logmaster.db", "logmaster.db-wal", "logmaster.db-shm"}
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # 32 MiB, about 0.1 s
MIN_PASSPHRASE = 12
CHUNK = 1 << 20
_DAY_FILE = re.compile(r"^(\d\d)\.")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class Report:
    copied: int = 0
    copied_files: list[str] = field(default_factory=list)
    copied_bytes: int = 0
    unchanged: int = 0
    changed_after_seal: list[str] = field(default_factory=list)
    manifest: Path | None = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` atomically (temp file, fsync, rename), keep its mtime; SHA-256."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    h = hashlib.sha256()
    st = src.stat()
    with src.open("rb") as fin, tmp.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    os.chmod(tmp, st.st_mode & 0o777)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, dst)
    return h.hexdigest()


def _order(rel: str) -> tuple[str, int]:
    # A day's .chain sidecar before its day file (see the module docstring).
    return (rel.removesuffix(".chain"), 0 if rel.endswith(".chain") else 1)


def _plain_files(data_dir: Path) -> list[str]:
    out: list[str] = []
    for top in sorted(data_dir.iterdir()):
        if top.name in SKIP_TOP or top.name in SECRET_DIRS or top.name.endswith(".lock"):
            continue
        if top.is_file():
            out.append(top.name)
        elif top.is_dir():
            for path in top.rglob("*"):
                if path.is_file() and not path.name.endswith(".lock"):
                    out.append(path.relative_to(data_dir).as_posix())
    return sorted(out, key=_order)


def _sealed(data_dir: Path, rel: str) -> bool:
    """A day file, chain or manifest of a sealed day, written before the seal."""
    if not rel.startswith("archive/") or rel.endswith(".tsr"):
        return False
    path = data_dir / rel
    m = _DAY_FILE.match(path.name)
    if not m:
        return False
    manifest = path.with_name(f"{m.group(1)}.manifest.json")
    try:
        return path.stat().st_mtime_ns <= manifest.stat().st_mtime_ns
    except FileNotFoundError:
        return False


def _previous(dest: Path) -> dict[str, Any]:
    path = dest / "backup.json"
    if not path.exists():
        return {}
    doc: dict[str, Any] = json.loads(path.read_text())
    if doc.get("format") != FORMAT:
        raise BackupError(f"{dest} holds a backup of another format ({doc.get('format')!r})")
    return doc


def backup(
    settings: Settings, dest: Path, passphrase: bytes, *, with_index: bool = False
) -> Report:
    """Back ``settings.data_dir`` up into ``dest`` (created if missing); see the module doc."""
    data_dir = settings.data_dir
    if not (data_dir / "archive").is_dir():
        raise BackupError(f"{data_dir} is not a LogMaster data directory (no archive/)")
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the backup passphrase needs at least {MIN_PASSPHRASE} characters")
    dest = dest.absolute()
    if dest == data_dir or data_dir in dest.parents:
        raise BackupError("the backup directory must be outside the data directory")
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o700)
    before = _previous(dest).get("files", {})
    report = Report()
    files: dict[str, dict[str, Any]] = {}
    for rel in _plain_files(data_dir):
        src = data_dir / rel
        try:
            st = src.stat()
        except FileNotFoundError:  # removed while we were listing (compression, retention)
            continue
        entry: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        old = before.get(rel)
        copy = dest / "files" / rel
        if old and copy.exists() and (old["size"], old["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            files[rel] = old
            report.unchanged += 1
            continue
        if old and old.get("sealed") and copy.exists():
            digest = _sha256(src)
            if digest != old["sha256"]:
                log.error(
                    "A sealed file changed; the backup keeps its earlier copy.", extra={"file": rel}
                )
                report.changed_after_seal.append(rel)
                files[rel] = old
                continue
            os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))  # touched, same bytes
            files[rel] = {**old, **entry}
            report.unchanged += 1
            continue
        entry["sha256"] = _copy(src, copy)
        entry["sealed"] = _sealed(data_dir, rel)
        files[rel] = entry
        report.copied += 1
        report.copied_files.append(rel)
        report.copied_bytes += st.st_size

    doc: dict[str, Any] = {
        "format": FORMAT,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data_dir": str(data_dir),
        "files": files,
        "metadata": _backup_metadata(settings, dest),
        "index": _backup_index(settings, dest, with_index),
        "secrets": _backup_secrets(data_dir, dest, passphrase),
        "copied": report.copied,
        "unchanged": report.unchanged,
        "changed_after_seal": report.changed_after_seal,
    }
    text = json.dumps(doc, indent=1, sort_keys=True)
    runs = dest / "runs"
    runs.mkdir(exist_ok=True)
    stamp = doc["created"].replace(":", "").replace("+0000", "Z")
    (runs / f"{stamp}.json").write_text(text)
    tmp = dest / ".backup.json.part"
    tmp.write_text(text)
    os.replace(tmp, dest / "backup.json")
    report.manifest = dest / "backup.json"
    return report


def _sqlite_copy(src: Path, dst: Path) -> dict[str, Any]:
    """A consistent copy of a live SQLite database (online backup API)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    tmp.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(tmp)
    try:
        source.backup(target, pages=4096)
    finally:
        target.close()
        source.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, dst)
    return {"file": dst.name, "size": dst.stat().st_size, "sha256": _sha256(dst)}


def _libpq_url(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _backup_metadata(settings: Settings, dest: Path) -> dict[str, Any]:
    url = settings.db_url
    out = dest / "metadata"
    if url.startswith("sqlite:///"):
        src = Path(url.removeprefix("sqlite:///"))
        return {"kind": "sqlite", **_sqlite_copy(src, out / "logmaster.db")}
    if url.startswith("postgresql"):
        out.mkdir(parents=True, exist_ok=True)
        dump = out / "logmaster.pgdump"
        r = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", _libpq_url(url)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if r.returncode != 0:
            raise BackupError(f"pg_dump failed: {r.stderr.strip()}")
        return {"kind": "postgres", "file": dump.name, "size": dump.stat().st_size,
                "sha256": _sha256(dump)}  # fmt: skip
    raise BackupError(f"cannot back up the metadata database {url.split(':')[0]}")


def _backup_index(settings: Settings, dest: Path, with_index: bool) -> dict[str, Any]:
    out = dest / "index"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    plan = {
        "backend": settings.index.backend,
        "rebuildable": True,
        "how": "The index is derived from the archive: after a restore run "
        "`logmaster index --once` "
        "(or start LogMaster: the indexer catches up with every day file it has not read).",
    }
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    copies: dict[str, Any] = {}
    if with_index and settings.index.backend == "sqlite" and settings.index_dir.is_dir():
        for path in sorted(settings.index_dir.iterdir()):
            if path.suffix == ".db":
                copies[path.name] = _sqlite_copy(path, out / path.name)
            elif path.is_file() and path.suffix == ".json":
                copies[path.name] = {"file": path.name, "sha256": _copy(path, out / path.name)}
    return {"plan": plan, "copies": copies}


def _key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def _backup_secrets(data_dir: Path, dest: Path, passphrase: bytes) -> dict[str, Any]:
    buf = io.BytesIO()
    names = []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in SECRET_DIRS:
            if (data_dir / name).is_dir():
                tar.add(data_dir / name, arcname=name, filter=_no_locks)
                names.append(name)
    salt, nonce = os.urandom(16), os.urandom(12)
    header = json.dumps(
        {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "cipher": "AES-256-GCM",
         "salt": base64.b64encode(salt).decode(), "nonce": base64.b64encode(nonce).decode()},
        sort_keys=True,
    ).encode()  # fmt: skip
    aad = SECRETS_MAGIC + header
    sealed = AESGCM(_key(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(
        nonce, buf.getvalue(), aad
    )
    path = dest / "secrets.enc"
    tmp = dest / ".secrets.enc.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(aad + b"\n" + sealed)
    os.replace(tmp, path)
    return {"file": path.name, "dirs": names, "sha256": _sha256(path)}


def _no_locks(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if info.name.endswith(".lock") else info


def _decrypt(path: Path, passphrase: bytes) -> bytes:
    blob = path.read_bytes()
    if not blob.startswith(SECRETS_MAGIC):
        raise BackupError(f"{path} is not a LogMaster secrets file")
    header, _, sealed = blob[len(SECRETS_MAGIC) :].partition(b"\n")
    meta = json.loads(header)
    key = _key(passphrase, base64.b64decode(meta["salt"]), meta["n"], meta["r"], meta["p"])
    try:
        return AESGCM(key).decrypt(base64.b64decode(meta["nonce"]), sealed, SECRETS_MAGIC + header)
    except InvalidTag as exc:
        raise BackupError(
            "wrong passphrase, or secrets.enc was altered / parola yanlış ya da dosya bozuk"
        ) from exc


def _checked(path: Path, sha256: str) -> Path:
    if not path.is_file():
        raise BackupError(f"the backup lacks {path}")
    if _sha256(path) != sha256:
        raise BackupError(f"{path} does not match its SHA-256 in backup.json: the backup is "
                          "damaged")  # fmt: skip
    return path


def verify_backup(source: Path) -> dict[str, Any]:
    """Check every file of the newest backup against its SHA-256; return the manifest."""
    doc = _previous(source)
    if not doc:
        raise BackupError(f"{source} holds no backup (backup.json missing)")
    for rel, entry in doc["files"].items():
        _checked(source / "files" / rel, entry["sha256"])
    meta = doc["metadata"]
    _checked(source / "metadata" / meta["file"], meta["sha256"])
    _checked(source / doc["secrets"]["file"], doc["secrets"]["sha256"])
    for name, entry in doc["index"]["copies"].items():
        _checked(source / "index" / name, entry["sha256"])
    return doc


def restore(
    source: Path, target: Path, passphrase: bytes, *, database_url: str | None = None
) -> dict[str, Any]:
    """Restore the newest backup in ``source`` into the empty (or new) directory ``target``."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: restore only into an empty directory")
    doc = verify_backup(source)
    secrets = _decrypt(source / "secrets.enc", passphrase)  # a wrong passphrase stops us here
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o750)  # noqa: S103  -- as `logmaster init` makes it: group may read
    for rel in sorted(doc["files"], key=_order):
        _copy(source / "files" / rel, target / rel)
    (target / "archive").mkdir(exist_ok=True)
    meta = doc["metadata"]
    if meta["kind"] == "sqlite":
        shutil.copy2(source / "metadata" / meta["file"], target / "logmaster.db")
        os.chmod(target / "logmaster.db", 0o600)  # password hashes, sessions
    elif database_url:
        r = subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq_url(database_url)}",
             str(source / "metadata" / meta["file"])],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if r.returncode != 0:
            raise BackupError(f"pg_restore failed: {r.stderr.strip()}")
    copies = doc["index"]["copies"]
    if copies:
        (target / "index").mkdir(exist_ok=True)
        for name in copies:
            shutil.copy2(source / "index" / name, target / "index" / name)
    with tarfile.open(fileobj=io.BytesIO(secrets)) as tar:
        tar.extractall(target, filter="data")
    for name in doc["secrets"]["dirs"]:
        os.chmod(target / name, 0o700)
    return doc
