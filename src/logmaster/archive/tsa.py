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

Every stamp received is checked before it is returned (``check_response``): PKI status granted,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from asn1crypto import cms, core, tsp
from asn1crypto import parser as asn1_parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from prometheus_client import CollectorRegistry, Counter, Histogram, Metric

if TYPE_CHECKING:
    from logmaster.config import Settings, TsaServerSettings

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

HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# Only for checking signatures of old certificates and tokens: we never request these.
_SIGNATURE_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    **HASHES,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
}


class TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp. asn1crypto 1.5.1's ``tsp.TimeStampResp`` makes timeStampToken
    mandatory, so it cannot read a rejection (which has none); RFC 3161 section 2.4.2 says
    OPTIONAL."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class TsaError(Exception):
    """A timestamp that could not be obtained or does not check; names the TSA and why."""

    def __init__(self, tsa: str, reason: str, message: str) -> None:
        self.tsa = tsa
        self.reason = reason
        self.detail = message
        where = f"TSA {tsa}: " if tsa else "timestamp token: "
        super().__init__(where + message)


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


@dataclass(frozen=True)
class StampCheck:
    """What a valid token says."""

    gen_time: dt.datetime
    serial: int
    policy: str
    tsa_subject: str  # RFC 4514 subject of the signing certificate
    hash_algorithm: str
    nonce: int | None
    accuracy_s: float | None
    signer: x509.Certificate
    certificates: list[x509.Certificate] = field(default_factory=list)  # carried by the token


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


# -- checking -----------------------------------------------------------------------------------


def _load_certs(signed_data: cms.SignedData) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for choice in signed_data["certificates"] or []:
        if choice.name == "certificate":
            certs.append(x509.load_der_x509_certificate(choice.chosen.dump()))
    return certs


def _matches_sid(cert: x509.Certificate, sid: cms.SignerIdentifier) -> bool:
    if sid.name == "issuer_and_serial_number":
        want = sid.chosen
        if cert.serial_number != want["serial_number"].native:
            return False
        if cert.issuer.public_bytes() == want["issuer"].dump():
            return True
        # Else compare normalised (RFC 5280 7.1) as asn1crypto does; slow (stringprep).
        ours = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
        return bool(ours.issuer == want["issuer"])
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return False
    return bool(ski == sid.chosen.native)


def _verify_signature(
    cert: x509.Certificate, sig_alg: Any, digest_name: str, signature: bytes, signed: bytes
) -> None:
    """Raise InvalidSignature (or ValueError for an unsupported algorithm)."""
    key = cert.public_key()
    algo = sig_alg.signature_algo
    try:
        hash_name = sig_alg.hash_algo
    except ValueError:  # plain rsassa_pkcs1v15 / ecdsa: the hash is the digest algorithm
        hash_name = digest_name
    if hash_name not in _SIGNATURE_HASHES:
        raise ValueError(f"unsupported hash {hash_name}")
    h = _SIGNATURE_HASHES[hash_name]()
    if algo == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, signed, padding.PKCS1v15(), h)
    elif algo == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
        params = sig_alg["parameters"]
        pss_hash = _SIGNATURE_HASHES[params["hash_algorithm"]["algorithm"].native]()
        mgf_hash = _SIGNATURE_HASHES[
            params["mask_gen_algorithm"]["parameters"]["algorithm"].native
        ]()
        key.verify(
            signature,
            signed,
            padding.PSS(padding.MGF1(mgf_hash), params["salt_length"].native),
            pss_hash,
        )
    elif algo == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, signed, ec.ECDSA(h))
    else:
        raise ValueError(f"unsupported signature algorithm {algo} for this key")


def _ess_matches(attrs: dict[str, Any], cert: x509.Certificate) -> bool | None:
    """Whether the ESS signing-certificate attribute names ``cert`` (None when absent)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    if "signing_certificate_v2" in attrs:
        cert_id = attrs["signing_certificate_v2"][0]["certs"][0]
        name = cert_id["hash_algorithm"]["algorithm"].native
        return bool(hashlib.new(name, der).digest() == cert_id["cert_hash"].native)
    if "signing_certificate" in attrs:
        cert_id = attrs["signing_certificate"][0]["certs"][0]
        return bool(hashlib.sha1(der).digest() == cert_id["cert_hash"].native)  # noqa: S324
    return None


def _chain_to(
    signer: x509.Certificate,
    pool: Sequence[x509.Certificate],
    trusted: Sequence[x509.Certificate],
    at: dt.datetime,
) -> str | None:
    """None when ``signer`` chains to a certificate of ``trusted`` (all valid at ``at``), else
    why not."""
    trusted_der = {c.public_bytes(serialization.Encoding.DER) for c in trusted}
    candidates = [*trusted, *pool]
    cert = signer
    for _depth in range(8):
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            return (
                f"certificate {cert.subject.rfc4514_string()} was not valid at "
                f"{at:%Y-%m-%dT%H:%M:%SZ}"
            )
        if cert.public_bytes(serialization.Encoding.DER) in trusted_der:
            return None
        issuer = None
        for cand in candidates:
            if cand.subject != cert.issuer or cand == cert:
                continue
            try:
                cert.verify_directly_issued_by(cand)
            except (ValueError, TypeError, InvalidSignature):
                continue
            try:
                bc = cand.extensions.get_extension_for_class(x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                continue
            if bc.ca:
                issuer = cand
                break
        if issuer is None:
            return (
                f"the TSA certificate {signer.subject.rfc4514_string()} does not chain to a "
                f"trusted certificate (no issuer for {cert.subject.rfc4514_string()})"
            )
        cert = issuer
    return "certificate chain too long"


def check_response(
    response: bytes,
    data: bytes,
    trusted: Sequence[x509.Certificate],
    *,
    nonce: int | None = None,
    policy: str | None = None,
    tsa: str = "",
    require_chain: bool = True,
) -> StampCheck:
    """Parse and verify a stored ``.tsr`` (DER TimeStampResp) against ``data``.

    Checks: status granted, the imprint is the hash of ``data``, the CMS signature and its
    signed attributes, the signer certificate (critical timeStamping EKU, ESS signing-certificate
    attribute, valid at genTime, chains to one of ``trusted``); with ``nonce`` / ``policy`` also
    those. ``require_chain=False`` with an empty ``trusted`` skips only the chain (a TSA
    configured without a CA file). Raises TsaError naming what is wrong.
    """

    def bad(reason: str, message: str) -> TsaError:
        return TsaError(tsa, reason, message)

    try:
        resp = TimeStampResp.load(response, strict=True)
        status = resp["status"]["status"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise bad("bad_response", f"not an RFC 3161 TimeStampResp ({exc})") from exc
    if status not in ("granted", "granted_with_mods"):
        raise bad("rejected", describe_status(resp))
    try:
        token = resp["time_stamp_token"]
        token_der = _children(response)[1][2]  # ContentInfo as received
        if token["content_type"].native != "signed_data":
            raise ValueError("the token is not CMS SignedData")
        signed_data = token["content"]
        eci = signed_data["encap_content_info"]
        if eci["content_type"].native != "tst_info":
            raise ValueError("the token does not carry a TSTInfo")
        tst_der = eci["content"].contents
        tst = tsp.TSTInfo.load(tst_der, strict=True)
        imprint = tst["message_imprint"]
        hash_name = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        gen_time = tst["gen_time"].native
        serial = tst["serial_number"].native
        token_policy = tst["policy"].dotted
        token_nonce = tst["nonce"].native
        accuracy = _accuracy(tst["accuracy"])
        certs = _load_certs(signed_data)
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise ValueError(f"{len(signer_infos)} signers instead of 1")
        si = signer_infos[0]
        signed_attrs = si["signed_attrs"]
        if not signed_attrs:
            raise ValueError("no signed attributes")
        attrs = {a["type"].native: a["values"] for a in signed_attrs}
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise bad("bad_response", f"malformed timestamp token: {exc}") from exc

    if hash_name not in HASHES:
        raise bad("imprint", f"imprint hash {hash_name} is weaker than SHA-256")
    if hashlib.new(hash_name, data).digest() != hashed:
        raise bad("imprint", "the token's message imprint is not the hash of this data")
    if nonce is not None and token_nonce != nonce:
        raise bad("nonce", f"nonce {token_nonce} in the token, {nonce} was sent")
    if policy and token_policy != policy:
        raise bad("policy", f"policy {token_policy} in the token, {policy} was requested")

    signer = next((c for c in [*certs, *trusted] if _matches_sid(c, si["sid"])), None)
    if signer is None:
        raise bad("certificate", "the token's signer certificate is neither in it nor trusted")

    digest_name = si["digest_algorithm"]["algorithm"].native
    try:
        if attrs.get("content_type", [None])[0] is None or (
            attrs["content_type"][0].native != "tst_info"
        ):
            raise bad("signature", "signed attribute contentType is not id-ct-TSTInfo")
        if "message_digest" not in attrs or (
            hashlib.new(digest_name, tst_der).digest() != attrs["message_digest"][0].native
        ):
            raise bad("signature", "signed attribute messageDigest does not match the TSTInfo")
    except (ValueError, TypeError) as exc:
        raise bad("signature", f"unusable digest algorithm {digest_name}: {exc}") from exc
    ess = _ess_matches(attrs, signer)
    if ess is None:
        raise bad("signature", "no ESS signing-certificate attribute (RFC 3161 section 2.4.1)")
    if not ess:
        raise bad("signature", "the ESS signing-certificate attribute names another certificate")
    # The signature covers the attributes as received, tagged SET OF (0x31) instead of [0].
    try:
        covered = signed_bytes(token_der)
    except (ValueError, IndexError) as exc:
        raise bad("bad_response", f"malformed timestamp token: {exc}") from exc
    try:
        _verify_signature(
            signer, si["signature_algorithm"], digest_name, si["signature"].native, covered
        )
    except InvalidSignature as exc:
        raise bad("signature", "the token's signature does not verify") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise bad("signature", f"cannot check the token's signature: {exc}") from exc

    try:
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.TIME_STAMPING not in eku.value or not eku.critical:
        raise bad(
            "certificate",
            f"the signer {signer.subject.rfc4514_string()} is not a TSA certificate "
            "(critical extendedKeyUsage timeStamping missing)",
        )
    if trusted or require_chain:
        if not trusted:
            raise bad("certificate", "no trusted TSA certificates given to check the token")
        if why := _chain_to(signer, certs, trusted, gen_time):
            raise bad("certificate", why)

    return StampCheck(
        gen_time=gen_time,
        serial=serial,
        policy=token_policy,
        tsa_subject=signer.subject.rfc4514_string(),
        hash_algorithm=hash_name,
        nonce=token_nonce,
        accuracy_s=accuracy,
        signer=signer,
        certificates=certs,
    )


def _children(der: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """(class, tag, whole encoding, contents) of each value inside a constructed value."""
    out: list[tuple[int, int, bytes, bytes]] = []
    _cls, _method, _tag, _header, contents, _trailer = asn1_parser.parse(der)
    pos = 0
    while pos < len(contents):
        cls, _m, tag, h, c, t = asn1_parser.parse(contents[pos:])
        size = len(h) + len(c) + len(t)
        out.append((cls, tag, contents[pos : pos + size], c))
        pos += size
    return out


def raw_signed_attrs(signed_data_der: bytes) -> bytes:
    """The signed attributes of the only SignerInfo exactly as received, re-tagged SET OF:
    the bytes the signature covers. (asn1crypto re-encodes a SET OF when dumping it, which
    costs ~30 ms and would change a set the signer did not sort.)"""
    signer_infos = _children(signed_data_der)[-1]  # SignedData ends with signerInfos
    (signer_info,) = _children(signer_infos[2])
    for cls, tag, whole, _contents in _children(signer_info[2]):
        if cls == 2 and tag == 0:  # [0] IMPLICIT signedAttrs
            return b"\x31" + whole[1:]
    raise ValueError("no signed attributes")


def signed_bytes(content_info: bytes) -> bytes:
    """What the signature of a CMS ContentInfo/SignedData with one signer covers: its signed
    attributes as received, tagged SET OF. For ``.tsr`` tokens and ``.p7s`` files alike."""
    return raw_signed_attrs(_children(content_info)[1][3])


def _accuracy(acc: Any) -> float | None:
    if acc.native is None:
        return None
    n = acc.native
    return float(
        (n.get("seconds") or 0) + (n.get("millis") or 0) / 1e3 + (n.get("micros") or 0) / 1e6
    )


def describe_status(resp: TimeStampResp) -> str:
    """The PKIStatusInfo of a non-granted response in words."""
    info = resp["status"]
    parts = [f"request refused (status {info['status'].native})"]
    if info["status_string"].native:
        parts.append("; ".join(str(s) for s in info["status_string"].native))
    if info["fail_info"].native:
        parts.append("failInfo " + ", ".join(sorted(info["fail_info"].native)))
    return ": ".join(parts[:1]) + (" — " + "; ".join(parts[1:]) if parts[1:] else "")


def tsr_certificates(response: bytes) -> list[x509.Certificate]:
    """The certificates carried by a TimeStampResp's token (empty when unreadable)."""
    try:
        resp = TimeStampResp.load(response)
        return _load_certs(resp["time_stamp_token"]["content"])
    except (ValueError, TypeError, KeyError):
        return []


def pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


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
