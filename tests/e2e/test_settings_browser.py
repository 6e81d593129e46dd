"""Administration > Settings in a real browser, against its own ``logmaster serve`` configured by
a logmaster.toml: LDAP in search mode on a real slapd (slapd_support.py), one TSA over HTTP
(``logmaster tsa serve``, the built-in TSA of another data directory), retention 1095 days.

The screen shows the loaded values read-only (never the service password), tests the directory
(alice -> network_manager, carol -> no role) and the TSA (status, latency, certificate subject),
and lists the legal holds; a viewer has neither the menu entry nor the screen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_support import open_page, settle, sign_in
from e2e_support import ADMIN_PASSWORD, SCREENSHOTS, wait_http

from slapd_support import GROUPS, PEOPLE, ROOT_DN, ROOT_PW, running_slapd
from support import free_port

pytestmark = pytest.mark.slow

SERVICE_PASSWORD_FILE = "ldap-service.pw"


@dataclass
class SettingsSite:
    url: str
    config: Path
    tsa_url: str


def _start(args: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "logmaster", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LOGMASTER_ADMIN_PASSWORD": ADMIN_PASSWORD},
            cwd=cwd,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SettingsSite]:
    base = tmp_path_factory.mktemp("settings")
    procs: list[subprocess.Popen[bytes]] = []
    with running_slapd(base / "slapd") as slapd:
        try:
            tsa_port = free_port()
            tsa = _start(
                ["tsa", "serve", "--listen", f"127.0.0.1:{tsa_port}",
                 "--data-dir", str(base / "tsa-data")],
                base / "tsa.log", base,
            )  # fmt: skip
            procs.append(tsa)
            tsa_url = f"http://127.0.0.1:{tsa_port}/"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{tsa_url}chain.pem", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert tsa.poll() is None and time.monotonic() < deadline, (
                    base / "tsa.log"
                ).read_text()
                time.sleep(0.2)
            secret = base / SERVICE_PASSWORD_FILE
            secret.write_text(ROOT_PW + "\n")
            secret.chmod(0o600)
            api_port = free_port()
            config = base / "logmaster.toml"
            config.write_text(
                f'data_dir = "{base / "data"}"\n'
                "[api]\n"
                f'listen = "127.0.0.1:{api_port}"\n'
                "cookie_secure = false\n"
                "[ldap]\n"
                f'url = "{slapd.url}"\n'
                f'search_bind_dn = "{ROOT_DN}"\n'
                f'search_bind_password_file = "{secret}"\n'
                f'user_base = "{PEOPLE}"\n'
                f'group_base = "{GROUPS}"\n'
                "[ldap.group_roles]\n"
                f'"cn=netops,{GROUPS}" = "network_manager"\n'
                'analysts = "security_analyst"\n'
                "[[tsa.servers]]\n"
                'name = "local-tsa"\n'
                f'url = "{tsa_url}"\n'
                f'ca_file = "{base / "tsa-data" / "tsa" / "chain.pem"}"\n'
                "accredited = false\n"
                "[retention]\n"
                "default_days = 1095\n"
            )
            api = _start(["serve", "--config", str(config)], base / "api.log", base)
            procs.append(api)
            url = f"http://127.0.0.1:{api_port}"
            wait_http(f"{url}/api/v1/health", api, base / "api.log")
            yield SettingsSite(url, config, tsa_url)
        finally:
            for proc in reversed(procs):
                _stop(proc)


@contextlib.contextmanager
def _api(site: SettingsSite) -> Iterator[httpx.Client]:
    """An API client signed in as admin."""
    with httpx.Client(base_url=f"{site.url}/api/v1", timeout=30) as client:
        r = client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client


def test_settings_screen_shows_and_tests_the_configuration(
    browser: Any, site: SettingsSite
) -> None:
    """The loaded file and values, no secret; LDAP and TSA tests against the real services;
    retention and legal holds; English on request."""
    today = dt.date.today()
    with _api(site) as api:
        hold = api.post(
            "/retention/holds",
            json={"device": None, "from": (today - dt.timedelta(days=40)).isoformat(),
                  "to": today.isoformat(), "reason": "Savcılık talebi", "case_ref": "2026/123"},
        )  # fmt: skip
        assert hold.status_code == 201, hold.text
    with open_page(browser, site.url) as page:
        sign_in(page, "admin", ADMIN_PASSWORD)
        page.get_by_test_id("nav-admin-settings").click()
        page.get_by_test_id("settings-readonly").wait_for()
        assert page.get_by_test_id("settings-file").inner_text() == str(site.config)
        assert "logmaster.toml" in page.get_by_test_id("settings-readonly").inner_text()
        ldap = page.get_by_test_id("settings-ldap")
        assert ROOT_DN in ldap.inner_text() and "tanımlı (gösterilmez)" in ldap.inner_text()
        assert "network_manager" in ldap.inner_text()
        content = page.content()
        assert ROOT_PW not in content and SERVICE_PASSWORD_FILE not in content

        page.get_by_test_id("ldap-test-user").fill("alice")
        page.get_by_test_id("ldap-test").click()
        result = page.get_by_test_id("ldap-result")
        result.wait_for()
        assert result.get_attribute("data-ok") == "true", result.inner_text()
        assert page.get_by_test_id("ldap-role").all_inner_texts() == ["network_manager"]
        assert f"uid=alice,{PEOPLE}" in page.get_by_test_id("ldap-user").inner_text()
        for step in ("connect", "bind", "user", "groups"):
            assert page.get_by_test_id(f"ldap-step-{step}").count() == 1, step

        tsa = page.get_by_test_id("settings-tsa")
        assert "local-tsa" in tsa.inner_text() and site.tsa_url in tsa.inner_text()
        page.get_by_test_id("tsa-test").click()
        stamp = page.get_by_test_id("tsa-result-local-tsa")
        stamp.wait_for(timeout=30_000)
        assert page.get_by_test_id("tsa-result").get_attribute("data-ok") == "true"
        assert "not accredited" in stamp.get_by_test_id("tsa-subject").inner_text()
        assert stamp.get_by_test_id("tsa-latency").inner_text().endswith(" ms")

        retention = page.get_by_test_id("settings-retention")
        assert page.get_by_test_id("retention-days").inner_text() == "1095"
        holds = page.get_by_test_id("holds-table")
        holds.wait_for()
        assert "Savcılık talebi" in holds.inner_text() and "2026/123" in holds.inner_text()
        assert "tüm cihazlar" in retention.inner_text()
        settle(page)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / "63-settings.png"), full_page=True)

        page.get_by_test_id("ldap-test-user").fill("carol")
        page.get_by_test_id("ldap-test").click()
        page.locator("[data-testid=ldap-result][data-ok=false]").wait_for()
        assert "oturum açamaz" in page.get_by_test_id("ldap-user").inner_text()

        page.get_by_test_id("language").get_by_text("EN").click()
        assert page.get_by_test_id("ldap-test").inner_text() == "Test LDAP connection"
        assert page.get_by_test_id("tsa-test").inner_text() == "Test TSA"
        assert "restart LogMaster" in page.get_by_test_id("settings-readonly").inner_text()
    with _api(site) as api:
        actions = [
            e["action"] for e in api.get("/audit", params={"action": "settings."}).json()["entries"]
        ]
    assert {"settings.view", "settings.ldap_test", "settings.tsa_test"} <= set(actions), actions


def test_viewer_has_no_settings(browser: Any, site: SettingsSite) -> None:
    """A viewer has no settings menu entry; the address itself leads back to the overview, and
    the API refuses the viewer (403)."""
    with _api(site) as api:
        r = api.post(
            "/users",
            json={"username": "settings-viewer", "password": "Mor-Dag-2026!x", "roles": ["viewer"],
                  "display_name": "V", "email": "", "source": "local",
                  "timezone": "Europe/Istanbul"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
    with open_page(browser, site.url) as page:
        sign_in(page, "settings-viewer", "Mor-Dag-2026!x")
        assert page.get_by_test_id("nav-admin-settings").count() == 0
        page.goto("/admin/settings")
        page.get_by_test_id("nav-overview").wait_for()
        page.wait_for_url(f"{site.url}/")
        assert page.get_by_test_id("settings-readonly").count() == 0
    with httpx.Client(base_url=f"{site.url}/api/v1", timeout=30) as client:
        r = client.post(
            "/auth/login", json={"username": "settings-viewer", "password": "Mor-Dag-2026!x"}
        )
        token = r.json()["access_token"]
        r = client.get("/settings", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403 and r.json()["detail_tr"]
