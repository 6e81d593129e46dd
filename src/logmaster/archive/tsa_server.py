"""The built-in TSA: real RFC 3161 tokens from our own certificate, for offline sites and tests.

It is NOT an accredited TSA, and says so everywhere: its certificates are named "LogMaster
built-in TSA (not accredited)", its stamps carry ``tsa="builtin"`` and ``accredited=False``, and
its tokens carry the policy ``BUILTIN_POLICY``.

``BUILTIN_POLICY`` is ``2.25.<uuid>.1``: the ``2.25`` arc (ITU-T X.667 / RFC 4122 section 4) lets
anyone mint a unique OID from a UUID without registering it, so it can never collide with the
policy of a real TSA and is recognisably private. ``.1`` = "LogMaster built-in TSA policy,
version 1: time from this server's clock (NTP), accuracy 1 s, no accreditation".

On first use ``BuiltinTsa(dir)`` creates in ``dir`` (``<data_dir>/tsa``, mode 0700)::

    ca-key.pem   ca-cert.pem    a self-signed CA (EC P-256, 20 years), key 0600
    tsa-key.pem  tsa-cert.pem   the TSA certificate issued by it (EC P-256, 10 years,
                                extendedKeyUsage timeStamping, critical), key 0600
    chain.pem                   the CA certificate: the -CAfile of ``openssl ts -verify``
    tsa-cert-<serial>.pem       earlier TSA certificates: 90 days before the current one
                                expires a new one is issued by the same CA, so every token
                                ever issued still verifies with the same chain.pem

Responses (``respond``) follow RFC 3161: PKIStatus granted with a TSTInfo (policy, the request's
imprint, a unique serial, genTime with microseconds, accuracy 1 s, the request's nonce, the TSA's
name) in a CMS SignedData signed with signed attributes contentType, signingTime, messageDigest
and ESS signingCertificateV2 (RFC 5816); the TSA certificate is included when certReq is true.
Bad requests get status rejection with the failInfo of RFC 3161 section 2.4.2 (badAlg,
badDataFormat, unacceptedPolicy, unacceptedExtension), as HTTP 200 like every RFC 3161 server.

``logmaster tsa serve`` puts ``respond`` behind HTTP (``make_server``): POST
``application/timestamp-query`` → ``application/timestamp-reply``; GET ``/chain.pem``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from logmaster.archive.tsa import (
    FAILURES,
    HASHES,
    LATENCY,
    QUERY_TYPE,
    REPLY_TYPE,
    REQUESTS,
    Stamp,
    TimeStampResp,
    TsaError,
    build_request,
    check_response,
)
from logmaster.tlscert import write_private

NAME = "builtin"
LABEL = "built-in, not an accredited TSA"
BUILTIN_POLICY = "2.25.49456206834181229111540176839497409405.1"
MAX_REQUEST_BYTES = 64 * 1024
_DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


CA_DAYS = 20 * 365
TSA_DAYS = 10 * 365
RENEW_DAYS = 90


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LogMaster (built-in, not accredited)"),
        ]
    )


def _key_usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not sign_certs,
        content_commitment=not sign_certs,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=sign_certs,
        crl_sign=sign_certs,
        encipher_only=False,
        decipher_only=False,
    )


def rejection(fail_info: str, text: str) -> bytes:
    """A TimeStampResp with status rejection (RFC 3161 section 2.4.2)."""
    response: bytes = TimeStampResp(
        {
            "status": {
                "status": "rejection",
                "status_string": [text],
                "fail_info": tsp.PKIFailureInfo({fail_info}),
            }
        }
    ).dump()
    return response


class BuiltinTsa:
    """The built-in TSA of one directory; a ``Stamper`` and the engine of ``tsa serve``."""

    name = NAME
    accredited = False

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._lock = threading.Lock()
        self._loaded = False

    # -- the certificates -----------------------------------------------------------------

    def _ensure(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Two processes starting at once (collector and `tsa serve`) must not make two CAs.
            with (self.dir / ".lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not (self.dir / "tsa-cert.pem").exists():
                    self._create()
                self._renew_if_expiring()
            self.ca_cert = x509.load_pem_x509_certificate((self.dir / "ca-cert.pem").read_bytes())
            self.cert = x509.load_pem_x509_certificate((self.dir / "tsa-cert.pem").read_bytes())
            key = serialization.load_pem_private_key((self.dir / "tsa-key.pem").read_bytes(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise TsaError(NAME, "config", f"{self.dir / 'tsa-key.pem'} is not an EC key")
            self.key = key
            self._prepare()
            self._loaded = True

    def _create(self) -> None:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("LogMaster built-in TSA CA (not accredited)")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign_certs=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
        write_private(self.dir / "ca-key.pem", _key_pem(ca_key))
        (self.dir / "ca-cert.pem").write_bytes(ca_pem)
        (self.dir / "chain.pem").write_bytes(ca_pem)
        self._issue(ca_key, ca_cert)

    def _issue(self, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate) -> None:
        """A new TSA key and certificate from the CA (first use, and before expiry)."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
        tsa_key = ec.generate_private_key(ec.SECP256R1())
        tsa_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("LogMaster built-in TSA (not accredited)"))
            .issuer_name(ca_cert.subject)
            .public_key(tsa_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            # Never past the CA: a token must chain to a CA valid at its genTime.
            .not_valid_after(min(now + dt.timedelta(days=TSA_DAYS), ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign_certs=False), critical=True)
            # RFC 3161 section 2.3: the only EKU, and critical.
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        tmp = self.dir / "tsa-key.pem.tmp"
        write_private(tmp, _key_pem(tsa_key))
        os.replace(tmp, self.dir / "tsa-key.pem")
        # Last: its presence says the directory is complete.
        (self.dir / "tsa-cert.pem").write_bytes(tsa_cert.public_bytes(serialization.Encoding.PEM))

    def _renew_if_expiring(self) -> None:
        """Issue a new TSA certificate RENEW_DAYS before the current one expires; the old one is
        kept as tsa-cert-<serial>.pem (its tokens carry it and chain to the same CA)."""
        cert = x509.load_pem_x509_certificate((self.dir / "tsa-cert.pem").read_bytes())
        left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
        if left > dt.timedelta(days=RENEW_DAYS):
            return
        ca_cert = x509.load_pem_x509_certificate((self.dir / "ca-cert.pem").read_bytes())
        if ca_cert.not_valid_after_utc - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1):
            raise TsaError(
                NAME,
                "certificate",
                f"the built-in TSA's CA in {self.dir} expires: move the directory away to "
                "start a new CA (keep its chain.pem to verify older stamps)",
            )
        ca_key = serialization.load_pem_private_key((self.dir / "ca-key.pem").read_bytes(), None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TsaError(NAME, "config", f"{self.dir / 'ca-key.pem'} is not an EC key")
        os.replace(self.dir / "tsa-cert.pem", self.dir / f"tsa-cert-{cert.serial_number:x}.pem")
        self._issue(ca_key, ca_cert)

    @property
    def chain_pem(self) -> bytes:
        """The CA certificate: ``-CAfile`` for ``openssl ts -verify``."""
        self._ensure()
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def trusted(self) -> list[x509.Certificate]:
        self._ensure()
        return [self.ca_cert]

    @property
    def certificate(self) -> x509.Certificate:
        self._ensure()
        return self.cert

    # -- answering ------------------------------------------------------------------------

    def respond(self, request: bytes) -> bytes:
        """The DER TimeStampResp to a DER TimeStampReq (never raises for bad input)."""
        self._ensure()
        try:
            req = tsp.TimeStampReq.load(request, strict=True)
            version = req["version"].native
            imprint = req["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            digest = imprint["hashed_message"].native
            policy = req["req_policy"].dotted if req["req_policy"].native else None
            nonce = req["nonce"].native
            cert_req = bool(req["cert_req"].native)
            has_extensions = bool(req["extensions"].native)
        except (ValueError, TypeError, KeyError) as exc:
            return rejection("bad_data_format", f"not a TimeStampReq: {exc}")
        if version != "v1":
            return rejection("bad_request", f"version {version} is not 1")
        if algorithm not in HASHES:
            return rejection("bad_alg", f"hash {algorithm} not accepted; use SHA-256 or stronger")
        if len(digest) != _DIGEST_SIZES[algorithm]:
            return rejection("bad_data_format", f"{algorithm} imprint of {len(digest)} bytes")
        if policy is not None and policy != BUILTIN_POLICY:
            return rejection("unaccepted_policy", f"only policy {BUILTIN_POLICY} is offered")
        if has_extensions:
            return rejection("unaccepted_extension", "no request extension is supported")
        return self._grant(imprint, nonce, cert_req)

    def _prepare(self) -> None:
        """DER of the parts that are the same in every token. asn1crypto re-encodes a nested
        value it was handed as an object on every dump (most of 300 ms per token, measured);
        values loaded from bytes are copied as they are."""
        cert_der = self.cert.public_bytes(serialization.Encoding.DER)
        cert = asn1_x509.Certificate.load(cert_der)
        self._cert_der = cert_der
        self._tsa_name = asn1_x509.GeneralName(name="directory_name", value=cert.subject).dump()
        self._sid = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={"issuer": cert.issuer, "serial_number": cert.serial_number},
        ).dump()
        self._ess = tsp.SigningCertificateV2(
            {
                "certs": [
                    {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "cert_hash": hashlib.sha256(cert_der).digest(),
                        "issuer_serial": {
                            "issuer": [
                                asn1_x509.GeneralName(name="directory_name", value=cert.issuer)
                            ],
                            "serial_number": cert.serial_number,
                        },
                    }
                ]
            }
        ).dump()

    def _grant(self, imprint: tsp.MessageImprint, nonce: int | None, cert_req: bool) -> bytes:
        # Serial: nanoseconds since the epoch then 32 random bits; unique across processes
        # sharing this directory without a counter file, and ordered by time.
        serial = (time.time_ns() << 32) | secrets.randbits(32)
        tst = {
            "version": "v1",
            "policy": BUILTIN_POLICY,
            "message_imprint": tsp.MessageImprint.load(imprint.dump()),
            "serial_number": serial,
            "gen_time": dt.datetime.now(dt.UTC),
            "accuracy": {"seconds": 1},
            "ordering": False,
            "tsa": asn1_x509.GeneralName.load(self._tsa_name),
        }
        if nonce is not None:
            tst["nonce"] = nonce
        tst_der = tsp.TSTInfo(tst).dump()
        signing_time = dt.datetime.now(dt.UTC).replace(microsecond=0)
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "signing_time", "values": [cms.Time(name="utc_time", value=signing_time)]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
                {
                    "type": "signing_certificate_v2",
                    "values": [tsp.SigningCertificateV2.load(self._ess)],
                },
            ]
        )
        attrs_der = signed_attrs.dump()
        to_sign = b"\x31" + attrs_der[1:]
        signature = self.key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": core.ParsableOctetString(tst_der),
                },
                "signer_infos": [
                    {
                        "version": "v1",
                        "sid": cms.SignerIdentifier.load(self._sid),
                        "digest_algorithm": {"algorithm": "sha256"},
                        "signed_attrs": cms.CMSAttributes.load(attrs_der),
                        "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                        "signature": signature,
                    }
                ],
            }
        )
        if cert_req:
            signed_data["certificates"] = [cms.CertificateChoices.load(self._cert_der)]
        response: bytes = TimeStampResp(
            {
                "status": {"status": "granted"},
                "time_stamp_token": {"content_type": "signed_data", "content": signed_data},
            }
        ).dump()
        return response

    # -- Stamper --------------------------------------------------------------------------

    def stamp(self, data: bytes) -> Stamp:
        """A checked stamp over ``data`` from this TSA (in process, no HTTP)."""
        REQUESTS.labels(NAME).inc()
        start = time.monotonic()
        try:
            request, nonce = build_request(data, "sha256")
            response = self.respond(request)
            check = check_response(
                response, data, self.trusted, nonce=nonce, policy=BUILTIN_POLICY, tsa=NAME
            )
        except TsaError as exc:
            FAILURES.labels(NAME, exc.reason).inc()
            raise
        finally:
            LATENCY.labels(NAME).observe(time.monotonic() - start)
        return Stamp(
            response=response,
            tsa=NAME,
            accredited=False,
            gen_time=check.gen_time,
            serial=check.serial,
            chain_pem=self.chain_pem,
            policy=check.policy,
            hash_algorithm=check.hash_algorithm,
        )


# -- HTTP ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: TsaHttpServer
    protocol_version = "HTTP/1.1"

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        ctype = self.headers.get_content_type()
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_REQUEST_BYTES:
            self._send(413 if length else 411, "text/plain", b"request body missing or too big\n")
            return
        body = self.rfile.read(length)
        if ctype != QUERY_TYPE:
            self._send(415, "text/plain", f"expected {QUERY_TYPE}\n".encode())
            return
        self._send(200, REPLY_TYPE, self.server.tsa.respond(body))

    def do_GET(self) -> None:
        if self.path == "/chain.pem":
            self._send(200, "application/x-pem-file", self.server.tsa.chain_pem)
        else:
            self._send(404, "text/plain", b"POST timestamp queries to /; GET /chain.pem\n")

    def log_message(self, format: str, *args: object) -> None:
        pass  # the access log would be one line per seal; counters say enough


class TsaHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tsa: BuiltinTsa, host: str, port: int) -> None:
        self.tsa = tsa
        super().__init__((host, port), _Handler)


def make_server(tsa: BuiltinTsa, host: str, port: int) -> TsaHttpServer:
    """An HTTP server answering RFC 3161 requests with ``tsa`` (call ``serve_forever``)."""
    tsa.chain_pem  # noqa: B018 - create the certificates before the first request
    return TsaHttpServer(tsa, host, port)
