"""``logmaster keys ...``: the operator's signing key (init, import, rotate, show)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, out, settings_from

app = typer.Typer(help="The signing key of the seals (imza anahtarı).", no_args_is_help=True)

AlgorithmOpt = Annotated[
    str, typer.Option("--algorithm", "-a", help="rsa3072 or ecdsa-p256.", case_sensitive=False)
]
PassphraseOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="File (mode 0600) whose first line is the passphrase that encrypts the key file.",
    ),
]
CommonNameOpt = Annotated[
    str, typer.Option("--common-name", help="Subject CN of the self-signed certificate.")
]
DaysOpt = Annotated[int, typer.Option("--days", min=1, help="Validity of the certificate.")]


def read_passphrase(path: Path | None) -> bytes | None:
    """The first line of a 0600 passphrase file (None without a file)."""
    if path is None:
        return None
    try:
        mode = path.stat().st_mode & 0o777
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise fail(f"cannot read the passphrase file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise fail(f"{path} is readable by others (mode {mode:04o}): chmod 600 it")
    if not lines or not lines[0]:
        raise fail(f"the passphrase file {path} is empty")
    return lines[0]


def _store(config: Path | None, data_dir: Path | None):  # type: ignore[no-untyped-def]
    from logmaster.archive.keys import KeyStore

    settings = settings_from(config, data_dir)
    return KeyStore(settings.data_dir / "keys")


def _algorithm(value: str) -> Literal["rsa3072", "ecdsa-p256"]:
    value = value.lower()
    if value == "rsa3072":
        return "rsa3072"
    if value == "ecdsa-p256":
        return "ecdsa-p256"
    raise fail(f"--algorithm {value!r}: use rsa3072 or ecdsa-p256")


def _created(what: str, signer: object) -> None:
    from logmaster.archive.keys import Signer, fingerprint

    assert isinstance(signer, Signer)
    cert = signer.certificate
    out.print(f"{what}: {escape(cert.subject.rfc4514_string())}", soft_wrap=True)
    out.print(f"  SHA-256 {fingerprint(cert)}", soft_wrap=True, highlight=False)
    out.print(f"  valid {cert.not_valid_before_utc:%d.%m.%Y} - {cert.not_valid_after_utc:%d.%m.%Y}")


@app.command("init")
def keys_init(
    algorithm: AlgorithmOpt = "rsa3072",
    passphrase_file: PassphraseOpt = None,
    common_name: CommonNameOpt = "LogMaster archive seal",
    days: DaysOpt = 3650,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create the signing key and its self-signed certificate (imza anahtarı oluştur)."""
    from logmaster.archive.keys import KeyStoreError

    store = _store(config, data_dir)
    try:
        signer = store.init(
            _algorithm(algorithm), common_name, read_passphrase(passphrase_file), days
        )
    except KeyStoreError as exc:
        raise fail(str(exc)) from exc
    _created(f"signing key created in {store.dir}", signer)


@app.command("import")
def keys_import(
    key: Annotated[Path, typer.Option("--key", help="PEM private key (PKCS#8 or traditional).")],
    chain: Annotated[
        Path, typer.Option("--chain", help="PEM certificate of the key and its issuer chain.")
    ],
    passphrase_file: PassphraseOpt = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Retire the current key (as rotate does).")
    ] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Use an existing key and certificate chain, e.g. from the operator's CA."""
    from logmaster.archive.keys import KeyStoreError

    store = _store(config, data_dir)
    try:
        key_pem, chain_pem = key.read_bytes(), chain.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        signer = store.import_key(
            key_pem, chain_pem, read_passphrase(passphrase_file), replace=replace
        )
    except KeyStoreError as exc:
        raise fail(str(exc)) from exc
    _created(f"signing key imported into {store.dir}", signer)


@app.command("rotate")
def keys_rotate(
    algorithm: AlgorithmOpt = "rsa3072",
    passphrase_file: PassphraseOpt = None,
    common_name: CommonNameOpt = "LogMaster archive seal",
    days: DaysOpt = 3650,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Make a new signing key; the old certificate is kept so older seals still verify."""
    from logmaster.archive.keys import KeyStoreError

    store = _store(config, data_dir)
    if not store.exists():
        raise fail(f"no signing key in {store.dir}: run `logmaster keys init` first")
    try:
        signer = store.rotate(
            _algorithm(algorithm), common_name, read_passphrase(passphrase_file), days
        )
    except KeyStoreError as exc:
        raise fail(str(exc)) from exc
    _created("new signing key", signer)
    out.print(f"  {len(store.certificates()) - 1} earlier certificate(s) kept for verification")


@app.command("show")
def keys_show(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the current and retired signing certificates (imza sertifikaları)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from logmaster.archive.keys import fingerprint

    store = _store(config, data_dir)
    certs = store.certificates()
    if not certs:
        raise fail(f"no signing key in {store.dir}: run `logmaster keys init`")
    # One block per certificate: fingerprints are compared by eye and must never be cut.
    for i, cert in enumerate(certs):
        public = cert.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            kind = f"RSA {public.key_size}"
        elif isinstance(public, ec.EllipticCurvePublicKey):
            kind = f"ECDSA {public.curve.name}"
        else:
            kind = type(public).__name__
        current = i == 0 and store.exists()
        state = "current / güncel" if current else "retired / eski"
        if current and store.is_encrypted():
            state += ", passphrase / parolalı"
        out.print(f"{state}: {kind}", soft_wrap=True, highlight=False)
        out.print(f"  subject  {escape(cert.subject.rfc4514_string())}", soft_wrap=True)
        out.print(
            f"  valid    {cert.not_valid_before_utc:%d.%m.%Y} - "
            f"{cert.not_valid_after_utc:%d.%m.%Y}",
            highlight=False,
        )
        out.print(f"  SHA-256  {fingerprint(cert)}", soft_wrap=True, highlight=False)
