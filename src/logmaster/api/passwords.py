"""Passwords: argon2id hashes (argon2-cffi) and the password policy.

The policy is length plus a mix of character classes (``[api] password_min_length`` and
``password_min_classes``), and never the username itself; the texts say what is missing in
English and Turkish. :func:`verify` runs a full argon2 verification even for unknown users
(against a fixed dummy hash) so the answer time does not reveal which usernames exist.
"""

from __future__ import annotations

import secrets
import string
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from logmaster.config import ApiSettings

# RFC 9106's second recommended option (64 MiB, 3 passes) is argon2-cffi's default profile.
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))
# Each hash holds 64 MiB while it runs; a burst of sign-ins (the API's thread pool has 40
# threads) would otherwise take 2.5 GiB. Four at a time keep both cores busy; the rest queue.
_SLOTS = threading.BoundedSemaphore(4)


def hash_password(password: str) -> str:
    with _SLOTS:
        return _HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored`` (an argon2id hash); None compares to a dummy."""
    try:
        with _SLOTS:
            return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def policy_violations(
    password: str, settings: ApiSettings, username: str = ""
) -> list[tuple[str, str]]:
    """What ``password`` lacks, as (English, Turkish) sentences; empty when it is accepted."""
    found: list[tuple[str, str]] = []
    if len(password) < settings.password_min_length:
        n = settings.password_min_length
        found.append((f"use at least {n} characters", f"en az {n} karakter kullanın"))
    if len(password) > 1024:
        found.append(("use at most 1024 characters", "en fazla 1024 karakter kullanın"))
    classes = sum(
        any(test(c) for c in password)
        for test in (
            str.islower,
            str.isupper,
            str.isdigit,
            lambda c: not c.isalnum(),
        )
    )
    if classes < settings.password_min_classes:
        n = settings.password_min_classes
        found.append(
            (
                f"mix at least {n} of: lower case, upper case, digits, other characters",
                f"küçük harf, büyük harf, rakam ve diğer karakterlerden en az {n} türü karıştırın",
            )
        )
    if username and username.lower() in password.lower():
        found.append(
            ("do not use the username in the password", "parolada kullanıcı adını kullanmayın")
        )
    return found


def random_password(length: int = 20) -> str:
    """A password that satisfies any policy of this module (all four classes present)."""
    alphabet = string.ascii_letters + string.digits + "-_.!@#%+="
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(not c.isalnum() for c in candidate)
        ):
            return candidate
