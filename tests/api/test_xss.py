"""XSS: syslog payloads with HTML/JS never come back in a response a browser would render.

Payloads arrive the real way (util-linux ``logger`` and UDP datagrams, in the message, the tag
and the hostname), are archived and indexed, then every GET route of the schema is called as
the admin (who sees everything), plus the routes that echo input (a 404 naming a slug, a 400
quoting a query). A response that carries a payload must be JSON (``application/json`` or
``application/problem+json``, which browsers do not render) with ``X-Content-Type-Options:
nosniff`` (so they do not guess HTML either); any HTML the server sends (docs, console) carries
a Content-Security-Policy and no payload.
"""

from __future__ import annotations

from typing import Any

from logdata_support import api, start_site, syslog

__all__ = ["api", "start_site"]

PAYLOADS = (
    "<script>alert('lm1')</script>",
    '"><img src=x onerror=alert("lm2")>',
    "</title><svg/onload=alert`lm3`>",
    "<iframe src=javascript:alert('lm4')>",
)
JSON_TYPES = ("application/json", "application/problem+json")


def _fill(site: Any) -> None:
    for p in PAYLOADS:
        site.logger(f"login failed for {p}", tag="sshd")
    site.send("127.0.1.1", *[syslog("gw1", f"app: user={p} action=deny") for p in PAYLOADS])
    site.send("127.0.1.1", syslog("<b>host</b>", "<i>tag</i>: markup in the header"))
    site.wait_archived(len(PAYLOADS) * 2 + 1)
    site.index()


def _get_routes(spec: dict[str, Any]) -> list[str]:
    return [
        path.removeprefix("/api/v1")
        for path, item in spec["paths"].items()
        if "get" in item and "{" not in path
    ]


def test_payloads_come_back_only_as_json(add_device, start_site, admin, api):
    """Every response that carries a payload is JSON, never HTML."""
    add_device("gw1", sources=["127.0.1.1"])
    add_device("local", sources=["127.0.0.1"])
    site = start_site()
    _fill(site)
    spec = admin.get("/openapi.json").json()
    events = admin.get("/search/events", params={"q": "*", "from": "-1h", "limit": 100}).json()
    assert len(events["events"]) == len(PAYLOADS) * 2 + 1
    responses = [admin.get(path, params={"q": "*", "from": "-1h"}) for path in _get_routes(spec)]
    for e in events["events"]:
        responses.append(admin.get(f"/events/{e['id']}"))
        responses.append(admin.get(f"/events/{e['id']}/surrounding"))
    for slug in ("gw1", "local", PAYLOADS[0]):
        responses.append(admin.get(f"/devices/{slug}"))
        responses.append(admin.get(f"/devices/{slug}/archive-days"))
    responses.append(admin.get("/search/events", params={"q": f"{PAYLOADS[1]} AND"}))
    responses.append(admin.get("/search/events", params={"q": "x", "tz": PAYLOADS[2]}))
    carrying = 0
    for r in responses:
        text = r.text
        has_payload = any(p in text for p in PAYLOADS) or "<b>host</b>" in text
        ctype = r.headers.get("content-type", "").split(";")[0]
        if has_payload:
            carrying += 1
            assert ctype in JSON_TYPES, (r.request.url, ctype)
        if ctype == "text/html":
            assert not has_payload, r.request.url
    assert carrying >= len(events["events"]) + 3  # search, events, and the echoing errors
    # The payload is the data, unchanged: escaping is the console's job when it renders text.
    messages = {e["message"] for e in events["events"]}
    assert "login failed for <script>alert('lm1')</script>" in messages


def test_security_headers_on_every_response(admin, client, api):
    """JSON answers say nosniff; any HTML the server sends has a Content-Security-Policy."""
    spec = admin.get("/openapi.json").json()
    responses = [admin.get(path) for path in _get_routes(spec)]
    responses += [
        client.get("/devices"),  # 401
        admin.get("/devices/<script>"),  # 404 echoing the slug
        admin.get("/search/events", params={"q": "<svg onload=x> AND"}),  # 400
        admin.get("/no-such-route"),
    ]
    for r in responses:
        ctype = r.headers.get("content-type", "").split(";")[0]
        where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
        assert ctype in JSON_TYPES, where
        assert r.headers.get("x-content-type-options") == "nosniff", where
    for path in ("/api/v1/docs", "/"):
        r = client.get(f"{api.url}{path}")
        if r.headers.get("content-type", "").startswith("text/html"):
            assert "default-src" in r.headers.get("content-security-policy", ""), path
