"""``logmaster user ...``: accounts from the command line (add, list, reset-password, unlock).

For the operator at the server's console: a locked-out admin, a forgotten password. Every change
is written to the audit trail with the actor ``cli:<system user>``.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, local_time, open_metadata, out

app = typer.Typer(help="Manage API accounts (users).", no_args_is_help=True)

PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password-env",
        help="Read the password from this environment variable instead of prompting.",
    ),
]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def _password(env: str | None) -> str:
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise fail(f"environment variable {env} is empty or not set")
        return value
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        raise fail("the two passwords differ")
    return str(first)


@app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name (lower case).")],
    role: Annotated[list[str], typer.Option("--role", help="Role (repeatable).")],
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
    email: Annotated[str, typer.Option(help="E-mail address.")] = "",
    ldap: Annotated[bool, typer.Option(help="Signs in through LDAP (no local password).")] = False,
    password_env: PasswordOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add an account (prompts for the password unless --password-env or --ldap)."""
    from sqlalchemy.orm import Session

    from logmaster.api import audit
    from logmaster.api.accounts import AccountError, create_user

    settings, engine = open_metadata(config, data_dir)
    password = None if ldap else _password(password_env)
    with Session(engine) as session:
        try:
            create_user(
                session,
                settings.api,
                username,
                password,
                role,
                source="ldap" if ldap else "local",
                display_name=display_name,
                email=email,
            )
        except AccountError as exc:
            raise fail(str(exc)) from exc
        audit.record(
            session,
            actor=_actor(),
            source_ip=None,
            action="user.create",
            target=f"user:{username}",
            result=audit.OK,
            details={"roles": role, "source": "ldap" if ldap else "local"},
        )
        session.commit()
    out.print(f"added user {escape(username)} with role(s) {escape(', '.join(role))}")


@app.command("list")
def user_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the accounts with their roles and state."""
    import datetime as dt

    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from logmaster.api.models import User
    from logmaster.api.throttle import locked_seconds, session_info, user_key

    settings, engine = open_metadata(config, data_dir)
    table = Table("user", "source", "roles", "active", "locked", "last sign-in")
    now = dt.datetime.now(dt.UTC)
    with Session(engine, info=session_info(settings.redis_url)) as session:
        for user in session.scalars(sa.select(User).order_by(User.username)):
            locked = locked_seconds(session, user_key(user.username), now)
            table.add_row(
                escape(user.username),
                user.source,
                escape(", ".join(sorted(user.role_names))),
                "yes" if user.active else "no",
                f"{locked} s" if locked else "",
                local_time(user.last_login_at, settings.devices.default_timezone),
            )
    out.print(table)


@app.command("reset-password")
def user_reset_password(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password_env: PasswordOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set a new password (the user's sessions end; they must change it after signing in)."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from logmaster.api import audit, throttle
    from logmaster.api.accounts import AccountError, set_password
    from logmaster.api.models import User

    settings, engine = open_metadata(config, data_dir)
    with Session(engine, info=throttle.session_info(settings.redis_url)) as session:
        user = session.scalar(sa.select(User).where(User.username == username))
        if user is None:
            raise fail(f"no user {username!r}; `logmaster user list` shows them")
        try:
            set_password(session, settings.api, user, _password(password_env), reason="cli-reset")
        except AccountError as exc:
            raise fail(str(exc)) from exc
        user.must_change_password = True
        throttle.unlock(session, username=username)
        audit.record(
            session,
            actor=_actor(),
            source_ip=None,
            action="user.password-reset",
            target=f"user:{username}",
            result=audit.OK,
            details={},
        )
        session.commit()
    out.print(f"password of {escape(username)} reset; their sessions were closed")


@app.command("unlock")
def user_unlock(
    username: Annotated[str, typer.Argument(help="Login name.")],
    ip: Annotated[str | None, typer.Option(help="Also unblock this source address.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """End a lockout after failed sign-ins (of the account, and of --ip)."""
    from sqlalchemy.orm import Session

    from logmaster.api import audit, throttle

    settings, engine = open_metadata(config, data_dir)
    with Session(engine, info=throttle.session_info(settings.redis_url)) as session:
        count = throttle.unlock(session, username=username, ip=ip)
        audit.record(
            session,
            actor=_actor(),
            source_ip=None,
            action="user.unlock",
            target=f"user:{username}",
            result=audit.OK,
            details={"ip": ip},
        )
        session.commit()
    out.print(
        f"unlocked {escape(username)}"
        + (f" and {escape(ip)}" if ip else "")
        + ("" if count else " (nothing was locked)")
    )
