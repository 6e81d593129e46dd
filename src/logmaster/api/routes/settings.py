"""The effective LDAP, TSA, seal and retention settings, and tests of the directory and the TSAs.

``logmaster.toml`` stays the authority: an operator with root on the server edits it and
restarts LogMaster. The console only shows what the running API loaded (``GET /settings``) and
checks it against the real services:

- ``POST /settings/ldap/test``: connect as sign-in would, bind the service account (search
  mode), and optionally find a user, their groups and the roles those map to.
- ``POST /settings/tsa/test``: one timestamp from each configured TSA (or the built-in one when
  none is configured), checked like a seal's stamp: status, latency, the TSA certificate, and
  Kamu SM's credit balance. A Kamu SM stamp costs one credit, like any other.

Secrets are never returned, not even their file names: only whether a password file or the
Kamu SM credentials are there. Every route is for administrators and is audited
(``settings.view``, ``settings.ldap_test``, ``settings.tsa_test``); a test that fails answers
200 with ``ok: false`` and the step that failed, a test that cannot run (nothing configured)
is a 409 problem. Retention per device and legal holds are served by ``routes/retention.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Annotated, Any

from cryptography import x509
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from logmaster.api import ldap
from logmaster.api.audit import FAILED, OK
from logmaster.api.deps import AuditLog, Principal, require, settings_of
from logmaster.api.problems import PROBLEM_RESPONSES, conflict, forbidden
from logmaster.archive import tsa as tsa_client
from logmaster.config import Settings, TsaServerSettings

router = APIRouter(prefix="/settings", tags=["settings"], responses=PROBLEM_RESPONSES)

SettingsDep = Annotated[Settings, Depends(settings_of)]
TEST_DATA = b"LogMaster TSA test"


def _admin(principal: Annotated[Principal, require("manage_users")]) -> Principal:
    if not principal.is_admin:
        raise forbidden(
            "Only an administrator sees and tests the server settings.",
            "Sunucu ayarlarını yalnızca yönetici görebilir ve sınayabilir.",
        )
    return principal


Admin = Annotated[Principal, Depends(_admin)]


# -- effective settings ---------------------------------------------------------------------


class LdapSettingsOut(BaseModel):
    enabled: bool = Field(description="Whether LDAP sign-in is on ([ldap] url set).")
    url: str | None
    mode: str = Field(description="'template' (bind_dn_template) or 'search' (service account).")
    start_tls: bool
    tls_verify: bool
    tls_ca_file: str | None
    bind_dn_template: str | None
    search_bind_dn: str | None
    search_bind_password_set: bool = Field(
        description="Whether search_bind_password_file is set (the password is never shown)."
    )
    user_base: str
    user_filter: str
    group_base: str
    group_filter: str
    group_roles: dict[str, str] = Field(description="Group DN or cn -> LogMaster role.")
    timeout_s: float


class TsaServerOut(BaseModel):
    name: str
    kind: str = Field(description="rfc3161 | kamusm")
    url: str
    hash_algorithm: str
    policy: str | None
    ca_file: str | None
    timeout_s: float
    accredited: bool
    credentials: str | None = Field(
        description="Kamu SM only: where its customer id and password come from: 'file', "
        "'environment', or 'missing' (the values are never shown); null for other kinds."
    )


class TsaSettingsOut(BaseModel):
    servers: list[TsaServerOut] = Field(description="In priority order.")
    builtin: bool = Field(description="Built-in TSA used when no server is configured.")
    builtin_in_use: bool = Field(description="True when stamps come from the built-in TSA.")
    stamp_mode: str = Field(description="manifest (one stamp per manifest) | daily (one per run)")


class RetentionSettingsOut(BaseModel):
    default_days: int = Field(description="Days kept after a day ended, unless set per device.")
    auto_purge: bool
    seal_delay_s: int = Field(description="A day is sealed this long after local midnight.")
    compression: str


class SettingsOut(BaseModel):
    """The settings the running API loaded; change them in the file and restart."""

    config_file: str | None = Field(
        description="The TOML file read at start (null: defaults and environment only)."
    )
    ldap: LdapSettingsOut
    tsa: TsaSettingsOut
    retention: RetentionSettingsOut


def _path(value: object) -> str | None:
    return str(value) if value else None


def _credentials(server: TsaServerSettings) -> str | None:
    if server.kind != "kamusm":
        return None
    if server.credentials_file is not None:
        return "file" if server.credentials_file.is_file() else "missing"
    present = os.environ.get(server.customer_id_env) and os.environ.get(server.password_env)
    return "environment" if present else "missing"


def effective(settings: Settings) -> SettingsOut:
    """The settings as the console shows them: no secret, no secret file name."""
    lp, tp = settings.ldap, settings.tsa
    return SettingsOut(
        config_file=_path(type(settings).model_config.get("toml_file")),
        ldap=LdapSettingsOut(
            enabled=bool(lp.url),
            url=lp.url,
            mode="template" if lp.bind_dn_template else "search",
            start_tls=lp.start_tls,
            tls_verify=lp.tls_verify,
            tls_ca_file=_path(lp.tls_ca_file),
            bind_dn_template=lp.bind_dn_template,
            search_bind_dn=lp.search_bind_dn,
            search_bind_password_set=lp.search_bind_password_file is not None,
            user_base=lp.user_base,
            user_filter=lp.user_filter,
            group_base=lp.group_base,
            group_filter=lp.group_filter,
            group_roles=dict(lp.group_roles),
            timeout_s=lp.timeout_s,
        ),
        tsa=TsaSettingsOut(
            servers=[
                TsaServerOut(
                    name=s.name,
                    kind=s.kind,
                    url=s.url,
                    hash_algorithm=s.hash_algorithm,
                    policy=s.policy,
                    ca_file=_path(s.ca_file),
                    timeout_s=s.timeout_s,
                    accredited=s.accredited,
                    credentials=_credentials(s),
                )
                for s in tp.servers
            ],
            builtin=tp.builtin,
            builtin_in_use=not tp.servers and tp.builtin,
            stamp_mode=settings.seal.stamp_mode,
        ),
        retention=RetentionSettingsOut(
            default_days=settings.retention.default_days,
            auto_purge=settings.retention.auto_purge,
            seal_delay_s=settings.seal.delay_s,
            compression=settings.seal.compression,
        ),
    )


@router.get("", response_model=SettingsOut)
def get_settings(settings: SettingsDep, admin: Admin, log: AuditLog) -> SettingsOut:
    """The effective LDAP, TSA and retention settings (admin; audited; no secrets)."""
    log.record("settings.view", "*", OK)
    return effective(settings)


# -- LDAP test --------------------------------------------------------------------------------


class LdapTestIn(BaseModel):
    username: str = Field(
        default="",
        max_length=256,
        description="Optional: a user to find, with their groups and mapped roles.",
    )


class LdapStepOut(BaseModel):
    name: str = Field(description="connect | bind | user | groups")
    ok: bool
    message: str
    ms: float = Field(description="Milliseconds the step took.")


class LdapUserOut(BaseModel):
    dn: str
    display_name: str
    email: str
    groups: list[str]
    roles: list[str] = Field(description="Roles the groups map to (none: sign-in is refused).")


class LdapTestOut(BaseModel):
    ok: bool = Field(description="True when every step worked.")
    url: str
    mode: str
    steps: list[LdapStepOut]
    user: LdapUserOut | None


@router.post("/ldap/test", response_model=LdapTestOut)
def test_ldap(body: LdapTestIn, settings: SettingsDep, admin: Admin, log: AuditLog) -> LdapTestOut:
    """Connect to the directory and bind the service account; optionally look a user up."""
    if not settings.ldap.url:
        raise conflict(
            "LDAP is not configured: set [ldap] url in logmaster.toml and restart.",
            "LDAP yapılandırılmamış: logmaster.toml içinde [ldap] url ayarlayıp yeniden başlatın.",
        )
    check = ldap.check_directory(settings.ldap, body.username.strip())
    out = LdapTestOut(
        ok=check.ok,
        url=settings.ldap.url,
        mode=check.mode,
        steps=[LdapStepOut(name=s.name, ok=s.ok, message=s.message, ms=s.ms) for s in check.steps],
        user=LdapUserOut(**vars(check.user)) if check.user else None,
    )
    details: dict[str, object] = {"mode": check.mode, "steps": {s.name: s.ok for s in check.steps}}
    if check.user:
        details["roles"] = check.user.roles
    log.record("settings.ldap_test", body.username or "*", OK if check.ok else FAILED, details)
    return out


# -- TSA test ---------------------------------------------------------------------------------


class TsaTestIn(BaseModel):
    name: str | None = Field(
        default=None, max_length=32, description="Only this TSA (default: every configured one)."
    )


class TsaResultOut(BaseModel):
    name: str = Field(description="The configured name; 'builtin' for the built-in TSA.")
    kind: str = Field(description="rfc3161 | kamusm | builtin")
    url: str | None
    accredited: bool
    ok: bool
    reason: str | None = Field(
        default=None, description="Why it failed (the reason of logmaster_tsa_failures_total)."
    )
    message: str
    latency_ms: float = 0.0
    gen_time: dt.datetime | None = None
    serial: str | None = Field(default=None, description="The token's serial number (decimal).")
    policy: str | None = None
    subject: str | None = Field(
        default=None, description="RFC 4514 subject of the TSA's signing certificate."
    )
    issuer: str | None = None
    certificate_expires: dt.datetime | None = None
    balance: int | None = Field(
        default=None, description="Kamu SM only: the remaining timestamp credit."
    )
    balance_error: str | None = None


class TsaTestOut(BaseModel):
    ok: bool = Field(description="True when every TSA tested gave a valid stamp.")
    results: list[TsaResultOut]


def _identity(cfg: TsaServerSettings | None) -> dict[str, Any]:
    if cfg is None:
        return {"name": "builtin", "kind": "builtin", "url": None, "accredited": False}
    return {"name": cfg.name, "kind": cfg.kind, "url": cfg.url, "accredited": cfg.accredited}


def _stamp_one(
    stamper: tsa_client.Stamper, trusted: list[x509.Certificate], cfg: TsaServerSettings | None
) -> TsaResultOut:
    """One checked stamp over a fresh test text (and Kamu SM's balance)."""
    who = _identity(cfg)
    data = TEST_DATA + f" {dt.datetime.now(dt.UTC).isoformat()}".encode()
    start = time.monotonic()
    try:
        stamp = stamper.stamp(data)
        latency = round((time.monotonic() - start) * 1000, 1)
        # The stamper checked the token already; checking again gives its signer certificate.
        check = tsa_client.check_response(
            stamp.response, data, trusted, tsa=who["name"], require_chain=bool(trusted)
        )
        result = TsaResultOut(
            **who,
            ok=True,
            message=f"stamp granted at {check.gen_time.isoformat()}",
            latency_ms=latency,
            gen_time=check.gen_time,
            serial=str(check.serial),
            policy=check.policy,
            subject=check.tsa_subject,
            issuer=check.signer.issuer.rfc4514_string(),
            certificate_expires=check.signer.not_valid_after_utc,
        )
    except tsa_client.TsaError as exc:
        result = TsaResultOut(
            **who,
            ok=False,
            reason=exc.reason,
            message=exc.detail,
            latency_ms=round((time.monotonic() - start) * 1000, 1),
        )
    if cfg is not None and cfg.kind == "kamusm":
        from logmaster.archive import kamusm

        try:
            result.balance = kamusm.balance(cfg)
        except tsa_client.TsaError as exc:
            result.balance_error = exc.detail
    return result


@router.post("/tsa/test", response_model=TsaTestOut)
def test_tsa(body: TsaTestIn, settings: SettingsDep, admin: Admin, log: AuditLog) -> TsaTestOut:
    """Request one timestamp from each configured TSA (or the built-in one) and check it."""
    if not settings.tsa.servers and not settings.tsa.builtin:
        raise conflict(
            "No TSA is configured and the built-in TSA is off: add [[tsa.servers]] to "
            "logmaster.toml, or set tsa.builtin = true, and restart.",
            "Zaman damgası sağlayıcısı yapılandırılmamış ve yerleşik sağlayıcı kapalı: "
            "logmaster.toml içine [[tsa.servers]] ekleyin veya tsa.builtin = true yapın.",
        )
    # Only the TSAs that stamp are tested: the built-in one stamps when no server is set.
    names = [s.name for s in settings.tsa.servers] or ["builtin"]
    if body.name is not None and body.name not in names:
        raise conflict(
            f"No TSA named {body.name!r} stamps here; configured: {', '.join(names)}.",
            f"{body.name!r} adında damgalayan sağlayıcı yok; tanımlı olanlar: {', '.join(names)}.",
        )
    results: list[TsaResultOut] = []
    for cfg in settings.tsa.servers:
        if body.name not in (None, cfg.name):
            continue
        try:
            client = tsa_client.HttpTsa(cfg)
        except tsa_client.TsaError as exc:
            results.append(_config_error(cfg, exc))
            continue
        results.append(_stamp_one(client, list(client.trusted), cfg))
    if not settings.tsa.servers:
        from logmaster.archive.tsa_server import BuiltinTsa

        builtin = BuiltinTsa(settings.data_dir / "tsa")
        results.append(_stamp_one(builtin, list(builtin.trusted), None))
    ok = all(r.ok for r in results)
    log.record(
        "settings.tsa_test", body.name or "*", OK if ok else FAILED,
        {r.name: r.reason or "ok" for r in results},
    )  # fmt: skip
    return TsaTestOut(ok=ok, results=results)


def _config_error(cfg: TsaServerSettings, exc: tsa_client.TsaError) -> TsaResultOut:
    return TsaResultOut(**_identity(cfg), ok=False, reason=exc.reason, message=exc.detail)
