"""``logmaster run`` serves the API next to the collector and indexer; ``logmaster serve`` alone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from logdata_support import syslog
from websockets.sync.client import connect

from support import free_port, wait_for

PASSWORD = "Run-Test-Passw0rd!"


def _start(args: list[str], data_dir: Path, api_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LOGMASTER_ADMIN_PASSWORD": PASSWORD,
        "LOGMASTER_API__LISTEN": f"127.0.0.1:{api_port}",
        "LOGMASTER_METRICS__LISTEN": "",
        "LOGMASTER_INDEX__METRICS_LISTEN": "",
        "LOGMASTER_INDEX__WORKERS": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "logmaster", *args, "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    return out.decode(errors="replace")


def _up(base: str, proc: subprocess.Popen[bytes]) -> None:
    def ready() -> bool:
        assert proc.poll() is None, "the server exited"
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=60, interval=0.3)


def test_run_serves_search_and_tail(tmp_path: Path):
    """One command: a line sent over UDP is archived, indexed, searchable and tailed."""
    api_port, udp = free_port(), free_port(socket.SOCK_DGRAM)
    proc = _start(["run", "--udp", f"127.0.0.1:{udp}"], tmp_path / "data", api_port)
    base = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        _up(base, proc)
        r = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": PASSWORD})
        token = r.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        with connect(
            f"ws://127.0.0.1:{api_port}/api/v1/tail",
            subprotocols=["logmaster.tail.v1", f"bearer.{token}"],  # type: ignore[list-item]
            legacy=True,
        ) as ws:
            ws.send(json.dumps({"query": "hello"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "started"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(syslog("gw", "app: hello from run").encode(), ("127.0.0.1", udp))
            message = json.loads(ws.recv(timeout=10))
            assert message["lines"][0]["message"] == "hello from run"

        def found() -> bool:
            r = httpx.get(f"{base}/search/events", params={"q": "hello"}, headers=auth)
            return r.status_code == 200 and len(r.json()["events"]) == 1

        wait_for(found, timeout=30, interval=0.5)
    finally:
        out = _stop(proc)
    assert "api:" in out and f"127.0.0.1:{api_port}/api/v1" in out, out


def test_serve_alone(tmp_path: Path):
    """`logmaster serve` runs the API without a collector; health says so without data."""
    api_port = free_port()
    proc = _start(["serve"], tmp_path / "data", api_port)
    base = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        _up(base, proc)
        health = httpx.get(f"{base}/health").json()
        assert health["status"] == "ok" and health["database"]["ok"]
        assert set(health) == {"status", "archive", "index", "database"}
    finally:
        out = _stop(proc)
    # uvicorn's legacy ws="websockets" protocol warned at start; server.py uses the sans-I/O one.
    assert "deprecat" not in out.lower(), out
