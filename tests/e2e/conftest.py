"""Browser tests of the web console: a real ``logmaster run`` (collector, indexer, API serving
the built console) on a temporary data dir and free ports, driven by Debian's chromium through
Playwright (``executable_path``, headless; Playwright downloads no browser).

One server and one browser serve the whole run (starting the API takes ~20 s on this machine);
each test opens its own browser context (cookies, storage), so sign-ins do not leak between
tests. Screenshots go to tests/e2e/screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from e2e_support import (
    ADMIN_PASSWORD,
    CHROMIUM,
    DIST,
    SCREENSHOTS,
    Server,
    wait_http,
)

from support import free_port


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    assert DIST.exists(), "the console is not built: run `make console` (npm ci + npm run build)"
    base = tmp_path_factory.mktemp("e2e")
    data = base / "data"
    port = free_port(socket.SOCK_DGRAM)
    api_port, metrics, index_metrics = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "LOGMASTER_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LOGMASTER_API__LISTEN": f"127.0.0.1:{api_port}",
        "LOGMASTER_API__COOKIE_SECURE": "false",  # plain http on loopback
        "LOGMASTER_API__MFA_REQUIRED_ROLES": '["security_analyst"]',
        "LOGMASTER_METRICS__LISTEN": f"127.0.0.1:{metrics}",
        "LOGMASTER_INDEX__METRICS_LISTEN": f"127.0.0.1:{index_metrics}",
        "LOGMASTER_INDEX__POLL_INTERVAL_MS": "100",
        "LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS": "50",
    }
    env.pop("LOGMASTER_CONFIG", None)
    log = base / "server.log"
    # The seal signing key: evidence exports refuse to run without it.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "logmaster",
            "keys",
            "init",
            "--algorithm",
            "ecdsa-p256",
            "--data-dir",
            str(data),
        ],
        env=env,
        cwd=base,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "logmaster",
                "run",
                "--data-dir",
                str(data),
                "--udp",
                f"127.0.0.1:{port}",
                "--tcp",
                f"127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=base,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{api_port}"
    try:
        wait_http(f"{url}/api/v1/health", proc, log)
        yield Server(url, port, data, proc, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "chromium is missing: run scripts/system-deps.sh"
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()
