"""The signing key store: CMS detached signatures that `openssl cms -verify` accepts, passphrases,
import of an existing key and chain, rotation keeping old certificates, file modes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tsa_helpers import make_pki, openssl

from logmaster.archive.keys import KeyStore, KeyStoreError, fingerprint

DATA = b'{"device":"gw1","date":"2026-11-28"}\n'


def cms_verify(tmp: Path, p7s: bytes, ca_pem: bytes, data: bytes = DATA) -> str:
    (tmp / "m.json").write_bytes(data)
    (tmp / "m.p7s").write_bytes(p7s)
    (tmp / "ca.pem").write_bytes(ca_pem)
    r = openssl(
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "m.p7s",
        "-content",
        "m.json",
        "-CAfile",
        "ca.pem",
        "-purpose",
        "any",
        "-out",
        "/dev/null",
        cwd=tmp,
    )
    return r.stdout + r.stderr


@pytest.mark.parametrize("algorithm", ["rsa3072", "ecdsa-p256"])
def test_detached_signature_verifies_with_openssl(tmp_path: Path, algorithm: str) -> None:
    """RSA 3072 and ECDSA P-256: openssl accepts the signature, and refuses changed data."""
    store = KeyStore(tmp_path / "keys")
    signer = store.init(algorithm)  # type: ignore[arg-type]
    p7s = signer.sign_detached(DATA)
    cert_pem = signer.certificate.public_bytes(serialization.Encoding.PEM)
    assert "Verification successful" in cms_verify(tmp_path, p7s, cert_pem)
    assert "Verification successful" not in cms_verify(tmp_path, p7s, cert_pem, DATA + b" ")
    text = openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", "m.p7s", cwd=tmp_path)
    assert "signingTime" in text.stdout and "sha256" in text.stdout
    key = signer.key
    assert isinstance(key, ec.EllipticCurvePrivateKey) == (algorithm == "ecdsa-p256")


def test_file_modes_and_no_overwrite(tmp_path: Path) -> None:
    """Directory 0700, key 0600; init refuses to replace an existing key."""
    store = KeyStore(tmp_path / "keys")
    assert not store.exists()
    store.init("ecdsa-p256", common_name="Test Operator")
    assert store.exists()
    assert store.dir.stat().st_mode & 0o777 == 0o700
    assert store.key_path.stat().st_mode & 0o777 == 0o600
    assert "Test Operator" in store.signer().certificate.subject.rfc4514_string()
    with pytest.raises(KeyStoreError, match="rotate"):
        store.init("ecdsa-p256")
    store.key_path.chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        store.signer()


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="keys init"):
        KeyStore(tmp_path / "keys").signer()


def test_passphrase_protected_key(tmp_path: Path) -> None:
    """With a passphrase the PKCS#8 file is encrypted; no or wrong passphrase: clear errors."""
    store = KeyStore(tmp_path / "keys")
    store.init("ecdsa-p256", passphrase=b"correct horse")
    assert store.is_encrypted()
    assert b"ENCRYPTED PRIVATE KEY" in store.key_path.read_bytes()
    with pytest.raises(KeyStoreError, match="give its passphrase"):
        store.signer()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        store.signer(b"wrong")
    signer = store.signer(b"correct horse")
    pem = signer.certificate.public_bytes(serialization.Encoding.PEM)
    assert "Verification successful" in cms_verify(tmp_path, signer.sign_detached(DATA), pem)
    # openssl itself reads the file with the passphrase (it is standard PKCS#8).
    r = openssl("pkey", "-in", str(store.key_path), "-passin", "pass:correct horse", "-noout")
    assert r.returncode == 0, r.stderr


def test_rotation_keeps_old_certificates(tmp_path: Path) -> None:
    """After rotate: a new current key, the old certificate still listed, the old key gone,
    and a signature made before the rotation still verifies with the old certificate."""
    store = KeyStore(tmp_path / "keys")
    old = store.init("ecdsa-p256")
    old_p7s = old.sign_detached(DATA)
    new = store.rotate("rsa3072")
    assert fingerprint(new.certificate) != fingerprint(old.certificate)
    certs = store.certificates()
    assert [fingerprint(c) for c in certs] == [
        fingerprint(new.certificate),
        fingerprint(old.certificate),
    ]
    assert fingerprint(store.signer().certificate) == fingerprint(new.certificate)
    retired = store.retired()
    assert len(retired) == 1 and not list((store.dir / "retired").glob("*key*"))
    assert b"PRIVATE KEY" not in retired[0][0].read_bytes()
    old_pem = old.certificate.public_bytes(serialization.Encoding.PEM)
    assert "Verification successful" in cms_verify(tmp_path, old_p7s, old_pem)
    store.rotate("ecdsa-p256")
    assert len(store.certificates()) == 3
    history = store.history()
    assert [fingerprint(c) for c, _s, _e in history][:2] == [
        fingerprint(old.certificate),
        fingerprint(new.certificate),
    ]
    (_, start0, end0), (_, start1, end1), (_, start2, end2) = history
    assert start0 is None and end2 is None
    assert end0 == start1 and end1 == start2
    assert end0 is not None and end1 is not None and end0 < end1


def test_import_key_with_chain(tmp_path: Path) -> None:
    """An operator's key issued by their CA: the chain is kept and travels in the signature;
    openssl verifies with the CA as the only trust anchor."""
    pki = make_pki(tmp_path / "pki", "Operator", eku=[], ec_leaf=True)
    store = KeyStore(tmp_path / "keys")
    chain_pem = pki.ca_pem.read_bytes() + pki.cert_pem.read_bytes()  # any order
    signer = store.import_key(pki.key_pem.read_bytes(), chain_pem)
    assert signer.certificate == pki.cert and signer.chain == [pki.ca_cert]
    again = store.signer()
    assert again.chain == [pki.ca_cert]
    out = cms_verify(tmp_path, again.sign_detached(DATA), pki.ca_pem.read_bytes())
    assert "Verification successful" in out
    assert {fingerprint(c) for c in store.chains()} == {
        fingerprint(pki.cert),
        fingerprint(pki.ca_cert),
    }
    # A second import must say --replace; with it, the first is retired.
    with pytest.raises(KeyStoreError, match="replace"):
        store.import_key(pki.key_pem.read_bytes(), chain_pem)
    store.import_key(pki.key_pem.read_bytes(), chain_pem, replace=True)
    assert len(store.retired()) == 1


def test_import_refuses_mismatch_and_keeps_passphrase(tmp_path: Path) -> None:
    """A chain without the key's certificate is refused; an encrypted key needs its passphrase
    and stays encrypted with it."""
    pki = make_pki(tmp_path / "pki", "Operator", eku=[])
    other = make_pki(tmp_path / "other", "Someone else", eku=[])
    store = KeyStore(tmp_path / "keys")
    with pytest.raises(KeyStoreError, match="no certificate in the chain"):
        store.import_key(pki.key_pem.read_bytes(), other.cert_pem.read_bytes())
    encrypted = pki.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(KeyStoreError, match="passphrase"):
        store.import_key(encrypted, pki.cert_pem.read_bytes())
    store.import_key(encrypted, pki.cert_pem.read_bytes(), passphrase=b"pw")
    assert store.is_encrypted() and store.signer(b"pw").chain == []


def test_certificate_validity(tmp_path: Path) -> None:
    """days sets the validity; the certificate is self-signed and usable as -CAfile."""
    signer = KeyStore(tmp_path / "keys").init("ecdsa-p256", days=30)
    cert = signer.certificate
    length = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=30) <= length <= dt.timedelta(days=30, minutes=10)
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert x509.BasicConstraints in {type(e.value) for e in cert.extensions}


def test_signed_bytes_of_a_p7s_verify(tmp_path: Path) -> None:
    """tsa.signed_bytes gives exactly what the .p7s signature covers (shared with verification)."""
    from asn1crypto import cms
    from cryptography.hazmat.primitives.asymmetric import ec as ec_

    from logmaster.archive.tsa import signed_bytes

    signer = KeyStore(tmp_path / "keys").init("ecdsa-p256")
    p7s = signer.sign_detached(DATA)
    si = cms.ContentInfo.load(p7s)["content"]["signer_infos"][0]
    public = signer.certificate.public_key()
    assert isinstance(public, ec_.EllipticCurvePublicKey)
    public.verify(si["signature"].native, signed_bytes(p7s), ec_.ECDSA(hashes.SHA256()))
