"""The API process's /metrics: requests per route template, latency, sign-in failures, tails;
on its own listen address, not on the API's port."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_serve import _start, _stop, _up
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from conftest import ApiServer, SignedIn
from logmaster.api.metrics import API_REGISTRY, serve_metrics
from support import free_port, wait_for

EVENT_ROUTE = "/api/v1/events/{event_id}"


def _value(name: str, **labels: str) -> float:
    return API_REGISTRY.get_sample_value(name, labels) or 0.0


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    ]


def test_requests_are_counted_by_route_template(admin: SignedIn, client: httpx.Client) -> None:
    """Counts and latency carry the route's template, the method and the status class; a raw
    path, an odd method or an unknown path never becomes a label of its own."""
    before = _value("logmaster_api_requests_total", route=EVENT_ROUTE, method="GET", status="4xx")
    seconds = _value("logmaster_api_request_duration_seconds_count", route=EVENT_ROUTE)
    for n in range(3):
        assert admin.get(f"/events/2026-11-28.{n + 1}").status_code == 404
    assert client.get("/health").status_code in (200, 503)
    assert client.request("TRACE", "/health").status_code == 405
    client.post("/no/such/route/4711")
    after = _value("logmaster_api_requests_total", route=EVENT_ROUTE, method="GET", status="4xx")
    assert after - before == 3
    assert _value("logmaster_api_request_duration_seconds_count", route=EVENT_ROUTE) == seconds + 3
    assert _value(
        "logmaster_api_requests_total", route="/api/v1/health", method="other", status="4xx"
    )
    labels = {
        (lbl.get("route"), lbl.get("method"))
        for name, lbl, _ in _samples(_text())
        if name == "logmaster_api_requests_total"
    }
    routes = {r for r, _ in labels}
    assert not any("2026-11-28" in (r or "") or "4711" in (r or "") for r in routes), routes
    assert {m for _, m in labels} <= {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "other",
    }


def _text() -> str:
    from prometheus_client import generate_latest

    return generate_latest(API_REGISTRY).decode()


def test_signin_failures_by_reason(
    client: httpx.Client, make_user: Callable[..., tuple[str, str]], api: ApiServer
) -> None:
    """A wrong password counts as credentials, a disabled account as disabled."""
    cred = _value("logmaster_api_signin_failures_total", reason="credentials")
    disabled = _value("logmaster_api_signin_failures_total", reason="disabled")
    client.post("/auth/login", json={"username": "admin", "password": "wrong-wrong-wrong"})
    name, password = make_user("viewer", active=False)
    assert (
        client.post("/auth/login", json={"username": name, "password": password}).status_code == 401
    )
    assert _value("logmaster_api_signin_failures_total", reason="credentials") == cred + 1
    assert _value("logmaster_api_signin_failures_total", reason="disabled") == disabled + 1


def test_tail_sessions_gauge(api: ApiServer, admin: SignedIn) -> None:
    """Open tails raise the gauge; closing one lowers it again."""
    start = _value("logmaster_tail_sessions")
    ws = connect(
        f"ws://127.0.0.1:{api.port}/api/v1/tail",
        subprotocols=[Subprotocol("logmaster.tail.v1"), Subprotocol(f"bearer.{admin.token}")],
        legacy=True,
    )
    ws.send(json.dumps({"query": ""}))
    assert json.loads(ws.recv(timeout=10))["type"] == "started"
    assert _value("logmaster_tail_sessions") == start + 1
    ws.close()
    wait_for(lambda: _value("logmaster_tail_sessions") == start, timeout=5)


def test_served_on_its_own_listener_by_the_api_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`logmaster serve` answers /metrics on [api] metrics_listen, with the request it just
    served and the process figures; the API's own port has no /metrics."""
    api_port, metrics_port = free_port(), free_port()
    monkeypatch.setenv("LOGMASTER_API__METRICS_LISTEN", f"127.0.0.1:{metrics_port}")
    proc = _start(["serve"], tmp_path / "data", api_port)
    base = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        _up(base, proc)
        r = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": "nope"})
        assert r.status_code == 401
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        samples = _samples(text)
        assert ("logmaster_api_signin_failures_total", {"reason": "credentials"}, 1.0) in samples
        assert any(
            n == "logmaster_api_requests_total"
            and lbl == {"route": "/api/v1/auth/login", "method": "POST", "status": "4xx"}
            for n, lbl, _ in samples
        )
        assert any(n == "process_resident_memory_bytes" for n, _, _ in samples)
        assert "logmaster_api" not in httpx.get(f"http://127.0.0.1:{api_port}/metrics").text
    finally:
        _stop(proc)


def test_serve_metrics_binds_the_given_address() -> None:
    """serve_metrics answers on the address given (the listener the API process starts)."""
    port = free_port()
    assert serve_metrics(f"127.0.0.1:{port}") == port
    assert "logmaster_tail_sessions" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
