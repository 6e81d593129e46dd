"""Live tail: real collector, real feed socket (and Redis), real uvicorn, real WebSocket client."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from logdata_support import Site, start_site, syslog
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from support import wait_for

__all__ = ["start_site"]

PROTOCOL = "logmaster.tail.v1"


@pytest.fixture
def api(start_api: Callable[..., Any]) -> Any:
    """Small per-session queue and session limit, so their bounds are reached quickly."""
    return start_api(
        index={"workers": 0, "metrics_listen": ""},
        tail={"queue_lines": 200, "max_sessions_per_user": 2},
    )


def ws_url(api: Any) -> str:
    return f"ws://127.0.0.1:{api.port}/api/v1/tail"


def open_tail(
    api: Any, token: str | None, query: str = "", in_header: bool = True
) -> ClientConnection:
    protocols = [PROTOCOL] + ([f"bearer.{token}"] if token and in_header else [])
    ws = connect(ws_url(api), subprotocols=protocols, open_timeout=10, legacy=True)  # type: ignore[arg-type]
    first: dict[str, Any] = {"query": query}
    if token and not in_header:
        first["token"] = token
    ws.send(json.dumps(first))
    return ws


def started(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=10))
    assert message["type"] == "started", message
    return message


def lines(ws: ClientConnection, want: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == "lines":
            got.extend(message["lines"])
    return got


def closed_with(ws: ClientConnection) -> tuple[int, dict[str, Any]]:
    """(close code, the error message sent before it)."""
    error: dict[str, Any] = {}
    try:
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "error":
                error = message
    except ConnectionClosed as exc:
        assert exc.rcvd is not None
        return exc.rcvd.code, error


def _site(add_device: Any, start_site: Any) -> Site:
    add_device("gw1", sources=["127.0.1.1"])
    add_device("gw2", sources=["127.0.1.2"])
    return start_site()


def test_matching_lines_of_permitted_devices_arrive_within_a_second(
    add_device, start_site, as_role, grant, api
):
    """A new matching line of a permitted device reaches the client in under 1 s; lines of
    other devices and lines that do not match never do."""
    site = _site(add_device, start_site)
    analyst = as_role("security_analyst")
    grant(user=analyst.username, device="gw1", actions=["view", "tail"])
    with open_tail(api, analyst.token, 'alpha OR "logged in"') as ws:
        assert started(ws)["devices"] == 1
        t0 = time.monotonic()
        site.send("127.0.1.2", syslog("gw2", "app: alpha from the other device"))
        site.send("127.0.1.1", syslog("gw1", "app: beta does not match"))
        site.send("127.0.1.1", syslog("gw1", "app: alpha <b>one</b>"))
        (line,) = lines(ws, 1, timeout=1.0)
        assert time.monotonic() - t0 < 1.0
        assert line["device"] == "gw1" and line["message"] == "alpha <b>one</b>"
        assert line["timezone"] == "Europe/Istanbul" and line["received"].endswith("+03:00")
        site.send("127.0.1.1", syslog("gw1", "hotspot,info ayse (10.0.0.5): logged in"))
        (second,) = lines(ws, 1)
        assert "logged in" in second["message"]
        # The archive line at the announced file and offset is the one shown.
        path = api.settings.archive_dir / line["file"]
        raw = path.read_bytes()[line["offset"] :].split(b"\n", 1)[0]
        assert raw.endswith(b"alpha <b>one</b>")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)  # nothing from gw2, nothing for "beta"


def test_token_in_the_first_message(add_device, start_site, admin, api):
    """Clients that cannot set a subprotocol send the token in the first message."""
    site = _site(add_device, start_site)
    with open_tail(api, admin.token, "device:gw2", in_header=False) as ws:
        assert started(ws)["devices"] == 2
        site.send("127.0.1.1", syslog("gw1", "app: one"))
        site.send("127.0.1.2", syslog("gw2", "app: two"))
        (line,) = lines(ws, 1)
        assert line["device"] == "gw2"


def test_refusals_close_with_a_reason(as_role, admin, api):
    """No token, a token in the URL only, no tail permission, a bad query: each is refused
    with an error message and its own close code."""
    with open_tail(api, None) as ws:
        code, error = closed_with(ws)
        assert code == 4401 and error["status"] == 401
    with connect(f"{ws_url(api)}?token={admin.token}", subprotocols=[PROTOCOL], legacy=True) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"query": ""}))
        assert closed_with(ws)[0] == 4401  # a token in the URL would end up in logs: ignored
    viewer = as_role("viewer")
    with open_tail(api, viewer.token) as ws:
        code, error = closed_with(ws)
        assert code == 4403 and "tail" in error["detail"]
    with open_tail(api, admin.token, 'src:10.0.0.0/8 AND "open') as ws:
        code, error = closed_with(ws)
        assert code == 4400 and "position 19" in error["detail"]
    with open_tail(api, "not.a.jwt") as ws:
        assert closed_with(ws)[0] == 4401


def test_sessions_per_user_are_bounded(admin, api):
    """Past tail.max_sessions_per_user a new session is refused (4429); closing one frees it."""
    first, second = open_tail(api, admin.token), open_tail(api, admin.token)
    started(first)
    started(second)
    with open_tail(api, admin.token) as third:
        code, error = closed_with(third)
        assert code == 4429 and "2" in error["detail"]
    first.close()
    time.sleep(0.3)
    with open_tail(api, admin.token) as again:
        started(again)
    second.close()


def test_slow_client_is_cut_off_and_ingest_goes_on(add_device, start_site, admin, api):
    """A client that stops reading is closed with 'too slow' (4408); every line is archived."""
    site = _site(add_device, start_site)
    # A client that does not read: a tiny receive buffer and no reading from here on.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", api.port))
    ws = connect(
        ws_url(api),
        sock=sock,
        subprotocols=[PROTOCOL, f"bearer.{admin.token}"],  # type: ignore[list-item]
        max_queue=1,
        legacy=True,
    )
    ws.send(json.dumps({"query": ""}))
    started(ws)
    hub = api.app.state.logdata.hub
    padding = "x" * 2000
    before = site.archived()
    sent = 0
    t0 = time.monotonic()

    # Keep lines coming (as a busy network does) until the stalled client is cut off.
    def cut() -> bool:
        return bool(hub.stats.sessions_cut_slow or any(s.closed_reason for s in hub.sessions))

    while not cut() and sent < 50_000:
        site.send(
            "127.0.1.1", *[syslog("gw1", f"app: flood {sent + j} {padding}") for j in range(100)]
        )
        sent += 100
        time.sleep(0.02)
    assert cut(), (sent, hub.stats, site.collector.feed.stats)
    # Reading again, the client finds what was buffered, then the reason and the close code.
    code, error = closed_with(ws)
    assert code == 4408 and error["kind"] == "too-slow"
    site.wait_archived(before + sent, timeout=30)
    elapsed = time.monotonic() - t0
    assert elapsed < 30, f"archiving {sent} lines took {elapsed:.1f}s while a client stalled"
    wait_for(lambda: not api.app.state.logdata.hub.sessions, timeout=5)


def test_tail_sessions_are_audited(add_device, start_site, admin, api):
    """Each tail session leaves a start and an end entry with the query."""
    _site(add_device, start_site)
    with open_tail(api, admin.token, "alpha") as ws:
        session = started(ws)["session"]
    wait_for(lambda: admin.get("/audit", params={"action": "tail.end"}).json()["entries"])
    (start,) = admin.get("/audit", params={"action": "tail.start"}).json()["entries"]
    (end,) = admin.get("/audit", params={"action": "tail.end"}).json()["entries"]
    assert start["target"] == end["target"] == "alpha"
    assert start["details"]["session"] == end["details"]["session"] == session


def test_collector_stops_sending_when_nobody_tails(add_device, start_site, admin, api):
    """The feed is active only while an API process is subscribed for an open tail."""
    site = _site(add_device, start_site)
    feed = site.collector.feed
    assert not feed.active
    with open_tail(api, admin.token) as ws:
        started(ws)
        wait_for(lambda: feed.active, timeout=5)
        site.send("127.0.1.1", syslog("gw1", "app: seen"))
        lines(ws, 1)

    def gone() -> bool:
        site.send("127.0.1.1", syslog("gw1", "app: nobody"))  # a send finds the socket closed
        time.sleep(0.05)
        return not feed.active

    wait_for(gone, timeout=5)


def test_tail_over_redis(start_api, add_device, ports, signin):
    """With redis_url set, lines travel over Redis pub/sub from the collector to the API."""
    from logmaster.collector.service import Collector
    from logmaster.config import load_settings

    url = "redis://127.0.0.1:6379/0"
    server = start_api(index={"workers": 0, "metrics_listen": ""}, redis_url=url)
    add_device("gw9", sources=["127.0.1.9"], server=server)
    collector = Collector(
        load_settings(
            None,
            data_dir=server.settings.data_dir,
            collector={"udp": [f"127.0.0.1:{ports.udp}"], "tcp": [], "tls": []},
            archive={"flush_interval_ms": 20},
            metrics={"listen": ""},
            redis_url=url,
        )
    )
    collector.start()
    try:
        site = Site(server, collector, ports.udp)
        admin = signin("admin", server.admin_password, server=server)
        with open_tail(server, admin.token, "redis") as ws:
            started(ws)
            # The publisher learns about the subscriber within a second (PUBSUB NUMSUB).
            wait_for(lambda: collector.feed.active, timeout=5)
            t0 = time.monotonic()
            site.send("127.0.1.9", syslog("gw9", "app: over redis"))
            (line,) = lines(ws, 1, timeout=2)
            assert line["device"] == "gw9" and time.monotonic() - t0 < 1.0
    finally:
        collector.stop()


def test_feed_drops_for_a_lagging_subscriber_and_says_how_many(tmp_path):
    """The collector's sends never wait: a subscriber that does not read loses messages, and
    the next message it gets says how many lines it lost; nothing is lost silently."""
    from logmaster.collector.feed import UnixFeed, decode, socket_path

    feed = UnixFeed(socket_path(tmp_path), send_buffer_bytes=64 * 1024)
    feed.start()
    sub = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sub.connect(str(socket_path(tmp_path)))
        wait_for(lambda: feed.active, timeout=5)
        line = b"2026-11-28T10:00:00.000000+03:00 127.0.1.1 " + b"x" * 200 + b"\n"
        published = 0
        t0 = time.monotonic()
        while not feed.stats.dropped_lines:
            feed.publish("gw1", "gw1/2026/11/28.log", published * len(line), [line] * 50)
            published += 50
        assert time.monotonic() - t0 < 5  # never blocked on the stalled subscriber
        sub.setblocking(False)
        received, announced = 0, 0

        def drain() -> None:
            nonlocal received, announced
            while True:
                try:
                    message = sub.recv(1 << 20)
                except BlockingIOError:
                    return
                batch = decode(message)
                received += len(batch.lines)
                announced += batch.dropped

        drain()  # the subscriber reads again: the next message announces the loss
        feed.publish("gw1", "gw1/2026/11/28.log", published * len(line), [line] * 50)
        published += 50
        drain()
        assert announced == feed.stats.dropped_lines > 0
        assert received + announced == published
    finally:
        sub.close()
        feed.stop()
    assert not socket_path(tmp_path).exists()
