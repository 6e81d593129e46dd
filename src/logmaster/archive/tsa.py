"""RFC 3161 timestamps: the client, the token check, failover over the configured TSAs.

A ``Stamper`` turns bytes (a manifest) into a ``Stamp``: the DER ``TimeStampResp`` exactly as
``openssl ts -reply`` writes it, stored as ``.tsr`` and accepted by
``openssl ts -verify -data FILE -in X.tsr -CAfile CHAIN``. Implementations:

- ``HttpTsa`` (here): one TSA over HTTP — plain RFC 3161, or TÜBİTAK Kamu SM (``kamusm.py``
  adds its ``identity`` header and reads its ASN.1 error messages).
- ``FailoverStamper`` (here): the configured TSAs in priority order; the first stamp wins; a
  TSA whose transport failed cools down (30 s doubling to 10 min) instead of costing a
  timeout per manifest.
- ``BuiltinTsa`` (``tsa_server.py``): our own TSA for offline sites and tests, never accredited.

Every stamp received is checked before it is returned (``check_response``, in ``tsa_check.py``
and re-exported here): PKI status granted,
the imprint is the hash of the data, the nonce and policy are the requested ones, the CMS
signature verifies, the signer certificate has the critical timeStamping EKU and chains to the
configured CA. The same check verifies stored ``.tsr`` files later.

Errors are ``TsaError(tsa, reason, message)``; ``reason`` is one of ``REASONS`` and is the
``reason`` label of ``logmaster_tsa_failures_total``. The counters live in ``TSA_REGISTRY``;
whichever process stamps adds them to its ``/metrics`` with ``registry.register(TSA_METRICS)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from asn1crypto import tsp
from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Histogram, Metric

from logmaster.archive.tsa_check import (
    HASHES,
    StampCheck,
    TimeStampResp,
    TsaError,
    _load_certs,
    _matches_sid,
    _verify_signature,
    check_response,
    describe_status,
    pem,
    raw_signed_attrs,
    signed_bytes,
    tsr_certificates,
)

if TYPE_CHECKING:
    from logmaster.config import Settings, TsaServerSettings

# The token check (check_response and its helpers) lives in tsa_check.py; its public names are
# re-exported here so that `from logmaster.archive.tsa import check_response` keeps working.
__all__ = [
    "COOLDOWN_FIRST_S",
    "COOLDOWN_MAX_S",
    "COOLDOWN_REASONS",
    "FAILURES",
    "HASHES",
    "LATENCY",
    "MAX_RESPONSE_BYTES",
    "QUERY_TYPE",
    "REASONS",
    "REPLY_TYPE",
    "REQUESTS",
    "SKIPPED",
    "TSA_METRICS",
    "TSA_REGISTRY",
    "FailoverStamper",
    "HttpTsa",
    "Stamp",
    "StampCheck",
    "Stamper",
    "TimeStampResp",
    "TsaError",
    "build_request",
    "check_response",
    "describe_status",
    "new_nonce",
    "pem",
    "post",
    "raw_signed_attrs",
    "read_ca_file",
    "signed_bytes",
    "stamper_from_settings",
    "tsr_certificates",
]

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_RESPONSE_BYTES = 1 << 20

REASONS = (
    "timeout",  # no answer within timeout_s
    "connection",  # refused, DNS, TLS handshake
    "http_status",  # HTTP status other than 200, or a wrong content type
    "bad_response",  # not a TimeStampResp / malformed token
    "rejected",  # PKI status rejection/waiting/revocation
    "imprint",  # the token stamps other data
    "nonce",  # nonce missing or not ours
    "policy",  # not the requested policy
    "signature",  # CMS signature or signed attributes do not verify
    "certificate",  # no signer certificate, no timeStamping EKU, not chained to the CA
    "credentials",  # Kamu SM customer id/password missing or refused
    "kamusm",  # an error message of Kamu SM
    "config",  # nothing usable configured
    "unavailable",  # every TSA is cooling down after transport failures (FailoverStamper)
)

TSA_REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "logmaster_tsa_requests", "Timestamp requests sent.", ["tsa"], registry=TSA_REGISTRY
)
FAILURES = Counter(
    "logmaster_tsa_failures",
    "Timestamp requests that gave no valid stamp, by reason.",
    ["tsa", "reason"],
    registry=TSA_REGISTRY,
)
SKIPPED = Counter(
    "logmaster_tsa_skipped",
    "Requests not sent to a TSA because it is cooling down after transport failures.",
    ["tsa"],
    registry=TSA_REGISTRY,
)
LATENCY = Histogram(
    "logmaster_tsa_request_seconds",
    "Time from sending a timestamp request to a checked stamp (or failure).",
    ["tsa"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=TSA_REGISTRY,
)


class _TsaMetrics:
    """The TSA counters as a collector for another registry:
    ``registry.register(TSA_METRICS)`` (each /metrics server has its own registry)."""

    def collect(self) -> Iterator[Metric]:
        return iter(TSA_REGISTRY.collect())


TSA_METRICS = _TsaMetrics()


@dataclass(frozen=True)
class Stamp:
    """One checked timestamp over some data."""

    response: bytes  # DER TimeStampResp, as `openssl ts -reply` writes it; stored as .tsr
    tsa: str  # configured name, "builtin" for the built-in TSA
    accredited: bool  # False for the built-in TSA and TSAs configured as not accredited
    gen_time: dt.datetime  # aware, UTC
    serial: int
    chain_pem: bytes  # -CAfile for `openssl ts -verify`
    policy: str = ""
    hash_algorithm: str = "sha256"


class Stamper(Protocol):
    """Anything that stamps: ``stamp(data)`` hashes ``data`` itself and returns a checked
    ``Stamp`` or raises ``TsaError``."""

    def stamp(self, data: bytes) -> Stamp: ...


# -- requests -----------------------------------------------------------------------------------


def new_nonce() -> int:
    """A random positive 64-bit nonce (as `openssl ts -query` makes)."""
    return secrets.randbits(64) or 1


def build_request(
    data: bytes, hash_algorithm: str = "sha256", nonce: int | None = None, policy: str | None = None
) -> tuple[bytes, int]:
    """DER TimeStampReq over ``data`` (certReq true) and its nonce."""
    if hash_algorithm not in HASHES:
        raise TsaError("", "config", f"hash {hash_algorithm!r} is not SHA-256 or stronger")
    nonce = new_nonce() if nonce is None else nonce
    req = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": hash_algorithm},
                "hashed_message": hashlib.new(hash_algorithm, data).digest(),
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )
    if policy:
        req["req_policy"] = policy
    return req.dump(), nonce


# -- HTTP ---------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would repeat a redirected POST as a GET without the query; a TSA that redirects
    # is misconfigured, and the operator should see its HTTP status and fix the URL.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(
    tsa: str, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[bytes, str]:
    """POST ``body``; the response body and its content type. No redirects; the deadline
    covers the whole answer (``timeout`` per blocking read, checked again between reads)."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as reply:
            ctype = reply.headers.get_content_type()
            chunks: list[bytes] = []
            size = 0
            while chunk := reply.read(65536):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise TsaError(
                        tsa, "bad_response", f"answer larger than {MAX_RESPONSE_BYTES} bytes"
                    )
                if time.monotonic() > deadline:
                    raise TsaError(tsa, "timeout", f"no complete answer within {timeout:g} s")
                chunks.append(chunk)
            return b"".join(chunks), ctype
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection open otherwise
        raise TsaError(tsa, "http_status", f"HTTP {exc.code} {exc.reason} from {url}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise TsaError(tsa, "timeout", f"no answer from {url} within {timeout:g} s") from exc
        raise TsaError(tsa, "connection", f"cannot reach {url}: {exc.reason}") from exc
    except TimeoutError as exc:
        raise TsaError(tsa, "timeout", f"no answer from {url} within {timeout:g} s") from exc
    except OSError as exc:
        raise TsaError(tsa, "connection", f"connection to {url} failed: {exc}") from exc


# -- stampers -----------------------------------------------------------------------------------


def read_ca_file(tsa: str, path: Path | None) -> list[x509.Certificate]:
    if path is None:
        return []
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TsaError(tsa, "config", f"cannot read ca_file {path}: {exc}") from exc


class HttpTsa:
    """One configured TSA over HTTP (RFC 3161, or Kamu SM when ``kind == "kamusm"``)."""

    def __init__(self, config: TsaServerSettings) -> None:
        self.config = config
        self.name = config.name
        self.trusted = read_ca_file(config.name, config.ca_file)

    def headers(self, request: bytes, data_hash: bytes) -> dict[str, str]:
        """HTTP headers of one request; Kamu SM adds its identity header."""
        headers = {"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE}
        if self.config.kind == "kamusm":
            from logmaster.archive import kamusm

            headers.update(kamusm.request_headers(self.config, data_hash))
        return headers

    def stamp(self, data: bytes) -> Stamp:
        cfg = self.config
        REQUESTS.labels(cfg.name).inc()
        start = time.monotonic()
        try:
            request, nonce = build_request(data, cfg.hash_algorithm, policy=cfg.policy)
            data_hash = hashlib.new(cfg.hash_algorithm, data).digest()
            body, ctype = post(
                cfg.name, cfg.url, request, self.headers(request, data_hash), cfg.timeout_s
            )
            if cfg.kind == "kamusm":
                from logmaster.archive import kamusm

                body = kamusm.raise_for_error(cfg.name, body)
            elif ctype != REPLY_TYPE:
                raise TsaError(cfg.name, "http_status", f"answer of type {ctype}, not {REPLY_TYPE}")
            check = check_response(
                body,
                data,
                self.trusted,
                nonce=nonce,
                policy=cfg.policy,
                tsa=cfg.name,
                require_chain=bool(self.trusted),
            )
        except TsaError as exc:
            FAILURES.labels(cfg.name, exc.reason).inc()
            raise
        finally:
            LATENCY.labels(cfg.name).observe(time.monotonic() - start)
        chain = pem(self.trusted) if self.trusted else pem(check.certificates)
        return Stamp(
            response=body,
            tsa=cfg.name,
            accredited=cfg.accredited,
            gen_time=check.gen_time,
            serial=check.serial,
            chain_pem=chain,
            policy=check.policy,
            hash_algorithm=check.hash_algorithm,
        )


# Failures of the transport put a TSA in cool-down: sealing 1,000 manifests must not wait
# 1,000 timeouts for a TSA that is down. A bad answer (signature, imprint...) does not.
COOLDOWN_REASONS = frozenset({"timeout", "connection", "http_status"})
COOLDOWN_FIRST_S = 30.0
COOLDOWN_MAX_S = 600.0


class FailoverStamper:
    """Stampers in priority order: the first one that gives a checked stamp wins.

    A TSA whose transport failed (``COOLDOWN_REASONS``) is skipped for 30 s, doubling with each
    further failure up to 10 min, and tried again after that; a success resets it. When every
    TSA is cooling down, ``stamp`` fails at once with reason ``unavailable`` (the caller queues
    the stamp and retries later).
    """

    def __init__(
        self,
        stampers: Sequence[Stamper],
        names: Sequence[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not stampers:
            raise TsaError("", "config", "no TSA configured")
        self.stampers = list(stampers)
        self.names = list(names) if names else [getattr(s, "name", "?") for s in stampers]
        self.clock = clock
        self._down_until: dict[str, float] = {}
        self._backoff: dict[str, float] = {}

    def stamp(self, data: bytes) -> Stamp:
        errors: list[TsaError] = []
        skipped: list[str] = []
        now = self.clock()
        for name, stamper in zip(self.names, self.stampers, strict=True):
            if self._down_until.get(name, 0.0) > now:
                skipped.append(name)
                SKIPPED.labels(name).inc()
                continue
            try:
                stamp = stamper.stamp(data)
            except TsaError as exc:
                errors.append(exc)
                if exc.reason in COOLDOWN_REASONS:
                    wait = min(self._backoff.get(name, COOLDOWN_FIRST_S / 2) * 2, COOLDOWN_MAX_S)
                    self._backoff[name] = wait
                    self._down_until[name] = self.clock() + wait
                continue
            self._down_until.pop(name, None)
            self._backoff.pop(name, None)
            return stamp
        if skipped:
            left = min(self._down_until[n] for n in skipped) - now
            errors.append(
                TsaError(
                    ",".join(skipped),
                    "unavailable",
                    f"skipped after recent failures, next try in {max(left, 0):.0f} s",
                )
            )
        if len(errors) == 1:
            raise errors[0]
        raise TsaError(
            ",".join(self.names),
            errors[0].reason,
            "every TSA failed: " + "; ".join(str(e) for e in errors),
        )


def stamper_from_settings(settings: Settings) -> Stamper:
    """The configured TSAs with failover, or the built-in TSA when none is configured."""
    servers = settings.tsa.servers
    if servers:
        # Even a single TSA goes through FailoverStamper, for its cool-down.
        clients = [HttpTsa(s) for s in servers]
        return FailoverStamper(clients, [c.name for c in clients])
    if not settings.tsa.builtin:
        raise TsaError(
            "",
            "config",
            "no TSA configured and the built-in TSA is disabled: add a [[tsa.servers]] entry "
            "or set tsa.builtin = true",
        )
    from logmaster.archive.tsa_server import BuiltinTsa

    return BuiltinTsa(settings.data_dir / "tsa")


# Public names of the CMS helpers, shared with the check of the seals' ``.p7s`` (verdict.py);
# the underscore names stay as aliases.
load_certificates = _load_certs
matches_sid = _matches_sid
verify_signature = _verify_signature
