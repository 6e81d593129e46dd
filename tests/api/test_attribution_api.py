"""Attribution API: hops on permitted devices in full, other hops 'not permitted' without data."""

from __future__ import annotations

import datetime as dt

from logdata_support import ISTANBUL, api, start_site, syslog

__all__ = ["api", "start_site"]

MAC = "02:00:00:00:00:01"
LAN = "192.168.88.10"
PUBLIC = "203.0.113.10"


def _site(add_device, start_site):
    """gw-a: NAT + hotspot; dhcp-a: ISC dhcpd; both at location A."""
    add_device("gw-a", sources=["127.0.1.1"], location="A")
    add_device("dhcp-a", sources=["127.0.1.2"], location="A")
    site = start_site()
    t = dt.datetime.now(ISTANBUL) - dt.timedelta(minutes=2)
    site.send(
        "127.0.1.2",
        syslog("dhcp-a", f"dhcpd[812]: DHCPACK on {LAN} to {MAC} (ayse-phone) via eth0", 190, t),
    )
    site.send(
        "127.0.1.1",
        syslog("gw-a", f"hotspot,account,info,debug ayse ({LAN}): logged in", 134, t),
        syslog(
            "gw-a",
            "firewall,info forward: in:bridge out:ether1, connection-state:new src-mac "
            f"{MAC}, proto TCP (SYN), {LAN}:50000->93.184.216.34:443, "
            f"NAT ({LAN}:50000->{PUBLIC}:40000)->93.184.216.34:443, len 60",
            134,
            t + dt.timedelta(seconds=30),
        ),
    )
    site.wait_archived(3)
    site.index()
    return (t + dt.timedelta(seconds=31)).isoformat()


def test_full_chain_for_the_admin(add_device, start_site, admin, api):
    """NAT -> DHCP lease -> hotspot login, each hop citing its archive line."""
    at = _site(add_device, start_site)
    r = admin.get("/attribution", params={"ip": PUBLIC, "port": 40000, "at": at})
    assert r.status_code == 200, r.text
    body = r.json()
    (chain,) = body["chains"]
    assert chain["internal_ip"] == LAN and chain["macs"] == [MAC] and chain["users"] == ["ayse"]
    assert chain["nat"]["device"] == "gw-a" and chain["nat"]["permitted"]
    assert chain["nat"]["evidence"][0]["line"].endswith("len 60")
    assert [h["device"] for h in chain["leases"]] == ["dhcp-a"]
    entry = admin.get("/audit", params={"action": "attribution"}).json()["entries"][0]
    assert entry["target"].startswith(f"{PUBLIC}:40000@")


def test_hops_on_other_devices_are_not_shown(add_device, start_site, admin, as_role, grant, api):
    """With attribute on gw-a only, the DHCP hop says 'not permitted' and carries no data."""
    at = _site(add_device, start_site)
    analyst = as_role("security_analyst")
    grant(user=analyst.username, device="gw-a", actions=["attribute"])
    body = analyst.get("/attribution", params={"ip": PUBLIC, "port": 40000, "at": at}).json()
    (chain,) = body["chains"]
    assert chain["nat"]["permitted"] and chain["internal_ip"] == LAN
    (lease,) = chain["leases"]
    assert lease == {
        "kind": "dhcp",
        "permitted": False,
        "device": None,
        "timezone": None,
        "start": None,
        "end": None,
        "expires": None,
        "inner_ip": None,
        "inner_port": None,
        "outer_ip": None,
        "outer_port": None,
        "mac": None,
        "user": None,
        "note": lease["note"],
        "evidence": [],
    }
    assert "not permitted" in lease["note"]
    # (the MAC is in the NAT line of gw-a, which the analyst may see; the lease is not)
    assert chain["macs"] == [] and "ayse-phone" not in str(body) and "dhcp-a" not in str(body)
    assert chain["users"] == ["ayse"]  # the hotspot hop is on gw-a
    # Granted on the DHCP server only: the NAT hop and the address it revealed stay hidden.
    other = as_role("security_analyst")
    grant(user=other.username, device="dhcp-a", actions=["attribute"])
    body = other.get("/attribution", params={"ip": PUBLIC, "port": 40000, "at": at}).json()
    (chain,) = body["chains"]
    assert not chain["nat"]["permitted"] and chain["internal_ip"] is None
    assert "gw-a" not in str(body) and "ayse" not in str(body)


def test_attribution_needs_the_permission_and_valid_input(as_role, admin, api):
    """A viewer (no attribute action) is 403; bad addresses and times are 400."""
    viewer = as_role("viewer")
    assert viewer.get("/attribution", params={"ip": PUBLIC, "at": "-1h"}).status_code == 403
    for params in (
        {"ip": "300.1.1.1", "at": "-1h"},
        {"mac": "zz", "at": "-1h"},
        {"ip": PUBLIC, "mac": MAC, "at": "-1h"},
        {"ip": PUBLIC, "at": "not a time"},
    ):
        assert admin.get("/attribution", params=params).status_code == 400, params
