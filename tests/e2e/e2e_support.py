"""What the browser tests share: the running server, its API client, constants.

A plain module (not conftest.py) so the test module can import it by a name that no other
folder's conftest.py shadows.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

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
