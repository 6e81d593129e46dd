"""Search and attribution latency over a large index: p50/p95/p99 per query shape, size/event.

Builds (or reuses, with --index-dir) an index of N synthetic events (default 10 million) over D
days (30) from K devices (200), written through the backend's own ``write`` as the indexer does,
with the sessions a hotspot site produces (NAT translations, DHCP leases, logins). Then times:

- ``field-1d``: ``src:<an internal IP>`` over one day (100 newest hits, per-device counts);
- ``keyword-7d``: a word over seven days (a rare one and a common one);
- ``attribution``: public IP + port + moment -> NAT -> lease -> login, as ``logmaster attribute``.

Run: ``.venv/bin/python bench/search.py --events 10000000`` (builds ~10-15 GB on SQLite and takes
a while: the build rate is printed); ``--events 1000000`` for a quick look. PostgreSQL:
``--backend postgres --postgres postgresql://postgres@127.0.0.1/DB`` (a scratch database).
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from logmaster.compliance.attribution import attribute
from logmaster.index.base import Batch, IndexBackend, IndexedEvent, SearchRequest, SessionOp
from logmaster.index.fields import split_event
from logmaster.index.query import parse_query
from logmaster.index.sqlite import SqliteIndex

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
WORDS = (
    "accept",
    "deny",
    "drop",
    "forward",
    "input",
    "established",
    "new",
    "reset",
    "timeout",
    "session",
    "policy",
    "allowed",
    "blocked",
    "traffic",
    "close",
    "open",
)
RARE = "zümrüt"  # appears in about 1 event in 10,000


class World:
    """Deterministic pools of addresses, users and the sessions that tie them together."""

    def __init__(self, seed: int, devices: int) -> None:
        self.rnd = random.Random(seed)
        self.devices = [f"gw{i:03d}" for i in range(devices)]
        self.internal = [
            f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(1, 50_001)
        ]
        self.public = [f"203.0.{i // 256}.{i % 256}" for i in range(devices * 2)]
        self.remote = [
            f"{a}.{b}.{c}.{d}"
            for a, b, c, d in (
                (
                    self.rnd.randrange(1, 223),
                    self.rnd.randrange(256),
                    self.rnd.randrange(256),
                    self.rnd.randrange(1, 255),
                )
                for _ in range(100_000)
            )
        ]
        self.users = [f"user{i:05d}" for i in range(5000)]
        self.macs = [
            ":".join(f"{(i >> s) & 0xFF:02x}" for s in (40, 32, 24, 16, 8, 0))
            for i in range(0x020000000001, 0x020000000001 + 50_000)
        ]


def make_event(w: World, ts: dt.datetime, n: int) -> tuple[dict[str, Any], str]:
    rnd = w.rnd
    dev_i = rnd.randrange(len(w.devices))
    device = w.devices[dev_i]
    inner_i = rnd.randrange(len(w.internal))
    src = w.internal[inner_i]
    dst = rnd.choice(w.remote)
    sport, dport = rnd.randrange(1024, 65535), rnd.choice((443, 80, 53, 22, 8080, 123))
    action = rnd.choice(("accept", "accept", "accept", "drop", "deny"))
    words = " ".join(rnd.choice(WORDS) for _ in range(4))
    rare = f" {RARE}" if n % 10_000 == 0 else ""
    pub = w.public[dev_i * 2]
    pport = rnd.randrange(1024, 65535)
    message = (
        f"firewall,info {action} {words}{rare}: in:bridge out:ether1, proto TCP, "
        f"{src}:{sport}->{dst}:{dport}, NAT ({src}:{sport}->{pub}:{pport})->{dst}:{dport}"
    )
    event = {
        "@timestamp": ts,
        "event.created": ts,
        "observer.name": device,
        "event.dataset": "mikrotik.firewall",
        "event.action": action,
        "source.ip": src,
        "source.port": sport,
        "destination.ip": dst,
        "destination.port": dport,
        "source.nat.ip": pub,
        "source.nat.port": pport,
        "network.transport": "tcp",
        "source.mac": w.macs[inner_i],
        "user.name": w.users[inner_i % len(w.users)],
        "message": message,
        "log.syslog.severity.code": 6,
    }
    return event, device


def build(backend: IndexBackend, w: World, events: int, days: int) -> float:
    per_day = events // days
    t0 = time.perf_counter()
    written = 0
    for d in range(days):
        day = (START + dt.timedelta(days=d)).date()
        base = START + dt.timedelta(days=d)
        step = 86_400 / per_day
        batch = Batch()
        offsets: dict[str, int] = {}
        # A day's leases and logins: every internal address of the pool once a day.
        for i in range(0, len(w.internal), 7):
            dev = w.devices[i % len(w.devices)]
            rel = f"{dev}/{day:%Y/%m/%d}.log"
            at = int((base.timestamp() + (i % 3600)) * 1e6)
            batch.sessions.append(
                SessionOp(
                    "renew",
                    "dhcp",
                    dev,
                    at,
                    rel,
                    10_000_000 + i,
                    day,
                    expires=at + 86_400_000_000,
                    inner_ip=w.internal[i],
                    mac=w.macs[i],
                )
            )
            batch.sessions.append(
                SessionOp(
                    "open",
                    "hotspot",
                    dev,
                    at + 60_000_000,
                    rel,
                    20_000_000 + i,
                    day,
                    expires=at + 86_400_000_000,
                    inner_ip=w.internal[i],
                    user=w.users[i % len(w.users)],
                )
            )
        for n in range(per_day):
            ts = base + dt.timedelta(seconds=n * step)
            event, device = make_event(w, ts, written + n)
            rel = f"{device}/{day:%Y/%m/%d}.log"
            offset = offsets.get(rel, 0)
            offsets[rel] = offset + 300
            event["log.file.path"] = rel
            event["log.offset"] = offset
            row, extra = split_event(event)
            batch.events.append(IndexedEvent(day, row, extra))
            at = int(ts.timestamp() * 1e6)
            batch.sessions.append(
                SessionOp(
                    "open",
                    "nat",
                    device,
                    at,
                    rel,
                    offset,
                    day,
                    expires=at + 300_000_000,
                    inner_ip=event["source.ip"],
                    inner_port=event["source.port"],
                    outer_ip=event["source.nat.ip"],
                    outer_port=event["source.nat.port"],
                    transport="tcp",
                )
            )
            if len(batch.events) >= 50_000:
                backend.write(batch)
                batch = Batch()
        backend.write(batch)
        written += per_day
        rate = written / (time.perf_counter() - t0)
        print(f"  day {d + 1}/{days}: {written:,} events, {rate:,.0f} events/s", flush=True)
    return time.perf_counter() - t0


def percentiles(samples: list[float]) -> str:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"p50 {qs[49] * 1000:7.1f} ms   p95 {qs[94] * 1000:7.1f} ms   "
        f"p99 {qs[98] * 1000:7.1f} ms   (n={len(samples)})"
    )


def run_queries(backend: IndexBackend, w: World, days: int, repeat: int, archive: Path) -> None:
    rnd = random.Random(99)
    shapes: dict[str, list[float]] = {
        "field-1d": [],
        "keyword-7d (rare)": [],
        "keyword-7d (common)": [],
        "attribution": [],
    }
    for _ in range(repeat):
        day0 = START + dt.timedelta(days=rnd.randrange(days))
        req = SearchRequest(
            parse_query(f"src:{rnd.choice(w.internal)}"), day0, day0 + dt.timedelta(days=1), 100
        )
        t = time.perf_counter()
        backend.search(req)
        backend.device_counts(req)
        shapes["field-1d"].append(time.perf_counter() - t)
        start7 = START + dt.timedelta(days=rnd.randrange(max(1, days - 7)))
        for label, word in (("keyword-7d (rare)", RARE), ("keyword-7d (common)", "reset")):
            req = SearchRequest(parse_query(word), start7, start7 + dt.timedelta(days=7), 100)
            t = time.perf_counter()
            backend.search(req)
            shapes[label].append(time.perf_counter() - t)
        # an existing NAT session: one of the events of a random moment
        moment = START + dt.timedelta(seconds=rnd.randrange(days * 86_400 - 600))
        page = backend.search(SearchRequest(None, moment, moment + dt.timedelta(seconds=30), 1))
        if not page.hits:
            continue
        ev = page.hits[0].event
        t = time.perf_counter()
        attribute(
            backend,
            archive,
            ip=ev["source.nat.ip"],
            port=ev["source.nat.port"],
            at=ev["@timestamp"] + dt.timedelta(seconds=5),
            window=10,
        )
        shapes["attribution"].append(time.perf_counter() - t)
    for name, samples in shapes.items():
        if len(samples) >= 2:
            print(f"{name:>22}: {percentiles(samples)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=100, help="queries per shape")
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--postgres", metavar="URL", help="PostgreSQL URL for --backend postgres")
    ap.add_argument("--index-dir", type=Path, help="SQLite index directory to build or reuse")
    args = ap.parse_args()
    w = World(1, args.devices)
    if args.backend == "postgres":
        from logmaster.index.postgres import PostgresIndex

        if not args.postgres:
            ap.error("--backend postgres needs --postgres URL")
        backend: IndexBackend = PostgresIndex(args.postgres)
        fresh = not backend.days()
    else:
        root = args.index_dir or Path(tempfile.mkdtemp(prefix="lm-bench-search-"))
        fresh = not list(root.glob("events-*.db"))
        backend = SqliteIndex(root)
    if fresh:
        print(f"building {args.events:,} events over {args.days} days, {args.devices} devices")
        seconds = build(backend, w, args.events, args.days)
        print(f"built in {seconds:.0f} s = {args.events / seconds:,.0f} events/s")
    else:
        print("reusing the existing index")
    if isinstance(backend, SqliteIndex):
        size = sum(p.stat().st_size for p in backend.root.glob("*.db*"))
        print(
            f"index size {size / 1e9:.2f} GB = {size / args.events:.0f} bytes/event "
            f"({backend.root})"
        )
    run_queries(backend, w, args.days, args.repeat, Path("/nonexistent-archive"))
    backend.close()


if __name__ == "__main__":
    main()
