"""The operator's signing key: what signs every seal (detached CMS ``.p7s``).

Layout of ``<data_dir>/keys/`` (directory 0700, key file 0600)::

    signing-key.pem     the current private key, PKCS#8 PEM; encrypted (BestAvailableEncryption)
                        when a passphrase was given
    signing-cert.pem    the current certificate
    signing-chain.pem   its issuer chain (intermediates, root), empty when self-signed
    retired/<UTC stamp>-<sha256 of the certificate, 16 hex>.pem
                        the certificate (and its chain) of every previous key, kept so that
                        days sealed before a rotation still verify

A rotation retires the current certificate and *deletes* the retired private key: nobody can
sign a back-dated manifest with it afterwards, and verification only needs the certificate.

``openssl cms -verify -binary -inform DER -in X.p7s -content DATA -CAfile CERT -purpose any``
accepts what ``Signer.sign_detached`` writes (tests/archive/test_keys.py checks it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from logmaster.tlscert import write_private

Algorithm = Literal["rsa3072", "ecdsa-p256"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

KEY_FILE = "signing-key.pem"
CERT_FILE = "signing-cert.pem"
CHAIN_FILE = "signing-chain.pem"
RETIRED_DIR = "retired"
DEFAULT_COMMON_NAME = "LogMaster archive seal"


class KeyStoreError(Exception):
    """A signing key that is missing, unreadable, mismatched or locked; the message says what
    to do."""


@dataclass(frozen=True)
class Signer:
    """The current private key with its certificate; signs manifests."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    def sign_detached(self, data: bytes) -> bytes:
        """DER CMS SignedData over ``data`` (not embedded): SHA-256, signed attributes
        (contentType, signingTime, messageDigest), the signing certificate and its chain."""
        builder = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(data)
            .add_signer(self.certificate, self.key, hashes.SHA256())
        )
        for cert in self.chain:
            builder = builder.add_certificate(cert)
        return builder.sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )

    @property
    def chain_pem(self) -> bytes:
        """The signing certificate and its chain as PEM (for ``-CAfile`` / bundles)."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.all_certs)

    @property
    def all_certs(self) -> list[x509.Certificate]:
        return [self.certificate, *self.chain]


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, colon separated upper-case hex (as ``openssl x509 -fingerprint``)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise KeyStoreError(f"unknown key algorithm {algorithm!r}: use rsa3072 or ecdsa-p256")


def _self_signed(key: PrivateKey, common_name: str, days: int) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LogMaster"),
        ]
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        # A self-signed certificate is its own trust anchor (-CAfile): it must be allowed to
        # sign certificates (itself) or OpenSSL does not treat it as self-signed.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _same_key(key: PrivateKey, cert: x509.Certificate) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(
        serialization.Encoding.DER, fmt
    ) == cert.public_key().public_bytes(serialization.Encoding.DER, fmt)


RETIRED_STAMP = "%Y%m%dT%H%M%S%fZ"


def retired_at(path: Path) -> dt.datetime | None:
    """When the certificate in ``retired/<stamp>-<digest>.pem`` stopped being current."""
    try:
        return dt.datetime.strptime(path.name.split("-")[0], RETIRED_STAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


class KeyStore:
    """The signing keys of one data directory (``<data_dir>/keys``)."""

    def __init__(self, keys_dir: Path) -> None:
        self.dir = keys_dir

    @property
    def key_path(self) -> Path:
        return self.dir / KEY_FILE

    @property
    def cert_path(self) -> Path:
        return self.dir / CERT_FILE

    @property
    def chain_path(self) -> Path:
        return self.dir / CHAIN_FILE

    def exists(self) -> bool:
        return self.key_path.exists() and self.cert_path.exists()

    # -- creating -------------------------------------------------------------------------

    def init(
        self,
        algorithm: Algorithm = "rsa3072",
        common_name: str = DEFAULT_COMMON_NAME,
        passphrase: bytes | None = None,
        days: int = 3650,
    ) -> Signer:
        """Create the first signing key and its self-signed certificate."""
        if self.exists():
            raise KeyStoreError(
                f"a signing key already exists in {self.dir}: use `logmaster keys rotate` to "
                "replace it (its certificate is kept for verification)"
            )
        if days < 1:
            raise KeyStoreError("the certificate must be valid for at least 1 day")
        key = _generate(algorithm)
        signer = Signer(key, _self_signed(key, common_name, days), [])
        self._write(signer, passphrase)
        return signer

    def import_key(
        self,
        key_pem: bytes,
        chain_pem: bytes,
        passphrase: bytes | None = None,
        *,
        replace: bool = False,
    ) -> Signer:
        """Take an existing key and its certificate chain (leaf first or in any order).

        ``passphrase`` opens ``key_pem`` and protects the stored copy. With ``replace`` an
        existing key is retired first (as by ``rotate``); otherwise an existing key is an error.
        """
        try:
            key = serialization.load_pem_private_key(key_pem, passphrase)
        except TypeError as exc:
            raise KeyStoreError(
                "the key to import is encrypted: give its passphrase"
                if passphrase is None
                else "the key to import is not encrypted: give no passphrase, the stored copy "
                "is then not encrypted either"
            ) from exc
        except ValueError as exc:
            raise KeyStoreError(
                f"cannot read the key to import (wrong passphrase?): {exc}"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyStoreError("only RSA and ECDSA keys can sign seals")
        try:
            certs = x509.load_pem_x509_certificates(chain_pem)
        except ValueError as exc:
            raise KeyStoreError(f"cannot read the certificate chain: {exc}") from exc
        leaf = [c for c in certs if _same_key(key, c)]
        if not leaf:
            raise KeyStoreError("no certificate in the chain belongs to the key")
        chain = [c for c in certs if c is not leaf[0]]
        signer = Signer(key, leaf[0], chain)
        if self.exists():
            if not replace:
                raise KeyStoreError(
                    f"a signing key already exists in {self.dir}: import with --replace to "
                    "retire it"
                )
            self._retire()
        self._write(signer, passphrase)
        return signer

    def rotate(
        self,
        algorithm: Algorithm = "rsa3072",
        common_name: str = DEFAULT_COMMON_NAME,
        passphrase: bytes | None = None,
        days: int = 3650,
    ) -> Signer:
        """Retire the current key (its certificate stays for verification) and make a new one."""
        if self.exists():
            self._retire()
        return self.init(algorithm, common_name, passphrase, days)

    def _retire(self) -> None:
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        chain = self.chain_path.read_bytes() if self.chain_path.exists() else b""
        retired = self.dir / RETIRED_DIR
        retired.mkdir(mode=0o700, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime(RETIRED_STAMP)
        digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()[:16]
        target = retired / f"{stamp}-{digest}.pem"
        target.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + chain)
        os.chmod(target, 0o644)
        # Overwrite before unlinking: the retired key must not be recoverable from the file.
        size = self.key_path.stat().st_size
        with self.key_path.open("r+b") as fh:
            fh.write(os.urandom(size))
            fh.flush()
            os.fsync(fh.fileno())
        self.key_path.unlink()
        self.cert_path.unlink()
        self.chain_path.unlink(missing_ok=True)

    def _write(self, signer: Signer, passphrase: bytes | None) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        key_pem = signer.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        # Certificates first: a key file without its certificate would look like a broken store.
        self.cert_path.write_bytes(_pem([signer.certificate]))
        self.chain_path.write_bytes(_pem(signer.chain))
        tmp = self.key_path.with_suffix(".tmp")
        write_private(tmp, key_pem)
        os.replace(tmp, self.key_path)

    # -- reading --------------------------------------------------------------------------

    def signer(self, passphrase: bytes | None = None) -> Signer:
        """The current key, opened with ``passphrase`` when it is encrypted."""
        if not self.exists():
            raise KeyStoreError(
                f"no signing key in {self.dir}: run `logmaster keys init` (or `keys import`)"
            )
        mode = self.key_path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyStoreError(
                f"{self.key_path} is readable by others (mode {mode:04o}): chmod 600 it"
            )
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), passphrase)
        except TypeError as exc:
            raise KeyStoreError(
                f"the signing key {self.key_path} is encrypted: give its passphrase"
                if passphrase is None
                else f"the signing key {self.key_path} is not encrypted: give no passphrase"
            ) from exc
        except ValueError as exc:
            raise KeyStoreError(
                f"cannot open the signing key {self.key_path}: wrong passphrase or damaged file"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyStoreError(f"{self.key_path} is neither an RSA nor an ECDSA key")
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        if not _same_key(key, cert):
            raise KeyStoreError(f"{self.cert_path} does not belong to {self.key_path}")
        chain = (
            x509.load_pem_x509_certificates(self.chain_path.read_bytes())
            if self.chain_path.exists() and self.chain_path.stat().st_size
            else []
        )
        return Signer(key, cert, chain)

    def is_encrypted(self) -> bool:
        return b"ENCRYPTED PRIVATE KEY" in self.key_path.read_bytes()[:64]

    def current_certificate(self) -> x509.Certificate | None:
        if not self.cert_path.exists():
            return None
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def retired(self) -> list[tuple[Path, list[x509.Certificate]]]:
        """Each retired file (oldest first) with its certificate first, then its chain."""
        retired = self.dir / RETIRED_DIR
        if not retired.is_dir():
            return []
        return [
            (p, x509.load_pem_x509_certificates(p.read_bytes()))
            for p in sorted(retired.glob("*.pem"))
        ]

    def history(self) -> list[tuple[x509.Certificate, dt.datetime | None, dt.datetime | None]]:
        """Every signing certificate with the time it became current and the time it was
        retired (None: unknown start of the first key / still current), oldest first.

        A seal signed at time T must have been signed by the certificate current at T.
        """
        rows: list[tuple[x509.Certificate, dt.datetime | None, dt.datetime | None]] = []
        start: dt.datetime | None = None
        for path, certs in self.retired():
            end = retired_at(path)
            rows.append((certs[0], start, end))
            start = end
        current = self.current_certificate()
        if current is not None:
            rows.append((current, start, None))
        return rows

    def certificates(self) -> list[x509.Certificate]:
        """The current signing certificate, then every retired one (newest first).

        Only signing certificates (no chains); ``chains()`` adds the issuers.
        """
        certs: list[x509.Certificate] = []
        current = self.current_certificate()
        if current is not None:
            certs.append(current)
        certs.extend(certs_[0] for _p, certs_ in reversed(self.retired()))
        return certs

    def chains(self) -> list[x509.Certificate]:
        """Every certificate of the store (signing certificates and their issuers), unique."""
        seen: dict[bytes, x509.Certificate] = {}
        groups: list[list[x509.Certificate]] = []
        current = self.current_certificate()
        if current is not None:
            chain = (
                x509.load_pem_x509_certificates(self.chain_path.read_bytes())
                if self.chain_path.exists() and self.chain_path.stat().st_size
                else []
            )
            groups.append([current, *chain])
        groups.extend(certs for _p, certs in reversed(self.retired()))
        for group in groups:
            for cert in group:
                seen.setdefault(cert.fingerprint(hashes.SHA256()), cert)
        return list(seen.values())
