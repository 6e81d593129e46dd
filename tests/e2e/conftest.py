"""Browser tests of the web console: a real ``logmaster run`` (collector, indexer, API serving
the built console) on a temporary data dir and free ports, driven by Debian's chromium through
Playwright (``executable_path``, headless; Playwright downloads no browser).

One server and one browser serve the whole run (starting the API takes ~20 s on this machine);
each test opens its own browser context (cookies, storage), so sign-ins do not leak between
tests. Screenshots go to tests/e2e/screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from e2e_support import CHROMIUM, DIST, SCREENSHOTS, Server, launch


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    assert DIST.exists(), "the console is not built: run `make console` (npm ci + npm run build)"
    base = tmp_path_factory.mktemp("e2e")
    data = base / "data"
    env = {k: v for k, v in os.environ.items() if k != "LOGMASTER_CONFIG"}
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
    with launch(data, base) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "chromium is missing: run scripts/system-deps.sh"
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()
