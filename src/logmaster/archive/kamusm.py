"""TÜBİTAK Kamu SM timestamps: the ``identity`` header, its error messages, the credit balance.

Kamu SM (``http://zd.kamusm.gov.tr``) speaks RFC 3161 over HTTP (POST
``application/timestamp-query``), and authenticates each request by an ``identity`` header.
No public specification exists; the format below is the one of two independent open-source
clients that agree byte for byte, one stating compatibility with Kamu SM's official Java client
(``tss-client-console``):

- github.com/omerbustun/kamusm-zd-rs, ``src/main.rs`` (``build_identity``, the ``Credits``
  command) and ``README_EN.md`` ("Identity Header", "Error Handling", "Common Errors");
- Mersel DSS, ``TubitakAuthenticationHelper.java`` (``encryptIdentity``,
  ``buildAuthenticationToken``), ``TimestampHttpClient.java`` (``postCreditQuery``) and
  ``TubitakCreditService.java``.

The identity header::

    ESYAReqEx ::= SEQUENCE {
        userid                   INTEGER,       -- customer number
        salt                     OCTET STRING,  -- 16 random bytes
        iterationCount           INTEGER,       -- 100
        iv                       OCTET STRING,  -- 16 bytes; the official client reuses salt
        encryptedMessageImprint  OCTET STRING } -- AES-256-CBC, PKCS#7 padding

    key      = PBKDF2-HMAC-SHA256(password as UTF-8, salt, 100 iterations, 32 bytes)
    imprint  = the hashedMessage of the request (the digest bytes alone, not the DER
               MessageImprint)
    identity = lower-case hex of the DER of ESYAReqEx (Java BigInteger.toString(16); the DER
               starts with 0x30, so no leading zero is lost)

A fresh salt/IV per request means a captured header cannot be replayed for other data.

Errors come back as HTTP 200 with an ASN.1 body that is no timestamp token, carrying text such as
"User 999 is not known" (unknown customer number) or "Account could not be authenticated" (wrong
password). Both clients above extract the text strings from the ASN.1; so do we
(``error_messages``), first reading the body as an RFC 3161 TimeStampResp (statusString) and
otherwise walking every string of the DER. The messages are mapped to a reason
(``credentials`` / ``kamusm``) and a Turkish + English explanation.

Credit balance: POST with an empty body, ``credit_req: <customer id>``, ``credit_req_time:
<epoch milliseconds>`` and an identity header whose imprint is
``SHA-1(str(customer id) + str(milliseconds))``; the answer is the remaining credit as decimal
text.

Credentials never live in the TOML file: ``credentials_file`` (mode 0600, one line
``CUSTOMER_ID:PASSWORD``) or the environment variables named by ``customer_id_env`` /
``password_env``.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import cms, core, parser
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from logmaster.archive.tsa import QUERY_TYPE, TimeStampResp, TsaError, post

if TYPE_CHECKING:
    from logmaster.config import TsaServerSettings

ITERATIONS = 100
USER_AGENT = "LogMaster TSS client"


class EsyaReqEx(core.Sequence):  # type: ignore[misc]
    """The DER structure inside the identity header."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("userid", core.Integer),
        ("salt", core.OctetString),
        ("iteration_count", core.Integer),
        ("iv", core.OctetString),
        ("encrypted_message_imprint", core.OctetString),
    ]


def derive_key(password: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return kdf.derive(password.encode("utf-8"))


def identity(
    customer_id: int,
    password: str,
    imprint: bytes,
    *,
    iterations: int = ITERATIONS,
    salt: bytes | None = None,
) -> str:
    """The ``identity`` header value for one request over ``imprint`` (digest bytes)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    iv = salt  # as the official client does
    padder = padding.PKCS7(128).padder()
    plain = padder.update(imprint) + padder.finalize()
    encryptor = Cipher(algorithms.AES(derive_key(password, salt, iterations)), modes.CBC(iv))
    enc = encryptor.encryptor()
    encrypted = enc.update(plain) + enc.finalize()
    der: bytes = EsyaReqEx(
        {
            "userid": customer_id,
            "salt": salt,
            "iteration_count": iterations,
            "iv": iv,
            "encrypted_message_imprint": encrypted,
        }
    ).dump()
    return der.hex()


def decrypt_identity(header: str, password: str) -> tuple[int, bytes]:
    """(customer id, imprint) from an identity header; what Kamu SM does on receipt.

    Raises ValueError when the header is malformed or the password does not decrypt it.
    """
    req = EsyaReqEx.load(bytes.fromhex(header), strict=True)
    key = derive_key(password, req["salt"].native, req["iteration_count"].native)
    dec = Cipher(algorithms.AES(key), modes.CBC(req["iv"].native)).decryptor()
    plain = dec.update(req["encrypted_message_imprint"].native) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return req["userid"].native, unpadder.update(plain) + unpadder.finalize()


# -- credentials --------------------------------------------------------------------------------


def load_credentials(config: TsaServerSettings) -> tuple[int, str]:
    """(customer id, password) from the 0600 credentials file or the environment."""
    name = config.name
    if config.credentials_file is not None:
        path = Path(config.credentials_file)
        try:
            st = path.stat()
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TsaError(name, "credentials", f"cannot read {path}: {exc.strerror}") from exc
        if st.st_mode & 0o077:
            raise TsaError(
                name,
                "credentials",
                f"{path} is readable by others (mode {st.st_mode & 0o777:04o}): chmod 600 it",
            )
        customer, sep, password = text.partition(":")
        if not sep:
            raise TsaError(name, "credentials", f"{path} must hold CUSTOMER_ID:PASSWORD")
    else:
        customer = os.environ.get(config.customer_id_env, "")
        password = os.environ.get(config.password_env, "")
        if not customer or not password:
            raise TsaError(
                name,
                "credentials",
                f"Kamu SM customer id and password missing: set {config.customer_id_env} and "
                f"{config.password_env}, or credentials_file "
                "(müşteri numarası ve parola tanımlı değil)",
            )
    customer = customer.strip()
    if not customer.isdigit():
        raise TsaError(name, "credentials", "the Kamu SM customer id must be a number")
    return int(customer), password


def request_headers(config: TsaServerSettings, imprint: bytes) -> dict[str, str]:
    """Headers that Kamu SM needs on a timestamp request over ``imprint``."""
    customer, password = load_credentials(config)
    return {
        "identity": identity(customer, password, imprint),
        "User-Agent": USER_AGENT,
        "Cache-Control": "no-cache",
    }


# -- answers ------------------------------------------------------------------------------------

_STRING_TAGS = {12: "utf-8", 19: "ascii", 20: "latin-1", 22: "ascii", 26: "ascii", 27: "latin-1"}
_BMP_STRING = 30


def _strings(der: bytes, depth: int = 0) -> list[str]:
    """Every character string in a DER blob (constructed values walked recursively)."""
    found: list[str] = []
    pos = 0
    while pos < len(der) and depth < 16:
        try:
            cls, method, tag, header, contents, trailer = parser.parse(der[pos:])
        except ValueError:
            break
        pos += len(header) + len(contents) + len(trailer)
        if method == 1:
            found.extend(_strings(contents, depth + 1))
        elif cls == 0 and tag in _STRING_TAGS:
            found.append(contents.decode(_STRING_TAGS[tag], errors="replace"))
        elif cls == 0 and tag == _BMP_STRING:
            found.append(contents.decode("utf-16-be", errors="replace"))
    return [s.strip() for s in found if s.strip()]


def error_messages(body: bytes) -> tuple[str | None, list[str]]:
    """(PKI status or None, texts) of an answer that is not a granted timestamp."""
    try:
        resp = TimeStampResp.load(body, strict=True)
        status = resp["status"]["status"].native
        texts = [str(t) for t in resp["status"]["status_string"].native or []]
        fail = resp["status"]["fail_info"].native
        if fail:
            texts.append("failInfo " + ", ".join(sorted(fail)))
        return str(status), texts
    except (ValueError, TypeError, KeyError):
        return None, _strings(body)


def _granted(body: bytes) -> bool:
    try:
        resp = TimeStampResp.load(body, strict=True)
        return resp["status"]["status"].native in ("granted", "granted_with_mods")
    except (ValueError, TypeError, KeyError):
        return False


def explain(tsa: str, texts: list[str], status: str | None = None) -> TsaError:
    """A TsaError for Kamu SM's error texts, with what it means for the operator."""
    joined = "; ".join(texts) or "no message"
    low = joined.lower()
    if "not known" in low or "bilinmiyor" in low or "bulunamad" in low:
        return TsaError(
            tsa,
            "credentials",
            f"Kamu SM does not know this customer number ({joined}): check the customer id "
            "(müşteri numarası tanınmadı)",
        )
    if "authenticat" in low or "dogrulanamad" in low or "doğrulanamad" in low:
        return TsaError(
            tsa,
            "credentials",
            f"Kamu SM refused the password ({joined}): check the customer password "
            "(müşteri parolası doğrulanamadı)",
        )
    if any(w in low for w in ("credit", "kontör", "kontor", "bakiye", "balance", "quota")):
        return TsaError(
            tsa,
            "kamusm",
            f"Kamu SM has no timestamp credit left ({joined}): buy credit "
            "(zaman damgası kontörü yetersiz)",
        )
    where = f" (status {status})" if status else ""
    return TsaError(tsa, "kamusm", f"Kamu SM answered with an error{where}: {joined}")


def raise_for_error(tsa: str, body: bytes) -> bytes:
    """The RFC 3161 TimeStampResp in ``body``, or TsaError with Kamu SM's message.

    A bare token (ContentInfo) is wrapped into a granted TimeStampResp, so that the stored
    ``.tsr`` is always what ``openssl ts -verify -in`` reads.
    """
    if _granted(body):
        return body
    try:
        token = cms.ContentInfo.load(body, strict=True)
        if (
            token["content_type"].native == "signed_data"
            and token["content"]["encap_content_info"]["content_type"].native == "tst_info"
        ):
            wrapped: bytes = TimeStampResp(
                {"status": {"status": "granted"}, "time_stamp_token": token}
            ).dump()
            return wrapped
    except (ValueError, TypeError, KeyError):
        pass
    status, texts = error_messages(body)
    raise explain(tsa, texts, status)


# -- credit balance -----------------------------------------------------------------------------


def balance(config: TsaServerSettings, now_ms: int | None = None) -> int:
    """The remaining timestamp credit of the Kamu SM account of ``config``."""
    customer, password = load_credentials(config)
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    imprint = hashlib.sha1(f"{customer}{ms}".encode()).digest()  # noqa: S324 - Kamu SM's format
    headers = {
        "Content-Type": QUERY_TYPE,
        "identity": identity(customer, password, imprint),
        "credit_req": str(customer),
        "credit_req_time": str(ms),
        "User-Agent": USER_AGENT,
        "Cache-Control": "no-cache",
    }
    body, _ctype = post(config.name, config.url, b"", headers, config.timeout_s)
    text = body.decode("ascii", errors="replace").strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    status, texts = error_messages(body)
    raise explain(config.name, texts or [text[:200]], status)
