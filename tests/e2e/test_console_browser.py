"""The web console in a real browser against a real server (see conftest.py).

The tests share one server and run in file order: later tests use the devices and lines that
earlier ones created. Every line a test looks for carries a marker unique to that test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyotp
import pytest
from console_support import check_bundle, seal_today
from e2e_support import ADMIN_PASSWORD, SCREENSHOTS, Server, console_page

pytestmark = pytest.mark.slow

ZONE = ZoneInfo("Europe/Istanbul")
ANALYST = ("analyst", "Kirmizi-Elma-2026!")
VIEWER = ("viewer1", "Mavi-Deniz-2026!")
TAIL_DEVICE = "ip-127.0.1.7"  # --first-sender 7
OTHER_DEVICE = "ip-127.0.1.8"  # --first-sender 8
PENDING_DEVICE = "ip-127.0.1.9"  # --first-sender 9
# Attribution lines come from a sender of their own, whose day the test seals before the export.
ATTRIBUTION_SENDER = 13
ATTRIBUTION_DEVICE = f"ip-127.0.1.{ATTRIBUTION_SENDER}"


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    with console_page(browser, server.url, 15_000) as p:
        yield p


def sign_in(page: Any, username: str, password: str, wait: bool = True) -> None:
    """Sign in through the form; with ``wait``, until the navigation shows."""
    page.goto("/")
    page.get_by_test_id("username").fill(username)
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("sign-in").click()
    if wait:
        page.get_by_test_id("nav-overview").wait_for()


def type_code(page: Any, code: str) -> None:
    page.locator("[data-testid=totp] input").first.click()
    page.keyboard.type(code)


def bsd(t: dt.datetime) -> str:
    return f"{t.strftime('%b')} {t.day:2d} {t.strftime('%H:%M:%S')}"


def send_file(server: Server, tmp_path: Path, lines: list[str], *args: str) -> None:
    """Send ``lines`` once each with logmaster loadgen --from-file."""
    f = tmp_path / f"lines-{uuid.uuid4().hex[:6]}.log"
    f.write_text("\n".join(lines) + "\n")
    rate = max(len(lines), 1)
    server.loadgen("--from-file", str(f), "--rate", str(rate * 10), "--seconds", "0.1", *args)


def ensure_user(server: Server, username: str, password: str, role: str) -> None:
    with server.api() as api:
        existing = {u["username"] for u in api.get("/api/v1/users").json()}
        if username not in existing:
            r = api.post(
                "/api/v1/users",
                json={
                    "username": username,
                    "password": password,
                    "roles": [role],
                    "display_name": username.title(),
                    "email": "",
                    "source": "local",
                    "timezone": "Europe/Istanbul",
                },
            )
            assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def devices(server: Server) -> list[str]:
    """The senders the tests use exist as (pending) devices before any tail session opens: a
    tail session covers the devices permitted when it starts (the API rechecks every 30 s)."""
    for n in (7, 8, 9):
        server.loadgen("--rate", "10", "--seconds", "0.1", "--first-sender", str(n))
    wanted = [TAIL_DEVICE, OTHER_DEVICE, PENDING_DEVICE]
    deadline = time.monotonic() + 20
    with server.api() as api:
        while True:
            slugs = {d["slug"] for d in api.get("/api/v1/devices").json()["devices"]}
            if set(wanted) <= slugs:
                return wanted
            assert time.monotonic() < deadline, f"devices not created: {slugs}"
            time.sleep(0.2)


def test_sign_in_with_mfa_enrolment_and_recovery(page: Any, server: Server) -> None:
    """A role that requires MFA enrols at first sign-in (QR, code, recovery codes), then signs in
    with a recovery code; a wrong password says so, in Turkish."""
    ensure_user(server, *ANALYST, role="security_analyst")
    sign_in(page, ANALYST[0], "wrong-password-1", wait=False)
    err = page.get_by_test_id("login-error")
    assert "Kullanıcı adı veya parola yanlış" in err.inner_text()
    shot(page, "01-sign-in-error")

    page.get_by_test_id("password").fill(ANALYST[1])
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("mfa-enrol").wait_for()
    secret = page.get_by_test_id("mfa-secret").inner_text().strip()
    assert page.locator("[data-testid=mfa-enrol] img").count() == 1
    shot(page, "02-mfa-enrolment")
    type_code(page, pyotp.TOTP(secret).now())
    page.get_by_test_id("mfa-confirm").click()
    page.get_by_test_id("recovery-codes").wait_for()
    shot(page, "03-recovery-codes")
    codes = page.locator("[data-testid=recovery-codes] code").all_inner_texts()
    assert len(codes) >= 5
    page.get_by_test_id("continue").click()
    page.get_by_test_id("nav-logs").wait_for()
    # security_analyst: no administration screens, no device management
    assert page.get_by_test_id("nav-admin-users").count() == 0

    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("sign-out").click()
    sign_in(page, *ANALYST, wait=False)
    page.get_by_text("Kurtarma kodu kullan").click()
    page.get_by_test_id("recovery-code").fill(codes[0])
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("nav-logs").wait_for()


def test_lockout_is_explained(page: Any, server: Server) -> None:
    """After too many wrong passwords the account is locked and the screen says for how long."""
    ensure_user(server, "locky", "Yesil-Agac-2026!", role="viewer")
    for _ in range(6):
        sign_in(page, "locky", "not-the-password", wait=False)
        page.get_by_test_id("login-error").wait_for()
    err = page.get_by_test_id("login-error")
    assert err.get_attribute("data-kind") == "account-locked"
    assert "Geçici olarak kilitli" in err.inner_text()
    assert re.search(r"\d+ dakika sonra", err.inner_text())
    shot(page, "04-lockout")
    with server.api() as api:
        uid = next(u["id"] for u in api.get("/api/v1/users").json() if u["username"] == "locky")
        assert api.post(f"/api/v1/users/{uid}/unlock").status_code == 200


def test_lines_appear_in_live_tail_and_logs_within_2s(
    page: Any, server: Server, tmp_path: Path, devices: list[str]
) -> None:
    """Lines sent with loadgen show up in live tail, and in a search, within 2 seconds."""
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_test_id("nav-logs").click()
    page.get_by_test_id("tail-toggle").check(force=True)
    page.get_by_test_id("tail-state").get_by_text("Canlı", exact=True).wait_for()
    marker = f"tailmark{uuid.uuid4().hex[:8]}"
    lines = [f"<134>{bsd(dt.datetime.now(ZONE))} edge1 app[1]: {marker} n={i}" for i in range(5)]
    send_file(server, tmp_path, lines, "--first-sender", "7")
    sent = time.monotonic()
    page.get_by_text(f"{marker} n=4").wait_for(timeout=2000)
    tail_s = time.monotonic() - sent
    shot(page, "10-live-tail")
    assert tail_s < 2.0

    page.get_by_test_id("tail-toggle").uncheck(force=True)
    deadline = sent + 2.0
    while len(rows := search(page, marker, expect_rows=False)) < 5:
        assert time.monotonic() < deadline, f"lines not searchable within 2 s: {rows}"
    assert len(rows) >= 5 and all(marker in r for r in rows)
    assert {f"n={i}" for i in range(5)} <= {m for r in rows for m in re.findall(r"n=\d", r)}
    page.get_by_test_id("result-row").first.click()
    panel = page.get_by_test_id("event-panel")
    assert marker in panel.get_by_test_id("event-message").inner_text()
    page.get_by_role("tab", name="Arşivdeki satır").click()
    raw = page.get_by_test_id("raw-line").inner_text()
    assert marker in raw and "127.0.1.7" in raw
    page.get_by_test_id("tab-surrounding").click()
    assert marker in page.get_by_test_id("surrounding-lines").inner_text()
    shot(page, "11-logs-event-panel")


def firewall(t: dt.datetime, src: str, sport: int, dst: str, dport: int, tag: str) -> str:
    """A MikroTik firewall line (parsed into source/destination fields)."""
    return (
        f"<134>{bsd(t)} gw-e2e firewall,info {tag} forward: in:bridge out:ether1, "
        f"connection-state:new src-mac 02:00:00:00:00:aa, proto TCP (SYN), "
        f"{src}:{sport}->{dst}:{dport}, len 60"
    )


def search(page: Any, query: str, expect_rows: bool = True) -> list[str]:
    """Type ``query`` into the query bar, search, and return the rows' texts."""
    page.get_by_test_id("query").fill(query)
    page.get_by_test_id("search").click()
    # The rows on screen belong to this query once it is in the URL and nothing is loading.
    page.wait_for_function(
        """q => { const el = document.querySelector('[data-testid=results-state]');
                  return el && el.dataset.q === q && el.dataset.fetching === 'false'; }""",
        arg=query,
    )
    rows = page.get_by_test_id("result-row").all_inner_texts()
    assert rows or not expect_rows, f"no rows for {query!r}"
    return rows


def test_search_with_field_query_and_cidr(
    page: Any, server: Server, tmp_path: Path, devices: list[str]
) -> None:
    """A CIDR matches exactly the sources inside the network; a field query its field."""
    tag = f"fw{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(ZONE)
    inside = [firewall(now, f"10.77.{i}.5", 40000 + i, "93.184.216.34", 443, tag) for i in range(4)]
    outside = [
        firewall(now, f"10.78.0.{i}", 41000 + i, "198.51.100.9", 8443, tag) for i in range(3)
    ]
    send_file(server, tmp_path, inside + outside, "--first-sender", "7")
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/logs")
    page.get_by_test_id("columns").click()
    page.get_by_role("menuitem", name="Kaynak", exact=True).click()
    page.get_by_role("menuitem", name="Hedef port").click()
    page.keyboard.press("Escape")
    deadline = time.monotonic() + 15
    while len(rows := search(page, f"{tag} AND src:10.77.0.0/16", expect_rows=False)) < 4:
        assert time.monotonic() < deadline, rows
        time.sleep(0.5)
    bad = [r for r in rows if not re.search(r"10\.77\.\d+\.5", r)]
    assert not bad, bad
    assert not any("10.78." in r for r in rows)
    shot(page, "12-logs-cidr")
    rows = search(page, f"{tag} AND dst.port:8443")
    assert rows and all("8443" in r and "10.78.0." in r for r in rows), rows
    assert not any("10.77." in r for r in rows)
    # the field suggestion completes a partial field name
    page.get_by_test_id("query").fill("")
    page.get_by_test_id("query").type("dst.p")
    page.get_by_test_id("field-suggestions").get_by_text("dst.port:").wait_for()
    # a mistake is explained at its position, not swallowed
    page.get_by_test_id("query").fill("src:(")
    page.get_by_test_id("search").click()
    page.get_by_text("Sorgu anlaşılamadı").wait_for()


def test_approve_pending_device(page: Any, server: Server, devices: list[str]) -> None:
    """A pending device is named and approved from its card; it leaves the pending list."""
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_test_id("nav-devices").click()
    page.get_by_test_id("tab-pending").click()
    card = page.get_by_test_id(f"pending-{PENDING_DEVICE}")
    card.get_by_test_id("approve-name").fill("Şube-1 Güvenlik Duvarı")
    shot(page, "20-devices-pending")
    card.get_by_test_id("approve").click()
    card.wait_for(state="detached")
    with server.api() as api:
        d = api.get(f"/api/v1/devices/{PENDING_DEVICE}").json()
    assert d["status"] == "approved" and d["name"] == "Şube-1 Güvenlik Duvarı"
    page.get_by_role("tab", name=re.compile("Tümü")).click()
    link = page.get_by_role("link", name="Şube-1 Güvenlik Duvarı")
    link.wait_for()
    shot(page, "21-devices")
    link.click()
    page.get_by_test_id("day-calendar").wait_for()
    shot(page, "22-device-detail")


def test_viewer_sees_only_the_granted_device(
    page: Any, server: Server, tmp_path: Path, devices: list[str]
) -> None:
    """A viewer granted one device sees none of another device's lines anywhere."""
    ensure_user(server, *VIEWER, role="viewer")
    mine, theirs = f"mine{uuid.uuid4().hex[:6]}", f"theirs{uuid.uuid4().hex[:6]}"
    now = dt.datetime.now(ZONE)
    send_file(
        server,
        tmp_path,
        [f"<134>{bsd(now)} a app: {mine} {i}" for i in range(3)],
        "--first-sender",
        "7",
    )
    send_file(
        server,
        tmp_path,
        [f"<134>{bsd(now)} b app: {theirs} {i}" for i in range(3)],
        "--first-sender",
        "8",
    )
    with server.api() as api:
        r = api.post(
            "/api/v1/grants", json={"user": VIEWER[0], "device": TAIL_DEVICE, "actions": ["view"]}
        )
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 15
        while True:  # both markers indexed (as admin)
            found = api.get(
                "/api/v1/search/events", params={"q": f"{mine} OR {theirs}", "from": "-1h"}
            ).json()["events"]
            if len(found) >= 6:
                break
            assert time.monotonic() < deadline
            time.sleep(0.3)
        other_event = next(e["id"] for e in found if e["device"] == OTHER_DEVICE)

    sign_in(page, *VIEWER)
    page.get_by_test_id("nav-logs").wait_for()
    # actions the viewer lacks are absent, not disabled
    for nav in ("nav-attribution", "nav-compliance", "nav-admin-users", "nav-admin-permissions"):
        assert page.get_by_test_id(nav).count() == 0, nav
    page.get_by_test_id("nav-logs").click()
    assert page.get_by_test_id("tail-toggle").count() == 0
    rows = search(page, f"{mine} OR {theirs}")
    assert len(rows) >= 3 and all(mine in r for r in rows) and not any(theirs in r for r in rows)
    everything = search(page, "*")
    assert everything and not any(OTHER_DEVICE in r or theirs in r for r in everything)
    assert search(page, f"device:{OTHER_DEVICE}", expect_rows=False) == []
    assert OTHER_DEVICE not in page.get_by_test_id("hit-total").locator("..").inner_text()
    shot(page, "30-viewer-logs")
    page.get_by_test_id("nav-devices").click()
    page.get_by_test_id("device-table").wait_for()
    table = page.get_by_test_id("device-table").inner_text()
    assert TAIL_DEVICE in table and OTHER_DEVICE not in table
    page.goto(f"/devices/{OTHER_DEVICE}")
    page.get_by_test_id("error").wait_for()
    assert theirs not in page.content()
    with server.api(*VIEWER) as api:
        assert api.get(f"/api/v1/events/{other_event}").status_code == 404
        assert api.get(f"/api/v1/devices/{OTHER_DEVICE}/archive-days").status_code == 404


def test_attribution_answers_a_known_case(
    page: Any, server: Server, tmp_path: Path, devices: list[str]
) -> None:
    """Public IP:port at a moment -> NAT -> internal address -> DHCP lease -> MAC -> user."""
    now = dt.datetime.now(ZONE).replace(microsecond=0)
    lan, mac, public = "192.168.88.10", "02:00:00:00:00:01", "203.0.113.10"
    lines = [
        f"<134>{bsd(now - dt.timedelta(minutes=5))} gw-a dhcp,info dhcp1 assigned {lan} for "
        f"{mac.upper()} ayse-phone",
        f"<134>{bsd(now - dt.timedelta(minutes=4))} gw-a hotspot,account,info,debug ayse "
        f"({lan}): logged in",
        f"<134>{bsd(now - dt.timedelta(seconds=30))} gw-a firewall,info forward: in:bridge "
        f"out:ether1, connection-state:new src-mac {mac}, proto TCP (SYN), {lan}:50000->"
        f"93.184.216.34:443, NAT ({lan}:50000->{public}:40000)->93.184.216.34:443, len 60",
    ]
    send_file(server, tmp_path, lines, "--first-sender", str(ATTRIBUTION_SENDER))
    with server.api() as api:
        deadline = time.monotonic() + 20
        while not api.get(
            "/api/v1/search/events", params={"q": f"src.nat.ip:{public}", "from": "-1h"}
        ).json()["events"]:
            assert time.monotonic() < deadline, "NAT line not indexed"
            time.sleep(0.3)
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_test_id("nav-attribution").click()
    page.get_by_test_id("attr-ip").fill(public)
    page.get_by_test_id("attr-port").fill("40000")
    page.get_by_test_id("attr-window").fill("300")
    page.get_by_test_id("attr-submit").click()
    answer = page.get_by_test_id("attr-answer")
    answer.wait_for()
    page.get_by_test_id("attr-user").first.wait_for()
    assert page.get_by_test_id("attr-user").all_inner_texts() == ["ayse"]
    text = answer.inner_text()
    assert lan in text and mac in text.lower()
    evidence = page.get_by_test_id("attr-evidence").all_inner_texts()
    assert any("NAT (" in e for e in evidence) and any("logged in" in e for e in evidence)
    assert any("assigned" in e for e in evidence)
    shot(page, "40-attribution")
    # Sealed (as after midnight) so that the bundle carries the day's manifest, signature and
    # stamp: its own verify.sh and openssl then check every cited line back to the stamp.
    seal_today(server.data_dir, ATTRIBUTION_DEVICE)
    with page.expect_download() as download:
        page.get_by_test_id("attr-export").click()
    out = tmp_path / "bundle"
    manifests = check_bundle(Path(download.value.path()), out)
    assert all(ATTRIBUTION_DEVICE in m for m in manifests), manifests
    report = (out / "report.json").read_text()
    assert "ayse" in report and "not sealed yet" not in report


def test_switch_language(page: Any, server: Server) -> None:
    """Turkish by default; English on request, kept across a reload; texts and dates follow."""
    sign_in(page, "admin", ADMIN_PASSWORD)
    assert page.get_by_test_id("nav-logs").inner_text() == "Kayıtlar"
    assert page.evaluate("document.documentElement.lang") == "tr"
    page.get_by_test_id("language").get_by_text("EN").click()
    assert page.get_by_test_id("nav-logs").inner_text() == "Logs"
    page.reload()
    page.get_by_test_id("nav-logs").wait_for()
    assert page.get_by_test_id("nav-overview").inner_text() == "Overview"
    page.get_by_test_id("nav-logs").click()
    page.get_by_test_id("search").wait_for()
    assert page.get_by_test_id("search").inner_text() == "Search"
    page.get_by_test_id("language").get_by_text("TR").click()
    assert page.get_by_test_id("search").inner_text() == "Ara"


def settle(page: Any) -> None:
    """Let a screen finish loading before its screenshot. The screens poll (rates, tail), so
    the network may never be idle for long on a busy machine: wait a bounded time, and let the
    test's own wait_for() calls carry the assertions."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=5000)


def test_screens(page: Any, server: Server, browser: Any, devices: list[str]) -> None:
    """Every main screen renders without a script error (screenshots for the README)."""
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_test_id("stat-rate").wait_for()
    settle(page)
    shot(page, "05-overview")
    page.goto("/logs?from=-1h")
    page.get_by_test_id("result-row").first.wait_for()
    page.get_by_test_id("result-row").nth(2).click()
    settle(page)
    shot(page, "13-logs")
    for path, testid, name in (
        ("/compliance", "compliance-heatmap", "50-compliance"),
        ("/admin/users", "user-table", "60-users"),
        ("/admin/roles", "role-table", "61-roles"),
        ("/admin/permissions", "grant-table", "62-permissions"),
        ("/admin/settings", "settings-readonly", "63-settings-default"),
        ("/admin/audit", "audit-table", "64-audit"),
    ):
        page.goto(path)
        page.get_by_test_id(testid).wait_for()
        settle(page)
        shot(page, name)
    page.goto("/admin/permissions")
    page.get_by_test_id("perm-user").click()
    page.get_by_role("option", name=VIEWER[0]).click()
    page.get_by_test_id("perm-device").click()
    page.get_by_role("option", name=TAIL_DEVICE).click()
    page.get_by_test_id("perm-explain").wait_for()
    page.get_by_test_id("perm-matrix").wait_for()
    shot(page, "62-permissions")
    audit = page.goto("/admin/audit")
    assert audit is not None
    page.get_by_test_id("audit-table").get_by_text("auth.login").first.wait_for()

    phone = browser.new_context(
        base_url=server.url,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        timezone_id="Europe/Istanbul",
    )
    p = phone.new_page()
    try:
        sign_in(p, "admin", ADMIN_PASSWORD)
        p.get_by_test_id("stat-rate").wait_for()
        p.goto("/logs?from=-1h")
        p.get_by_test_id("result-row").first.wait_for()
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the logs screen scrolls sideways on a phone ({width}px)"
        p.screenshot(path=str(SCREENSHOTS / "70-phone-logs.png"))
    finally:
        phone.close()
