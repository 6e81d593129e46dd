"""RFC 3161: our client against OpenSSL's TSA, our built-in TSA against `openssl ts -verify`,
the token check against every kind of bad token, failover between TSAs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from tsa_helpers import (
    OPENSSL_OTHER_POLICY,
    OPENSSL_POLICY,
    OpensslTsa,
    Pki,
    http_stub,
    make_pki,
    openssl,
    openssl_handler,
)

from logmaster.archive.tsa import (
    FAILURES,
    REQUESTS,
    TSA_REGISTRY,
    FailoverStamper,
    HttpTsa,
    TimeStampResp,
    TsaError,
    build_request,
    check_response,
    stamper_from_settings,
)
from logmaster.archive.tsa_server import BUILTIN_POLICY, BuiltinTsa, make_server
from logmaster.config import TsaServerSettings, load_settings
from support import free_port

DATA = b'{"device":"gw1","date":"2026-11-28","sha256":"00"}\n'


@pytest.fixture(scope="module")
def openssl_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("openssl-tsa"), "OpenSSL test TSA")


@pytest.fixture(scope="module")
def openssl_url(openssl_pki: Pki) -> Iterator[str]:
    with http_stub(openssl_handler(OpensslTsa(openssl_pki))) as url:
        yield url


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory) -> BuiltinTsa:
    return BuiltinTsa(tmp_path_factory.mktemp("data") / "tsa")


def client(name: str, url: str, ca: Path | None, **kw: object) -> HttpTsa:
    return HttpTsa(TsaServerSettings(name=name, url=url, ca_file=ca, **kw))  # type: ignore[arg-type]


def openssl_verify(tmp: Path, response: bytes, chain_pem: bytes, data: bytes = DATA) -> str:
    (tmp / "data").write_bytes(data)
    (tmp / "x.tsr").write_bytes(response)
    (tmp / "chain.pem").write_bytes(chain_pem)
    r = openssl("ts", "-verify", "-data", "data", "-in", "x.tsr", "-CAfile", "chain.pem", cwd=tmp)
    return r.stdout + r.stderr


def counter(name: str, **labels: str) -> float:
    return TSA_REGISTRY.get_sample_value(name, labels) or 0.0


# -- interoperability ---------------------------------------------------------------------------


def test_client_gets_and_checks_a_token_from_openssl_tsa(
    openssl_pki: Pki, openssl_url: str, tmp_path: Path
) -> None:
    """A stamp from OpenSSL's TSA passes our check and `openssl ts -verify` with chain_pem."""
    before = counter("logmaster_tsa_requests_total", tsa="ossl")
    stamp = client("ossl", openssl_url, openssl_pki.ca_pem).stamp(DATA)
    assert stamp.tsa == "ossl" and stamp.accredited
    assert stamp.policy == OPENSSL_POLICY
    assert stamp.serial >= 1
    assert "Verification: OK" in openssl_verify(tmp_path, stamp.response, stamp.chain_pem)
    assert counter("logmaster_tsa_requests_total", tsa="ossl") == before + 1
    reply = openssl("ts", "-reply", "-in", str(tmp_path / "x.tsr"), "-text").stdout
    assert "Nonce: 0x" in reply


@pytest.mark.parametrize("algorithm", ["sha384", "sha512"])
def test_client_stronger_hash_and_requested_policy(
    openssl_pki: Pki, openssl_url: str, tmp_path: Path, algorithm: str
) -> None:
    """hash_algorithm and policy are sent, and the token must carry them."""
    tsa = client(
        "ossl",
        openssl_url,
        openssl_pki.ca_pem,
        hash_algorithm=algorithm,
        policy=OPENSSL_OTHER_POLICY,
    )
    stamp = tsa.stamp(DATA)
    assert stamp.hash_algorithm == algorithm and stamp.policy == OPENSSL_OTHER_POLICY
    assert "Verification: OK" in openssl_verify(tmp_path, stamp.response, stamp.chain_pem)


def test_client_without_ca_file_keeps_token_certs(openssl_url: str, tmp_path: Path) -> None:
    """Without ca_file the signature and EKU are still checked; chain_pem is the token's certs."""
    stamp = client("ossl", openssl_url, None).stamp(DATA)
    assert b"BEGIN CERTIFICATE" in stamp.chain_pem


def test_rejection_status_is_a_clear_error(openssl_pki: Pki, openssl_url: str) -> None:
    """A policy the TSA does not offer: OpenSSL answers status rejection; we say so."""
    before = counter("logmaster_tsa_failures_total", tsa="ossl", reason="rejected")
    tsa = client("ossl", openssl_url, openssl_pki.ca_pem, policy="1.2.3.4.99")
    with pytest.raises(TsaError) as info:
        tsa.stamp(DATA)
    assert info.value.reason == "rejected" and "ossl" in str(info.value)
    assert "unaccepted_policy" in str(info.value)
    assert counter("logmaster_tsa_failures_total", tsa="ossl", reason="rejected") == before + 1


def test_builtin_tokens_verify_with_openssl(builtin: BuiltinTsa, tmp_path: Path) -> None:
    """The built-in TSA's stamp passes `openssl ts -verify`, and is labelled not accredited."""
    stamp = builtin.stamp(DATA)
    assert stamp.tsa == "builtin" and stamp.accredited is False
    assert stamp.policy == BUILTIN_POLICY
    assert "Verification: OK" in openssl_verify(tmp_path, stamp.response, stamp.chain_pem)
    text = openssl("ts", "-reply", "-in", str(tmp_path / "x.tsr"), "-text").stdout
    assert "not accredited" in text and "Accuracy: 0x01 seconds" in text
    # The other data does not verify.
    assert "Verification: OK" not in openssl_verify(
        tmp_path, stamp.response, stamp.chain_pem, data=DATA + b"x"
    )


def test_builtin_files_and_certificate(builtin: BuiltinTsa) -> None:
    """Keys 0600 in a 0700 directory; the TSA certificate has the critical timeStamping EKU."""
    builtin.stamp(DATA)
    assert builtin.dir.stat().st_mode & 0o777 == 0o700
    for key in ("ca-key.pem", "tsa-key.pem"):
        assert (builtin.dir / key).stat().st_mode & 0o777 == 0o600
    eku = builtin.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]
    assert "not accredited" in builtin.certificate.subject.rfc4514_string()
    # A second instance over the same directory uses the same CA.
    assert BuiltinTsa(builtin.dir).chain_pem == builtin.chain_pem


def test_builtin_over_http_answers_openssl_queries(builtin: BuiltinTsa, tmp_path: Path) -> None:
    """`openssl ts -query` → `logmaster tsa serve` → `openssl ts -verify -queryfile`."""
    import urllib.request

    server = make_server(builtin, "127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        (tmp_path / "data").write_bytes(DATA)
        r = openssl(
            "ts", "-query", "-data", "data", "-sha256", "-cert", "-out", "q.tsq", cwd=tmp_path
        )
        assert r.returncode == 0, r.stderr
        req = urllib.request.Request(
            url,
            data=(tmp_path / "q.tsq").read_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
        )
        with urllib.request.urlopen(req, timeout=10) as reply:
            assert reply.headers["Content-Type"] == "application/timestamp-reply"
            (tmp_path / "r.tsr").write_bytes(reply.read())
        with urllib.request.urlopen(url + "chain.pem", timeout=10) as reply:
            (tmp_path / "chain.pem").write_bytes(reply.read())
        r = openssl(
            "ts",
            "-verify",
            "-queryfile",
            "q.tsq",
            "-in",
            "r.tsr",
            "-CAfile",
            "chain.pem",
            cwd=tmp_path,
        )
        assert "Verification: OK" in r.stdout, r.stdout + r.stderr
        # And our own client against it, CA pinned to the served chain.
        stamp = client("local", url, tmp_path / "chain.pem", accredited=False).stamp(DATA)
        assert stamp.accredited is False and stamp.policy == BUILTIN_POLICY
    finally:
        server.shutdown()
        server.server_close()


def test_builtin_rejects_bad_requests(builtin: BuiltinTsa) -> None:
    """Garbage, SHA-1, a foreign policy: status rejection with the RFC 3161 failInfo."""
    import hashlib

    from asn1crypto import tsp as t

    def fail_info(response: bytes) -> set[str]:
        resp = TimeStampResp.load(response)
        assert resp["status"]["status"].native == "rejection"
        return set(resp["status"]["fail_info"].native)

    assert fail_info(builtin.respond(b"\x30\x03\x02\x01\x01")) == {"bad_data_format"}
    sha1 = t.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha1"},
                "hashed_message": hashlib.sha1(DATA).digest(),
            },
        }
    ).dump()
    assert fail_info(builtin.respond(sha1)) == {"bad_alg"}
    foreign, _ = build_request(DATA, policy="1.2.3")
    assert fail_info(builtin.respond(foreign)) == {"unaccepted_policy"}
    with pytest.raises(TsaError, match="rejection"):
        check_response(builtin.respond(foreign), DATA, builtin.trusted)


def test_cert_req_false_omits_the_certificate(builtin: BuiltinTsa) -> None:
    """certReq false: no certificate in the token; the check then needs it among the trusted."""
    req = tsp.TimeStampReq.load(build_request(DATA)[0])
    req["cert_req"] = False
    response = builtin.respond(req.dump(force=True))
    token = TimeStampResp.load(response)["time_stamp_token"]["content"]
    assert not token["certificates"]
    with pytest.raises(TsaError) as info:
        check_response(response, DATA, builtin.trusted)
    assert info.value.reason == "certificate"
    assert check_response(response, DATA, [*builtin.trusted, builtin.certificate]).serial > 0


# -- the token check ----------------------------------------------------------------------------


def test_check_accepts_and_reports(builtin: BuiltinTsa) -> None:
    """A good token: gen_time, serial, policy, subject, nonce are returned."""
    request, nonce = build_request(DATA)
    check = check_response(builtin.respond(request), DATA, builtin.trusted, nonce=nonce)
    assert check.nonce == nonce and check.policy == BUILTIN_POLICY
    assert "built-in TSA" in check.tsa_subject and check.accuracy_s == 1.0
    assert check.gen_time.tzinfo is not None


def test_check_detects_changed_data(builtin: BuiltinTsa) -> None:
    """Changed imprint: the token stamps other data."""
    response = builtin.stamp(DATA).response
    with pytest.raises(TsaError) as info:
        check_response(response, DATA.replace(b"00", b"01"), builtin.trusted)
    assert info.value.reason == "imprint"


def test_check_detects_token_of_another_tsa(
    builtin: BuiltinTsa, openssl_pki: Pki, openssl_url: str
) -> None:
    """A valid token of TSA A checked against the CA of TSA B is refused, both ways."""
    with pytest.raises(TsaError) as info:
        check_response(builtin.stamp(DATA).response, DATA, [openssl_pki.ca_cert])
    assert info.value.reason == "certificate" and "does not chain" in str(info.value)
    other = client("ossl", openssl_url, openssl_pki.ca_pem).stamp(DATA).response
    with pytest.raises(TsaError) as info:
        check_response(other, DATA, builtin.trusted)
    assert info.value.reason == "certificate"


def test_check_detects_broken_signature(builtin: BuiltinTsa, tmp_path: Path) -> None:
    """One bit of the signature flipped: signature error (and openssl agrees)."""
    stamp = builtin.stamp(DATA)
    resp = TimeStampResp.load(stamp.response)
    sig = resp["time_stamp_token"]["content"]["signer_infos"][0]["signature"].native
    broken = bytearray(stamp.response)
    at = stamp.response.index(sig) + len(sig) // 2
    broken[at] ^= 0x01
    with pytest.raises(TsaError) as info:
        check_response(bytes(broken), DATA, builtin.trusted)
    assert info.value.reason == "signature"
    assert "Verification: OK" not in openssl_verify(tmp_path, bytes(broken), stamp.chain_pem)


def test_check_detects_edited_tstinfo(builtin: BuiltinTsa) -> None:
    """genTime edited inside the token: the signed messageDigest no longer matches."""
    stamp = builtin.stamp(DATA)
    resp = TimeStampResp.load(stamp.response)
    tst = resp["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    gen = tst["gen_time"].dump()
    year = str(stamp.gen_time.year).encode()
    edited = stamp.response.replace(gen, gen.replace(year, str(stamp.gen_time.year - 1).encode()))
    assert edited != stamp.response
    with pytest.raises(TsaError) as info:
        check_response(edited, DATA, builtin.trusted)
    assert info.value.reason == "signature" and "messageDigest" in str(info.value)


def test_check_detects_wrong_nonce_and_policy(builtin: BuiltinTsa) -> None:
    """Nonce or policy other than requested."""
    request, nonce = build_request(DATA)
    response = builtin.respond(request)
    with pytest.raises(TsaError) as info:
        check_response(response, DATA, builtin.trusted, nonce=nonce + 1)
    assert info.value.reason == "nonce"
    with pytest.raises(TsaError) as info:
        check_response(response, DATA, builtin.trusted, policy="1.2.3")
    assert info.value.reason == "policy"


def test_check_detects_non_granted_and_garbage(builtin: BuiltinTsa) -> None:
    """A rejection response and bytes that are no response at all."""
    from logmaster.archive.tsa_server import rejection

    with pytest.raises(TsaError) as info:
        check_response(rejection("system_failure", "down"), DATA, builtin.trusted)
    assert info.value.reason == "rejected" and "system_failure" in str(info.value)
    with pytest.raises(TsaError) as info:
        check_response(b"<html>busy</html>", DATA, builtin.trusted)
    assert info.value.reason == "bad_response"


def test_check_needs_trusted_certificates(builtin: BuiltinTsa) -> None:
    """An empty trusted list is an error unless the caller says it has no CA."""
    response = builtin.stamp(DATA).response
    with pytest.raises(TsaError, match="no trusted"):
        check_response(response, DATA, [])
    assert check_response(response, DATA, [], require_chain=False).serial > 0


def test_check_refuses_signer_without_timestamping_eku(tmp_path: Path) -> None:
    """A token signed by a certificate without the critical timeStamping EKU is refused."""
    tsa = BuiltinTsa(tmp_path / "tsa")
    tsa.stamp(DATA)
    ca_key = serialization.load_pem_private_key((tsa.dir / "ca-key.pem").read_bytes(), None)
    old = tsa.certificate
    for eku_critical in (None, False):
        builder = (
            x509.CertificateBuilder()
            .subject_name(old.subject)
            .issuer_name(old.issuer)
            .public_key(old.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(old.not_valid_before_utc)
            .not_valid_after(old.not_valid_after_utc)
        )
        if eku_critical is not None:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]), eku_critical
            )
        cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        (tsa.dir / "tsa-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fresh = BuiltinTsa(tsa.dir)
        with pytest.raises(TsaError) as info:
            fresh.stamp(DATA)
        assert info.value.reason == "certificate" and "timeStamping" in str(info.value)


# -- failover, timeouts, refusals ---------------------------------------------------------------


def test_failover_on_timeout(openssl_pki: Pki, openssl_url: str) -> None:
    """The first TSA does not answer in time: the second one stamps; the timeout is counted."""

    release = threading.Event()

    def slow(body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        release.wait(5)
        return 200, "application/timestamp-reply", b""

    with http_stub(slow) as slow_url:
        first = client("slow", slow_url, None, timeout_s=0.3)
        second = client("ossl", openssl_url, openssl_pki.ca_pem)
        before = counter("logmaster_tsa_failures_total", tsa="slow", reason="timeout")
        started = time.monotonic()
        stamp = FailoverStamper([first, second]).stamp(DATA)
        assert time.monotonic() - started < 1.8
        assert stamp.tsa == "ossl"
        assert counter("logmaster_tsa_failures_total", tsa="slow", reason="timeout") == before + 1
        release.set()


def test_failover_on_refusal_and_all_failing(openssl_pki: Pki, openssl_url: str) -> None:
    """HTTP 503, a closed port, a replayed token: next TSA; when every one fails, one error
    names them all."""
    replay = client("ossl", openssl_url, openssl_pki.ca_pem).stamp(DATA).response

    def busy(body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        return 503, "text/plain", b"busy"

    def replaying(body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        return 200, "application/timestamp-reply", replay

    closed = f"http://127.0.0.1:{free_port()}/"
    with http_stub(busy) as busy_url, http_stub(replaying) as replay_url:
        stampers = [
            client("busy", busy_url, None),
            client("closed", closed, None, timeout_s=2),
            client("replay", replay_url, openssl_pki.ca_pem),
        ]
        ok = FailoverStamper([*stampers, client("ossl", openssl_url, openssl_pki.ca_pem)])
        assert ok.stamp(DATA).tsa == "ossl"
        with pytest.raises(TsaError) as info:
            FailoverStamper(stampers).stamp(DATA)
    message = str(info.value)
    assert "every TSA failed" in message
    assert "HTTP 503" in message and "cannot reach" in message and "nonce" in message
    reasons = {
        name: counter("logmaster_tsa_failures_total", tsa=name, reason=reason)
        for name, reason in [("busy", "http_status"), ("closed", "connection"), ("replay", "nonce")]
    }
    assert all(v >= 2 for v in reasons.values()), reasons


def test_wrong_content_type_redirect_and_garbage() -> None:
    """An HTML page with 200, a redirect, a body that is no TimeStampResp: clear errors."""

    def html(body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        return 200, "text/html", b"<html>login</html>"

    def redirect(body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        return 302, "text/plain", b"moved"

    def garbage(body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        return 200, "application/timestamp-reply", b"\x30\x03\x02\x01\x07"

    with http_stub(html) as url, pytest.raises(TsaError) as info:
        client("portal", url, None).stamp(DATA)
    assert info.value.reason == "http_status" and "text/html" in str(info.value)
    with http_stub(redirect) as url, pytest.raises(TsaError) as info:
        client("moved", url, None).stamp(DATA)
    assert info.value.reason == "http_status" and "HTTP 302" in str(info.value)
    with http_stub(garbage) as url, pytest.raises(TsaError) as info:
        client("broken", url, None).stamp(DATA)
    assert info.value.reason == "bad_response"


# -- settings -----------------------------------------------------------------------------------


def test_stamper_from_settings(tmp_path: Path, openssl_pki: Pki, openssl_url: str) -> None:
    """No TSA configured: the built-in one; configured: those, in order; builtin off: error."""
    settings = load_settings(None, data_dir=tmp_path)
    stamper = stamper_from_settings(settings)
    assert isinstance(stamper, BuiltinTsa)
    assert stamper.stamp(DATA).tsa == "builtin"
    assert (tmp_path / "tsa" / "tsa-key.pem").exists()

    servers = [
        {"name": "dead", "url": f"http://127.0.0.1:{free_port()}/", "timeout_s": 1},
        {"name": "ossl", "url": openssl_url, "ca_file": str(openssl_pki.ca_pem)},
    ]
    settings = load_settings(None, data_dir=tmp_path, tsa={"servers": servers})
    assert stamper_from_settings(settings).stamp(DATA).tsa == "ossl"

    with pytest.raises(TsaError, match="built-in TSA is disabled"):
        stamper_from_settings(load_settings(None, data_dir=tmp_path, tsa={"builtin": False}))
    with pytest.raises(ValueError, match="unique"):
        load_settings(None, tsa={"servers": [servers[0], servers[0]]})


def test_requests_counter_counts_every_attempt(builtin: BuiltinTsa) -> None:
    """The built-in TSA counts its requests under tsa="builtin"."""
    before = REQUESTS.labels("builtin")._value.get()
    builtin.stamp(DATA)
    assert REQUESTS.labels("builtin")._value.get() == before + 1
    assert FAILURES is not None


def test_builtin_renews_an_expiring_certificate(tmp_path: Path) -> None:
    """90 days before expiry a new TSA certificate is issued by the same CA: old and new
    tokens verify with the same chain.pem."""
    import datetime as dt

    tsa = BuiltinTsa(tmp_path / "tsa")
    old_stamp = tsa.stamp(DATA)
    ca_key = serialization.load_pem_private_key((tsa.dir / "ca-key.pem").read_bytes(), None)
    old = tsa.certificate
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.issuer)
        .public_key(old.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(old.not_valid_before_utc)
        .not_valid_after(soon)
    )
    for ext in old.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    expiring = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    (tsa.dir / "tsa-cert.pem").write_bytes(expiring.public_bytes(serialization.Encoding.PEM))
    renewed = BuiltinTsa(tsa.dir)
    new_stamp = renewed.stamp(DATA)
    assert renewed.certificate.serial_number != expiring.serial_number
    assert renewed.certificate.not_valid_after_utc > soon + dt.timedelta(days=365)
    assert (tsa.dir / f"tsa-cert-{expiring.serial_number:x}.pem").exists()
    assert (tsa.dir / "tsa-key.pem").stat().st_mode & 0o777 == 0o600
    for stamp in (old_stamp, new_stamp):
        assert stamp.chain_pem == old_stamp.chain_pem
        assert "Verification: OK" in openssl_verify(tmp_path, stamp.response, stamp.chain_pem)


def test_client_with_ecdsa_openssl_tsa(tmp_path: Path) -> None:
    """OpenSSL's TSA signing with an ECDSA key: our check and openssl agree."""
    pki = make_pki(tmp_path / "ec", "OpenSSL EC TSA", ec_leaf=True)
    with http_stub(openssl_handler(OpensslTsa(pki))) as url:
        stamp = client("ossl-ec", url, pki.ca_pem).stamp(DATA)
    assert "Verification: OK" in openssl_verify(tmp_path, stamp.response, stamp.chain_pem)


def test_counters_join_another_registry(builtin: BuiltinTsa) -> None:
    """TSA_METRICS adds the TSA counters to the registry of a /metrics server."""
    from prometheus_client import CollectorRegistry, generate_latest

    from logmaster.archive.tsa import TSA_METRICS

    builtin.stamp(DATA)
    registry = CollectorRegistry()
    registry.register(TSA_METRICS)
    text = generate_latest(registry).decode()
    assert 'logmaster_tsa_requests_total{tsa="builtin"}' in text
    assert "logmaster_tsa_request_seconds_bucket" in text


def test_every_failure_reason_is_declared() -> None:
    """Each reason the code raises is in REASONS (the counter's documented label values)."""
    import re

    from logmaster.archive import kamusm, tsa, tsa_check, tsa_server

    used: set[str] = set()
    for module in (tsa, tsa_check, kamusm, tsa_server):
        text = Path(module.__file__ or "").read_text()
        used |= set(re.findall(r'TsaError\(\s*[\w.]+,\s*"(\w+)"', text))
        used |= set(re.findall(r'bad\(\s*"(\w+)"', text))
    assert used and used <= set(tsa.REASONS), used - set(tsa.REASONS)
    assert {"timeout", "connection", "imprint", "nonce", "signature", "credentials"} <= used


def test_cooldown_skips_a_dead_tsa(openssl_pki: Pki, openssl_url: str) -> None:
    """After a transport failure a TSA is skipped for 30 s, then 60 s...; when every TSA is
    cooling down the stamp fails at once (reason unavailable); a success resets the wait."""
    now = [1000.0]
    dead = client("dead", f"http://127.0.0.1:{free_port()}/", None, timeout_s=2)
    good = client("ossl", openssl_url, openssl_pki.ca_pem)
    stamper = FailoverStamper([dead, good], clock=lambda: now[0])

    def requests(name: str) -> float:
        return counter("logmaster_tsa_requests_total", tsa=name)

    def skipped(name: str) -> float:
        return counter("logmaster_tsa_skipped_total", tsa=name)

    assert stamper.stamp(DATA).tsa == "ossl"
    sent, skips = requests("dead"), skipped("dead")
    assert stamper.stamp(DATA).tsa == "ossl"  # dead is cooling down: not asked
    assert requests("dead") == sent and skipped("dead") == skips + 1
    now[0] += 31
    assert stamper.stamp(DATA).tsa == "ossl"  # asked again, fails again: 60 s now
    assert requests("dead") == sent + 1
    now[0] += 31
    stamper.stamp(DATA)
    assert requests("dead") == sent + 1
    now[0] += 30
    stamper.stamp(DATA)
    assert requests("dead") == sent + 2

    alone = FailoverStamper([dead], clock=lambda: now[0])
    with pytest.raises(TsaError) as info:
        alone.stamp(DATA)
    assert info.value.reason == "connection"
    started = time.monotonic()
    with pytest.raises(TsaError) as info:
        alone.stamp(DATA)
    assert info.value.reason == "unavailable" and "next try in 30 s" in str(info.value)
    assert time.monotonic() - started < 0.1

    # A TSA that answers badly (not a transport failure) is not put in cool-down.
    def html(body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        return 200, "application/timestamp-reply", b"\x30\x00"

    with http_stub(html) as url:
        bad = FailoverStamper([client("bad", url, None)], clock=lambda: now[0])
        for _ in range(2):
            with pytest.raises(TsaError) as info:
                bad.stamp(DATA)
            assert info.value.reason == "bad_response"
