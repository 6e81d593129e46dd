"""Production mode on one server: ``logmaster run`` with LOGMASTER_DATABASE_URL and
LOGMASTER_REDIS_URL only. Lines sent over UDP are archived, indexed into PostgreSQL, searchable
through the API and seen in live tail over Redis; sign-in counters live in Redis."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from logdata_support import syslog
from websockets.sync.client import connect

from redis_support import shared_redis_url
from support import free_port, wait_for

pytestmark = pytest.mark.postgres

PASSWORD = "Prod-Test-Passw0rd!"


def test_run_on_postgres_and_redis(tmp_path: Path, pg_metadata_url: str):
    """Search (PostgreSQL index) and live tail (Redis pub/sub) of lines sent over UDP."""
    api_port, udp = free_port(), free_port(socket.SOCK_DGRAM)
    redis_url = shared_redis_url()
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "LOGMASTER_DATABASE_URL": pg_metadata_url,
        "LOGMASTER_REDIS_URL": redis_url,
        "LOGMASTER_ADMIN_PASSWORD": PASSWORD,
        "LOGMASTER_API__LISTEN": f"127.0.0.1:{api_port}",
        "LOGMASTER_METRICS__LISTEN": "",
        "LOGMASTER_INDEX__METRICS_LISTEN": "",
        "LOGMASTER_COMPLIANCE__METRICS_LISTEN": "",
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "logmaster", "run"),
            *("--udp", f"127.0.0.1:{udp}", "--data-dir", str(data_dir)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{api_port}/api/v1"
    word = f"prod{secrets.token_hex(4)}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, "logmaster run exited"
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=90, interval=0.3)
        assert (
            httpx.post(
                f"{base}/auth/login", json={"username": "admin", "password": "wrong"}
            ).status_code
            == 401
        )
        client = redis.Redis.from_url(redis_url)
        assert client.get("logmaster:throttle:user:admin") == b"1"  # counted in Redis
        r = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": PASSWORD})
        token = r.json()["access_token"]
        with connect(
            f"ws://127.0.0.1:{api_port}/api/v1/tail",
            subprotocols=["logmaster.tail.v1", f"bearer.{token}"],  # type: ignore[list-item]
            legacy=True,
        ) as ws:
            ws.send(json.dumps({"query": word}))
            assert json.loads(ws.recv(timeout=10))["type"] == "started"

            def tailed() -> bool:
                # The collector learns of the subscriber within a second (PUBSUB NUMSUB): send
                # until a line comes back.
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(syslog("gw", f"app: {word} over redis").encode(), ("127.0.0.1", udp))
                try:
                    message = json.loads(ws.recv(timeout=1))
                except TimeoutError:
                    return False
                assert message["type"] == "lines", message
                return bool(message["lines"][0]["message"] == f"{word} over redis")

            wait_for(tailed, timeout=30, interval=0.1)
        sent = sum(
            p.read_bytes().count(word.encode()) for p in (data_dir / "archive").rglob("*.log")
        )
        auth = {"Authorization": f"Bearer {token}"}

        def found() -> bool:
            r = httpx.get(f"{base}/search/events", params={"q": word}, headers=auth)
            return r.status_code == 200 and len(r.json()["events"]) >= sent > 0

        wait_for(found, timeout=60, interval=0.5)
        with psycopg.connect(pg_metadata_url.replace("+psycopg", "")) as pg:
            row = pg.execute(
                "SELECT count(*) FROM events WHERE message LIKE %s", (f"%{word}%",)
            ).fetchone()
            assert row is not None and row[0] >= 1
        # Nothing embedded was made: no SQLite metadata database, no SQLite index files.
        assert not (data_dir / "logmaster.db").exists()
        assert not list((data_dir / "index").glob("events-*.db"))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
