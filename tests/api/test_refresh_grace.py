"""Two browser tabs refreshing at once share one successor; a replay after the grace ends the
session family as before ([api] refresh_grace_s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from conftest import ADMIN_PASSWORD, ApiServer, SignedIn

COOKIE_PATH = "/api/v1/auth"


def _tab(api: ApiServer, user: SignedIn) -> httpx.Client:
    """A second tab of the same browser: the same cookies, its own in-memory access token."""
    tab = api.client()
    tab.cookies.set(
        "lm_refresh", user.cookies.get("lm_refresh", path=COOKIE_PATH) or "", path=COOKIE_PATH
    )
    tab.cookies.set("lm_csrf", user.cookies.get("lm_csrf") or "", path="/")
    return tab


def _refresh(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/auth/refresh", headers={"X-CSRF-Token": client.cookies.get("lm_csrf") or ""}
    )


def _cookie(r: httpx.Response) -> str | None:
    return r.cookies.get("lm_refresh")


def _family_alive(api: ApiServer, r: httpx.Response) -> None:
    """The access token of ``r`` works and the successor it set rotates once more."""
    me = api.client().get(
        "/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert me.status_code == 200, me.text
    nxt = api.client()
    nxt.cookies.set("lm_refresh", _cookie(r) or "", path=COOKIE_PATH)
    nxt.cookies.set("lm_csrf", "c", path="/")
    assert nxt.post("/auth/refresh", headers={"X-CSRF-Token": "c"}).status_code == 200


def test_second_tab_within_grace_gets_the_same_successor(
    api: ApiServer, signin: Callable[..., SignedIn]
) -> None:
    """A tab refreshing with the token another tab rotated a moment ago gets that tab's
    successor again, and the session lives on."""
    user = signin("admin", ADMIN_PASSWORD)
    tab = _tab(api, user)
    first = user.refresh()
    assert first.status_code == 200, first.text
    second = _refresh(tab)  # still holds the token the first tab just rotated
    assert second.status_code == 200, second.text
    assert _cookie(second) == _cookie(first) and _cookie(first)
    assert second.json()["access_token"] != first.json()["access_token"]
    _family_alive(api, second)
    entries = user.get("/audit", params={"action": "auth.refresh"}).json()["entries"]
    assert [e["result"] for e in entries].count("ok") == 3
    assert any(e["details"].get("concurrent") for e in entries)


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_simultaneous_refreshes_both_succeed(
    db: str,
    start_api: Callable[..., ApiServer],
    signin: Callable[..., SignedIn],
    request: pytest.FixtureRequest,
) -> None:
    """Four tabs refreshing with one token at the same instant: every one gets the same
    successor (no unique-key clash, no reuse alarm), and the session lives on."""
    extra = {"database_url": request.getfixturevalue("pg_metadata_url")} if db == "postgres" else {}
    api = start_api(**extra)
    user = signin("admin", ADMIN_PASSWORD, server=api)
    tabs = [_tab(api, user) for _ in range(4)]
    barrier = threading.Barrier(len(tabs))
    results: list[httpx.Response] = []

    def go(tab: httpx.Client) -> None:
        barrier.wait()
        results.append(_refresh(tab))

    threads = [threading.Thread(target=go, args=(t,)) for t in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.status_code for r in results) == [200] * 4, [r.text for r in results]
    assert len({_cookie(r) for r in results}) == 1
    _family_alive(api, results[0])


def test_replay_after_the_grace_still_ends_the_family(
    start_api: Callable[..., ApiServer], signin: Callable[..., SignedIn]
) -> None:
    """The same replay a second too late is a stolen copy: the whole session ends."""
    api = start_api(api={"refresh_grace_s": 1})
    user = signin("admin", ADMIN_PASSWORD, server=api)
    tab = _tab(api, user)
    assert user.refresh().status_code == 200
    time.sleep(1.3)
    late = _refresh(tab)
    assert late.status_code == 401
    assert late.json()["type"].endswith("/refresh-reuse")
    assert user.get("/auth/me").status_code == 401
    assert user.refresh().status_code == 401


def test_no_grace_when_turned_off(
    start_api: Callable[..., ApiServer], signin: Callable[..., SignedIn]
) -> None:
    """refresh_grace_s = 0: any second use of a rotated token ends the family at once."""
    api = start_api(api={"refresh_grace_s": 0})
    user = signin("admin", ADMIN_PASSWORD, server=api)
    tab = _tab(api, user)
    assert user.refresh().status_code == 200
    assert _refresh(tab).status_code == 401
    assert user.get("/auth/me").status_code == 401
