"""IDOR: every route of the OpenAPI schema, as every role, aimed at a device outside the grants.

Two devices log: ``mine-gw`` (granted to each role) and ``hidden-gw-7731`` (granted to nobody
but the admin). The hidden device's lines carry markers that exist nowhere else: the text
``payload7731``, its sender 127.0.1.2, the internal address 10.99.99.99 and MAC
02:99:99:99:99:99 of its NAT line. Each route is called with path parameters naming the hidden
device, its event, its location and group, and query/body fields filled from the schema (device
fields name the hidden device). No response may contain a marker, once the values the request
itself sent are taken out (a 404 may say "device hidden-gw-7731 was not found"); routes that
address a device or an event answer 404, never 403. The admin, walking the same way, does see
the markers: the suite can tell a leak from silence.

Skipped: ``/auth/*`` (sign-in, tokens, MFA of the caller itself; no device data, and logout
would end the walk). Routes added later are walked automatically; a path parameter the suite
has no value for fails the test, so it is taught about it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from logdata_support import ISTANBUL, api, start_site, syslog

from support import wait_for

__all__ = ["api", "start_site"]

HIDDEN = "hidden-gw-7731"
MARKERS = ("7731", "127.0.1.2", "10.99.99.99", "02:99:99:99:99:99")
PUBLIC = "198.51.100.7"
ROLES = ("viewer", "network_manager", "security_analyst", "location_manager")
ACTIONS = {
    "viewer": ["view"],
    "network_manager": ["view", "tail", "attribute", "manage"],
    "security_analyst": ["view", "tail", "export", "attribute"],
}


@pytest.fixture
def world(add_device, start_site, admin, api) -> dict[str, Any]:
    for name in ("L-mine", "L-hidden"):
        assert admin.post("/locations", json={"name": name}).status_code == 201
    add_device("mine-gw", sources=["127.0.1.1"], location="L-mine")
    add_device(HIDDEN, sources=["127.0.1.2"], location="L-hidden")
    site = start_site()
    t = dt.datetime.now(ISTANBUL) - dt.timedelta(minutes=1)
    site.send("127.0.1.1", *[syslog("mine-gw", f"app: ordinary line {i}") for i in range(3)])
    site.send(
        "127.0.1.2",
        syslog(HIDDEN, "app: payload7731 secret line"),
        syslog(
            HIDDEN,
            "firewall,info forward: in:bridge out:ether1, connection-state:new src-mac "
            "02:99:99:99:99:99, proto TCP (SYN), 10.99.99.99:50000->93.184.216.34:443, "
            f"NAT (10.99.99.99:50000->{PUBLIC}:40000)->93.184.216.34:443, len 60",
            when=t,
        ),
    )
    site.wait_archived(5)
    site.index()
    found = admin.get("/search/events", params={"q": "payload7731", "from": "-1h"}).json()
    ordinary = admin.get("/search/events", params={"q": "ordinary", "from": "-1h"}).json()
    locations = {loc["name"]: loc["id"] for loc in admin.get("/locations").json()}
    group = admin.post("/device-groups", json={"name": "hidden-group", "devices": [HIDDEN]})
    assert group.status_code == 201, group.text
    group = group.json()
    today = dt.datetime.now(ISTANBUL).date().isoformat()
    days = {"device": HIDDEN, "from": today, "to": today}
    job = admin.post("/exports/jobs", json=days)
    hold = admin.post("/retention/holds", json={**days, "reason": "court order"})
    assert job.status_code == 202 and hold.status_code == 201, (job.text, hold.text)
    wait_for(lambda: admin.get(f"/exports/jobs/{job.json()['id']}").json()["state"] != "running")
    return {
        "site": site,
        "job": job.json()["id"],
        "hold": hold.json()["id"],
        "event": found["events"][0]["id"],
        "mine_event": ordinary["events"][0]["id"],
        "location": locations["L-hidden"],
        "group": group["id"],
        "at": (t + dt.timedelta(seconds=1)).isoformat(),
    }


def _ref(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


AIMED = ("q", "from", "ip", "port", "at", "user", "location_id", "group_ids", "name")


def _aimed(name: str) -> bool:
    lowered = name.lower()
    return lowered in AIMED or "slug" in lowered or "device" in lowered


def _value(name: str, schema: dict[str, Any], world: dict[str, Any], username: str) -> Any:
    """A value for a query parameter or body field, aimed at the hidden device."""
    lowered = name.lower()
    variants = schema.get("anyOf", [schema])
    kinds = {s.get("type") for s in variants}
    if any(s.get("format") == "date" for s in variants):
        return dt.date.today().isoformat()
    if "slug" in lowered or "device" in lowered:
        return [HIDDEN] if "array" in kinds else HIDDEN
    table: dict[str, Any] = {
        "q": "*",
        "from": "-1h",
        "ip": PUBLIC,
        "port": 40000,
        "at": world["at"],
        "user": username,
        "location_id": world["location"],
        "group_ids": [world["group"]],
        "name": "pwned",
    }
    if lowered in table:
        return table[lowered]
    if "array" in kinds:
        return []
    if "integer" in kinds:
        return 1
    if "boolean" in kinds:
        return False
    return "x"


def _request(
    spec: dict[str, Any],
    path: str,
    op: dict[str, Any],
    world: dict[str, Any],
    ids: dict[str, Any],
    username: str,
    mine: bool = False,
) -> tuple[str, dict[str, Any], Any, list[str]]:
    """(url, query params, json body, the values sent) for one operation; ``mine``: aimed at
    the caller's own device instead."""
    params_by_path = {
        "slug": "mine-gw" if mine else HIDDEN,
        "event_id": world["mine_event" if mine else "event"],
        "location_id": world["location"],
        "group_id": world["group"],
        "user_id": ids["admin_user"],
        "grant_id": ids["hidden_grant"],
        "job": world["job"],
        "hold_id": world["hold"],
        "name": "viewer",
    }
    url, query, sent = path, {}, []
    for p in op.get("parameters", []):
        if p["in"] == "path":
            assert p["name"] in params_by_path, (
                f"teach test_idor a value for {{{p['name']}}} of {path}"
            )
            value = params_by_path[p["name"]]
            url = url.replace("{" + p["name"] + "}", str(value))
            sent.append(str(value))
        elif p["in"] == "query":
            if p["name"] == "mac" or not (_aimed(p["name"]) or p.get("required")):
                continue  # ip and mac exclude each other; ip points at the hidden NAT line
            query[p["name"]] = _value(p["name"], p.get("schema", {}), world, username)
            sent.extend(_texts(query[p["name"]]))
    body = None
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content:
        schema = _ref(spec, content["schema"])
        body = {
            k: _value(k, _ref(spec, v), world, username)
            for k, v in schema.get("properties", {}).items()
            if k in schema.get("required", []) or _aimed(k)
        }
        for v in body.values():
            sent.extend(_texts(v))
    return url, query, body, sent


def _texts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _walk(
    spec: dict[str, Any], client: Any, world: dict[str, Any], ids: dict[str, Any]
) -> list[tuple[str, str, int, str, int]]:
    """Call every operation; return (method, path, status, body with sent values removed,
    status of the same call aimed at the caller's own device)."""
    out = []
    ops = [
        (m, path, op)
        for path, item in spec["paths"].items()
        for m, op in item.items()
        if not path.startswith("/api/v1/auth/")
    ]
    ops.sort(key=lambda t: t[0] == "delete")  # destructive calls last
    for method, path, op in ops:
        url, query, body, sent = _request(spec, path, op, world, ids, client.username)
        r = client.request(method.upper(), url.removeprefix("/api/v1"), params=query, json=body)
        text = r.text
        for value in sorted(set(sent), key=len, reverse=True):
            if len(value) >= 4:  # the slug, event id, query...; not "1"
                text = text.replace(value, "")
        own = r.status_code
        if r.status_code == 403 and _device_addressed(path):
            url, query, body, _ = _request(spec, path, op, world, ids, client.username, mine=True)
            own = client.request(
                method.upper(), url.removeprefix("/api/v1"), params=query, json=body
            ).status_code
        out.append((method, path, r.status_code, text, own))
    return out


def _device_addressed(path: str) -> bool:
    return "{slug}" in path or "{event_id}" in path


def test_no_route_returns_data_of_a_device_outside_the_grants(world, as_role, admin, grant, api):
    """Every role, every route: no marker of the hidden device; device-addressed routes 404."""
    spec = admin.get("/openapi.json").json()
    helper = as_role("viewer")
    hidden_grant = grant(user=helper.username, device=HIDDEN, actions=["view"])
    # User routes aim at a bystander: the admin's own walk would otherwise revoke its session.
    users = {u["username"]: u["id"] for u in admin.get("/users").json()}
    ids = {"admin_user": users[helper.username], "hidden_grant": hidden_grant["id"]}
    leaks = []
    for role in ROLES:
        client = as_role(role)
        if role == "location_manager":
            uid = {u["username"]: u["id"] for u in admin.get("/users").json()}[client.username]
            assert admin.patch(f"/users/{uid}", json={"locations": ["L-mine"]}).status_code == 200
        else:
            grant(user=client.username, device="mine-gw", actions=ACTIONS[role])
        mine = client.get("/search/events", params={"from": "-1h"}).json()["events"]
        assert {e["device"] for e in mine} == {"mine-gw"}, role  # the role does see its device
        for method, path, status, text, own in _walk(spec, client, world, ids):
            found = [m for m in MARKERS if m in text]
            if found:
                leaks.append(f"{role} {method.upper()} {path} -> {status}: {found}")
            # 403 only where the role may not use the route at all (its own device gets 403
            # too): a 403 that a 404 elsewhere tells apart would reveal that the device exists.
            if _device_addressed(path) and status != 404 and not (status == own == 403):
                leaks.append(f"{role} {method.upper()} {path} -> {status}, expected 404")
        # After the walk the hidden device is still hidden and unchanged.
        assert client.get(f"/devices/{HIDDEN}").status_code == 404, role
    hidden = admin.get(f"/devices/{HIDDEN}").json()
    assert (hidden["name"], hidden["status"]) == ("", "approved")
    assert not leaks, "\n".join(leaks)
    # The admin, walking the same way, does meet the markers: the checks above can fail.
    admin.username = "admin"
    seen = " ".join(w[3] for w in _walk(spec, admin, world, ids))
    assert all(m in seen for m in MARKERS), [m for m in MARKERS if m not in seen]


def test_tail_never_streams_a_device_outside_the_grants(world, as_role, grant, api):
    """As every role with tail, lines of the hidden device never arrive."""
    from websockets.sync.client import connect

    site = world["site"]
    for role in ("network_manager", "security_analyst"):
        client = as_role(role)
        grant(user=client.username, device="mine-gw", actions=ACTIONS[role])
        with connect(
            f"ws://127.0.0.1:{api.port}/api/v1/tail",
            subprotocols=["logmaster.tail.v1", f"bearer.{client.token}"],  # type: ignore[list-item]
            legacy=True,
        ) as ws:
            ws.send(json.dumps({"query": ""}))
            assert json.loads(ws.recv(timeout=10))["type"] == "started"
            site.send("127.0.1.2", syslog(HIDDEN, "app: payload7731 live"))
            site.send("127.0.1.1", syslog("mine-gw", "app: visible live"))
            got = []
            while not any("visible live" in line["message"] for line in got):
                message = json.loads(ws.recv(timeout=5))
                got.extend(message.get("lines", []))
            assert not any(m in json.dumps(got) for m in MARKERS), role
