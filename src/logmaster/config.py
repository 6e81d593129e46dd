"""The one typed settings object.

Settings come, lowest priority first, from the field defaults, a TOML file (``--config`` or
``LOGMASTER_CONFIG``), ``LOGMASTER_*`` environment variables (nested fields joined with ``__``,
e.g. ``LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS=50``) and finally command-line flags.

Every field carries a description; ``logmaster config`` prints them, so the reference is generated
from this file and cannot drift from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
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
        "partitions in the database of postgres_url.",
    )
    postgres_url: str | None = Field(
        default=None,
        description="psycopg connection string of the PostgreSQL index "
        "(postgresql://user@host:5432/db); required for backend 'postgres'.",
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
        description="Processes that parse lines while the indexer writes; 0 parses in the "
        "indexer process itself.",
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
        "logmaster.db. PostgreSQL: postgresql+psycopg://user@host/db.",
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

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

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
        for listen in (self.metrics.listen, self.index.metrics_listen):
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
    """(dotted name, default, description) of every field, nested models flattened."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(describe(annotation, f"{prefix}{name}."))
            continue
        default = field.get_default(call_default_factory=True)
        rows.append((f"{prefix}{name}", repr(default), field.description or ""))
    return rows
