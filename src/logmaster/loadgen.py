"""A real syslog sender for load tests and deployment checks (``logmaster loadgen``).

Sends RFC 5424 messages (or the lines of a file) over UDP, TCP or TLS at a fixed rate, from
``senders`` distinct source addresses (127.0.1.0, 127.0.1.1, ... from ``first_sender`` on, when
the target is on loopback, so one machine can look like many devices). TCP and TLS use octet
counting (RFC 6587/5425) unless ``framing="lf"``. Every generated message carries
``seq=<sender>:<n>`` so a receiver can check for loss and duplicates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import itertools
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from logmaster.endpoints import Endpoint

TICK_S = 0.005


@dataclass
class LoadResult:
    transport: str
    target: str
    sent: int
    bytes: int
    seconds: float
    senders: int

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def source_addresses(target: Endpoint, senders: int, first: int = 0) -> list[str | None]:
    """Distinct loopback source addresses, or None (kernel's choice) for one sender."""
    if senders <= 1 and first == 0:
        return [None]
    addr = ipaddress.ip_address(target.host)
    if not (addr.version == 4 and addr.is_loopback):
        raise ValueError("--senders above 1 needs an IPv4 loopback target (127.0.0.0/8)")
    if senders + first > 60000:
        raise ValueError("--senders (+ --first-sender): at most 60000")
    base = int(ipaddress.IPv4Address("127.0.1.0")) + first
    return [str(ipaddress.IPv4Address(base + i)) for i in range(senders)]


def messages(size: int, sender: int, from_file: Path | None) -> Iterator[bytes]:
    """Endless messages of one sender: the file's lines in a loop, or generated ones."""
    if from_file is not None:
        lines = [ln for ln in from_file.read_bytes().splitlines() if ln]
        if not lines:
            raise ValueError(f"{from_file} has no lines")
        yield from itertools.cycle(lines)
        return
    host = f"loadgen-{sender}"
    pid = os.getpid()
    for n in itertools.count(1):
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        head = f"<134>1 {now} {host} loadgen {pid} - - seq={sender}:{n} ".encode()
        yield head + b"x" * max(0, size - len(head))


def _frame(msg: bytes, framing: str) -> bytes:
    if framing == "lf":
        return msg + b"\n"
    return b"%d %s" % (len(msg), msg)


def _connect(
    transport: str, target: Endpoint, source: str | None, tls: ssl.SSLContext | None
) -> socket.socket:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    sock = socket.socket(target.family, kind)
    if source is not None:
        sock.bind((source, 0))
    if transport == "udp":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.connect((target.host, target.port))
        return sock
    sock.connect((target.host, target.port))
    if transport == "tls":
        assert tls is not None
        return tls.wrap_socket(sock, server_hostname=target.host)
    return sock


def run(
    transport: str,
    target: Endpoint,
    *,
    rate: int,
    seconds: float,
    size: int = 200,
    senders: int = 1,
    from_file: Path | None = None,
    framing: str = "octet",
    tls: ssl.SSLContext | None = None,
    first_sender: int = 0,
) -> LoadResult:
    """Send ``rate`` messages per second for ``seconds``; return what was sent."""
    sources = source_addresses(target, senders, first_sender)
    socks = [_connect(transport, target, src, tls) for src in sources]
    gens = [messages(size, first_sender + i, from_file) for i in range(len(socks))]
    refused_since: float | None = None
    total = int(rate * seconds)
    sent = 0
    nbytes = 0
    start = time.perf_counter()
    turn = 0
    try:
        while sent < total:
            elapsed = time.perf_counter() - start
            due = min(total, int(rate * (elapsed + TICK_S)))
            count = due - sent
            if count <= 0:
                time.sleep(TICK_S / 2)
                continue
            if transport == "udp":
                for _ in range(count):
                    i = turn % len(socks)
                    turn += 1
                    msg = next(gens[i])
                    while True:
                        try:
                            socks[i].send(msg)
                            refused_since = None
                            break
                        except ConnectionRefusedError as exc:
                            # The ICMP error of an earlier datagram: nobody listens (now).
                            now = time.perf_counter()
                            refused_since = refused_since or now
                            if now - refused_since > 2.0:
                                raise OSError(f"nobody receives at {target}") from exc
                            time.sleep(0.0005)
                    nbytes += len(msg)
            else:
                # Spread the tick's messages over the connections, one write each.
                per: list[list[bytes]] = [[] for _ in socks]
                for _ in range(count):
                    i = turn % len(socks)
                    turn += 1
                    per[i].append(_frame(next(gens[i]), framing))
                for sock, frames in zip(socks, per, strict=True):
                    if frames:
                        data = b"".join(frames)
                        sock.sendall(data)
                        nbytes += len(data)
            sent += count
    finally:
        for sock in socks:
            if isinstance(sock, ssl.SSLSocket):
                # A clean TLS close lets the receiver tell an ending from a cut connection.
                with contextlib.suppress(OSError, ssl.SSLError):
                    sock.unwrap()
            sock.close()
    return LoadResult(transport, str(target), sent, nbytes, time.perf_counter() - start, len(socks))
