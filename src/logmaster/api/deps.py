"""FastAPI dependencies: the database session, the signed-in principal, permission checks.

Signatures read like prose::

    @router.get("/devices/{slug}/days")
    def list_days(slug: str, scope: Annotated[DeviceScope, Depends(device_scope("view"))]):
        if not scope.allows(slug):
            raise not_found(f"device {slug}")   # outside the scope is 404, never 403

:func:`current_principal` checks on every request: the bearer JWT (HS256 only, ``aud``,
``iss``, ``exp``), that its session is neither revoked, expired nor idle, that the account is
active, and the user's source networks and time windows. Roles, actions and device scopes
come from :mod:`logmaster.api.permcache` for the permissions generation read with the session
row, so a role change or a revocation still takes effect on the next request, not at the
token's expiry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
import sqlalchemy as sa
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from logmaster.api import audit, rbac
from logmaster.api.access import check_rules, client_ip
from logmaster.api.models import DEVICE_LOCATION, PERMISSION_STATE, AuthSession, User, as_utc
from logmaster.api.problems import ProblemError, forbidden, unauthorized
from logmaster.config import Settings

# Writing last_seen_at on every request would serialise readers on SQLite; a few seconds of
# slack on a 30-minute idle timeout does not matter.
LAST_SEEN_SLACK = dt.timedelta(seconds=10)
# Session method of a sign-in that must enrol a second factor before anything else.
ENROL_ONLY = "mfa-enrol"

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/login.")


def db_session(request: Request) -> Iterator[Session]:
    """A SQLAlchemy session for this request; uncommitted changes are rolled back at the end."""
    factory = request.app.state.sessions
    with factory() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session)]

# Ids in paths are bounded: an id past what a database integer holds is a 422, not a 500.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Numeric id.")]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def source_ip(request: Request) -> str:
    """The caller's address (trusted proxies' X-Forwarded-For honoured)."""
    return client_ip(request, request.app.state.trusted_proxies)


SourceIp = Annotated[str, Depends(source_ip)]


@dataclass(frozen=True)
class Principal:
    """The signed-in user of a request."""

    user_id: int
    username: str
    roles: frozenset[str]
    actions: frozenset[str]
    session_id: str
    # permission_state.generation when the request began (api/permcache.py)
    generation: int | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def _expired(kind: str, en: str, tr: str) -> ProblemError:
    return unauthorized(kind, en, tr)


def current_principal(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, or a 401/403 problem."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized(
            "not-signed-in",
            "Sign in first: send 'Authorization: Bearer <access token>'.",
            "Önce oturum açın: 'Authorization: Bearer <erişim belirteci>' gönderin.",
        )
    try:
        claims = request.app.state.signer.check(credentials.credentials)
    except jwt.ExpiredSignatureError:
        raise _expired(
            "token-expired",
            "The access token has expired; get a new one from POST /api/v1/auth/refresh.",
            "Erişim belirtecinin süresi doldu; POST /api/v1/auth/refresh ile yenisini alın.",
        ) from None
    except jwt.InvalidTokenError:
        raise unauthorized(
            "invalid-token",
            "The access token is not valid here; sign in again.",
            "Erişim belirteci geçerli değil; yeniden oturum açın.",
        ) from None
    settings = settings_of(request)
    now = dt.datetime.now(dt.UTC)
    # Columns, not ORM objects: this runs on every request (loading a User also loaded its
    # roles and their actions), and the permissions generation comes in the same query.
    row = session.execute(
        sa.select(
            AuthSession.revoked_at,
            AuthSession.revoked_reason,
            AuthSession.expires_at,
            AuthSession.method,
            AuthSession.last_seen_at,
            User.username,
            User.source,
            User.active,
            User.must_change_password,
            User.allowed_networks,
            User.allowed_windows,
            User.timezone,
            sa.select(PERMISSION_STATE.c.generation)
            .where(PERMISSION_STATE.c.id == 1)
            .scalar_subquery()
            .label("generation"),
        )
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.id == claims.session_id, User.id == claims.user_id)
    ).one_or_none()
    if row is None:
        raise unauthorized(
            "session-ended",
            "This session no longer exists; sign in again.",
            "Bu oturum artık yok; yeniden oturum açın.",
        )
    if row.revoked_at is not None or (as_utc(row.expires_at) or now) <= now:
        raise unauthorized(
            "session-ended",
            f"This session has ended ({row.revoked_reason or 'expired'}); sign in again.",
            f"Bu oturum sona erdi ({row.revoked_reason or 'süresi doldu'}); yeniden oturum açın.",
        )
    if row.method == ENROL_ONLY and not request.url.path.startswith("/api/v1/auth/"):
        raise ProblemError(
            403,
            "mfa-enrolment-required",
            "Your role requires a second factor: enrol one (POST /api/v1/auth/mfa/enrol, then "
            "/confirm) before using the API.",
            "Rolünüz ikinci doğrulama adımı gerektiriyor: API'yi kullanmadan önce kaydolun "
            "(POST /api/v1/auth/mfa/enrol, ardından /confirm).",
            title="Second factor enrolment required",
        )
    if (
        row.must_change_password
        and row.source == "local"
        and not request.url.path.startswith("/api/v1/auth/")
    ):
        raise ProblemError(
            403,
            "password-change-required",
            "Your password was set by an administrator (or at first run): change it with "
            "POST /api/v1/auth/password before using the API.",
            "Parolanız bir yönetici tarafından (veya ilk kurulumda) belirlendi: API'yi "
            "kullanmadan önce POST /api/v1/auth/password ile değiştirin.",
            title="Password change required",
        )
    if not row.active:
        raise unauthorized(
            "account-disabled", "This account is disabled.", "Bu hesap devre dışı bırakıldı."
        )
    last_seen = as_utc(row.last_seen_at) or now
    idle = dt.timedelta(seconds=settings.api.idle_timeout_s)
    if now - last_seen > idle:
        _update_session(session, claims.session_id, revoked_at=now, revoked_reason="idle")
        session.commit()
        raise unauthorized(
            "session-idle",
            f"The session was idle for more than {settings.api.idle_timeout_s // 60} minutes "
            "and was closed; sign in again.",
            f"Oturum {settings.api.idle_timeout_s // 60} dakikadan uzun süre boşta kaldığı için "
            "kapatıldı; yeniden oturum açın.",
        )
    check_rules(
        row.username,
        list(row.allowed_networks or []),
        list(row.allowed_windows or []),
        row.timezone,
        source_ip(request),
        now,
    )
    if now - last_seen > LAST_SEEN_SLACK:
        _update_session(session, claims.session_id, last_seen_at=now)
    names, actions = request.app.state.permissions.get(
        row.generation, ("roles", claims.user_id), lambda: _roles(session, claims.user_id)
    )
    principal = Principal(
        claims.user_id, row.username, names, actions, claims.session_id, row.generation
    )
    # Ends the (SQLite: write-locked) transaction now rather than after the route.
    session.commit()
    request.state.principal = principal
    return principal


def _update_session(session: Session, session_id: str, **values: Any) -> None:
    session.execute(sa.update(AuthSession).where(AuthSession.id == session_id).values(**values))


def _roles(session: Session, user_id: int) -> tuple[frozenset[str], frozenset[str]]:
    """The user's role names and role actions."""
    roles = rbac.user_roles(session, user_id)
    return frozenset(r.name for r in roles), frozenset(rbac.role_actions(roles))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(action: str) -> Any:
    """Dependency: the principal, or 403 when none of their roles includes ``action``."""
    if action not in rbac.ACTIONS:
        raise ValueError(f"unknown action {action!r}")

    def check(principal: CurrentPrincipal) -> Principal:
        if action not in principal.actions:
            raise forbidden(
                f"This needs the permission {action}, which none of your roles "
                f"({', '.join(sorted(principal.roles)) or 'none'}) has.",
                f"Bu işlem {action} iznini gerektirir; rollerinizin hiçbirinde "
                f"({', '.join(sorted(principal.roles)) or 'yok'}) bu izin yok.",
            )
        return principal

    return Depends(check)


@dataclass(frozen=True)
class DeviceScope:
    """The devices on which the caller may perform ``action``."""

    action: str
    device_ids: frozenset[int]
    slugs: frozenset[str]

    def allows(self, slug: str) -> bool:
        return slug in self.slugs


def scope_for(session: Session, user_id: int, action: str) -> DeviceScope:
    ids = rbac.permitted_devices(session, user_id, action)
    slugs = (
        set(
            session.scalars(
                sa.select(DEVICE_LOCATION.c.slug).where(DEVICE_LOCATION.c.id.in_(list(ids)))
            )
        )
        if ids
        else set()
    )
    return DeviceScope(action, frozenset(ids), frozenset(slugs))


def device_scope(action: str) -> Any:
    """Dependency -> :class:`DeviceScope` of the caller for the device action ``action``."""
    rbac.role_action_for(action)  # unknown actions fail at import, not at request time

    def scope(request: Request, principal: CurrentPrincipal, session: DbSession) -> DeviceScope:
        result: DeviceScope = request.app.state.permissions.get(
            principal.generation,
            ("scope", principal.user_id, action),
            lambda: scope_for(session, principal.user_id, action),
        )
        session.commit()
        return result

    return Depends(scope)


def principal_of(request: Request) -> Principal | None:
    """The principal a previous dependency stored on the request (for middleware/audit)."""
    value: Principal | None = getattr(request.state, "principal", None)
    return value


@dataclass(frozen=True)
class Auditor:
    """Records audit entries for one request: who (the principal), from where (its address).

    Entries are written through the request's own database session, never a second connection
    (on SQLite a second writer would wait for the first, in the same request). Without
    ``session=``, ``log.record("search", "query", details={"q": q})`` commits that session at
    once (with whatever the route changed in it so far). With ``session=`` the entry joins the
    route's transaction and the route's ``session.commit()`` stores both or neither (admin
    changes). The actor is the request's principal at the time of the call (``actor=``
    overrides it, e.g. for a failed sign-in).
    """

    request: Request
    session: Session

    def record(
        self,
        action: str,
        target: str,
        result: str = audit.OK,
        details: dict[str, Any] | None = None,
        *,
        session: Session | None = None,
        actor: str | None = None,
    ) -> None:
        principal = principal_of(self.request)
        audit.record(
            session if session is not None else self.session,
            actor=actor or (principal.username if principal else None),
            source_ip=source_ip(self.request),
            action=action,
            target=target,
            result=result,
            details=details or {},
        )
        if session is None:
            self.session.commit()


def auditor(request: Request, session: DbSession) -> Auditor:
    return Auditor(request, session)


AuditLog = Annotated[Auditor, Depends(auditor)]
