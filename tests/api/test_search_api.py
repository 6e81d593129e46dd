"""Search API: query language, paging, histogram and counts, all inside the caller's devices."""

from __future__ import annotations

import datetime as dt
from typing import Any

from logdata_support import api, start_site, syslog

__all__ = ["api", "start_site"]


def _setup(add_device: Any, start_site: Any, n1: int = 3, n2: int = 2) -> Any:
    add_device("gw1", sources=["127.0.1.1"])
    add_device("gw2", sources=["127.0.1.2"], timezone="America/New_York")
    site = start_site()
    site.send(
        "127.0.1.1", *[syslog("gw1", f"app: alpha login {i} from 10.1.1.{i}") for i in range(n1)]
    )
    site.send(
        "127.0.1.2",
        *[syslog("gw2", f"app: alpha secret {i}", zone="America/New_York") for i in range(n2)],
    )
    site.wait_archived(n1 + n2)
    site.index()
    return site


def test_search_is_restricted_to_permitted_devices(add_device, start_site, as_role, grant, admin):
    """A viewer granted gw1 sees gw1's events only: in hits, histogram and per-device counts."""
    _setup(add_device, start_site)
    viewer = as_role("viewer")
    grant(user=viewer.username, device="gw1", actions=["view"])
    params = {"q": "alpha", "from": "-1h"}
    hits = viewer.get("/search/events", params=params).json()["events"]
    assert len(hits) == 3 and {h["device"] for h in hits} == {"gw1"}
    counts = viewer.get("/search/devices", params=params).json()
    assert counts == {"devices": [{"device": "gw1", "count": 3}], "total": 3}
    assert viewer.get("/search/histogram", params=params).json()["total"] == 3
    # Naming the other device in the query finds nothing, not its data.
    for q in ("device:gw2", "secret", "observer.name:gw2 OR secret"):
        assert viewer.get("/search/events", params={**params, "q": q}).json()["events"] == []
        assert viewer.get("/search/devices", params={**params, "q": q}).json()["total"] == 0
        assert viewer.get("/search/histogram", params={**params, "q": q}).json()["total"] == 0
    r = viewer.get("/search/events", params={**params, "device": "gw2"})
    assert r.status_code == 404 and "gw2" not in r.json().get("fields", "")
    assert r.headers["content-type"] == "application/problem+json"
    # The admin sees both.
    both = admin.get("/search/devices", params=params).json()
    assert both["total"] == 5


def test_user_without_grants_finds_nothing(add_device, start_site, as_role):
    """A viewer with no grant gets empty results, never another device's data."""
    _setup(add_device, start_site)
    viewer = as_role("viewer")
    assert viewer.get("/search/events", params={"from": "-1h"}).json()["events"] == []
    assert viewer.get("/search/devices", params={"from": "-1h"}).json()["total"] == 0


def test_malformed_query_is_400_with_position(admin):
    """A query error is a 400 problem that names the position of the mistake."""
    r = admin.get("/search/events", params={"q": 'src:10.0.0.0/8 AND "unterminated'})
    assert r.status_code == 400
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["type"].endswith("/bad-query") and "position 19" in body["detail"]
    assert "19" in body["detail_tr"]
    r = admin.get("/search/events", params={"q": "x", "from": "yesterday-ish"})
    assert r.status_code == 400 and "yesterday-ish" in r.json()["detail"]
    r = admin.get("/search/events", params={"q": "x", "tz": "Mars/Olympus"})
    assert r.status_code == 400


def test_cursor_pages_newest_first(add_device, start_site, admin):
    """Pages follow each other newest first, without repeats, to the last one."""
    _setup(add_device, start_site, n1=25, n2=0)
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        params = {
            "q": "alpha",
            "from": "-1h",
            "limit": 10,
            **({"cursor": cursor} if cursor else {}),
        }
        page = admin.get("/search/events", params=params).json()
        seen.extend(page["events"])
        cursor = page["cursor"]
        if cursor is None:
            break
    assert len(seen) == 25 and len({e["id"] for e in seen}) == 25
    keys = [(e["timestamp"], e["id"]) for e in seen]
    stamps = [dt.datetime.fromisoformat(e["timestamp"]) for e in seen]
    assert stamps == sorted(stamps, reverse=True), keys
    r = admin.get("/search/events", params={"q": "alpha", "cursor": "not-a-cursor"})
    assert r.status_code == 400


def test_times_carry_the_device_offset_and_zone(add_device, start_site, admin):
    """Times are RFC 3339 in the device's timezone, with its name beside them."""
    _setup(add_device, start_site, n1=1, n2=1)
    events = admin.get("/search/events", params={"q": "alpha", "from": "-1h"}).json()["events"]
    by_device = {e["device"]: e for e in events}
    ny = by_device["gw2"]
    assert ny["timezone"] == "America/New_York"
    offset = dt.datetime.fromisoformat(ny["received"]).utcoffset()
    assert offset in (dt.timedelta(hours=-5), dt.timedelta(hours=-4))
    ist = by_device["gw1"]
    assert ist["timezone"] == "Europe/Istanbul" and ist["received"].endswith("+03:00")
    assert ist["fields"]["observer.name"] == "gw1" and ist["file"].startswith("gw1/")


def test_each_search_is_audited_with_its_query(add_device, start_site, as_role, grant, admin):
    """A search leaves an audit entry with the query, the user and the range."""
    _setup(add_device, start_site, n1=1, n2=0)
    analyst = as_role("security_analyst")
    grant(user=analyst.username, device="gw1", actions=["view"])
    assert analyst.get("/search/events", params={"q": "alpha AND login"}).status_code == 200
    entries = admin.get("/audit", params={"action": "search", "actor": analyst.username}).json()
    (entry,) = entries["entries"]
    assert entry["target"] == "alpha AND login"


def test_tail_filter_means_what_search_means(add_device, start_site, admin):
    """index/match.py (the tail's filter) and the index's SQL agree on the same events."""
    from logmaster.index.match import compile_predicate
    from logmaster.index.query import parse_query

    add_device("gw1", sources=["127.0.1.1"])
    site = start_site()
    lines = [
        "firewall,info forward: in:bridge out:ether1, proto TCP (SYN), "
        f"10.0.{i % 3}.{i}:{40000 + i}->93.184.216.{i % 5}:{443 if i % 2 else 80}, len 60"
        for i in range(12)
    ] + [
        "hotspot,account,info,debug ayşe (10.0.0.5): logged in",
        "hotspot,account,info,debug mehmet (10.0.1.7): logged out: user request",
        "system,error,critical login failure for user admin from 192.0.2.9 via ssh",
        "dhcp,info dhcp1 assigned 10.0.2.20 for 02:00:00:00:00:0A pc_name",
    ]
    site.send("127.0.1.1", *[syslog("gw1", text) for text in lines])
    site.wait_archived(len(lines))
    site.index()
    every = admin.get("/search/events", params={"from": "-1h", "limit": 1000}).json()["events"]
    assert len(every) == len(lines)
    queries = [
        "logged",
        '"logged in"',
        "log*",
        "ayse",
        "src:10.0.1.0/24",
        "dst.port:443",
        "dst.port:[80 TO 100]",
        "NOT src:10.0.0.0/24",
        "login AND failure",
        "critical OR assigned",
        "user:mehmet",
        "mac:02-00-00-00-00-0a",
        "source.nat.ip:*",
        "host:gw1 AND -logged",
        "dhcp1",
        "pc_name",
    ]
    for q in queries:
        found = admin.get("/search/events", params={"q": q, "from": "-1h", "limit": 1000})
        by_sql = {e["id"] for e in found.json()["events"]}
        predicate = compile_predicate(parse_query(q))
        by_tail = {e["id"] for e in every if predicate(e["fields"])}
        assert by_sql == by_tail, q
