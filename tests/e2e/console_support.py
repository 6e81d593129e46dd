"""Browser-side helpers of the console tests (pages, sign-in, screenshots) and the checks of a
downloaded evidence bundle with the bundle's own verify.sh and with openssl directly.

A plain module, imported by name like ``e2e_support``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from e2e_support import SCREENSHOTS

ZONE = ZoneInfo("Europe/Istanbul")


@contextlib.contextmanager
def open_page(browser: Any, url: str, **context: Any) -> Iterator[Any]:
    """A page in its own browser context (Turkish, Istanbul, 1440x900 unless given); fails the
    test when the page raised a JavaScript error."""
    options: dict[str, Any] = {
        "base_url": url,
        "viewport": {"width": 1440, "height": 900},
        "timezone_id": "Europe/Istanbul",
        "locale": "tr-TR",
        "accept_downloads": True,
        **context,
    }
    ctx = browser.new_context(**options)
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
    finally:
        ctx.close()
    assert errors == [], f"JavaScript errors in the page: {errors}"


def sign_in(page: Any, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_test_id("username").fill(username)
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("nav-overview").wait_for()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def settle(page: Any) -> None:
    """Let a screen finish loading before a screenshot, for at most 5 s (screens poll)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=5000)


def seal_today(data_dir: Path, device: str) -> dt.date:
    """Seal today's file of ``device`` now, as the sealer does after midnight (a clock two days
    ahead): the server's own signing key and built-in TSA. Later lines of that device go to a
    supplement, as lines arriving after a seal always do."""
    from logmaster.archive.seal import SealRun
    from logmaster.config import load_settings

    settings = load_settings(None, data_dir=data_dir)
    today = dt.datetime.now(ZONE).date()
    later = dt.datetime.combine(today + dt.timedelta(days=2), dt.time(), ZONE)
    results = SealRun(settings, now=later).seal_day(today, device)
    assert results and all(r.state == "sealed" for r in results), results
    return today


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def check_bundle(zip_path: Path, out: Path) -> list[str]:
    """Unpack an evidence bundle, run its verify.sh, and check each day manifest's signature
    (``openssl cms -verify``) and timestamp (``openssl ts -verify``) with openssl directly; a
    manifest changed by one byte must then fail the signature check. The day manifests."""
    assert zipfile.is_zipfile(zip_path), "the evidence bundle is not a ZIP"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(out)
    sums = _run("sha256sum", "--check", "--strict", "SHA256SUMS", cwd=out)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    verify = _run("sh", "verify.sh", cwd=out)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "FAIL" not in verify.stdout, verify.stdout
    listed = [ln.split(" ", 1) for ln in (out / "manifests.txt").read_text().splitlines() if ln]
    manifests = [name for kind, name in listed if kind == "day"]
    assert manifests, "the bundle holds no sealed day"
    for m in manifests:
        cms = _run(
            "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", f"{m}.p7s",
            "-content", m, "-CAfile", "certs/operator-chain.pem", "-purpose", "any",
            "-out", "/dev/null", cwd=out,
        )  # fmt: skip
        assert cms.returncode == 0 and "Verification successful" in cms.stderr, cms.stderr
        ts = _run(
            "openssl", "ts", "-verify", "-data", m, "-in", f"{m}.tsr",
            "-CAfile", "certs/tsa-ca.pem", cwd=out,
        )  # fmt: skip
        assert ts.returncode == 0 and "Verification: OK" in ts.stdout, ts.stdout + ts.stderr
    # The same checks on a manifest with one byte changed fail: they are not rubber stamps.
    forged = out / "forged.json"
    data = bytearray((out / manifests[0]).read_bytes())
    data[data.index(b'"lines": ') + 9] ^= 0x01
    forged.write_bytes(bytes(data))
    bad = _run(
        "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", f"{manifests[0]}.p7s",
        "-content", "forged.json", "-CAfile", "certs/operator-chain.pem", "-purpose", "any",
        "-out", "/dev/null", cwd=out,
    )  # fmt: skip
    assert bad.returncode != 0, bad.stderr
    bad_ts = _run(
        "openssl", "ts", "-verify", "-data", "forged.json", "-in", f"{manifests[0]}.tsr",
        "-CAfile", "certs/tsa-ca.pem", cwd=out,
    )  # fmt: skip
    assert "Verification: OK" not in bad_ts.stdout, bad_ts.stdout
    forged.unlink()
    return manifests
