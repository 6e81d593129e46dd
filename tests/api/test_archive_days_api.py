"""Archive days API: per device, days with line counts and chain state; others' devices 404."""

from __future__ import annotations

import datetime as dt

from logdata_support import ISTANBUL, api, start_site, syslog

__all__ = ["api", "start_site"]


def test_days_with_lines_and_chain_state(add_device, start_site, admin, as_role, grant, api):
    """The day file of a device is listed with its lines and 'chained'; no delete route exists."""
    add_device("gw1", sources=["127.0.1.1"])
    add_device("gw2", sources=["127.0.1.2"])
    site = start_site()
    site.send("127.0.1.1", *[syslog("gw1", f"app: {i}") for i in range(12)])
    site.send("127.0.1.2", syslog("gw2", "app: x"))
    site.wait_archived(13)
    site.collector.stop()  # the last chain record is written
    today = dt.datetime.now(ISTANBUL).date().isoformat()
    body = admin.get("/devices/gw1/archive-days").json()
    assert body["device"] == "gw1" and body["timezone"] == "Europe/Istanbul"
    (day,) = body["days"]
    assert day["day"] == today and day["lines"] == 12 and day["chain"] == "chained"
    assert day["file"] == f"gw1/{today[:4]}/{today[5:7]}/{today[8:]}.log"
    empty = admin.get(
        "/devices/gw1/archive-days", params={"from": "2020-01-01", "to": "2020-01-02"}
    )
    assert empty.json()["days"] == []
    assert (
        admin.get(
            "/devices/gw1/archive-days", params={"from": today, "to": "2020-01-01"}
        ).status_code
        == 400
    )
    viewer = as_role("viewer")
    grant(user=viewer.username, device="gw2", actions=["view"])
    assert viewer.get("/devices/gw1/archive-days").status_code == 404
    assert viewer.get("/devices/nonexistent/archive-days").status_code == 404
    assert len(viewer.get("/devices/gw2/archive-days").json()["days"]) == 1
    assert admin.delete("/devices/gw1/archive-days").status_code == 405


def test_tampered_day_shows_in_chain_state(add_device, start_site, admin, api):
    """A day file cut shorter than its chain is reported, not hidden."""
    add_device("gw1", sources=["127.0.1.1"])
    site = start_site()
    site.send("127.0.1.1", *[syslog("gw1", f"app: {i}") for i in range(5)])
    site.wait_archived(5)
    site.collector.stop()
    (path,) = (api.settings.archive_dir / "gw1").rglob("*.log")
    data = path.read_bytes()
    path.write_bytes(data[: data.rfind(b"\n", 0, len(data) - 1) + 1])
    (day,) = admin.get("/devices/gw1/archive-days").json()["days"]
    assert day["chain"] == "short"
