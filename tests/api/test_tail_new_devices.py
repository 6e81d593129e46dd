"""Live tail: a device that appears, or that a user may see from now on, joins an open tail
within about 2 s (not at the 30 s recheck), and only for sessions its grants allow."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from logdata_support import Site, start_site, syslog
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from support import wait_for

__all__ = ["start_site"]

PROTOCOL = "logmaster.tail.v1"
JOIN_S = 2.5  # "about 2 s" plus the collector's own moment to save a new sender


@pytest.fixture
def api(start_api: Callable[..., Any]) -> Any:
    return start_api(index={"workers": 0, "metrics_listen": ""})


def open_tail(api: Any, token: str) -> ClientConnection:
    ws = connect(
        f"ws://127.0.0.1:{api.port}/api/v1/tail",
        subprotocols=[Subprotocol(PROTOCOL), Subprotocol(f"bearer.{token}")],
        open_timeout=10,
        legacy=True,
    )
    ws.send(json.dumps({"query": ""}))
    message = json.loads(ws.recv(timeout=10))
    assert message["type"] == "started", message
    return ws


class Reader:
    """Collects the devices of the lines a tail receives, in a thread, with their times."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: dict[str, float] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                message = json.loads(self.ws.recv())
                for line in message.get("lines", []):
                    self.seen.setdefault(line["device"], time.monotonic())
        except (ConnectionClosed, OSError, RuntimeError):
            return


@pytest.fixture
def sender(start_site: Callable[[], Site]) -> Iterator[Callable[[str, str], None]]:
    """``sender(source, host)``: that source sends a line every 0.2 s until the test ends."""
    site = start_site()
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(source: str, host: str) -> None:
        def run() -> None:
            n = 0
            while not stop.is_set():
                site.send(source, syslog(host, f"app: line {n}"))
                n += 1
                stop.wait(0.2)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        threads.append(t)

    yield start
    stop.set()
    for t in threads:
        t.join(timeout=5)


def test_new_sender_joins_an_admin_tail_within_2_s(
    add_device: Callable[..., int], sender: Callable[[str, str], None], admin: Any, api: Any
) -> None:
    """A sender nobody registered becomes a pending device; the admin's open tail shows its
    lines about 2 s after the first one was sent."""
    add_device("gw1", sources=["127.0.1.1"])
    reader = Reader(open_tail(api, admin.token))
    t0 = time.monotonic()
    sender("127.0.1.7", "newbox")
    wait_for(lambda: "ip-127.0.1.7" in reader.seen, timeout=10)
    assert reader.seen["ip-127.0.1.7"] - t0 < JOIN_S
    reader.ws.close()


def test_device_approved_into_a_location_joins_that_managers_tail(
    add_device: Callable[..., int],
    sender: Callable[[str, str], None],
    as_role: Callable[..., Any],
    grant: Callable[..., Any],
    admin: Any,
    api: Any,
) -> None:
    """A pending device approved and put into Ankara joins the tail of an analyst granted
    Ankara within about 2 s; an analyst without that grant never sees it; a device that
    stays invisible costs no re-read of the grants per line."""
    ankara = admin.post("/locations", json={"name": "Ankara"}).json()["id"]
    add_device("gw1", sources=["127.0.1.1"], location="Ankara")
    sender("127.0.1.8", "branch")
    wait_for(lambda: admin.get("/devices/ip-127.0.1.8").status_code == 200, timeout=10)
    ankara_analyst, other = as_role("security_analyst"), as_role("security_analyst")
    grant(user=ankara_analyst.username, location="Ankara", actions=["view", "tail"])
    grant(user=other.username, device="gw1", actions=["view", "tail"])
    mine, theirs = Reader(open_tail(api, ankara_analyst.token)), Reader(open_tail(api, other.token))
    hub = api.app.state.logdata.hub
    time.sleep(3)  # the pending device keeps sending: nobody here may see it
    assert "ip-127.0.1.8" not in mine.seen and "ip-127.0.1.8" not in theirs.seen
    # At most one re-read per session (its first look), not one per line.
    assert hub.stats.rechecks <= 2, hub.stats
    assert admin.post("/devices/ip-127.0.1.8/approve").status_code == 200
    t0 = time.monotonic()
    r = admin.patch("/devices/ip-127.0.1.8", json={"location_id": ankara})
    assert r.status_code == 200, r.text
    wait_for(lambda: "ip-127.0.1.8" in mine.seen, timeout=10)
    assert mine.seen["ip-127.0.1.8"] - t0 < JOIN_S
    time.sleep(1.5)
    assert "ip-127.0.1.8" not in theirs.seen  # the per-device filter still holds
    mine.ws.close()
    theirs.ws.close()
