"""API load: signed-in users searching while the collector ingests, p50/p95/p99 per query shape.

Sets up a data directory (or reuses one with --data-dir): an index history of --events synthetic
events over --days days from bench/search.py's world (its devices registered in the database,
all in one device group granted to the security_analyst role), --users security analysts, then
starts ``logmaster run`` (collector, indexer and API in their own processes), ``logmaster
loadgen`` sending --rate messages/s, and --users concurrent clients that sign in and search with
the shapes of bench/search.py through the API, each user one request after the other:

- ``field-1d``: ``src:<internal IP>`` over one day: events page and per-device counts;
- ``keyword-7d (rare)`` / ``(common)``: a word over seven days;
- ``attribution``: public IP + port + moment of an existing NAT translation.

Run: ``.venv/bin/python bench/api_load.py`` (the full one: 1,000,000 events of history, 50
users, 10,000 msg/s for 60 s; on a quiet machine). A quick look: ``--events 50000 --users 5
--rate 1000 --seconds 15``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session

from logmaster.config import Settings, load_settings
from search import RARE, START, World, build

# The bench users' password: random, kept in the data directory (0600) so that a reused
# directory's users can sign in again.
PASSWORD = ""


def bench_password(data_dir: Path) -> str:
    path = data_dir / "bench-users.password"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text("Bench-Passw0rd-" + secrets.token_hex(4))
    return path.read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(settings: Settings, w: World, args: argparse.Namespace) -> None:
    """Devices, users, group grant and index history (skipped when already there)."""
    from logmaster.api import accounts
    from logmaster.api.app import api_engine
    from logmaster.api.models import DeviceGroup, DeviceGroupMember, Grant, Role, User
    from logmaster.collector.devices import add_device, list_devices
    from logmaster.db import migrate
    from logmaster.index import open_index

    migrate(settings.db_url)
    engine = api_engine(settings.db_url)
    accounts.ensure_admin(engine, settings.api)
    known = {d.slug for d in list_devices(engine)}
    senders = [f"lg{i:02d}" for i in range(args.senders)]
    for i, slug in enumerate(w.devices):
        if slug not in known:
            add_device(engine, slug, [f"10.250.{i // 250}.{i % 250 + 1}"], timezone="UTC")
    for i, slug in enumerate(senders):
        if slug not in known:
            add_device(engine, slug, [f"127.0.1.{i}"], timezone="Europe/Istanbul")
    with Session(engine) as s:
        if s.query(DeviceGroup).filter_by(name="bench").first() is None:
            group = DeviceGroup(name="bench")
            s.add(group)
            s.flush()
            ids = [d.id for d in list_devices(engine)]
            s.add_all(DeviceGroupMember(group_id=group.id, device_id=i) for i in ids)
            role = s.query(Role).filter_by(name="security_analyst").one()
            s.add(Grant(role_id=role.id, device_group_id=group.id, actions=["view", "attribute"]))
        for n in range(args.users):
            name = f"bench{n:03d}"
            if s.query(User).filter_by(username=name).first() is None:
                accounts.create_user(s, settings.api, name, PASSWORD, ["security_analyst"])
        s.commit()
    engine.dispose()
    backend = open_index(settings)
    try:
        if not backend.days():
            print(f"building an index history of {args.events:,} events ...", flush=True)
            seconds = build(backend, w, args.events, args.days)
            print(f"  built in {seconds:.0f} s", flush=True)
    finally:
        backend.close()


def percentiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return f"n={len(samples)}"
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"p50 {qs[49] * 1000:7.1f} ms   p95 {qs[94] * 1000:7.1f} ms   "
        f"p99 {qs[98] * 1000:7.1f} ms   (n={len(samples)})"
    )


class Load:
    def __init__(self, base: str, w: World, days: int) -> None:
        self.base = base
        self.w = w
        self.days = days
        self.samples: dict[str, list[float]] = {}
        self.errors: Counter[str] = Counter()
        self.nat: list[tuple[str, int, str]] = []

    async def timed(self, client: httpx.AsyncClient, shape: str, path: str, **params: Any) -> Any:
        t = time.perf_counter()
        try:
            r = await client.get(path, params=params)
        except httpx.HTTPError as exc:
            self.errors[f"{shape}: {type(exc).__name__}"] += 1
            return None
        elapsed = time.perf_counter() - t
        if r.status_code != 200:
            self.errors[f"{shape}: HTTP {r.status_code}"] += 1
            return None
        self.samples.setdefault(shape, []).append(elapsed)
        return r.json()

    async def find_nat(self, client: httpx.AsyncClient, count: int) -> None:
        """Existing NAT translations to attribute (as bench/search.py picks them)."""
        rnd = random.Random(7)
        for _ in range(count * 3):
            if len(self.nat) >= count:
                break
            moment = START + dt.timedelta(seconds=rnd.randrange(self.days * 86_400 - 600))
            r = await client.get(
                "/search/events",
                params={
                    "from": moment.isoformat(),
                    "to": (moment + dt.timedelta(seconds=30)).isoformat(),
                    "limit": 1,
                },
            )
            events = r.json().get("events", []) if r.status_code == 200 else []
            fields = events[0]["fields"] if events else {}
            if "source.nat.ip" in fields:
                at = dt.datetime.fromisoformat(fields["@timestamp"]) + dt.timedelta(seconds=5)
                self.nat.append(
                    (fields["source.nat.ip"], fields["source.nat.port"], at.isoformat())
                )

    async def user(
        self, client: httpx.AsyncClient, seed: int, until: float, think: float = 0.0
    ) -> None:
        rnd = random.Random(seed)
        if think:
            await asyncio.sleep(rnd.uniform(0, think))  # users do not all start at once
        while time.monotonic() < until:
            day0 = START + dt.timedelta(days=rnd.randrange(self.days))
            one_day = {"from": day0.isoformat(), "to": (day0 + dt.timedelta(days=1)).isoformat()}
            q = f"src:{rnd.choice(self.w.internal)}"
            await self.timed(
                client, "field-1d (events)", "/search/events", q=q, limit=100, **one_day
            )
            await self.timed(client, "field-1d (counts)", "/search/devices", q=q, **one_day)
            start7 = START + dt.timedelta(days=rnd.randrange(max(1, self.days - 7)))
            week = {"from": start7.isoformat(), "to": (start7 + dt.timedelta(days=7)).isoformat()}
            await self.timed(
                client, "keyword-7d (rare)", "/search/events", q=RARE, limit=100, **week
            )
            await self.timed(
                client, "keyword-7d (common)", "/search/events", q="reset", limit=100, **week
            )
            if self.nat:
                ip, port, at = rnd.choice(self.nat)
                await self.timed(
                    client, "attribution", "/attribution", ip=ip, port=port, at=at, window=10
                )
            if think:
                # An operator reads the answer before the next question (exponential, mean think).
                await asyncio.sleep(rnd.expovariate(1 / think))


async def run_users(base: str, w: World, args: argparse.Namespace) -> Load:
    load = Load(base, w, args.days)
    limits = httpx.Limits(max_connections=args.users * 2)
    clients = []
    for n in range(args.users):
        c = httpx.AsyncClient(base_url=base, timeout=60, limits=limits)
        r = await c.post("/auth/login", json={"username": f"bench{n:03d}", "password": PASSWORD})
        if r.status_code != 200:
            raise SystemExit(f"sign-in of bench{n:03d} refused: {r.status_code} {r.text}")
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        clients.append(c)
    await load.find_nat(clients[0], 200)
    print(
        f"{args.users} users signed in; {len(load.nat)} NAT translations to attribute", flush=True
    )
    until = time.monotonic() + args.seconds
    t0 = time.monotonic()
    await asyncio.gather(*(load.user(c, i, until, args.think) for i, c in enumerate(clients)))
    load.elapsed = time.monotonic() - t0  # type: ignore[attr-defined]
    for c in clients:
        await c.aclose()
    return load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, help="data directory to set up or reuse")
    ap.add_argument("--events", type=int, default=1_000_000, help="index history (events)")
    ap.add_argument("--days", type=int, default=10, help="days of history (>= 8)")
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--rate", type=int, default=10_000, help="loadgen messages per second")
    ap.add_argument("--senders", type=int, default=20, help="loadgen source addresses")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured period")
    ap.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a user pauses after each round of the shapes (0: none, the "
        "throughput-bound worst case)",
    )
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lm-api-load-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    global PASSWORD
    PASSWORD = bench_password(data_dir)
    udp, api_port, metrics, index_metrics = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "LOGMASTER_ADMIN_PASSWORD": "Bench-Root-" + secrets.token_hex(8),
        "LOGMASTER_API__LISTEN": f"127.0.0.1:{api_port}",
        "LOGMASTER_METRICS__LISTEN": f"127.0.0.1:{metrics}",
        "LOGMASTER_INDEX__METRICS_LISTEN": f"127.0.0.1:{index_metrics}",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("LOGMASTER_")})
    settings = load_settings(None, data_dir=data_dir)
    w = World(42, args.devices)
    prepare(settings, w, args)
    logmaster = [sys.executable, "-m", "logmaster"]
    server = subprocess.Popen(
        [*logmaster, "run", "--data-dir", str(data_dir), "--udp", f"127.0.0.1:{udp}"],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("logmaster run did not start its API")
            time.sleep(0.5)
        gen = subprocess.Popen(
            [
                *logmaster,
                "loadgen",
                "--udp",
                f"127.0.0.1:{udp}",
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds + 30),
                "--senders",
                str(args.senders),
                "--json",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # ingest at full rate before measuring
        load = asyncio.run(run_users(base, w, args))
        gen.send_signal(signal.SIGINT)
        try:
            sent_out, _ = gen.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            gen.kill()
            sent_out = ""
        health = httpx.get(f"{base}/health", timeout=10).json()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=120)
    total = sum(len(s) for s in load.samples.values())
    elapsed = getattr(load, "elapsed", args.seconds)
    print(
        f"\n{args.users} users (think {args.think:g} s), {elapsed:.0f} s, {total:,} requests "
        f"({total / elapsed:.0f}/s), ingest target {args.rate:,} msg/s"
    )
    for shape, samples in load.samples.items():
        print(f"{shape:>22}: {percentiles(samples)}")
    every = [x for s in load.samples.values() for x in s]
    print(f"{'all':>22}: {percentiles(every)}")
    print(f"errors: {sum(load.errors.values())} {dict(load.errors) or ''}")
    try:
        print(f"loadgen: {json.loads(sent_out.strip().splitlines()[-1])}")
    except (ValueError, IndexError):
        print("loadgen: no summary (interrupted)")
    print(
        f"index lag at the end: {health['index']['lag_seconds']} s "
        f"({health['index']['bytes_behind']:,} bytes behind)"
    )
    print(f"data directory: {data_dir}")


if __name__ == "__main__":
    main()
