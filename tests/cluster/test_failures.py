"""Failure behaviour with real services we own: a private PostgreSQL stopped for a minute, a
private Redis killed. (The machine's shared PostgreSQL and Redis are never touched; the killed
node is in test_two_nodes.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cluster_support import Node, PrivatePostgres, PrivateRedis, bsd_line, search

from support import archived_lines, wait_for

pytestmark = [pytest.mark.slow]

OUTAGE_S = 60.0


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


def _indexed(pg: PrivatePostgres) -> tuple[int, int]:
    """(events, distinct archive positions) in the index."""
    with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (log_file, log_offset)) FROM events"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.postgres
def test_postgres_down_for_a_minute(private_pg: PrivatePostgres, tmp_path: Path) -> None:
    """PostgreSQL stopped for a minute while lines arrive: every line is archived meanwhile, the
    indexer retries (counted, logged) and afterwards every line is indexed exactly once."""
    url = private_pg.dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    node = Node(
        "solo",
        tmp_path / "node",
        "127.0.0.2",
        {
            "LOGMASTER_DATABASE_URL": url,
            "LOGMASTER_INDEX__BACKEND": "postgres",
            "LOGMASTER_INDEX__POSTGRES_URL": url,
        },
    ).start()
    try:
        sent = 0

        def send(n: int) -> None:
            nonlocal sent
            lines = [bsd_line("fw", f"app: outage line {sent + i}") for i in range(n)]
            node.send("127.0.6.1", *lines)
            sent += n

        send(50)
        wait_for(lambda: _indexed(private_pg)[0] == 50, timeout=60)
        private_pg.stop()
        down_at = time.monotonic()
        while time.monotonic() - down_at < OUTAGE_S:
            send(10)
            time.sleep(2.0)
        # The collector kept archiving without its database.
        wait_for(lambda: len(archived_lines(node.data)) == sent, timeout=10)
        assert node.metric("logmaster_index_retries_total") >= 2
        assert "Index database unreachable" in node.output()
        private_pg.start()
        send(10)
        wait_for(lambda: _indexed(private_pg)[0] >= sent, timeout=120, interval=0.5)
        time.sleep(2.0)  # anything indexed twice would show up by now
        assert _indexed(private_pg) == (sent, sent)
        assert len(archived_lines(node.data)) == sent
    finally:
        node.stop()


def test_redis_down_tail_degrades_sign_in_works(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Redis killed: an open tail says it is paused and why, sign-in still works, lines are
    still archived and found by search; Redis back: the tail says it is live again."""
    node = Node(
        "solo", tmp_path / "node", "127.0.0.2", {"LOGMASTER_REDIS_URL": private_redis.url}
    ).start()
    try:
        token = node.sign_in()
        ws = node.tail(token)
        try:
            private_redis.kill()
            status = _next_status(ws)
            assert status["state"] == "degraded", status
            assert "Redis" in status["detail"] and status["detail_tr"]
            token = node.sign_in()  # sign-in does not need Redis
            node.send("127.0.6.2", bsd_line("fw", "app: while redis is down"))
            with node.client(token) as c:
                wait_for(lambda: search(c, '"while redis is down"'), timeout=60)
            private_redis.start()
            assert _next_status(ws)["state"] == "live"
        finally:
            ws.close()
    finally:
        node.stop()


def _next_status(ws: object, timeout: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = json.loads(ws.recv(timeout=left))  # type: ignore[attr-defined]
        if message["type"] == "status":
            return dict(message)
    raise AssertionError("no status message from the tail")
