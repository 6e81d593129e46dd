"""Events API: one event with its archived line read back from the archive, and its neighbours."""

from __future__ import annotations

from logdata_support import api, start_site, syslog

__all__ = ["api", "start_site"]


def _events(add_device, start_site, admin, count=7):
    add_device("gw1", sources=["127.0.1.1"])
    add_device("gw2", sources=["127.0.1.2"])
    site = start_site()
    site.send("127.0.1.1", *[syslog("gw1", f"app: line {i} back\\slash") for i in range(count)])
    site.send("127.0.1.2", syslog("gw2", "app: other device"))
    site.wait_archived(count + 1)
    site.index()
    found = admin.get("/search/events", params={"q": "line", "from": "-1h"}).json()["events"]
    assert len(found) == count
    return site, sorted(found, key=lambda e: e["offset"])


def test_event_comes_with_its_archived_line(add_device, start_site, admin, api):
    """The archived line is read from the file and offset the index recorded, escapes intact."""
    _, found = _events(add_device, start_site, admin)
    ev = found[3]
    r = admin.get(f"/events/{ev['id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["event"]["id"] == ev["id"] and body["event"]["message"] == "line 3 back\\slash"
    archived = body["archived"]
    raw = (api.settings.archive_dir / ev["file"]).read_bytes()
    line = raw[ev["offset"] :].split(b"\n", 1)[0].decode()
    assert archived["line"] == line and line.endswith("line 3 back\\\\slash")
    assert archived["sender"] == "127.0.1.1" and archived["received"].endswith("+03:00")
    entries = admin.get("/audit", params={"action": "event.view"}).json()["entries"]
    assert entries[0]["target"] == ev["id"]


def test_surrounding_lines(add_device, start_site, admin, api):
    """Before/after lines are the neighbours in the same day file, in order."""
    _, found = _events(add_device, start_site, admin)
    ev = found[3]
    body = admin.get(f"/events/{ev['id']}/surrounding", params={"before": 2, "after": 10}).json()
    assert [b["offset"] for b in body["before"]] == [found[1]["offset"], found[2]["offset"]]
    assert body["line"]["offset"] == ev["offset"]
    assert [a["offset"] for a in body["after"]] == [e["offset"] for e in found[4:]]
    first = admin.get(f"/events/{found[0]['id']}/surrounding", params={"before": 5}).json()
    assert first["before"] == []


def test_event_of_another_device_is_404(add_device, start_site, admin, as_role, grant, api):
    """An event of a device outside the caller's grants is 404, like a missing one."""
    _, found = _events(add_device, start_site, admin)
    viewer = as_role("viewer")
    grant(user=viewer.username, device="gw2", actions=["view"])
    ev = found[0]
    for path in (f"/events/{ev['id']}", f"/events/{ev['id']}/surrounding"):
        r = viewer.get(path)
        assert r.status_code == 404 and "line" not in r.text
    missing = admin.get("/events/2020-01-01.99999")
    assert missing.status_code == 404
    assert viewer.get(f"/events/{ev['id']}").json()["detail"].replace(
        ev["id"], "X"
    ) == missing.json()["detail"].replace("2020-01-01.99999", "X")
    for bad in ("nonsense", "2026-13-01.5", "2026-11-28.-1", "2026-11-28."):
        assert admin.get(f"/events/{bad}").status_code == 404
