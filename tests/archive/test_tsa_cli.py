"""The `logmaster keys ...` and `logmaster tsa ...` commands."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from test_tsa_kamusm import CUSTOMER, PASSWORD, KamuSmStandIn
from tsa_helpers import http_stub, openssl
from typer.testing import CliRunner

from logmaster.archive.tsa_server import BuiltinTsa
from logmaster.cli import app
from support import free_port, wait_for

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    # rich wraps long lines at the console width; compare words, not line breaks.
    return result.exit_code, " ".join(result.output.split())


def test_keys_commands(tmp_path: Path) -> None:
    """init (with a passphrase file), show, rotate, import; errors exit 2 with a sentence."""
    data = str(tmp_path / "data")
    pw = tmp_path / "pass"
    pw.write_text("s3cret passphrase\n")
    pw.chmod(0o644)
    code, output = run("keys", "init", "-d", data, "--passphrase-file", str(pw))
    assert code == 2 and "chmod 600" in output
    pw.chmod(0o600)
    code, output = run(
        "keys",
        "init",
        "-d",
        data,
        "--algorithm",
        "ecdsa-p256",
        "--passphrase-file",
        str(pw),
        "--common-name",
        "Örnek Belediye",
    )
    assert code == 0, output
    assert "SHA-256" in output
    code, output = run("keys", "init", "-d", data)
    assert code == 2 and "rotate" in output
    code, output = run("keys", "rotate", "-d", data)
    assert code == 0 and "1 earlier certificate(s) kept" in output
    code, output = run("keys", "show", "-d", data)
    assert code == 0
    assert "current / güncel: RSA 3072" in output and "retired / eski: ECDSA" in output
    assert output.count("SHA-256") == 2
    code, output = run("keys", "init", "-d", data, "--algorithm", "dsa")
    assert code == 2 and "rsa3072 or ecdsa-p256" in output
    code, output = run("keys", "show", "-d", str(tmp_path / "empty"))
    assert code == 2 and "keys init" in output


def test_tsa_stamp_list_and_balance(tmp_path: Path) -> None:
    """stamp writes a .tsr that openssl verifies; list names the built-in TSA as not accredited;
    balance asks the (stand-in) Kamu SM."""
    data = tmp_path / "data"
    f = tmp_path / "manifest.json"
    f.write_bytes(b'{"x":1}\n')
    code, output = run("tsa", "stamp", "-d", str(data), str(f))
    assert code == 0, output
    assert "not an accredited TSA" in output
    r = openssl(
        "ts",
        "-verify",
        "-data",
        "manifest.json",
        "-in",
        "manifest.json.tsr",
        "-CAfile",
        "manifest.json.tsa-chain.pem",
        cwd=tmp_path,
    )
    assert "Verification: OK" in r.stdout, r.stderr
    code, output = run("tsa", "list", "-d", str(data))
    assert code == 0 and "builtin" in output and "hayır" in output
    code, output = run("tsa", "balance", "-d", str(data))
    assert code == 2 and "no Kamu SM TSA configured" in output

    with http_stub(KamuSmStandIn(BuiltinTsa(tmp_path / "kamusm"))) as url:
        toml = tmp_path / "c.toml"
        toml.write_text(f'[[tsa.servers]]\nname = "kamusm"\nkind = "kamusm"\nurl = "{url}"\n')
        env = {
            "LOGMASTER_KAMUSM_CUSTOMER_ID": str(CUSTOMER),
            "LOGMASTER_KAMUSM_PASSWORD": PASSWORD,
        }
        code, output = run("tsa", "balance", "-c", str(toml), "-d", str(data), env=env)
        assert code == 0, output
        assert "847" in output and "kontör" in output
        env["LOGMASTER_KAMUSM_PASSWORD"] = "wrong"
        code, output = run("tsa", "balance", "-c", str(toml), "-d", str(data), env=env)
        assert code == 2 and "could not be authenticated" in output


def test_tsa_serve(tmp_path: Path) -> None:
    """`logmaster tsa serve` answers `openssl ts -query` requests and stops on SIGTERM."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "logmaster",
            "tsa",
            "serve",
            "-d",
            str(tmp_path / "data"),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, timeout=30)
        (tmp_path / "d").write_bytes(b"day manifest\n")
        openssl("ts", "-query", "-data", "d", "-sha512", "-cert", "-out", "q.tsq", cwd=tmp_path)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/",
            data=(tmp_path / "q.tsq").read_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
        )
        with urllib.request.urlopen(req, timeout=10) as reply:
            (tmp_path / "r.tsr").write_bytes(reply.read())
        r = openssl(
            "ts",
            "-verify",
            "-queryfile",
            "q.tsq",
            "-in",
            "r.tsr",
            "-CAfile",
            str(tmp_path / "data" / "tsa" / "chain.pem"),
            cwd=tmp_path,
        )
        assert "Verification: OK" in r.stdout, r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, output
    assert b"not an accredited TSA" in output
