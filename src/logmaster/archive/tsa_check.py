"""Checking RFC 3161 timestamp tokens (``.tsr``): ``check_response`` and its helpers.

``check_response`` verifies a stored or freshly received ``TimeStampResp`` against the data it
stamps: PKI status granted, the message imprint is the data's hash (SHA-256 or stronger), the
nonce and policy when given, the CMS signature over the signed attributes *as received*, the
ESS signing-certificate attribute, the critical timeStamping EKU, and a chain to a trusted
certificate valid at the token's time. Errors are ``TsaError(tsa, reason, message)``.

The CMS helpers (certificates of a SignedData, signer identifiers, signature algorithms, the
exact signed bytes) serve the ``.p7s`` check of ``verdict.py`` too. Everything here is
re-exported by ``tsa.py``, so ``from logmaster.archive.tsa import check_response`` keeps
working.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import cms, core, tsp
from asn1crypto import parser as asn1_parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

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
