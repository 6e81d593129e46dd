"""TCP and TLS listeners (RFC 6587, RFC 5425) on one asyncio (uvloop) event loop.

Each connection gets a :class:`~logmaster.collector.framing.StreamFramer`; the messages of one
read share its receive time. Back-pressure: when the sink is full every connection stops being
read (``pause_reading``), the kernel's TCP window closes and senders slow down; reading resumes
when the archive has caught up. Connections idle longer than ``tcp_idle_timeout_s`` are closed and
whatever partial frame they left is archived with the ``\\[incomplete]`` marker.

PROXY protocol (``[collector] proxy_protocol``, plain TCP listeners only): a peer in the trusted
networks must start with a v1 or v2 header (:mod:`logmaster.collector.proxy`) and its lines are
filed under the sender the header names; any other peer whose stream starts with a PROXY header,
a trusted peer without one, and a malformed header are refused (connection aborted, counted in
``proxy_refused``), so nobody can claim another device's address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from typing import Any, cast

from logmaster.collector import proxy
from logmaster.collector.framing import StreamFramer
from logmaster.collector.sink import Sink
from logmaster.collector.stats import ListenerStats
from logmaster.endpoints import Endpoint
from logmaster.serverlog import RateLimited

log = logging.getLogger(__name__)

SWEEP_S = 1.0
RESUME_CHECK_S = 0.01
# Accept queue; also passed to create_server, whose default (100) would re-listen() smaller.
BACKLOG = 4096

Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def proxy_networks(specs: list[str]) -> Networks | None:
    """The trusted balancers of ``[collector] proxy_protocol``; None (off) when there are none."""
    return [ipaddress.ip_network(spec, strict=False) for spec in specs] or None


def open_tcp(ep: Endpoint) -> socket.socket:
    sock = socket.socket(ep.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if ep.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ep.host, ep.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class StreamListener:
    """One TCP or TLS listening socket and its connections."""

    def __init__(
        self,
        sock: socket.socket,
        stats: ListenerStats,
        sink: Sink,
        *,
        max_len: int,
        idle_timeout: float,
        max_connections: int,
        tls: ssl.SSLContext | None = None,
        proxy_from: Networks | None = None,
    ) -> None:
        self.sock = sock
        self.stats = stats
        self.sink = sink
        self.max_len = max_len
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.tls = tls
        # None: no PROXY protocol on this listener; else the balancers allowed to send it.
        self.proxy_from = proxy_from
        self.connections: set[SyslogStream] = set()
        self.paused: set[SyslogStream] = set()
        self.server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SyslogStream(self),
            sock=self.sock,
            ssl=self.tls,
            ssl_handshake_timeout=30.0 if self.tls else None,
            backlog=BACKLOG,
        )
        self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            limit = time.monotonic() - self.idle_timeout
            for conn in [c for c in self.connections if c.last_read < limit]:
                conn.close_idle()

    def hold(self, conn: SyslogStream) -> None:
        """Stop reading ``conn`` until the sink has room again."""
        if not self.paused:
            asyncio.get_running_loop().call_later(RESUME_CHECK_S, self._maybe_resume)
        if conn not in self.paused:
            self.paused.add(conn)
            conn.transport.pause_reading()  # type: ignore[union-attr]

    def _maybe_resume(self) -> None:
        if self.sink.full():
            asyncio.get_running_loop().call_later(RESUME_CHECK_S, self._maybe_resume)
            return
        for conn in self.paused:
            if not conn.closed:
                conn.transport.resume_reading()  # type: ignore[union-attr]
        self.paused.clear()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.transport.close()  # type: ignore[union-attr]
        await asyncio.sleep(0)


class SyslogStream(asyncio.Protocol):
    """One TCP/TLS connection."""

    def __init__(self, listener: StreamListener) -> None:
        self.listener = listener
        self.framer = StreamFramer(listener.max_len)
        self.transport: asyncio.Transport | None = None
        self.ip = ""
        self.last_read = time.monotonic()
        self.closed = False
        # PROXY protocol: 0 off or done; 1 a header is required; 2 a header is refused.
        self.proxy_check = 0
        self._head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        lst = self.listener
        if len(lst.connections) >= lst.max_connections:
            lst.stats.refused += 1
            self.closed = True
            self.transport.abort()
            return
        peer = transport.get_extra_info("peername")
        self.ip = peer[0] if peer else "0.0.0.0"
        if lst.proxy_from is not None:
            addr = ipaddress.ip_address(self.ip)
            self.proxy_check = 1 if any(addr in net for net in lst.proxy_from) else 2
        lst.connections.add(self)
        lst.stats.connections += 1
        lst.stats.open_connections += 1

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        if self.proxy_check:
            data = self._proxy_header(data)
            if not data:
                return
        frames = self.framer.feed(data)
        if frames:
            self._hand_over(frames)

    def _proxy_header(self, data: bytes) -> bytes:
        """Read the PROXY header off the stream start; return the bytes after it."""
        buf = self._head + data
        try:
            found = proxy.parse(buf)
        except proxy.ProxyError as exc:
            return self._refuse(str(exc))
        if found is proxy.NEED_MORE:
            self._head = buf
            return b""
        trusted = self.proxy_check == 1
        self.proxy_check, self._head = 0, b""
        if not isinstance(found, proxy.Header):  # ABSENT
            return self._refuse("no PROXY header from a trusted proxy") if trusted else buf
        if not trusted:
            return self._refuse("PROXY header from an address not in proxy_protocol")
        if found.source is not None:
            self.ip = found.source
        return buf[found.length :]

    def _refuse(self, why: str) -> bytes:
        self.listener.stats.proxy_refused += 1
        self.proxy_check, self._head = 0, b""
        if _proxy_log.ready():
            log.warning("PROXY protocol: connection refused.", extra={"peer": self.ip, "why": why})
        if self.transport is not None:
            self.transport.abort()
        return b""

    def _hand_over(self, frames: list[tuple[bytes, bytes]]) -> None:
        lst = self.listener
        stats = lst.stats
        ns = time.time_ns()
        ip = self.ip
        batch = [(ns, ip, raw, marker) for raw, marker in frames]
        nbytes = sum(len(raw) for raw, _ in frames)
        stats.received += len(batch)
        stats.bytes += nbytes
        framer = self.framer
        if framer.framing_errors or framer.truncated:
            stats.framing_errors += framer.framing_errors
            stats.truncated += framer.truncated
            framer.framing_errors = framer.truncated = 0
        lst.sink.put(batch, nbytes)
        if lst.sink.full():
            lst.hold(self)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        frames = self.framer.finish()
        if frames:
            self._hand_over(frames)
        elif self.framer.framing_errors:
            self.listener.stats.framing_errors += self.framer.framing_errors
        lst = self.listener
        lst.connections.discard(self)
        lst.paused.discard(self)
        lst.stats.open_connections -= 1

    def close_idle(self) -> None:
        if self.transport is not None:
            self.transport.close()


_handshake_log = RateLimited(30.0)
_proxy_log = RateLimited(30.0)


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Count failed TLS handshakes as refused connections instead of printing tracebacks."""
    exc = context.get("exception")
    if isinstance(exc, ssl.SSLError | ConnectionError | TimeoutError):
        proto = context.get("protocol")
        if isinstance(proto, SyslogStream):
            proto.listener.stats.refused += 1
        if _handshake_log.ready():
            log.warning("TLS connection failed.", extra={"error": str(exc)})
        return
    loop.default_exception_handler(context)
