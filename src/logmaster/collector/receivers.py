"""All listeners of one process: a thread per UDP socket, one event loop for TCP and TLS."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from concurrent.futures import Future

from logmaster.collector.sink import Sink
from logmaster.collector.stats import ListenerStats
from logmaster.collector.tcp import (
    StreamListener,
    loop_exception_handler,
    open_tcp,
    proxy_networks,
)
from logmaster.collector.tls import server_context
from logmaster.collector.udp import UdpReceiver, open_udp
from logmaster.config import CollectorSettings
from logmaster.endpoints import Endpoint, parse_endpoint

log = logging.getLogger(__name__)


def _bound(sock: socket.socket, scheme: str) -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://{Endpoint(host, port)}"


class Receivers:
    def __init__(self, settings: CollectorSettings, sink: Sink) -> None:
        self.settings = settings
        self.sink = sink
        self.udp: list[UdpReceiver] = []
        self.streams: list[StreamListener] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def stats(self) -> list[ListenerStats]:
        return [r.stats for r in self.udp] + [s.stats for s in self.streams]

    @property
    def endpoints(self) -> list[str]:
        return [s.name for s in self.stats]

    def start(self) -> None:
        """Bind every listener (raising if one cannot be bound), then start receiving."""
        cfg = self.settings
        try:
            for spec in cfg.udp:
                sock = open_udp(parse_endpoint(spec), cfg.udp_rcvbuf_bytes)
                self.udp.append(
                    UdpReceiver(
                        sock, ListenerStats(_bound(sock, "udp")), self.sink, cfg.max_message_bytes
                    )
                )
            tls = None
            if cfg.tls and (cfg.tls_cert or cfg.tls_key):
                tls = server_context(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca)
            elif cfg.tls:
                log.warning(
                    "TLS listeners not started: no certificate configured.",
                    extra={"listeners": ",".join(cfg.tls)},
                )
            specs: list[tuple[str, ssl.SSLContext | None, str]] = [
                (s, None, "tcp") for s in cfg.tcp
            ]
            if tls is not None:
                specs += [(s, tls, "tls") for s in cfg.tls]
            for spec, ctx, scheme in specs:
                sock = open_tcp(parse_endpoint(spec))
                self.streams.append(
                    StreamListener(
                        sock,
                        ListenerStats(_bound(sock, scheme)),
                        self.sink,
                        max_len=cfg.max_message_bytes,
                        idle_timeout=cfg.tcp_idle_timeout_s,
                        max_connections=cfg.max_connections,
                        tls=ctx,
                        proxy_from=proxy_networks(cfg.proxy_protocol) if scheme == "tcp" else None,
                    )
                )
        except BaseException:
            self._close_sockets()
            raise
        for r in self.udp:
            r.start()
        if self.streams:
            started: Future[None] = Future()
            self._thread = threading.Thread(
                target=self._run_loop, args=(started,), name="tcp", daemon=True
            )
            self._thread.start()
            started.result(timeout=30)

    def _run_loop(self, started: Future[None]) -> None:
        import uvloop

        loop = uvloop.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(loop_exception_handler)

        async def begin() -> None:
            for s in self.streams:
                await s.start()

        try:
            loop.run_until_complete(begin())
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        """Stop receiving; partial frames of open connections are handed over as incomplete."""
        for r in self.udp:
            r.stop()
        if self.loop is not None and self._thread is not None:
            loop = self.loop

            async def close_all() -> None:
                for s in self.streams:
                    await s.close()
                await asyncio.sleep(0.05)
                loop.stop()

            asyncio.run_coroutine_threadsafe(close_all(), loop)
            self._thread.join(timeout=10)
        for r in self.udp:
            r.join(timeout=5)

    def _close_sockets(self) -> None:
        for r in self.udp:
            r.sock.close()
        for s in self.streams:
            s.sock.close()
