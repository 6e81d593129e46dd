"""The TLS context of RFC 5425 listeners (TLS 1.2 or newer, optional client certificates)."""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsConfigError(ValueError):
    """Certificate or key missing or unusable, said so the operator can fix it."""


def server_context(
    cert: Path | None, key: Path | None, client_ca: Path | None = None
) -> ssl.SSLContext:
    if cert is None or key is None:
        raise TlsConfigError(
            "TLS listeners need --tls-cert and --tls-key (collector.tls_cert "
            "and collector.tls_key); `logmaster init` creates a self-signed pair"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from exc
    if client_ca is not None:
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
