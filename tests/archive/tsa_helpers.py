"""Helpers of the TSA tests: certificates, OpenSSL's own TSA behind HTTP, a scripted HTTP TSA.

``OpensslTsa`` answers with ``openssl ts -reply -config <generated openssl.cnf>``, so the client is
tested against an implementation that is not ours. ``HttpStub`` serves any function of the request
(body, headers) over real HTTP on 127.0.0.1, for timeouts, refusals and the Kamu SM stand-in.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support import free_port

OPENSSL_POLICY = "1.2.3.4.1"
OPENSSL_OTHER_POLICY = "1.2.3.4.5"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Pki:
    """A CA and a certificate it issued, written as PEM files in ``dir``."""

    dir: Path
    ca_cert: x509.Certificate
    ca_key: rsa.RSAPrivateKey
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def ca_pem(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def cert_pem(self) -> Path:
        return self.dir / "leaf.pem"

    @property
    def key_pem(self) -> Path:
        return self.dir / "leaf.key"


def make_pki(
    directory: Path,
    cn: str,
    *,
    eku: list[x509.ObjectIdentifier] | None = None,
    eku_critical: bool = True,
    ec_leaf: bool = False,
) -> Pki:
    """A root CA (RSA 2048) and a leaf (timeStamping EKU by default) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{cn} CA"))
        .issuer_name(_name(f"{cn} CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if ec_leaf
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    ekus = [ExtendedKeyUsageOID.TIME_STAMPING] if eku is None else eku
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=eku_critical)
    cert = builder.sign(ca_key, hashes.SHA256())
    pki = Pki(directory, ca_cert, ca_key, cert, key)
    pki.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.key_pem.chmod(0o600)
    return pki


OPENSSL_CNF = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/leaf.pem
certs = $dir/ca.pem
signer_key = $dir/leaf.key
signer_digest = sha256
default_policy = {policy}
other_policies = {other}
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 0
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class OpensslTsa:
    """OpenSSL's TSA (``openssl ts -reply``) over the certificates of ``pki``."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.cnf = pki.dir / "openssl.cnf"
        self.cnf.write_text(
            OPENSSL_CNF.format(dir=pki.dir, policy=OPENSSL_POLICY, other=OPENSSL_OTHER_POLICY)
        )
        (pki.dir / "serial").write_text("01\n")
        self._lock = threading.Lock()

    def reply(self, query: bytes) -> bytes:
        with self._lock, tempfile.TemporaryDirectory() as tmp:
            q, r = Path(tmp) / "q.tsq", Path(tmp) / "r.tsr"
            q.write_bytes(query)
            subprocess.run(
                [
                    "openssl",
                    "ts",
                    "-reply",
                    "-config",
                    str(self.cnf),
                    "-queryfile",
                    str(q),
                    "-out",
                    str(r),
                ],
                check=True,
                capture_output=True,
            )
            return r.read_bytes()


Handler = Callable[[bytes, dict[str, str]], tuple[int, str, bytes]]


@contextmanager
def http_stub(handler: Handler) -> Iterator[str]:
    """Serve ``handler(body, headers) -> (status, content type, body)`` on 127.0.0.1; yields
    the URL."""

    class _H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, ctype, answer = handler(body, {k.lower(): v for k, v in self.headers.items()})
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: object) -> None:
            pass

    # Handler threads are joined by server_close(): none outlives the test.
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _H)
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def openssl_handler(tsa: OpensslTsa) -> Handler:
    def handle(body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        if headers.get("content-type") != "application/timestamp-query":
            return 415, "text/plain", b"wrong type"
        return 200, "application/timestamp-reply", tsa.reply(body)

    return handle


def openssl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run openssl; the result (not checked) with stdout+stderr as text."""
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
