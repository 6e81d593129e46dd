"""Kamu SM: the identity header (cross-checked with openssl), a local stand-in that checks it as
Kamu SM does, its error answers (recorded fixtures), the credit balance, the credentials."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import tsp
from tsa_helpers import http_stub, openssl

from logmaster.archive import kamusm
from logmaster.archive.tsa import TSA_REGISTRY, HttpTsa, TimeStampResp, TsaError
from logmaster.archive.tsa_server import BuiltinTsa
from logmaster.config import TsaServerSettings

FIXTURES = Path(__file__).parent / "fixtures" / "kamusm"
CUSTOMER, PASSWORD = 123456, "gizli-Parola-ğüş"
DATA = b'{"device":"gw1","date":"2026-11-28"}\n'


class KamuSmStandIn:
    """What Kamu SM does with a request, as far as the clients document it: decrypt the identity
    header with the customer's password and compare the imprint, then stamp (here with a
    built-in TSA) or answer HTTP 200 with an ASN.1 error message."""

    def __init__(self, tsa: BuiltinTsa, bare_token: bool = False) -> None:
        self.tsa = tsa
        self.accounts = {CUSTOMER: PASSWORD}
        self.bare_token = bare_token
        self.seen: list[dict[str, str]] = []

    def __call__(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        self.seen.append(headers)
        reply = "application/timestamp-reply"
        header = headers.get("identity")
        if not header:
            return 200, reply, (FIXTURES / "not-authenticated.der").read_bytes()
        userid = kamusm.EsyaReqEx.load(bytes.fromhex(header))["userid"].native
        if userid not in self.accounts:
            return 200, reply, (FIXTURES / "user-not-known.der").read_bytes()
        try:
            _, imprint = kamusm.decrypt_identity(header, self.accounts[userid])
        except ValueError:
            return 200, reply, (FIXTURES / "not-authenticated.der").read_bytes()
        if "credit_req" in headers:
            expected = hashlib.sha1(f"{headers['credit_req']}{headers['credit_req_time']}".encode())
            if imprint != expected.digest() or int(headers["credit_req"]) != userid:
                return 200, reply, (FIXTURES / "not-authenticated.der").read_bytes()
            return 200, reply, (FIXTURES / "balance.txt").read_bytes()
        req = tsp.TimeStampReq.load(body)
        if imprint != req["message_imprint"]["hashed_message"].native:
            return 200, reply, (FIXTURES / "not-authenticated.der").read_bytes()
        response = self.tsa.respond(body)
        if self.bare_token:
            return 200, reply, TimeStampResp.load(response)["time_stamp_token"].dump()
        return 200, reply, response


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory) -> BuiltinTsa:
    return BuiltinTsa(tmp_path_factory.mktemp("kamusm") / "tsa")


@pytest.fixture
def stand_in(builtin: BuiltinTsa) -> Iterator[tuple[str, KamuSmStandIn]]:
    handler = KamuSmStandIn(builtin)
    with http_stub(handler) as url:
        yield url, handler


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGMASTER_KAMUSM_CUSTOMER_ID", str(CUSTOMER))
    monkeypatch.setenv("LOGMASTER_KAMUSM_PASSWORD", PASSWORD)


def kamu(url: str, builtin: BuiltinTsa, tmp_path: Path, **kw: object) -> TsaServerSettings:
    ca = tmp_path / "kamusm-ca.pem"
    ca.write_bytes(builtin.chain_pem)
    return TsaServerSettings(name="kamusm", kind="kamusm", url=url, ca_file=ca, **kw)  # type: ignore[arg-type]


# -- the identity header ------------------------------------------------------------------------


def test_identity_layout_checked_with_openssl(tmp_path: Path) -> None:
    """DER ESYAReqEx read by `openssl asn1parse`; key by `openssl kdf PBKDF2`; decrypted by
    `openssl enc -aes-256-cbc`: the plaintext is the imprint."""
    imprint = hashlib.sha256(DATA).digest()
    salt = bytes(range(16))
    header = kamusm.identity(CUSTOMER, PASSWORD, imprint, salt=salt)
    assert header == header.lower() and header.startswith("30")
    (tmp_path / "id.der").write_bytes(bytes.fromhex(header))
    parsed = openssl("asn1parse", "-inform", "DER", "-in", "id.der", cwd=tmp_path).stdout
    lines = [ln.split(":", 3)[-1] for ln in parsed.splitlines()[1:]]
    assert int(lines[0], 16) == CUSTOMER
    assert lines[1] == lines[3] == salt.hex().upper()  # salt, and the IV reuses it
    assert int(lines[2], 16) == 100
    key = (
        openssl(
            "kdf",
            "-keylen",
            "32",
            "-kdfopt",
            "digest:SHA256",
            "-kdfopt",
            f"pass:{PASSWORD}",
            "-kdfopt",
            f"hexsalt:{salt.hex()}",
            "-kdfopt",
            "iter:100",
            "PBKDF2",
        )
        .stdout.strip()
        .replace(":", "")
    )
    assert bytes.fromhex(key) == kamusm.derive_key(PASSWORD, salt)
    (tmp_path / "ct").write_bytes(bytes.fromhex(lines[4]))
    plain = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-K", key, "-iv", salt.hex(), "-in", "ct"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    assert plain == imprint


def test_identity_is_fresh_per_request() -> None:
    """A new salt/IV every time: a captured header says nothing about the next one."""
    imprint = hashlib.sha256(DATA).digest()
    a, b = (kamusm.identity(CUSTOMER, PASSWORD, imprint) for _ in range(2))
    assert a != b
    assert kamusm.decrypt_identity(a, PASSWORD) == (CUSTOMER, imprint)
    with pytest.raises(ValueError):
        kamusm.decrypt_identity(a, "wrong")


# -- stamping -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("creds")
def test_stamp_through_kamusm_stand_in(
    stand_in: tuple[str, KamuSmStandIn], builtin: BuiltinTsa, tmp_path: Path
) -> None:
    """A good identity gets a token; it is checked and verifies with openssl."""
    url, handler = stand_in
    stamp = HttpTsa(kamu(url, builtin, tmp_path)).stamp(DATA)
    assert stamp.tsa == "kamusm" and stamp.accredited
    assert "identity" in handler.seen[-1]
    (tmp_path / "d").write_bytes(DATA)
    (tmp_path / "x.tsr").write_bytes(stamp.response)
    (tmp_path / "c.pem").write_bytes(stamp.chain_pem)
    r = openssl("ts", "-verify", "-data", "d", "-in", "x.tsr", "-CAfile", "c.pem", cwd=tmp_path)
    assert "Verification: OK" in r.stdout, r.stderr


@pytest.mark.usefixtures("creds")
def test_bare_token_is_wrapped(builtin: BuiltinTsa, tmp_path: Path) -> None:
    """A token sent without its TimeStampResp envelope is stored as a standard .tsr."""
    with http_stub(KamuSmStandIn(builtin, bare_token=True)) as url:
        stamp = HttpTsa(kamu(url, builtin, tmp_path)).stamp(DATA)
    assert TimeStampResp.load(stamp.response)["status"]["status"].native == "granted"


def test_wrong_password_and_unknown_customer(
    stand_in: tuple[str, KamuSmStandIn],
    builtin: BuiltinTsa,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP 200 with an ASN.1 message becomes a credentials error that says what to fix."""
    url, _ = stand_in
    cfg = kamu(url, builtin, tmp_path)
    monkeypatch.setenv("LOGMASTER_KAMUSM_CUSTOMER_ID", str(CUSTOMER))
    monkeypatch.setenv("LOGMASTER_KAMUSM_PASSWORD", "not-the-password")
    before = (
        TSA_REGISTRY.get_sample_value(
            "logmaster_tsa_failures_total", {"tsa": "kamusm", "reason": "credentials"}
        )
        or 0
    )
    with pytest.raises(TsaError) as info:
        HttpTsa(cfg).stamp(DATA)
    assert info.value.reason == "credentials"
    assert "password" in str(info.value) and "parolası" in str(info.value)
    assert "Account could not be authenticated" in str(info.value)
    monkeypatch.setenv("LOGMASTER_KAMUSM_CUSTOMER_ID", "999")
    with pytest.raises(TsaError) as info:
        HttpTsa(cfg).stamp(DATA)
    assert info.value.reason == "credentials" and "User 999 is not known" in str(info.value)
    after = TSA_REGISTRY.get_sample_value(
        "logmaster_tsa_failures_total", {"tsa": "kamusm", "reason": "credentials"}
    )
    assert after == before + 2


def test_recorded_error_fixtures_are_understood() -> None:
    """Each recorded answer maps to its reason and keeps Kamu SM's own words."""
    cases = {
        "user-not-known.der": ("credentials", "User 999 is not known"),
        "not-authenticated.der": ("credentials", "Account could not be authenticated"),
        "no-credit.der": ("kamusm", "Kontör yetersiz"),
    }
    for name, (reason, text) in cases.items():
        with pytest.raises(TsaError) as info:
            kamusm.raise_for_error("kamusm", (FIXTURES / name).read_bytes())
        assert info.value.reason == reason, name
        assert text in str(info.value), name
    with pytest.raises(TsaError) as info:
        kamusm.raise_for_error("kamusm", b"\x00garbage")
    assert info.value.reason == "kamusm"


# -- credit balance, credentials ----------------------------------------------------------------


@pytest.mark.usefixtures("creds")
def test_balance(stand_in: tuple[str, KamuSmStandIn], builtin: BuiltinTsa, tmp_path: Path) -> None:
    """credit_req + credit_req_time + identity over SHA-1(id + ms) → the remaining credit."""
    url, handler = stand_in
    assert kamusm.balance(kamu(url, builtin, tmp_path)) == 847
    sent = handler.seen[-1]
    assert sent["credit_req"] == str(CUSTOMER) and sent["credit_req_time"].isdigit()


def test_balance_with_wrong_password(
    stand_in: tuple[str, KamuSmStandIn],
    builtin: BuiltinTsa,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = stand_in
    monkeypatch.setenv("LOGMASTER_KAMUSM_CUSTOMER_ID", str(CUSTOMER))
    monkeypatch.setenv("LOGMASTER_KAMUSM_PASSWORD", "nope")
    with pytest.raises(TsaError) as info:
        kamusm.balance(kamu(url, builtin, tmp_path))
    assert info.value.reason == "credentials"


def test_credentials_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, builtin: BuiltinTsa
) -> None:
    """The 0600 file wins over the environment; a readable file or bad content is refused."""
    monkeypatch.delenv("LOGMASTER_KAMUSM_CUSTOMER_ID", raising=False)
    monkeypatch.delenv("LOGMASTER_KAMUSM_PASSWORD", raising=False)
    cfg = kamu("http://127.0.0.1:9/", builtin, tmp_path)
    with pytest.raises(TsaError, match="LOGMASTER_KAMUSM_PASSWORD"):
        kamusm.load_credentials(cfg)
    secret = tmp_path / "kamusm.secret"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, f"{CUSTOMER}:{PASSWORD}\n".encode())
    os.close(fd)
    with_file = kamu("http://127.0.0.1:9/", builtin, tmp_path, credentials_file=secret)
    assert kamusm.load_credentials(with_file) == (CUSTOMER, PASSWORD)
    secret.chmod(0o644)
    with pytest.raises(TsaError, match="chmod 600"):
        kamusm.load_credentials(with_file)
    secret.chmod(0o600)
    secret.write_text("no-colon\n")
    with pytest.raises(TsaError, match="CUSTOMER_ID:PASSWORD"):
        kamusm.load_credentials(with_file)
    secret.write_text("abc:pw\n")
    with pytest.raises(TsaError, match="must be a number"):
        kamusm.load_credentials(with_file)


def test_password_cannot_be_put_in_the_toml(tmp_path: Path) -> None:
    """There is no password setting: the file refuses it."""
    from logmaster.config import load_settings

    toml = tmp_path / "c.toml"
    toml.write_text(
        '[[tsa.servers]]\nname = "kamusm"\nkind = "kamusm"\nurl = "http://zd.kamusm.gov.tr"\n'
        'password = "x"\n'
    )
    with pytest.raises(ValueError, match="password"):
        load_settings(toml)
