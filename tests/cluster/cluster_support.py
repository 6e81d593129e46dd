"""Real LogMaster nodes for the several-servers tests: ``logmaster run`` per node, each with its
own data directory and collector address, sharing a PostgreSQL database and a Redis; plus a
private PostgreSQL cluster and a private Redis that a test may stop (the shared ones are never
touched)."""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from websockets.sync.client import ClientConnection, connect

from support import free_port, wait_for

ADMIN_PASSWORD = "Adm1n-Cluster-Passw0rd!"
PG_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1:6379")
TAIL_PROTOCOL = "logmaster.tail.v1"


# -- shared services --------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(dsn: str = PG_DSN) -> Iterator[str]:
    """A fresh database on the PostgreSQL of ``dsn``; its SQLAlchemy URL. Dropped at the end."""
    name = f"lm_cluster_{secrets.token_hex(5)}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = urllib.parse.quote(str(info.get("user", "postgres")))
    try:
        yield f"postgresql+psycopg://{user}@{info.get('host')}:{info.get('port', 5432)}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def plain_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temp dir, a free port) that we may stop."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        assert bins, "PostgreSQL server binaries are required (/usr/lib/postgresql/*/bin)"
        self.bin = Path(bins[-1]).parent
        # Not under pytest's tmp dir: that is private to root, and initdb refuses to run as
        # root, so the cluster belongs to the postgres system user when we are root.
        self.root = Path(tempfile.mkdtemp(prefix="lm-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{tool}: {done.stdout}{done.stderr}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """``redis-server`` of our own on a free port (no persistence), which a test may kill."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def up() -> bool:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as s,
            ):
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            return False

        wait_for(up, timeout=20)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# -- nodes --------------------------------------------------------------------------------------


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Node:
    """One ``logmaster run``: collector on ``host:syslog_port`` (UDP), API on 127.0.0.1."""

    name: str
    root: Path
    host: str
    env: dict[str, str]
    syslog_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    index_metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "LOGMASTER_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LOGMASTER_API__LISTEN": f"127.0.0.1:{self.api_port}",
            "LOGMASTER_API__COOKIE_SECURE": "false",
            "LOGMASTER_INDEX__METRICS_LISTEN": f"127.0.0.1:{self.index_metrics_port}",
            "LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS": "20",
            "LOGMASTER_INDEX__WORKERS": "1",
            "LOGMASTER_CLUSTER__NODE": self.name,
            "LOGMASTER_CLUSTER__API_URL": self.api,
            **self.env,
        }

    def start(self) -> Node:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logmaster", "run", "--data-dir", str(self.data),
                 "--udp", f"{self.host}:{self.syslog_port}",
                 "--metrics", f"127.0.0.1:{self.metrics_port}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
            )  # fmt: skip

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"node {self.name} exited: {self.output()}")
            return (
                _answers(f"http://127.0.0.1:{self.metrics_port}/metrics")
                and _answers(f"http://127.0.0.1:{self.index_metrics_port}/metrics")
                and _answers(f"{self.api}/api/v1/health")
            )

        wait_for(ready, timeout=120, interval=0.25)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def send(self, source: str, *lines: str) -> None:
        """UDP datagrams from ``source`` (a loopback address: the device) to this collector."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            for line in lines:
                s.sendto(line.encode(), (self.host, self.syslog_port))

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``logmaster ARGS --data-dir DATA`` with this node's settings."""
        done = subprocess.run(
            [sys.executable, "-m", "logmaster", *args, "--data-dir", str(self.data)],
            check=False,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def metric(self, name: str, index: bool = True) -> float:
        port = self.index_metrics_port if index else self.metrics_port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no metric {name} on node {self.name}")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.api}/api/v1", headers=headers, timeout=60)

    def sign_in(self) -> str:
        with self.client() as c:
            r = c.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            assert r.status_code == 200, r.text
            return str(r.json()["access_token"])

    def tail(self, token: str, query: str = "") -> ClientConnection:
        ws = connect(
            f"ws://127.0.0.1:{self.api_port}/api/v1/tail",
            subprotocols=[TAIL_PROTOCOL, f"bearer.{token}"],  # type: ignore[list-item]
            open_timeout=10,
            legacy=True,
        )
        ws.send(json.dumps({"query": query}))
        first = json.loads(ws.recv(timeout=20))
        assert first["type"] == "started", first
        return ws


def tail_until(ws: ClientConnection, want: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Messages of a tail until ``want(messages)`` holds; fail after ``timeout``."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not want(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"tail: timed out; got {seen}")
        try:
            seen.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            continue
    return seen


def tail_messages(seen: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for m in seen if m["type"] == "lines" for e in m["lines"]]


def bsd_line(host: str, text: str, pri: int = 134, when: dt.datetime | None = None) -> str:
    """An RFC 3164 line stamped ``when`` (default now) in Europe/Istanbul, the devices' zone."""
    t = (when or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo("Europe/Istanbul"))
    return f"<{pri}>{t.strftime('%b')} {t.day:2d} {t.strftime('%H:%M:%S')} {host} {text}"


def search(client: httpx.Client, q: str) -> list[dict[str, Any]]:
    r = client.get("/search/events", params={"q": q, "from": "-1h", "limit": 500})
    assert r.status_code == 200, r.text
    return list(r.json()["events"])
