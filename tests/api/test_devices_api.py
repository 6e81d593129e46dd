"""Devices API: status, edits, approve / reject / retire, each audited; scope decides visibility."""

from __future__ import annotations

from logdata_support import api, start_site, syslog

from support import wait_for

__all__ = ["api", "start_site"]


def test_list_with_status(add_device, start_site, admin, api):
    """A sending device shows last seen and a rate; a device that never sent is silent."""
    add_device("gw1", sources=["127.0.1.1"])
    add_device("quiet", sources=["127.0.1.9"], timezone="Asia/Tokyo")
    site = start_site()
    site.send("127.0.1.1", *[syslog("gw1", f"app: tick {i}") for i in range(30)])
    site.wait_archived(30)
    site.collector.stop()  # writes last_seen_at (the collector does it every 10 s)
    site.index()
    devices = {d["slug"]: d for d in admin.get("/devices").json()["devices"]}
    gw1, quiet = devices["gw1"], devices["quiet"]
    assert gw1["status"] == "approved" and gw1["sources"] == ["127.0.1.1/32"]
    assert gw1["last_seen"] is not None and gw1["last_seen"].endswith("+03:00")
    assert gw1["messages_per_s"] == 0.5 and not gw1["silent"] and gw1["silent_since"] is None
    assert quiet["last_seen"] is None and quiet["silent"]
    assert quiet["silent_since"].endswith("+09:00") and quiet["timezone"] == "Asia/Tokyo"
    assert admin.get("/devices/gw1").json()["slug"] == "gw1"


def test_pending_device_approved_rejected_retired(start_site, admin, api):
    """An unknown sender becomes pending; the transitions are checked and audited."""
    site = start_site()
    site.send("127.0.1.77", syslog("stranger", "app: hello"))
    site.wait_archived(1)
    wait_for(lambda: admin.get("/devices/ip-127.0.1.77").status_code == 200, timeout=10)
    assert admin.get("/devices/ip-127.0.1.77").json()["status"] == "pending"
    r = admin.post("/devices/ip-127.0.1.77/retire")
    assert r.status_code == 409 and "pending" in r.json()["detail"]
    assert admin.post("/devices/ip-127.0.1.77/reject").json()["status"] == "rejected"
    assert admin.post("/devices/ip-127.0.1.77/reject").status_code == 409
    assert admin.post("/devices/ip-127.0.1.77/approve").json()["status"] == "approved"
    assert admin.post("/devices/ip-127.0.1.77/retire").json()["status"] == "retired"
    actions = [
        e["action"]
        for e in admin.get(
            "/audit", params={"action": "device.", "target": "ip-127.0.1.77"}
        ).json()["entries"]
    ]
    assert actions == ["device.retire", "device.approve", "device.reject"]


def test_edit_device(add_device, admin, api):
    """Name, timezone, location, groups and format change; bad values are 400; audited."""
    add_device("gw1", sources=["127.0.1.1"])
    loc = admin.post("/locations", json={"name": "Ankara"})
    assert loc.status_code == 201, loc.text
    group = admin.post("/device-groups", json={"name": "core"})
    assert group.status_code == 201, group.text
    change = {
        "name": "Main gateway",
        "timezone": "Europe/Berlin",
        "location_id": loc.json()["id"],
        "group_ids": [group.json()["id"]],
        "format": "mikrotik",
    }
    r = admin.patch("/devices/gw1", json=change)
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["name"], d["timezone"], d["location"], d["format"]) == (
        "Main gateway",
        "Europe/Berlin",
        "Ankara",
        "mikrotik",
    )
    assert [g["name"] for g in d["groups"]] == ["core"]
    assert admin.patch("/devices/gw1", json={"format": None}).json()["format"] is None
    for bad in (
        {"timezone": "Mars/Base"},
        {"format": "nope"},
        {"location_id": 999},
        {"group_ids": [999]},
    ):
        assert admin.patch("/devices/gw1", json=bad).status_code == 400, bad
    assert admin.patch("/devices/gw1", json={"slug": "renamed"}).status_code == 422
    (entry, *_) = admin.get("/audit", params={"action": "device.update"}).json()["entries"]
    assert entry["target"] == "gw1"


def test_scope_decides_what_is_seen_and_changed(add_device, as_role, grant, admin, api):
    """Outside the grants a device is 404; view without manage is 403 on changes."""
    add_device("gw1", sources=["127.0.1.1"])
    add_device("gw2", sources=["127.0.1.2"])
    viewer = as_role("viewer")
    grant(user=viewer.username, device="gw1", actions=["view"])
    assert [d["slug"] for d in viewer.get("/devices").json()["devices"]] == ["gw1"]
    assert viewer.get("/devices/gw2").status_code == 404
    assert viewer.patch("/devices/gw2", json={"name": "x"}).status_code == 404
    assert viewer.post("/devices/gw2/retire").status_code == 404
    assert viewer.patch("/devices/gw1", json={"name": "x"}).status_code == 403
    assert not viewer.get("/devices/gw1").json()["can_manage"]
    manager = as_role("network_manager")
    grant(user=manager.username, device="gw2", actions=["view", "manage"])
    assert manager.patch("/devices/gw2", json={"name": "Edge"}).json()["name"] == "Edge"
    assert manager.get("/devices/gw1").status_code == 404
