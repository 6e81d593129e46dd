"""The one typed settings object.

Settings come, lowest priority first, from the field defaults, a TOML file (``--config`` or
``LOGMASTER_CONFIG``), ``LOGMASTER_*`` environment variables (nested fields joined with ``__``,
e.g. ``LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS=50``) and finally command-line flags.

Every field carries a description; ``logmaster config`` prints them, so the reference is generated
from this file and cannot drift from it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import typing
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticUndefined
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from logmaster.endpoints import parse_endpoint

KIB = 1024
MIB = 1024 * KIB


class CollectorSettings(BaseModel):
    """Network listeners and their limits."""

    # A misspelt key in a [section] of the file is an error, as at the top level.
    model_config = ConfigDict(extra="forbid")

    udp: list[str] = Field(
        default=["0.0.0.0:514", "[::]:514"],
        description="UDP listeners as HOST:PORT (IPv6 as [ADDR]:PORT). Port 514 needs root or "
        "CAP_NET_BIND_SERVICE.",
    )
    tcp: list[str] = Field(
        default=["0.0.0.0:514", "[::]:514"],
        description="TCP listeners (RFC 6587 octet counting or LF/NUL framing, detected per "
        "connection).",
    )
    tls: list[str] = Field(
        default=["0.0.0.0:6514", "[::]:6514"],
        description="TLS listeners (RFC 5425). Started only when tls_cert and tls_key are set.",
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate (chain) presented by the TLS listeners."
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert (0600).")
    tls_client_ca: Path | None = Field(
        default=None,
        description="PEM CA bundle; when set, TLS senders must present a certificate it signed "
        "(mutual TLS, RFC 5425 section 5.3).",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Receiving processes sharing the ports with SO_REUSEPORT. 1 receives inside "
        "the archive process; N > 1 starts N receiver processes that feed it.",
    )
    max_message_bytes: int = Field(
        default=64 * KIB,
        ge=256,
        le=16 * MIB,
        description="Longest message kept whole; longer ones are truncated to this size, marked "
        "in the archive line and counted, never dropped.",
    )
    udp_rcvbuf_bytes: int = Field(
        default=32 * MIB,
        ge=64 * KIB,
        description="SO_RCVBUF of UDP sockets (forced past net.core.rmem_max when running as "
        "root). Absorbs bursts while the archive flushes.",
    )
    tcp_idle_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="A TCP/TLS connection silent this long is closed; a frame it left "
        "incomplete is archived and marked.",
    )
    max_connections: int = Field(
        default=20000,
        ge=1,
        description="Open TCP/TLS connections per listener and process; more are refused and "
        "counted.",
    )
    buffer_max_bytes: int = Field(
        default=64 * MIB,
        ge=1 * MIB,
        description="Messages held in memory between the network and the archive. When full, "
        "TCP/TLS connections stop being read (senders slow down) and UDP waits in the kernel "
        "buffer.",
    )
    max_pending_devices: int = Field(
        default=1000,
        ge=0,
        description="Unknown senders each get their own pending device up to this many; past it "
        "they are archived under the shared pending device 'unregistered' and counted.",
    )
    proxy_protocol: list[str] = Field(
        default=[],
        description="Networks (CIDR) of load balancers (nginx stream, HAProxy) whose TCP "
        "connections start with a PROXY protocol v1/v2 header naming the real sender. Such a "
        "header from any other address, or a trusted peer without one, is refused and counted. "
        "Plain TCP listeners only; empty: off.",
    )

    @field_validator("proxy_protocol")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for spec in value:
            try:
                ipaddress.ip_network(spec, strict=False)
            except ValueError as exc:
                raise ValueError(f"proxy_protocol: {spec!r} is not a network (CIDR)") from exc
        return value


class ArchiveSettings(BaseModel):
    """The per-device daily files that are the legal record."""

    # A misspelt key in a [section] of the file is an error, as at the top level.
    model_config = ConfigDict(extra="forbid")

    flush_interval_ms: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Lines are written to the day files at least this often. A crash (kill -9) "
        "loses at most this interval.",
    )
    fsync: Literal["never", "interval", "message"] = Field(
        default="interval",
        description="'interval': fsync the files written at each flush (survives power loss "
        "minus one interval); 'message': write and fsync every message; 'never': leave it to "
        "the kernel.",
    )
    max_open_files: int = Field(
        default=4096,
        ge=16,
        description="Day files kept open at once; the least recently written are closed first.",
    )


class IndexSettings(BaseModel):
    """The searchable copy of the archive and the sessions derived from it."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["sqlite", "postgres"] = Field(
        default="sqlite",
        description="'sqlite': one file per archive day under DATA_DIR/index; 'postgres': day "
        "partitions in the database of postgres_url. Unset: 'postgres' when database_url is "
        "PostgreSQL, else 'sqlite'.",
    )
    postgres_url: str | None = Field(
        default=None,
        description="psycopg connection string of the PostgreSQL index "
        "(postgresql://user@host:5432/db); unset with backend 'postgres': database_url.",
    )
    sqlite_synchronous: Literal["off", "normal"] = Field(
        default="off",
        description="SQLite index durability. 'off': a batch survives an indexer crash but not "
        "a power loss (then `logmaster reindex` rebuilds the days); 'normal': also power "
        "loss, about 15 % slower. The archive is the record either way.",
    )
    batch_lines: int = Field(
        default=5000, ge=1, le=1_000_000, description="Lines parsed and written per transaction."
    )
    workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Indexer processes; each parses and writes its own share of the devices "
        "(the SQLite index keeps one set of files per share, fixed when the index is "
        "created). 0 or 1: one process.",
    )
    nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU priority of the indexer processes (nice value added). Searches, the "
        "API and the collector come first; the indexer takes the CPU they leave and catches "
        "up from its checkpoints. 0: the same priority as the rest.",
    )
    poll_interval_ms: int = Field(
        default=250,
        ge=10,
        le=10_000,
        description="How often the indexer looks for new archive lines.",
    )
    nat_timeout_s: int = Field(
        default=300,
        ge=1,
        description="A NAT translation seen once (no end line) is assumed to last this long.",
    )
    lease_timeout_s: int = Field(
        default=86_400,
        ge=60,
        description="A DHCP lease without a release line ends this long after its last "
        "renewal (dhcpd does not log the lease time).",
    )
    hotspot_timeout_s: int = Field(
        default=86_400,
        ge=60,
        description="A hotspot login without a logout line is assumed to end this long after.",
    )
    metrics_listen: str | None = Field(
        default="127.0.0.1:9515",
        description="HOST:PORT serving the indexer's /metrics; empty disables it.",
    )


class MetricsSettings(BaseModel):
    """The Prometheus endpoint of the server itself."""

    # A misspelt key in a [section] of the file is an error, as at the top level.
    model_config = ConfigDict(extra="forbid")

    listen: str | None = Field(
        default="127.0.0.1:9514",
        description="HOST:PORT serving /metrics in Prometheus text format; empty disables it.",
    )


class DeviceSettings(BaseModel):
    """Defaults of the device registry."""

    # A misspelt key in a [section] of the file is an error, as at the top level.
    model_config = ConfigDict(extra="forbid")

    default_timezone: str = Field(
        default="Europe/Istanbul",
        description="IANA timezone of new devices; a device's day files follow its local day.",
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


class TsaServerSettings(BaseModel):
    """One RFC 3161 timestamp authority ([[tsa.servers]] in the file, in priority order)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Short name shown in manifests, reports and the tsa label of the counters "
        "(lower-case letters, digits, - and _).",
    )
    kind: Literal["rfc3161", "kamusm"] = Field(
        default="rfc3161",
        description="'rfc3161': plain RFC 3161 over HTTP; 'kamusm': TÜBİTAK Kamu SM (identity "
        "header from the customer id and password, ASN.1 error messages, credit balance).",
    )
    url: str = Field(
        pattern=r"^https?://",
        description="HTTP(S) URL that takes POSTed application/timestamp-query requests.",
    )
    hash_algorithm: Literal["sha256", "sha384", "sha512"] = Field(
        default="sha256", description="Hash of the message imprint sent to the TSA."
    )
    policy: str | None = Field(
        default=None,
        pattern=r"^[0-2](\.[0-9]+)+$",
        description="Policy OID to request; the token's policy must then be this one.",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file with the TSA's CA chain (root included). Tokens must chain to it; "
        "it is also the -CAfile for `openssl ts -verify`. Without it only the token's own "
        "certificates are checked.",
    )
    timeout_s: float = Field(
        default=15.0, gt=0, le=300, description="Seconds to wait for the TSA's answer."
    )
    accredited: bool = Field(
        default=True,
        description="Whether stamps of this TSA count as from an accredited TSA in reports.",
    )
    credentials_file: Path | None = Field(
        default=None,
        description="Kamu SM only: a file (mode 0600, refused otherwise) holding "
        "'CUSTOMER_ID:PASSWORD' on one line. Takes precedence over the environment variables.",
    )
    customer_id_env: str = Field(
        default="LOGMASTER_KAMUSM_CUSTOMER_ID",
        description="Kamu SM only: environment variable with the customer id.",
    )
    password_env: str = Field(
        default="LOGMASTER_KAMUSM_PASSWORD",
        description="Kamu SM only: environment variable with the customer password (never put "
        "the password in the TOML file).",
    )


class TsaSettings(BaseModel):
    """Timestamp authorities that stamp the seals."""

    model_config = ConfigDict(extra="forbid")

    servers: list[TsaServerSettings] = Field(
        default=[],
        description="TSAs in priority order; a failed request goes to the next one.",
    )
    builtin: bool = Field(
        default=True,
        description="When no TSA is configured, stamp with the built-in TSA (DATA_DIR/tsa; its "
        "stamps are labelled 'built-in, not an accredited TSA' everywhere).",
    )
    builtin_listen: str = Field(
        default="127.0.0.1:3180",
        description="HOST:PORT of `logmaster tsa serve` (the built-in TSA over HTTP).",
    )

    @field_validator("servers")
    @classmethod
    def _unique_names(cls, value: list[TsaServerSettings]) -> list[TsaServerSettings]:
        names = [s.name for s in value]
        if dup := {n for n in names if names.count(n) > 1}:
            raise ValueError(f"TSA names must be unique: {', '.join(sorted(dup))}")
        if "builtin" in names:
            raise ValueError("the TSA name 'builtin' is reserved for the built-in TSA")
        return value


class ApiSettings(BaseModel):
    """The HTTP API (``logmaster serve``): sign-in, tokens, throttling, password policy."""

    model_config = ConfigDict(extra="forbid")

    listen: str = Field(
        default="127.0.0.1:8080",
        description="HOST:PORT of the API (put a TLS-terminating reverse proxy in front of it).",
    )
    jwt_issuer: str = Field(
        default="logmaster", description="'iss' of the access tokens; other issuers are refused."
    )
    jwt_audience: str = Field(
        default="logmaster-api",
        description="'aud' of the access tokens; tokens for another audience are refused.",
    )
    access_token_ttl_s: int = Field(
        default=900, ge=30, le=3600, description="Lifetime of an access token (JWT), seconds."
    )
    refresh_token_ttl_s: int = Field(
        default=12 * 3600,
        ge=300,
        le=30 * 86400,
        description="Longest life of a sign-in session: its refresh tokens stop working this "
        "long after the password (or LDAP) sign-in, however often they rotate.",
    )
    idle_timeout_s: int = Field(
        default=1800,
        ge=60,
        description="A session with no request for this long is closed (sign in again).",
    )
    account_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins of one account within failure_window_s before it is locked.",
    )
    ip_max_failures: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins from one source address within failure_window_s before "
        "that address is blocked.",
    )
    failure_window_s: int = Field(
        default=900, ge=1, description="Window over which failed sign-ins are counted, seconds."
    )
    lockout_s: int = Field(
        default=900,
        ge=1,
        description="How long a locked account or blocked address stays refused "
        "(`logmaster user unlock` ends it earlier).",
    )
    password_min_length: int = Field(
        default=12, ge=8, le=128, description="Shortest accepted local password."
    )
    password_min_classes: int = Field(
        default=3,
        ge=1,
        le=4,
        description="Character classes (lower, upper, digit, other) a password must mix.",
    )
    mfa_required_roles: list[str] = Field(
        default=[],
        description="Roles whose members must sign in with a TOTP second factor, e.g. "
        "['admin']; a member without one enrols at the next sign-in. Admins can also set it "
        "per role at run time (PATCH /api/v1/roles/NAME).",
    )
    trusted_proxies: list[str] = Field(
        default=[],
        description="Networks (CIDR) of reverse proxies whose X-Forwarded-For header is "
        "believed; from anywhere else the socket address is the source address.",
    )
    cookie_secure: bool = Field(
        default=True,
        description="Send the refresh cookie only over HTTPS (turn off only for plain-HTTP "
        "development).",
    )
    allowed_origins: list[str] = Field(
        default=[],
        description="Origins (scheme://host[:port]) allowed to call the refresh and logout "
        "endpoints besides the API's own origin (CSRF defence of the cookie path).",
    )
    refresh_grace_s: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description="A refresh token presented again this many seconds after its rotation "
        "(two browser tabs refreshing at once) gets the same successor again instead of ending "
        "the session as a stolen copy; later reuse still ends it. 0: no grace.",
    )
    metrics_listen: str | None = Field(
        default="127.0.0.1:9517",
        description="HOST:PORT serving this API process's /metrics (requests and latency per "
        "route, sign-in failures, open tails); never the API's own port. Each API process "
        "needs its own; empty disables it.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {net!r} is not a network (CIDR)") from exc
        return value


class LdapSettings(BaseModel):
    """Sign-in against LDAP / Active Directory (ldap3): bind, then group -> role mapping."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="ldap://host:389 or ldaps://host:636; empty disables LDAP sign-in.",
    )
    start_tls: bool = Field(
        default=False, description="Upgrade an ldap:// connection with StartTLS before binding."
    )
    tls_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle that signed the directory's certificate."
    )
    tls_verify: bool = Field(
        default=True, description="Check the directory's certificate (ldaps / StartTLS)."
    )
    bind_dn_template: str | None = Field(
        default=None,
        description="Direct bind: the user's DN with {username}, e.g. "
        "'uid={username},ou=people,dc=example,dc=org' or '{username}@corp.example' (AD).",
    )
    search_bind_dn: str | None = Field(
        default=None,
        description="Search mode (when bind_dn_template is empty): the service account that "
        "looks the user up.",
    )
    search_bind_password_file: Path | None = Field(
        default=None, description="File (0600) holding the password of search_bind_dn."
    )
    user_base: str = Field(default="", description="Subtree searched for users.")
    user_filter: str = Field(
        default="(uid={username})",
        description="Filter finding the user ({username} is escaped); AD: "
        "'(sAMAccountName={username})'.",
    )
    group_base: str = Field(default="", description="Subtree searched for groups.")
    group_filter: str = Field(
        default="(|(member={user_dn})(uniqueMember={user_dn})(memberUid={username}))",
        description="Filter finding the groups of a user ({user_dn}, {username} escaped).",
    )
    group_roles: dict[str, str] = Field(
        default={},
        description="Group DN (or cn) -> LogMaster role. A user in none of them is refused.",
    )
    timeout_s: float = Field(default=5.0, gt=0, description="Connect and operation timeout.")


class SealSettings(BaseModel):
    """Daily seals: manifests, signatures, timestamps, compression of sealed day files."""

    model_config = ConfigDict(extra="forbid")

    delay_s: int = Field(
        default=900,
        ge=0,
        le=86_400,
        description="A device-day is sealed this long after the device's local midnight (lines "
        "still in the collector's buffers at midnight land first).",
    )
    compression: Literal["zstd", "gzip", "none"] = Field(
        default="zstd",
        description="Compression of a day file after it is sealed; verification and search "
        "read compressed files transparently.",
    )
    stamp_mode: Literal["manifest", "daily"] = Field(
        default="manifest",
        description="'manifest': one RFC 3161 stamp per manifest; 'daily': one stamp per "
        "sealing run over a signed list of every manifest's SHA-256 (paid TSAs such as Kamu "
        "SM charge per stamp).",
    )
    retry_initial_s: int = Field(
        default=60, ge=1, description="First wait before a failed stamp is tried again."
    )
    retry_max_s: int = Field(
        default=3600,
        ge=1,
        description="Longest wait between stamp attempts (the wait doubles after each failure).",
    )
    key_passphrase_file: Path | None = Field(
        default=None,
        description="File (mode 0600) holding the passphrase of the signing key, when the key "
        "is encrypted.",
    )
    silence_threshold_s: int = Field(
        default=3600,
        ge=60,
        description="Gaps between consecutive lines of a device longer than this are listed in "
        "the manifest as silence gaps.",
    )
    workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Processes that seal and verify devices in parallel (hashing is CPU-bound).",
    )


class RetentionSettings(BaseModel):
    """How long sealed device-days are kept, and their purge (``logmaster retention``)."""

    model_config = ConfigDict(extra="forbid")

    default_days: int = Field(
        default=730,
        ge=730,
        description="Days a device-day is kept after it ended, for devices without their own "
        "retention. Law 5651 needs two years: never below 730 (a shorter retention is set per "
        "device, explicitly and audited, with `logmaster retention set --allow-short`).",
    )
    auto_purge: bool = Field(
        default=True,
        description="Purge device-days past retention automatically once a day (legal holds "
        "block it); each purge writes a signed, time-stamped deletion receipt.",
    )


class ComplianceSettings(BaseModel):
    """Compliance status and violations (``logmaster compliance``, the API, the evaluator)."""

    model_config = ConfigDict(extra="forbid")

    seal_deadline_h: float = Field(
        default=6.0,
        gt=0,
        le=240,
        description="A device-day not sealed this many hours after the device's local midnight "
        "is a violation (seal_overdue).",
    )
    stamp_pending_max_h: float = Field(
        default=24.0,
        gt=0,
        description="A sealed day whose RFC 3161 stamp is still missing this many hours after "
        "sealing is a violation (stamp_pending).",
    )
    silence_thresholds: dict[str, int] = Field(
        default={},
        description="Per device slug: seconds without a line after which the device counts as "
        "silent. Devices not listed get a threshold learned from their last 14 sealed days.",
    )
    silence_default_s: int = Field(
        default=4 * 3600,
        ge=60,
        description="Silence threshold of a device with fewer than 3 sealed days to learn from.",
    )
    silence_min_s: int = Field(
        default=900,
        ge=60,
        description="Lower bound of a learned silence threshold (a chatty device is not "
        "declared silent after a few seconds).",
    )
    silence_max_s: int = Field(
        default=2 * 86_400,
        ge=60,
        description="Upper bound of a learned silence threshold.",
    )
    clock_skew_max_s: float = Field(
        default=300.0,
        gt=0,
        description="A device whose newest sealed day shows a median clock offset (device time "
        "minus receive time) beyond this many seconds is a violation (clock_skew).",
    )
    disk_warn_percent: float = Field(
        default=85.0,
        gt=0,
        le=100,
        description="Archive file system use (percent) from which archive_disk is a warning.",
    )
    disk_critical_percent: float = Field(
        default=95.0,
        gt=0,
        le=100,
        description="Archive file system use (percent) from which archive_disk is critical.",
    )
    window_days: int = Field(
        default=62,
        ge=2,
        le=800,
        description="Days back that the evaluator checks for unsealed and unstamped days "
        "(older open violations are rechecked whatever their age).",
    )
    verify_budget_s: float = Field(
        default=20.0,
        ge=0,
        description="Seconds per evaluator pass spent verifying newly sealed days (0: never; "
        "`logmaster compliance verify` verifies on demand).",
    )
    interval_s: float = Field(
        default=60.0, ge=5, description="Seconds between two evaluator passes."
    )
    organisation: str = Field(
        default="",
        description="Name of the operating organisation printed on compliance reports.",
    )
    metrics_listen: str | None = Field(
        default="127.0.0.1:9516",
        description="HOST:PORT serving the sealer's /metrics (stamp requests and failures per "
        "TSA, alerts sent and failed, evaluator passes); empty disables it.",
    )


class AlertSettings(BaseModel):
    """Where every opened and resolved violation is sent: webhook, e-mail, syslog."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="URL that receives each alert as an HTTP POST of JSON; empty: no webhook.",
    )
    webhook_secret_file: Path | None = Field(
        default=None,
        description="File (0600) with a shared secret; when set, each POST carries "
        "X-LogMaster-Signature: sha256=HMAC(secret, body).",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server host name; empty: no e-mail alerts."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP server port.")
    smtp_starttls: bool = Field(
        default=True, description="Upgrade the SMTP connection with STARTTLS before sending."
    )
    smtp_tls_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle for the SMTP server's certificate."
    )
    smtp_username: str | None = Field(
        default=None, description="SMTP user name; empty: send without authentication."
    )
    smtp_password_file: Path | None = Field(
        default=None, description="File (0600) holding the SMTP password."
    )
    mail_from: str = Field(
        default="logmaster@localhost", description="Sender address of alert e-mails."
    )
    mail_to: list[str] = Field(default=[], description="Recipients of alert e-mails.")
    syslog_target: str | None = Field(
        default=None,
        description="HOST:PORT receiving alerts as RFC 5424 syslog messages; empty: none.",
    )
    syslog_transport: Literal["udp", "tcp"] = Field(
        default="udp",
        description="'udp': one datagram per alert; 'tcp': RFC 6587 octet-counted frames.",
    )
    timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Seconds one delivery attempt may take."
    )
    retry_initial_s: int = Field(
        default=30, ge=1, description="First wait before a failed delivery is tried again."
    )
    retry_max_s: int = Field(
        default=3600, ge=1, description="Longest wait between delivery attempts (doubling)."
    )
    max_attempts: int = Field(
        default=50,
        ge=1,
        description="Attempts after which a delivery is given up (counted and kept in the "
        "database as failed).",
    )


class TailSettings(BaseModel):
    """Live tail: the feed of newly archived lines and the WebSocket sessions that follow it."""

    model_config = ConfigDict(extra="forbid")

    max_sessions_per_user: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Open tail sessions one user may have at once (per API process); one more "
        "is refused with a message saying so.",
    )
    queue_lines: int = Field(
        default=2000,
        ge=10,
        le=1_000_000,
        description="Matching lines a tail session may have waiting for a slow client; past "
        "this the session is closed with the reason 'too slow' (ingest is never slowed).",
    )
    feed_buffer_bytes: int = Field(
        default=4 * MIB,
        ge=64 * KIB,
        description="Socket send buffer the collector gives each API process subscribed to "
        "the feed; a subscriber further behind loses lines (counted, and announced to tails).",
    )


class ClusterSettings(BaseModel):
    """Several LogMaster nodes sharing one PostgreSQL (metadata and index) and one Redis."""

    model_config = ConfigDict(extra="forbid")

    node: str = Field(
        default_factory=lambda: node_name(socket.gethostname()),
        pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$",
        description="This node's name (default: the host name, lower case). Recorded as the "
        "holder of the devices its collector archives; with the postgres index it qualifies "
        "archive file references (NODE:device/YYYY/MM/DD.log). Never rename a node that "
        "holds an archive.",
    )
    api_url: str | None = Field(
        default=None,
        description="Base URL at which the other nodes reach this node's API "
        "(http://10.0.0.2:8000); registered in the shared database so that a request that "
        "needs this node's archive (an event's raw line, archive days, verification, "
        "evidence bundles) can be forwarded here from any node.",
    )
    shared_dir: Path | None = Field(
        default=None,
        description="Directory whose keys/api-jwt.key and keys/api-mfa.key every API node "
        "uses instead of those of DATA_DIR (the same files on every node: a shared mount or "
        "a copy), so that a user signed in on one node can use any other.",
    )


def node_name(host: str) -> str:
    """A node name from a host name: lower case, characters outside [a-z0-9._-] as "-"."""
    name = re.sub(r"[^a-z0-9._-]", "-", host.lower()).lstrip("._-")[:63]
    return name or "node"


class ConsoleSettings(BaseModel):
    """The web console the API serves at ``/`` (built from ``web/`` by ``make run``)."""

    model_config = ConfigDict(extra="forbid")

    dist_dir: Path | None = Field(
        default=None,
        description="Folder of the built console (index.html, assets/); empty: web/dist of the "
        "source checkout. Without a build the API still works and / says how to build it.",
    )


class Settings(BaseSettings):
    """Everything LogMaster reads at start."""

    model_config = SettingsConfigDict(
        env_prefix="LOGMASTER_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(
        default=Path("/var/lib/logmaster"),
        description="Root of everything LogMaster stores: archive/, the SQLite metadata "
        "database, keys.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database; default sqlite:///DATA_DIR/"
        "logmaster.db. PostgreSQL: postgresql+psycopg://user@host/db; the index then goes to "
        "the same database unless index.backend is set.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Least severe level of the server's own log."
    )
    log_format: Literal["kv", "json"] = Field(
        default="kv", description="Server log lines as key=value text or as JSON objects."
    )
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    devices: DeviceSettings = Field(default_factory=DeviceSettings)
    tail: TailSettings = Field(default_factory=TailSettings)
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://127.0.0.1:6379/0). Set: live-tail lines travel over "
        "Redis pub/sub (several collectors and API processes); unset: over the Unix socket "
        "DATA_DIR/run/feed.sock of the one collector.",
    )
    seal: SealSettings = Field(default_factory=SealSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ldap: LdapSettings = Field(default_factory=LdapSettings)
    tsa: TsaSettings = Field(default_factory=TsaSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    compliance: ComplianceSettings = Field(default_factory=ComplianceSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _index_follows_database(self) -> Settings:
        # One variable, LOGMASTER_DATABASE_URL, is enough to run on PostgreSQL: when the
        # metadata database is PostgreSQL and [index] backend is not set, the index lives in
        # the same database (its tables, events/checkpoints/sessions, do not collide with the
        # metadata tables). An explicit backend = "sqlite" keeps the embedded index.
        url = self.database_url or ""
        on_postgres = url.startswith(("postgresql:", "postgresql+", "postgres:"))
        if on_postgres and "backend" not in self.index.model_fields_set:
            self.index.backend = "postgres"
        if self.index.backend == "postgres" and not self.index.postgres_url and on_postgres:
            self.index.postgres_url = url
        return self

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'logmaster.db'}"

    def check_listeners(self) -> None:
        """Raise ValueError naming the first listener that is not HOST:PORT."""
        for spec in [*self.collector.udp, *self.collector.tcp, *self.collector.tls]:
            parse_endpoint(spec)
        for listen in (
            self.metrics.listen,
            self.index.metrics_listen,
            self.api.listen,
            self.api.metrics_listen,
            self.compliance.metrics_listen,
        ):
            if listen:
                parse_endpoint(listen)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file is a per-call class setting: load_settings() derives a subclass with it.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, the TOML file, the environment and ``overrides``.

    ``overrides`` are command-line values; ``None`` means "not given" and is skipped.
    """
    path = config or (Path(p) if (p := os.environ.get("LOGMASTER_CONFIG")) else None)
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    given = {k: v for k, v in overrides.items() if v is not None}
    cls: type[Settings] = Settings
    if path is not None:
        cls = type(
            "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
        )
    settings = cls(**given)
    settings.check_listeners()
    return settings


def describe(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted name, default, description) of every field, nested models flattened.

    A list of models (``tsa.servers``) is listed itself, then its items' fields as
    ``tsa.servers[].url``; an item field without a default shows ``(required)``.
    """
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(describe(annotation, f"{prefix}{name}."))
            continue
        default = field.get_default(call_default_factory=True)
        shown = "(required)" if default is PydanticUndefined else repr(default)
        rows.append((f"{prefix}{name}", shown, field.description or ""))
        item = typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else None
        if isinstance(item, type) and issubclass(item, BaseModel):
            rows.extend(describe(item, f"{prefix}{name}[]."))
    return rows
