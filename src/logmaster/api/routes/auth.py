"""Sign-in: login, refresh, logout, own password, second factor (TOTP) enrolment.

The refresh token travels only in the ``lm_refresh`` cookie (HttpOnly, Secure, SameSite=Strict,
Path=/api/v1/auth). The two endpoints that read that cookie (refresh, logout) are defended
against CSRF twice: the ``Origin`` header, when sent, must be the API's own origin or one of
``[api] allowed_origins``; and the ``X-CSRF-Token`` header must equal the ``lm_csrf`` cookie
(double submit: a page on another origin can neither read that cookie nor set the header).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Cookie, Request, Response
from fastapi.params import Header
from pydantic import BaseModel, Field

from logmaster.api import audit, metrics, mfa, throttle
from logmaster.api import ldap as ldap_auth
from logmaster.api.access import check_rules
from logmaster.api.accounts import AccountError, set_password
from logmaster.api.deps import (
    ENROL_ONLY,
    AuditLog,
    CurrentPrincipal,
    DbSession,
    SourceIp,
    settings_of,
)
from logmaster.api.models import AuthSession, RefreshToken, Role, User, UserRole, as_utc
from logmaster.api.passwords import needs_rehash, verify
from logmaster.api.problems import ProblemError, bad_request, unauthorized
from logmaster.api.tokens import (
    hash_refresh_token,
    new_refresh_token,
    new_session_id,
    successor_refresh_token,
)

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "lm_refresh"
CSRF_COOKIE = "lm_csrf"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/api/v1/auth"


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=1024, pattern=r"^[^\x00]+$")
    totp_code: str | None = Field(default=None, max_length=16, description="6-digit TOTP code.")
    recovery_code: str | None = Field(
        default=None, max_length=64, description="A recovery code instead of the TOTP code."
    )


class UserSummary(BaseModel):
    id: int
    username: str
    display_name: str
    roles: list[str]
    actions: list[str]
    mfa_enabled: bool
    must_change_password: bool


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth 2 token type)
    expires_at: dt.datetime
    expires_in: int
    csrf_token: str = Field(description="Send back as X-CSRF-Token on refresh and logout.")
    mfa_enrolment_required: bool = Field(
        default=False,
        description="True: this session may only enrol a second factor (/auth/mfa/*).",
    )
    user: UserSummary


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MfaEnrolment(BaseModel):
    secret: str = Field(description="Base32 secret, for typing into an authenticator app.")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as a QR code (SVG document).")


class MfaCode(BaseModel):
    code: str = Field(min_length=6, max_length=16)


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Each works once; shown only now.")


class Done(BaseModel):
    ok: bool = True


def _summary(session: DbSession, user: User) -> UserSummary:
    roles = sorted(user.role_names)
    actions = sorted({a for r in user.roles for a in r.action_names})
    return UserSummary(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=roles,
        actions=actions,
        mfa_enabled=mfa.enabled(session, user.id),
        must_change_password=user.must_change_password,
    )


def _mfa_required(session: DbSession, request: Request, user: User) -> bool:
    by_settings = set(settings_of(request).api.mfa_required_roles)
    return any(r.mfa_required or r.name in by_settings for r in user.roles)


def _set_cookies(request: Request, response: Response, token: str, max_age: int) -> str:
    secure = settings_of(request).api.cookie_secure
    csrf = secrets.token_urlsafe(24)
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=False,
        samesite="strict",
    )
    return csrf


def _clear_cookies(request: Request, response: Response) -> None:
    secure = settings_of(request).api.cookie_secure
    response.delete_cookie(
        REFRESH_COOKIE, path=COOKIE_PATH, secure=secure, httponly=True, samesite="strict"
    )
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")


def _issue(
    request: Request,
    response: Response,
    session: DbSession,
    user: User,
    auth: AuthSession,
    refresh: tuple[str, str] | None = None,
    *,
    stored: bool = False,
) -> TokenResponse:
    """New access token and refresh cookie; ``refresh``: that (token, digest) instead of a
    random one, ``stored``: it is in the database already (handed out again)."""
    token, digest = refresh or new_refresh_token()
    if not stored:
        session.add(RefreshToken(session_id=auth.id, token_hash=digest))
    access, expires = request.app.state.signer.issue(user.id, auth.id, user.username)
    now = dt.datetime.now(dt.UTC)
    remaining = int(((as_utc(auth.expires_at) or now) - now).total_seconds())
    csrf = _set_cookies(request, response, token, max(remaining, 1))
    return TokenResponse(
        access_token=access,
        expires_at=expires,
        expires_in=int((expires - now).total_seconds()),
        csrf_token=csrf,
        mfa_enrolment_required=auth.method == ENROL_ONLY,
        user=_summary(session, user),
    )


def _ldap_user(session: DbSession, request: Request, body: LoginRequest) -> User | None:
    """Bind against the directory; creates or updates the local LDAP user with mapped roles."""
    settings = settings_of(request).ldap
    try:
        found = ldap_auth.authenticate(settings, body.username, body.password)
    except ldap_auth.LdapUnavailableError as exc:
        raise ProblemError(
            503,
            "ldap-unavailable",
            f"The directory (LDAP) cannot be reached, so sign-in is not possible now: {exc}.",
            "Dizin sunucusuna (LDAP) ulaşılamıyor; şu anda oturum açılamaz.",
            title="Directory unavailable",
        ) from exc
    if found is None:
        return None
    user = session.scalar(sa.select(User).where(User.username == body.username.lower()))
    # A group_roles value naming no existing role gives nothing: treat it like no mapping.
    role_ids = list(session.scalars(sa.select(Role.id).where(Role.name.in_(found.roles))))
    if not role_ids:
        raise ProblemError(
            403,
            "ldap-no-role",
            f"The directory accepted {body.username}, but none of their groups maps to a "
            "LogMaster role; ask an administrator to add the group to [ldap] group_roles.",
            f"Dizin {body.username} kullanıcısını doğruladı, ancak gruplarının hiçbiri bir "
            "LogMaster rolüne eşlenmemiş; yöneticinizden grubu [ldap] group_roles'a eklemesini "
            "isteyin.",
            title="No role for this directory user",
        )
    if user is None:
        user = User(
            username=body.username.lower(),
            source="ldap",
            allowed_networks=[],
            allowed_windows=[],
        )
        session.add(user)
    user.display_name, user.email = found.display_name, found.email
    session.flush()
    session.execute(sa.delete(UserRole).where(UserRole.user_id == user.id))
    for role_id in role_ids:
        session.add(UserRole(user_id=user.id, role_id=role_id))
    session.flush()
    session.expire(user, ["roles"])
    return user


def _refuse(
    session: DbSession,
    log: AuditLog,
    request: Request,
    username: str,
    ip: str,
    reason: str,
) -> ProblemError:
    """Count a failed sign-in, audit it, commit; the problem to raise."""
    metrics.signin_failed("mfa" if reason == "mfa-code" else "credentials")
    settings = settings_of(request).api
    account_locked, address_blocked = throttle.failure(session, settings, username, ip)
    log.record(
        "auth.login",
        f"user:{username}",
        audit.FAILED,
        {"reason": reason},
        session=session,
        actor=username,
    )
    for locked, kind, subject in (
        (account_locked, "account", username),
        (address_blocked, "address", ip),
    ):
        if locked:
            log.record(
                "auth.lockout",
                f"{kind}:{subject}",
                audit.DENIED,
                {"lockout_s": settings.lockout_s},
                session=session,
                actor=username,
            )
    session.commit()
    if account_locked or address_blocked:
        return throttle.locked_problem(
            "account" if account_locked else "address",
            username if account_locked else ip,
            settings.lockout_s,
        )
    if reason == "mfa-code":
        return unauthorized(
            "mfa-invalid",
            "The second-factor code is wrong or was already used.",
            "İkinci doğrulama kodu yanlış veya daha önce kullanılmış.",
        )
    return unauthorized(
        "invalid-credentials",
        "Wrong username or password.",
        "Kullanıcı adı veya parola yanlış.",
    )


@router.post("/login")
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: DbSession,
    ip: SourceIp,
    log: AuditLog,
) -> TokenResponse:
    """Sign in with username and password (plus a TOTP or recovery code when MFA is on)."""
    settings = settings_of(request)
    username = body.username.strip().lower()
    try:
        throttle.check(session, username, ip)
    except ProblemError:
        metrics.signin_failed("locked")
        log.record("auth.login", f"user:{username}", "locked", {}, actor=username)
        raise
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is not None and user.source == "local":
        ok = verify(user.password_hash, body.password)
        if ok and user.password_hash and needs_rehash(user.password_hash):
            from logmaster.api.passwords import hash_password

            user.password_hash = hash_password(body.password)
    elif settings.ldap.url and (user is None or user.source == "ldap"):
        try:
            user = _ldap_user(session, request, body.model_copy(update={"username": username}))
        except ProblemError:
            metrics.signin_failed("ldap")
            raise
        ok = user is not None
    else:
        verify(None, body.password)  # same time as a wrong password
        ok = False
    if not ok or user is None:
        raise _refuse(session, log, request, username, ip, "credentials")
    if not user.active:
        metrics.signin_failed("disabled")
        log.record(
            "auth.login", f"user:{username}", audit.DENIED, {"reason": "disabled"}, actor=username
        )
        raise unauthorized(
            "account-disabled", "This account is disabled.", "Bu hesap devre dışı bırakıldı."
        )
    try:
        check_rules(
            username,
            list(user.allowed_networks or []),
            list(user.allowed_windows or []),
            user.timezone,
            ip,
        )
    except ProblemError as exc:
        metrics.signin_failed("window" if exc.kind == "time-window" else "network")
        log.record(
            "auth.login", f"user:{username}", audit.DENIED, {"reason": exc.kind}, actor=username
        )
        raise
    method = "ldap" if user.source == "ldap" else "password"
    if mfa.enabled(session, user.id):
        if body.totp_code:
            if not mfa.check_code(session, request.app.state.mfa_key, user.id, body.totp_code):
                raise _refuse(session, log, request, username, ip, "mfa-code")
            method += "+totp"
        elif body.recovery_code:
            if not mfa.use_recovery_code(session, user.id, body.recovery_code):
                raise _refuse(session, log, request, username, ip, "mfa-code")
            method += "+recovery"
        else:
            raise unauthorized(
                "mfa-required",
                "Enter the 6-digit code of your authenticator app (totp_code) or a recovery code.",
                "Doğrulama uygulamanızdaki 6 haneli kodu (totp_code) veya bir kurtarma kodu girin.",
            )
    elif _mfa_required(session, request, user):
        method = ENROL_ONLY
    throttle.success(session, username)
    now = dt.datetime.now(dt.UTC)
    auth = AuthSession(
        id=new_session_id(),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=settings.api.refresh_token_ttl_s),
        source_ip=ip,
        user_agent=(request.headers.get("user-agent") or "")[:300],
        method=method,
    )
    session.add(auth)
    user.last_login_at = now
    session.flush()
    result = _issue(request, response, session, user, auth)
    log.record(
        "auth.login",
        f"user:{username}",
        audit.OK,
        {"method": method, "session": auth.id[:8]},
        session=session,
        actor=username,
    )
    session.commit()
    return result


def check_csrf(request: Request, header: str | None, cookie: str | None) -> None:
    """The two CSRF checks of the cookie path (see the module docstring)."""
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.url.netloc}"
        allowed = {own, *settings_of(request).api.allowed_origins}
        if origin.rstrip("/") not in allowed:
            raise ProblemError(
                403,
                "csrf-origin",
                f"Requests from {origin} may not use the sign-in cookie.",
                f"{origin} kaynağından gelen istekler oturum çerezini kullanamaz.",
                title="Cross-site request refused",
            )
    if not header or not cookie or not secrets.compare_digest(header, cookie):
        raise ProblemError(
            403,
            "csrf-token",
            f"Send the {CSRF_HEADER} header with the value of the {CSRF_COOKIE} cookie.",
            f"{CSRF_HEADER} başlığını {CSRF_COOKIE} çerezinin değeriyle gönderin.",
            title="Cross-site request refused",
        )


CsrfHeader = Annotated[str | None, Header(alias=CSRF_HEADER)]
RefreshCookie = Annotated[str | None, Cookie(alias=REFRESH_COOKIE)]
CsrfCookie = Annotated[str | None, Cookie(alias=CSRF_COOKIE)]


@router.post("/refresh")
def refresh(
    request: Request,
    response: Response,
    session: DbSession,
    log: AuditLog,
    ip: SourceIp,
    csrf_header: CsrfHeader = None,
    refresh_cookie: RefreshCookie = None,
    csrf_cookie: CsrfCookie = None,
) -> TokenResponse:
    """Trade the refresh cookie for a new access token (and a new refresh cookie)."""
    check_csrf(request, csrf_header, csrf_cookie)
    if not refresh_cookie:
        raise unauthorized(
            "no-refresh-token",
            "No sign-in cookie; sign in again.",
            "Oturum çerezi yok; yeniden oturum açın.",
        )
    token = session.scalar(
        sa.select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(refresh_cookie))
    )
    ended = unauthorized(
        "session-ended",
        "This session has ended; sign in again.",
        "Bu oturum sona erdi; yeniden oturum açın.",
    )
    if token is None:
        log.record("auth.refresh", "session:unknown", audit.FAILED, {"reason": "unknown-token"})
        _clear_cookies(request, response)
        raise ended
    auth = session.get(AuthSession, token.session_id)
    assert auth is not None
    user = session.get(User, auth.user_id)
    assert user is not None
    now = dt.datetime.now(dt.UTC)
    target = f"session:{auth.id[:8]}"
    successor = successor_refresh_token(request.app.state.signer.key, refresh_cookie)
    again = token.used_at is not None  # rotated already: a second tab, or a stolen copy
    if again and not _just_rotated(request, session, token, successor[1], now):
        raise _reused(session, log, auth, user, target, now)
    idle = dt.timedelta(seconds=settings_of(request).api.idle_timeout_s)
    reason = None
    if auth.revoked_at is not None:
        reason = auth.revoked_reason or "revoked"
    elif (as_utc(auth.expires_at) or now) <= now:
        reason = "expired"
    elif now - (as_utc(auth.last_seen_at) or now) > idle:
        reason = "idle"
        auth.revoked_at, auth.revoked_reason = now, "idle"
    elif not user.active:
        reason = "disabled"
    if reason is not None:
        log.record(
            "auth.refresh",
            target,
            audit.DENIED,
            {"reason": reason},
            session=session,
            actor=user.username,
        )
        session.commit()
        raise ended
    try:
        check_rules(
            user.username,
            list(user.allowed_networks or []),
            list(user.allowed_windows or []),
            user.timezone,
            ip,
        )
    except ProblemError as exc:
        log.record("auth.refresh", target, audit.DENIED, {"reason": exc.kind}, actor=user.username)
        raise
    if not again and not _claim(session, token, now):  # another tab rotated it just now
        if not _just_rotated(request, session, token, successor[1], now):
            raise _reused(session, log, auth, user, target, now)
        again = True
    result = _issue(request, response, session, user, auth, successor, stored=again)
    details = {"concurrent": True} if again else {}
    log.record("auth.refresh", target, audit.OK, details, session=session, actor=user.username)
    session.commit()
    return result


def _claim(session: DbSession, token: RefreshToken, now: dt.datetime) -> bool:
    """Mark ``token`` used, unless a concurrent request did so first (then re-read it)."""
    result = session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(token)
    return int(getattr(result, "rowcount", 0) or 0) == 1


def _just_rotated(
    request: Request, session: DbSession, token: RefreshToken, successor: str, now: dt.datetime
) -> bool:
    """True when ``token`` rotated within ``[api] refresh_grace_s`` and its successor (digest
    ``successor``) is unused: two tabs refreshing at once, not a copy replayed later."""
    grace = settings_of(request).api.refresh_grace_s
    used = as_utc(token.used_at)
    if not grace or used is None or (now - used).total_seconds() > grace:
        return False
    row = session.scalar(sa.select(RefreshToken).where(RefreshToken.token_hash == successor))
    return row is not None and row.session_id == token.session_id and row.used_at is None


def _reused(
    session: DbSession,
    log: AuditLog,
    auth: AuthSession,
    user: User,
    target: str,
    now: dt.datetime,
) -> ProblemError:
    """A rotated token came back: the client or a thief holds a copy. End the family."""
    if auth.revoked_at is None:
        auth.revoked_at, auth.revoked_reason = now, "refresh-reuse"
    log.record(
        "auth.refresh",
        target,
        audit.DENIED,
        {"reason": "reuse-detected"},
        session=session,
        actor=user.username,
    )
    session.commit()
    return unauthorized(
        "refresh-reuse",
        "This refresh token was already used; the session is closed for safety. Sign in again.",
        "Bu yenileme belirteci daha önce kullanılmış; güvenlik için oturum kapatıldı. "
        "Yeniden oturum açın.",
    )


@router.post("/logout")
def logout(
    request: Request,
    response: Response,
    session: DbSession,
    log: AuditLog,
    csrf_header: CsrfHeader = None,
    refresh_cookie: RefreshCookie = None,
    csrf_cookie: CsrfCookie = None,
) -> Done:
    """End this sign-in session: its refresh and access tokens stop working."""
    check_csrf(request, csrf_header, csrf_cookie)
    _clear_cookies(request, response)
    if not refresh_cookie:
        return Done()
    token = session.scalar(
        sa.select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(refresh_cookie))
    )
    if token is None:
        return Done()
    auth = session.get(AuthSession, token.session_id)
    if auth is not None and auth.revoked_at is None:
        auth.revoked_at, auth.revoked_reason = dt.datetime.now(dt.UTC), "logout"
        user = session.get(User, auth.user_id)
        log.record(
            "auth.logout",
            f"session:{auth.id[:8]}",
            audit.OK,
            {},
            session=session,
            actor=user.username if user else None,
        )
    session.commit()
    return Done()


@router.get("/me")
def me(principal: CurrentPrincipal, session: DbSession) -> UserSummary:
    """The signed-in user: roles, actions, second-factor state."""
    user = session.get(User, principal.user_id)
    assert user is not None
    return _summary(session, user)


@router.post("/password")
def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    session: DbSession,
    request: Request,
    log: AuditLog,
) -> Done:
    """Change your own password; your other sessions are closed."""
    user = session.get(User, principal.user_id)
    assert user is not None
    if user.source != "local" or not verify(user.password_hash, body.current_password):
        log.record(
            "auth.password", f"user:{user.username}", audit.FAILED, {"reason": "current-password"}
        )
        raise bad_request(
            "The current password is wrong.", "Mevcut parola yanlış.", kind="wrong-password"
        )
    try:
        set_password(
            session,
            settings_of(request).api,
            user,
            body.new_password,
            keep_session=principal.session_id,
        )
    except AccountError as exc:
        raise bad_request(str(exc), exc.message_tr, kind="password-policy") from exc
    log.record("auth.password", f"user:{user.username}", audit.OK, {}, session=session)
    session.commit()
    return Done()


@router.post("/mfa/enrol")
def enrol_mfa(
    principal: CurrentPrincipal, session: DbSession, request: Request, log: AuditLog
) -> MfaEnrolment:
    """Start TOTP enrolment: scan the QR code, then confirm with a first code."""
    if mfa.enabled(session, principal.user_id):
        raise ProblemError(
            409,
            "mfa-enabled",
            "A second factor is already active; disable it first to enrol a new one.",
            "İkinci doğrulama zaten etkin; yenisini eklemek için önce kapatın.",
        )
    secret, uri, svg = mfa.start(
        session, request.app.state.mfa_key, principal.user_id, principal.username
    )
    log.record("auth.mfa.enrol", f"user:{principal.username}", audit.OK, {}, session=session)
    session.commit()
    return MfaEnrolment(secret=secret, otpauth_uri=uri, qr_svg=svg)


@router.post("/mfa/confirm")
def confirm_mfa(
    body: MfaCode, principal: CurrentPrincipal, session: DbSession, request: Request, log: AuditLog
) -> RecoveryCodes:
    """Finish enrolment with a first code; returns recovery codes (shown once)."""
    codes = mfa.confirm(session, request.app.state.mfa_key, principal.user_id, body.code)
    if codes is None:
        log.record("auth.mfa.confirm", f"user:{principal.username}", audit.FAILED, {})
        raise bad_request(
            "The code is wrong; check the phone's clock and try again.",
            "Kod yanlış; telefonun saatini kontrol edip tekrar deneyin.",
            kind="mfa-invalid",
        )
    auth = session.get(AuthSession, principal.session_id)
    if auth is not None and auth.method == ENROL_ONLY:
        auth.method = "password+totp"
    log.record("auth.mfa.confirm", f"user:{principal.username}", audit.OK, {}, session=session)
    session.commit()
    return RecoveryCodes(recovery_codes=codes)


@router.post("/mfa/disable")
def disable_mfa(
    body: MfaCode, principal: CurrentPrincipal, session: DbSession, request: Request, log: AuditLog
) -> Done:
    """Turn your second factor off (needs a current code); not allowed when your role needs it."""
    user = session.get(User, principal.user_id)
    assert user is not None
    if _mfa_required(session, request, user):
        raise ProblemError(
            409,
            "mfa-required-by-role",
            "Your role requires a second factor; it cannot be turned off.",
            "Rolünüz ikinci doğrulama gerektiriyor; kapatılamaz.",
        )
    if not mfa.check_code(session, request.app.state.mfa_key, user.id, body.code):
        raise bad_request("The code is wrong.", "Kod yanlış.", kind="mfa-invalid")
    mfa.disable(session, user.id)
    log.record("auth.mfa.disable", f"user:{user.username}", audit.OK, {}, session=session)
    session.commit()
    return Done()
