"""TOTP second factor (pyotp, RFC 6238: SHA-1, 6 digits, 30 s) and recovery codes.

Enrolment: ``start`` makes a secret (stored encrypted with ``<data_dir>/keys/api-mfa.key``,
Fernet, 0600) and returns the ``otpauth://`` URI with its QR code as SVG (segno, pure Python);
``confirm`` checks a first code, then MFA is on and ten recovery codes are shown once (stored as
argon2id hashes; each works once). A code is accepted within ±1 time step, and never twice: the
last accepted step is stored, so a code seen over a shoulder cannot be replayed.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import time
from pathlib import Path

import pyotp
import segno
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from logmaster.api import passwords
from logmaster.api.models import MfaSecret, RecoveryCode

KEY_FILE = "api-mfa.key"
ISSUER = "LogMaster"
RECOVERY_CODES = 10
STEP = 30


def load_or_create_key(data_dir: Path) -> bytes:
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def qr_svg(uri: str) -> str:
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False)
    return buffer.getvalue().decode()


def start(session: Session, key: bytes, user_id: int, username: str) -> tuple[str, str, str]:
    """A new unconfirmed secret (replacing any unconfirmed one): (secret, URI, SVG)."""
    secret = pyotp.random_base32()
    token = Fernet(key).encrypt(secret.encode()).decode()
    row = session.get(MfaSecret, user_id)
    if row is None:
        session.add(MfaSecret(user_id=user_id, secret_encrypted=token, last_step=0))
    else:
        row.secret_encrypted, row.confirmed_at, row.last_step = token, None, 0
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    return secret, uri, qr_svg(uri)


def enabled(session: Session, user_id: int) -> bool:
    row = session.get(MfaSecret, user_id)
    return row is not None and row.confirmed_at is not None


def check_code(session: Session, key: bytes, user_id: int, code: str) -> bool:
    """True for a valid, not yet used TOTP code (the step is then marked used)."""
    row = session.get(MfaSecret, user_id)
    code = code.strip().replace(" ", "")
    if row is None or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(Fernet(key).decrypt(row.secret_encrypted.encode()).decode())
    now = int(time.time())
    for offset in (0, -1, 1):
        step = now // STEP + offset
        if step > row.last_step and secrets.compare_digest(totp.at(step * STEP), code):
            row.last_step = step
            return True
    return False


def confirm(session: Session, key: bytes, user_id: int, code: str) -> list[str] | None:
    """Turn MFA on with a first code; returns the new recovery codes (shown once)."""
    row = session.get(MfaSecret, user_id)
    if row is None or not check_code(session, key, user_id, code):
        return None
    row.confirmed_at = dt.datetime.now(dt.UTC)
    return new_recovery_codes(session, user_id)


def new_recovery_codes(session: Session, user_id: int) -> list[str]:
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["-".join(secrets.token_hex(3) for _ in range(3)) for _ in range(RECOVERY_CODES)]
    for code in codes:
        session.add(RecoveryCode(user_id=user_id, code_hash=passwords.hash_password(code)))
    return codes


def use_recovery_code(session: Session, user_id: int, code: str) -> bool:
    code = code.strip().lower()
    for row in session.scalars(
        sa.select(RecoveryCode).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    ):
        if passwords.verify(row.code_hash, code):
            row.used_at = dt.datetime.now(dt.UTC)
            return True
    return False


def disable(session: Session, user_id: int) -> None:
    session.execute(sa.delete(MfaSecret).where(MfaSecret.user_id == user_id))
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def remaining_recovery_codes(session: Session, user_id: int) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count(RecoveryCode.id)).where(
                RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
            )
        )
        or 0
    )
