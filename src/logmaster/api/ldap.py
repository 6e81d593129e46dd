"""LDAP / Active Directory sign-in (ldap3).

Two ways to find the user's DN: a template (``bind_dn_template``, e.g.
``uid={username},ou=people,dc=example,dc=org`` or AD's ``{username}@corp.example``) bound
directly, or a search with a service account (``search_bind_dn`` + a password file) for
``user_filter`` under ``user_base``, then a bind as the found DN. The user's groups are searched
with ``group_filter`` under ``group_base`` (as the user, or as the service account in search
mode); each group's DN or cn is looked up in ``group_roles``. A user none of whose groups maps to
a role is refused. Every value put into a DN or filter is escaped (RFC 4514 / RFC 4515), and an
empty password is refused before binding (an LDAP "unauthenticated bind" would succeed).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import ssl
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from logmaster.config import LdapSettings

# ldap3 2.9.1 imports names that pyasn1 0.6 marks deprecated; the warning is theirs, not ours.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3.core.tls
    from ldap3 import ALL_ATTRIBUTES, SUBTREE, Connection, Server, Tls
    from ldap3.core.exceptions import LDAPBindError, LDAPException, LDAPInvalidCredentialsResult
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn
    from ldap3.utils.tls_backport import CertificateError
    from ldap3.utils.tls_backport import match_hostname as _match_dns_name


def _match_hostname(cert: dict[str, Any], hostname: str) -> None:
    """ssl.match_hostname without its deprecation: IP addresses against IP SANs, names by
    ldap3's own copy of the DNS rules (which knows no IP SANs)."""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        _match_dns_name(cert, hostname)
        return
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "IP Address" and ipaddress.ip_address(value.strip()) == address:
            return
    raise CertificateError(f"the certificate is not valid for the address {hostname}")


# ldap3 checks certificate names with ssl.match_hostname: deprecated since Python 3.7 and gone
# in 3.12 (where ldap3 falls back to its copy, which ignores IP SANs).
ldap3.core.tls.match_hostname = _match_hostname


class LdapUnavailableError(RuntimeError):
    """The directory could not be reached or answered with an error (not a wrong password)."""


@dataclass
class LdapUser:
    dn: str
    display_name: str = ""
    email: str = ""
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)


def _server(settings: LdapSettings) -> Server:
    assert settings.url
    tls = None
    if settings.url.startswith("ldaps://") or settings.start_tls:
        tls = Tls(
            validate=ssl.CERT_REQUIRED if settings.tls_verify else ssl.CERT_NONE,
            ca_certs_file=str(settings.tls_ca_file) if settings.tls_ca_file else None,
        )
    return Server(settings.url, connect_timeout=settings.timeout_s, tls=tls)


def _open(settings: LdapSettings, dn: str, password: str) -> Connection:
    """A connection opened (and upgraded with StartTLS), not bound yet."""
    conn = Connection(
        _server(settings),
        user=dn,
        password=password,
        # ldap3 packs it into SO_RCVTIMEO as an integer.
        receive_timeout=max(1, math.ceil(settings.timeout_s)),
        raise_exceptions=True,
        read_only=True,
    )
    try:
        conn.open()
        if settings.start_tls:
            conn.start_tls()
    except (LDAPException, OSError) as exc:
        _close(conn)
        raise LdapUnavailableError(f"LDAP server {settings.url}: {exc}") from exc
    return conn


def _bind(settings: LdapSettings, conn: Connection) -> bool:
    """Bind an open connection: False for wrong credentials; raises LdapUnavailableError."""
    try:
        conn.bind()
    except (LDAPBindError, LDAPInvalidCredentialsResult):
        return False
    except (LDAPException, OSError) as exc:
        raise LdapUnavailableError(f"LDAP server {settings.url}: {exc}") from exc
    return True


def _connect(settings: LdapSettings, dn: str, password: str) -> Connection | None:
    """A bound connection, None for wrong credentials; raises LdapUnavailableError otherwise."""
    conn = _open(settings, dn, password)
    try:
        bound = _bind(settings, conn)
    except LdapUnavailableError:
        _close(conn)
        raise
    if not bound:
        _close(conn)
        return None
    return conn


def _close(conn: Connection) -> None:
    """Unbind, and close the socket ldap3 leaves open when connecting failed."""
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:
        sock.close()


def _first(entry_attrs: dict[str, object], name: str) -> str:
    value = entry_attrs.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value) if value else ""


def _cn(dn: str) -> str:
    head = dn.split(",", 1)[0]
    return head.split("=", 1)[1] if "=" in head else head


def authenticate(settings: LdapSettings, username: str, password: str) -> LdapUser | None:
    """The user with their mapped roles, or None for unknown user / wrong password."""
    if not settings.url or not password:
        return None
    service: Connection | None = None
    attrs: dict[str, object] = {}
    if settings.bind_dn_template:
        dn = settings.bind_dn_template.format(username=escape_rdn(username))
    else:
        secret = (
            settings.search_bind_password_file.read_text().strip()
            if settings.search_bind_password_file
            else ""
        )
        service = _connect(settings, settings.search_bind_dn or "", secret)
        if service is None:
            raise LdapUnavailableError("the LDAP search account was refused (search_bind_dn)")
        try:
            _search_user(settings, service, username)
        except LDAPException as exc:
            raise LdapUnavailableError(f"LDAP user search failed: {exc}") from exc
        if len(service.entries) != 1:
            _close(service)
            return None
        dn = service.entries[0].entry_dn
        attrs = dict(service.entries[0].entry_attributes_as_dict)
    conn = _connect(settings, dn, password)
    if conn is None:
        if service is not None:
            _close(service)
        return None
    reader = service or conn
    try:
        if not attrs:
            reader.search(dn, "(objectClass=*)", attributes=ALL_ATTRIBUTES, size_limit=1)
            if reader.entries:
                attrs = dict(reader.entries[0].entry_attributes_as_dict)
        reader.search(
            settings.group_base,
            settings.group_filter.format(
                user_dn=escape_filter_chars(dn), username=escape_filter_chars(username)
            ),
            SUBTREE,
            attributes=["cn"],
        )
        groups = [e.entry_dn for e in reader.entries]
    except LDAPException as exc:
        raise LdapUnavailableError(f"LDAP group search failed: {exc}") from exc
    finally:
        _close(conn)
        if service is not None:
            _close(service)
    mapping = {k.lower(): v for k, v in settings.group_roles.items()}
    roles = sorted(
        {mapping[key] for g in groups for key in (g.lower(), _cn(g).lower()) if key in mapping}
    )
    return LdapUser(
        dn=dn,
        display_name=_first(attrs, "displayName") or _first(attrs, "cn"),
        email=_first(attrs, "mail"),
        groups=groups,
        roles=roles,
    )


# -- the console's "Test LDAP connection" ---------------------------------------------------------


@dataclass
class LdapStep:
    """One step of a directory check: what was tried, whether it worked, what it said."""

    name: str  # connect | bind | user | groups
    ok: bool
    message: str
    ms: float


@dataclass
class LdapCheck:
    """The outcome of :func:`check_directory`."""

    mode: str  # "template" (bind_dn_template) or "search" (service account)
    steps: list[LdapStep] = field(default_factory=list)
    user: LdapUser | None = None

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)


def _timed(check: LdapCheck, name: str, start: float, ok: bool, message: str) -> bool:
    check.steps.append(LdapStep(name, ok, message, round((time.monotonic() - start) * 1000, 1)))
    return ok


def check_directory(settings: LdapSettings, username: str = "") -> LdapCheck:
    """Connect as sign-in would and, in search mode, bind the service account; with
    ``username`` also find that user and their groups and the roles they map to.

    Nobody's password is sent: with ``bind_dn_template`` the groups are read as the user at
    sign-in, so only the connection (and StartTLS) can be checked here.
    """
    assert settings.url
    check = LdapCheck(mode="template" if settings.bind_dn_template else "search")
    secret = ""
    if check.mode == "search" and settings.search_bind_password_file:
        try:
            secret = settings.search_bind_password_file.read_text().strip()
        except OSError as exc:
            _timed(check, "bind", time.monotonic(), False, f"cannot read the password file: {exc}")
            return check
    start = time.monotonic()
    try:
        conn = _open(settings, settings.search_bind_dn or "", secret)
    except LdapUnavailableError as exc:
        _timed(check, "connect", start, False, str(exc))
        return check
    tls = " with StartTLS" if settings.start_tls else ""
    try:
        _timed(check, "connect", start, True, f"connected to {settings.url}{tls}")
        if check.mode == "template":
            if username:
                dn = settings.bind_dn_template.format(username=escape_rdn(username))  # type: ignore[union-attr]
                message = (
                    f"{username} binds as {dn}; the groups are read with the user's own "
                    "password at sign-in (a service account, search_bind_dn, lets this test "
                    "read them)"
                )
                _timed(check, "user", time.monotonic(), True, message)
            return check
        start = time.monotonic()
        try:
            bound = _bind(settings, conn)
        except LdapUnavailableError as exc:
            _timed(check, "bind", start, False, str(exc))
            return check
        if not bound:
            _timed(check, "bind", start, False, f"the directory refused {settings.search_bind_dn}")
            return check
        _timed(check, "bind", start, True, f"bound as {settings.search_bind_dn}")
        if username:
            _lookup(settings, conn, username, check)
    finally:
        _close(conn)
    return check


def _search_user(settings: LdapSettings, service: Connection, username: str) -> None:
    """Search ``username`` with the bound service account; the results are in
    ``service.entries`` (two at most: more than one is refused by the callers)."""
    service.search(
        settings.user_base,
        settings.user_filter.format(username=escape_filter_chars(username)),
        SUBTREE,
        attributes=["cn", "displayName", "mail"],
        size_limit=2,
    )


def _lookup(settings: LdapSettings, service: Connection, username: str, check: LdapCheck) -> None:
    """Find ``username`` and its groups with the bound service account (search mode)."""
    start = time.monotonic()
    try:
        _search_user(settings, service, username)
    except LDAPException as exc:
        _timed(check, "user", start, False, f"user search failed: {exc}")
        return
    if len(service.entries) != 1:
        found = "no entry" if not service.entries else "more than one entry"
        _timed(check, "user", start, False, f"{found} for {username} under '{settings.user_base}'")
        return
    dn = service.entries[0].entry_dn
    attrs = dict(service.entries[0].entry_attributes_as_dict)
    _timed(check, "user", start, True, f"found {dn}")
    start = time.monotonic()
    try:
        service.search(
            settings.group_base,
            settings.group_filter.format(
                user_dn=escape_filter_chars(dn), username=escape_filter_chars(username)
            ),
            SUBTREE,
            attributes=["cn"],
        )
    except LDAPException as exc:
        _timed(check, "groups", start, False, f"group search failed: {exc}")
        return
    groups = [e.entry_dn for e in service.entries]
    mapping = {k.lower(): v for k, v in settings.group_roles.items()}
    roles = sorted(
        {mapping[key] for g in groups for key in (g.lower(), _cn(g).lower()) if key in mapping}
    )
    check.user = LdapUser(
        dn=dn,
        display_name=_first(attrs, "displayName") or _first(attrs, "cn"),
        email=_first(attrs, "mail"),
        groups=groups,
        roles=roles,
    )
    message = f"{len(groups)} groups; roles: {', '.join(roles) or 'none'}"
    _timed(
        check, "groups", start, bool(roles), message if roles else message + " (refused at sign-in)"
    )
