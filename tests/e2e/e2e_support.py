"""What the browser tests share: the running server, its API client, constants.

A plain module (not conftest.py) so the test module can import it by a name that no other
folder's conftest.py shadows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from support import free_port

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "web" / "dist" / "index.html"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
ADMIN_PASSWORD = "E2e-Console-pw-42"
START_TIMEOUT_S = 120


@dataclass
class Server:
    url: str
    syslog_port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @contextlib.contextmanager
    def api(
        self, username: str = "admin", password: str = ADMIN_PASSWORD
    ) -> Iterator[httpx.Client]:
        """An API client signed in as ``username`` (password only)."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
            assert r.status_code == 200, r.text
            client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            yield client

    def loadgen(self, *args: str) -> str:
        """Run ``logmaster loadgen`` against the collector's UDP listener; its output."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "logmaster",
                "loadgen",
                "--udp",
                f"127.0.0.1:{self.syslog_port}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return out.stdout


@contextlib.contextmanager
def launch(data: Path, cwd: Path) -> Iterator[Server]:
    """``logmaster run`` on ``data`` with free ports (UDP+TCP syslog on one port); stopped on
    exit. Its output goes to ``cwd/server.log``."""
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
    log = cwd / "server.log"
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
            cwd=cwd,
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


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"logmaster run exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"API not up after {START_TIMEOUT_S}s:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def console_page(browser: Any, url: str, timeout_ms: int) -> Iterator[Any]:
    """A page of the console at ``url`` as a Turkish operator sees it (Istanbul time, tr-TR,
    1440x900); fails the test if the page raised a JavaScript error."""
    context = browser.new_context(
        base_url=url,
        viewport={"width": 1440, "height": 900},
        timezone_id="Europe/Istanbul",
        locale="tr-TR",
    )
    context.set_default_timeout(timeout_ms)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert errors == [], f"JavaScript errors in the page: {errors}"
