"""Two real nodes (own collector, archive, indexer, API, sealer) on one PostgreSQL and one Redis.

Node a collects on 127.0.0.2, node b on 127.0.0.3, each with its own data directory; both use a
scratch database on the machine's PostgreSQL (metadata + index) and the machine's Redis (tail).
Devices are loopback senders 127.0.5.x. The tests share the two nodes and run in file order;
the last one kills node b with SIGKILL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from cluster_support import (
    REDIS_HOST,
    Node,
    bsd_line,
    plain_url,
    scratch_database,
    search,
    tail_messages,
    tail_until,
)

from support import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ISTANBUL = ZoneInfo("Europe/Istanbul")
MAC = "02:00:00:00:05:01"
LAN = "192.168.77.10"
PUBLIC = "203.0.113.77"


class Cluster:
    def __init__(self, a: Node, b: Node, db_url: str) -> None:
        self.a, self.b, self.db_url = a, b, db_url
        self.word = "w" + secrets.token_hex(4)  # marks this run's lines in the shared Redis

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(plain_url(self.db_url), autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return list(cur.fetchall()) if cur.description else []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    with scratch_database() as db_url:
        common = {
            "LOGMASTER_DATABASE_URL": db_url,
            "LOGMASTER_INDEX__BACKEND": "postgres",
            "LOGMASTER_INDEX__POSTGRES_URL": db_url,
            # A db number of its own; pub/sub channels are server-wide, so lines carry a word
            # unique to this run and the tail asks for it.
            "LOGMASTER_REDIS_URL": f"redis://{REDIS_HOST}/11",
            "LOGMASTER_CLUSTER__SHARED_DIR": str(root / "shared"),
        }
        a = Node("node-a", root / "a", "127.0.0.2", common)
        b = Node("node-b", root / "b", "127.0.0.3", common)
        try:
            a.start()
            b.start()
            yield Cluster(a, b, db_url)
        finally:
            b.stop()
            a.stop()


def test_search_on_b_and_tail_on_a_see_both_nodes(cluster: Cluster) -> None:
    """A token from node a works on node b; b's search and a's live tail show both nodes' lines."""
    a, b, word = cluster.a, cluster.b, cluster.word
    token = a.sign_in()
    a.send("127.0.5.1", bsd_line("fw-a", f"app: first {word} via a"))
    b.send("127.0.5.2", bsd_line("fw-b", f"app: first {word} via b"))
    with b.client(token) as on_b:
        hits = wait_for(lambda: len(found := search(on_b, f"first {word}")) == 2 and found, 60)
        assert {h["device"] for h in hits} == {"ip-127.0.5.1", "ip-127.0.5.2"}
        # The raw line of a's event, asked on b, comes from a's archive (forwarded).
        (on_a_hit,) = [h for h in hits if h["device"] == "ip-127.0.5.1"]
        r = on_b.get(f"/events/{on_a_hit['id']}")
        assert r.status_code == 200, r.text
        assert r.json()["archived"]["line"].endswith(f"app: first {word} via a")
        assert on_a_hit["file"].startswith("node-a:ip-127.0.5.1/")
        # a's archive days and seal verdicts, asked on b, are a's.
        days = on_b.get("/devices/ip-127.0.5.1/archive-days")
        assert days.status_code == 200, days.text
        assert [d["lines"] for d in days.json()["days"]] == [1]
        verdicts = on_b.get("/verify", params={"device": "ip-127.0.5.1"})
        assert verdicts.status_code == 200, verdicts.text
    held = dict(cluster.sql("SELECT slug, node FROM devices WHERE slug LIKE 'ip-127.0.5.%'"))
    assert held == {"ip-127.0.5.1": "node-a", "ip-127.0.5.2": "node-b"}

    ws = a.tail(token, f"second {word}")
    try:
        # Collectors publish once they see a subscriber (checked every second): send rounds
        # until a round of each node has arrived.
        seen: list[dict[str, object]] = []
        for i in range(30):
            a.send("127.0.5.1", bsd_line("fw-a", f"app: second {word} {i} via a"))
            b.send("127.0.5.2", bsd_line("fw-b", f"app: second {word} {i} via b"))
            with contextlib.suppress(AssertionError):
                seen += tail_until(ws, lambda m: len(tail_messages(m)) >= 2, timeout=2)
            if {m.rsplit(" ", 1)[1] for m in tail_messages(seen)} == {"a", "b"}:
                break
    finally:
        ws.close()
    assert {m.rsplit(" ", 1)[1] for m in tail_messages(seen)} == {"a", "b"}
    assert all(f"second {word}" in m for m in tail_messages(seen))


def test_attribution_across_nodes(cluster: Cluster) -> None:
    """NAT line on node a, DHCP lease on node b: the public IP:port is attributed to the MAC."""
    a, b = cluster.a, cluster.b
    t = dt.datetime.now(ISTANBUL) - dt.timedelta(minutes=2)
    b.send(
        "127.0.5.4",
        bsd_line("dhcp-b", f"dhcpd[812]: DHCPACK on {LAN} to {MAC} (phone) via eth0", 190, t),
    )
    a.send(
        "127.0.5.3",
        bsd_line(
            "gw-a",
            "firewall,info forward: in:bridge out:ether1, connection-state:new src-mac "
            f"{MAC}, proto TCP (SYN), {LAN}:50000->93.184.216.34:443, "
            f"NAT ({LAN}:50000->{PUBLIC}:40000)->93.184.216.34:443, len 60",
            134,
            t + dt.timedelta(seconds=30),
        ),
    )
    at = (t + dt.timedelta(seconds=31)).isoformat()
    with a.client(a.sign_in()) as on_a:

        def chain() -> dict[str, object] | None:
            r = on_a.get("/attribution", params={"ip": PUBLIC, "port": 40000, "at": at})
            assert r.status_code == 200, r.text
            chains = r.json()["chains"]
            return chains[0] if chains and chains[0]["macs"] else None

        found = wait_for(chain, timeout=60, interval=0.5)
    assert found["internal_ip"] == LAN and found["macs"] == [MAC]
    nat = found["nat"]
    (lease,) = found["leases"]
    assert nat["device"] == "ip-127.0.5.3" and lease["device"] == "ip-127.0.5.4"
    # a reads its own NAT line; b's lease line is named as held by node b.
    assert nat["evidence"][0]["line"].endswith("len 60")
    assert "node-b" in lease["evidence"][0]["line"]


def test_each_node_seals_only_its_own_device_days(cluster: Cluster) -> None:
    """`logmaster seal --date` on each node declares the silences of its own devices only."""
    a, b = cluster.a, cluster.b
    # Approved devices that existed the whole of yesterday and sent nothing then: silent days.
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    cluster.sql(
        "UPDATE devices SET status = 'approved', created_at = %s WHERE slug LIKE 'ip-127.0.5.%%'",
        long_ago,
    )
    yesterday = (dt.datetime.now(ISTANBUL) - dt.timedelta(days=1)).date().isoformat()
    for node in (a, b):  # each node signs its seals with its own key
        node.cli("keys", "init", "--algorithm", "ecdsa-p256")
    # The sealer of `logmaster run` may declare them first (it runs every minute): either
    # way each node's archive holds its own devices' seals and nothing of the other's.
    out_a = a.cli("seal", "--date", yesterday).stdout
    out_b = b.cli("seal", "--date", yesterday).stdout
    assert "ip-127.0.5.2" not in out_a and "ip-127.0.5.4" not in out_a
    assert "ip-127.0.5.1" not in out_b and "ip-127.0.5.3" not in out_b
    y, m, d = yesterday.split("-")

    def sealed(node: Node, slug: str) -> bool:
        return (node.data / "archive" / slug / y / m / f"{d}.manifest.json").exists()

    assert sealed(a, "ip-127.0.5.1") and sealed(a, "ip-127.0.5.3")
    assert sealed(b, "ip-127.0.5.2") and sealed(b, "ip-127.0.5.4")
    assert not (a.data / "archive" / "ip-127.0.5.2").exists()
    assert not (a.data / "archive" / "ip-127.0.5.4").exists()
    assert not (b.data / "archive" / "ip-127.0.5.1").exists()
    assert not (b.data / "archive" / "ip-127.0.5.3").exists()
    manifest = json.loads(
        (a.data / "archive" / "ip-127.0.5.1" / y / m / f"{d}.manifest.json").read_text()
    )
    assert manifest["declared_silence"] and manifest["sealer"]["node"] == "node-a"


def test_node_killed_the_other_goes_on(cluster: Cluster, tmp_path: Path) -> None:
    """kill -9 node b: a keeps receiving and answering (b's raw lines: a problem naming b);
    b restarted on its data directory verifies its archive intact."""
    a, b, word = cluster.a, cluster.b, cluster.word
    token = a.sign_in()
    b.send("127.0.5.2", *[bsd_line("fw-b", f"app: before {word} {i}") for i in range(50)])
    with a.client(token) as on_a:
        wait_for(lambda: len(search(on_a, f"before {word}")) == 50, timeout=60)
        b.kill9()
        a.send("127.0.5.1", bsd_line("fw-a", f"app: after {word} kill"))
        wait_for(lambda: len(search(on_a, f"after {word}")) == 1, timeout=60)
        # b's lines are still found (the index is shared); their raw line needs b.
        hit = search(on_a, f"before {word}")[0]
        r = on_a.get(f"/events/{hit['id']}")
        assert r.status_code == 409, r.text
        assert "node-b" in r.json()["detail"]
        assert r.headers["content-type"] == "application/problem+json"
        today = dt.datetime.now(ISTANBUL).date().isoformat()
        bundle = {"device": "ip-127.0.5.2", "from": today, "to": today}
        for r in (
            on_a.get("/devices/ip-127.0.5.2/archive-days"),
            on_a.post("/exports", json=bundle),
        ):
            assert r.status_code == 409 and "node-b" in r.json()["detail"], r.text
    b.start()
    verify = b.cli("archive", "verify")
    assert "ip-127.0.5.2" in verify.stdout, verify.stdout
    with b.client(token) as on_b:
        r = on_b.get(f"/events/{hit['id']}")
        assert r.status_code == 200, r.text
        assert f"before {word}" in r.json()["archived"]["line"]
