"""Account operations shared by the API routes and the ``logmaster user`` commands.

Creating users, setting passwords (policy checked, sessions revoked), revoking sessions and the
first-run ``admin`` account. The first run creates ``admin`` with the password in
``LOGMASTER_ADMIN_PASSWORD`` or, when unset, a random one printed once to stdout; no default
password exists anywhere.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from logmaster.api import audit, passwords, revocation
from logmaster.api.models import AuthSession, Role, User, UserRole
from logmaster.config import ApiSettings

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
ADMIN_PASSWORD_ENV = "LOGMASTER_ADMIN_PASSWORD"  # noqa: S105 (a variable name)


class AccountError(ValueError):
    """An operator mistake, with the Turkish text beside the English one."""

    def __init__(self, message: str, message_tr: str) -> None:
        super().__init__(message)
        self.message_tr = message_tr


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise AccountError(
            f"username {username!r}: use 1-64 lower-case letters, digits and . _ @ -, starting "
            "with a letter or digit",
            f"kullanıcı adı {username!r}: küçük harf, rakam ve . _ @ - kullanın (1-64 karakter)",
        )
    return username


def check_password(password: str, settings: ApiSettings, username: str) -> None:
    problems = passwords.policy_violations(password, settings, username)
    if problems:
        raise AccountError(
            "password refused: " + "; ".join(en for en, _ in problems),
            "parola kabul edilmedi: " + "; ".join(tr for _, tr in problems),
        )


def roles_named(session: Session, names: list[str]) -> list[Role]:
    roles = list(session.scalars(sa.select(Role).where(Role.name.in_(names))))
    missing = set(names) - {r.name for r in roles}
    if missing:
        known = ", ".join(session.scalars(sa.select(Role.name).order_by(Role.name)))
        raise AccountError(
            f"unknown role(s) {', '.join(sorted(missing))}; known: {known}",
            f"bilinmeyen rol(ler) {', '.join(sorted(missing))}; bilinenler: {known}",
        )
    return roles


def create_user(
    session: Session,
    settings: ApiSettings,
    username: str,
    password: str | None,
    roles: list[str],
    *,
    source: str = "local",
    display_name: str = "",
    email: str = "",
    timezone: str = "Europe/Istanbul",
) -> User:
    """Add a user (not committed). Local users need a password that meets the policy."""
    check_username(username)
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username} already exists", f"{username} kullanıcısı zaten var")
    if source == "local":
        if password is None:
            raise AccountError(
                "a local user needs a password", "yerel kullanıcının parolası olmalı"
            )
        check_password(password, settings, username)
    user = User(
        username=username,
        source=source,
        display_name=display_name,
        email=email,
        timezone=timezone,
        password_hash=passwords.hash_password(password) if password else None,
        password_changed_at=dt.datetime.now(dt.UTC) if password else None,
        allowed_networks=[],
        allowed_windows=[],
    )
    user.roles = roles_named(session, roles)
    session.add(user)
    session.flush()
    return user


def set_roles(session: Session, user: User, roles: list[str]) -> None:
    session.execute(sa.delete(UserRole).where(UserRole.user_id == user.id))
    for role in roles_named(session, roles):
        session.add(UserRole(user_id=user.id, role_id=role.id))
    session.flush()
    session.expire(user, ["roles"])


def revoke_sessions(session: Session, user_id: int, reason: str, keep: str | None = None) -> int:
    """End every open session of a user (their refresh tokens stop working at once)."""
    now = dt.datetime.now(dt.UTC)
    query = sa.update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    ended = session.execute(
        query.values(revoked_at=now, revoked_reason=reason).returning(
            AuthSession.id, AuthSession.expires_at
        )
    ).all()
    # A bulk UPDATE bypasses the ORM hook: hand the ids to Redis (when set) explicitly.
    revocation.note_revoked(session, [(sid, expires, reason) for sid, expires in ended])
    return len(ended)


def set_password(
    session: Session,
    settings: ApiSettings,
    user: User,
    password: str,
    *,
    reason: str = "password-change",
    keep_session: str | None = None,
) -> None:
    if user.source != "local":
        raise AccountError(
            f"{user.username} signs in through LDAP; change the password in the directory",
            f"{user.username} LDAP ile oturum açıyor; parolayı dizinde değiştirin",
        )
    check_password(password, settings, user.username)
    user.password_hash = passwords.hash_password(password)
    user.password_changed_at = dt.datetime.now(dt.UTC)
    user.must_change_password = False
    revoke_sessions(session, user.id, reason, keep=keep_session)


def ensure_admin(engine: Engine, settings: ApiSettings) -> str | None:
    """Create ``admin`` when no user exists yet; returns the generated password, if any.

    The random password goes to stdout exactly once (never to the log, never to a file).
    """
    with Session(engine) as session:
        if session.scalar(sa.select(sa.func.count(User.id))):
            return None
        given = os.environ.get(ADMIN_PASSWORD_ENV)
        password = given or passwords.random_password()
        if given:
            check_password(given, settings, "admin")
        user = create_user(session, settings, "admin", password, ["admin"])
        user.must_change_password = not given
        audit.record(
            session,
            actor=None,
            source_ip=None,
            action="user.create",
            target="user:admin",
            result=audit.OK,
            details={"roles": ["admin"], "first_run": True, "password_from_env": bool(given)},
        )
        try:
            session.commit()
        except sa.exc.IntegrityError:
            return None  # another API process created it first
    if given:
        return None
    sys.stdout.write(
        "\nFirst run: created user 'admin' with password (shown only now, change it after "
        f"signing in):\n\n    {password}\n\n"
        "İlk çalıştırma: 'admin' kullanıcısı oluşturuldu; parola yalnızca şimdi gösteriliyor, "
        "oturum açtıktan sonra değiştirin.\n\n"
    )
    sys.stdout.flush()
    return password
