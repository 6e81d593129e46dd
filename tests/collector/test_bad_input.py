"""Malformed input over real sockets: each case has a defined outcome and a counter."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from collector_support import entries, metric, octet, send_tcp, send_udp, wait_entries

from logmaster.archive.line import INCOMPLETE, truncated_marker
from logmaster.collector.service import Collector
from support import Ports, archived_lines, wait_for

DEVICE = "ip-127.0.0.1"  # the pending device an unknown 127.0.0.1 sender becomes


def _listener(ports: Ports, transport: str) -> str:
    port = ports.udp if transport == "udp" else ports.tcp
    return f"{'udp' if transport == 'udp' else 'tcp'}://127.0.0.1:{port}"


def _counter(ports: Ports, key: str, transport: str) -> float:
    return metric(
        ports.metrics, f"logmaster_listener_{key}_total", listener=_listener(ports, transport)
    )


def _send(ports: Ports, transport: str, messages: list[bytes], chunk: int = 0) -> None:
    """Send ``messages``: one datagram each, or one TCP connection (LF, CRLF or octet framing)."""
    if transport == "udp":
        send_udp(ports.host, ports.udp, *messages)
        return
    if transport == "tcp-lf":
        stream = b"".join(m + b"\n" for m in messages)
    elif transport == "tcp-crlf":
        stream = b"".join(m + b"\r\n" for m in messages)
    else:
        stream = b"".join(octet(m) for m in messages)
    if chunk:
        pieces = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
        send_tcp(ports.host, ports.tcp, *pieces, pause=0.02)
    else:
        send_tcp(ports.host, ports.tcp, stream)


def test_empty_datagrams_are_counted_not_archived(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path
) -> None:
    """Empty UDP datagrams archive nothing and each counts as one framing error."""
    start_collector()
    send_udp(ports.host, ports.udp, b"", b"", b"", b"<13>after the empty ones")
    data = tmp_path / "data"
    wait_entries(data, 1)
    assert [(e.raw, e.marker) for e in entries(data)] == [(b"<13>after the empty ones", b"")]
    assert _counter(ports, "framing_errors", "udp") == 3
    assert _counter(ports, "received", "udp") == 1


def _garbage() -> bytes:
    rng = random.Random(5651)
    noise = bytes(rng.randrange(256) for _ in range(2000))
    return b"<13>" + bytes(range(256)) + b"\\n\\x00\\\\[incomplete]" + noise + b"\r\n\\"


@pytest.mark.parametrize("transport", ["udp", "tcp-octet"])
def test_binary_garbage_is_archived_escaped_and_exact(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path, transport: str
) -> None:
    """Arbitrary bytes become one valid-UTF-8 archive line that unescapes to the bytes sent."""
    start_collector()
    garbage = _garbage()
    _send(ports, transport, [garbage, b"<13>next"], chunk=500 if transport != "udp" else 0)
    data = tmp_path / "data"
    wait_entries(data, 2)
    lines = archived_lines(data)
    assert len(lines) == 2
    for line in lines:
        line.decode("utf-8")  # escaped: always valid UTF-8
        assert b"\r" not in line
        assert b"\x00" not in line
    got = entries(data)
    assert [(e.raw, e.marker) for e in got] == [(garbage, b""), (b"<13>next", b"")]
    raw_file = next((data / "archive" / DEVICE).rglob("*.log")).read_bytes()
    assert raw_file.count(b"\n") == 2
    assert _counter(ports, "framing_errors", transport) == 0


@pytest.mark.parametrize("transport", ["udp", "tcp-lf", "tcp-octet"])
def test_invalid_utf8_is_kept_as_hex_escapes(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path, transport: str
) -> None:
    """Bytes that are not UTF-8 are archived as \\xNN, valid UTF-8 as is, and unescape back."""
    start_collector()
    raw = b"<13>Nov 28 10:00:00 h app: bad \xff\xfe mid \xc3 ok \xc3\xa7 bs \\ x \\xff cut \xe2\x82"
    escaped = (
        b"<13>Nov 28 10:00:00 h app: bad \\xff\\xfe mid \\xc3 ok \xc3\xa7 bs \\\\ x \\\\xff "
        b"cut \\xe2\\x82"
    )
    _send(ports, transport, [raw])
    data = tmp_path / "data"
    wait_entries(data, 1)
    [line] = archived_lines(data)
    _stamp, sender, text = line.split(b" ", 2)
    assert sender == b"127.0.0.1"
    assert text == escaped
    assert [(e.raw, e.marker) for e in entries(data)] == [(raw, b"")]


@pytest.mark.parametrize("transport", ["udp", "tcp-lf", "tcp-crlf", "tcp-octet"])
def test_oversize_message_is_truncated_marked_and_counted(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path, transport: str
) -> None:
    """A message over max_message_bytes keeps its head, gets the marker and the next one parses."""
    start_collector(collector={"max_message_bytes": 1024})
    big = b"<13>" + bytes(b"ABCDEFGHIJ"[i % 10] for i in range(2996))
    assert len(big) == 3000
    exact = b"<13>" + b"e" * 1020  # exactly the limit: kept whole
    messages = [b"<13>before", big, exact, b"<13>after"]
    # TCP in 700-byte writes, so the long frame spans several reads.
    _send(ports, transport, messages, chunk=700 if transport != "udp" else 0)
    data = tmp_path / "data"
    wait_entries(data, 4)
    assert [(e.raw, e.marker) for e in entries(data)] == [
        (b"<13>before", b""),
        (big[:1024], truncated_marker(3000)),
        (exact, b""),
        (b"<13>after", b""),
    ]
    assert [p.name for p in (data / "archive").iterdir()] == [DEVICE]
    assert _counter(ports, "truncated", transport) == 1
    assert _counter(ports, "framing_errors", transport) == 0
    assert _counter(ports, "received", transport) == 4
    assert metric(ports.metrics, "logmaster_device_truncated_total", device=DEVICE) == 1
    assert metric(ports.metrics, "logmaster_device_received_total", device=DEVICE) == 4


def test_short_digit_only_lf_messages_are_framed_on_arrival(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path
) -> None:
    """LF-framed messages that are only digits are archived while the connection stays open."""
    start_collector()
    data = tmp_path / "data"
    with socket.create_connection((ports.host, ports.tcp)) as s:
        s.sendall(b"5\n6\n")
        wait_entries(data, 2)
        assert [(e.raw, e.marker) for e in entries(data)] == [(b"5", b""), (b"6", b"")]
    wait_for(
        lambda: (
            metric(
                ports.metrics,
                "logmaster_listener_open_connections",
                listener=_listener(ports, "tcp"),
            )
            == 0
        )
    )
    assert [(e.raw, e.marker) for e in entries(data)] == [(b"5", b""), (b"6", b"")]
    assert _counter(ports, "framing_errors", "tcp") == 0


def test_octet_count_beyond_data_is_archived_incomplete(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path
) -> None:
    """A frame whose count exceeds the bytes sent before close is archived with the marker."""
    start_collector()
    send_tcp(ports.host, ports.tcp, octet(b"<13>whole") + b"100 <13>short")
    data = tmp_path / "data"
    wait_entries(data, 2)
    assert [(e.raw, e.marker) for e in entries(data)] == [
        (b"<13>whole", b""),
        (b"<13>short", INCOMPLETE),
    ]
    wait_for(lambda: _counter(ports, "framing_errors", "tcp") == 1)
    assert _counter(ports, "received", "tcp") == 2
    assert _counter(ports, "truncated", "tcp") == 0


@pytest.mark.parametrize(
    ("stream", "partial"),
    [
        (octet(b"<13>first") + b"60 <13>partial frame", b"<13>partial frame"),
        (b"<13>first\n<13>no terminator yet", b"<13>no terminator yet"),
    ],
    ids=["octet", "lf"],
)
def test_stalled_frame_is_archived_incomplete_after_idle_timeout(
    start_collector: Callable[..., Collector],
    ports: Ports,
    tmp_path: Path,
    stream: bytes,
    partial: bytes,
) -> None:
    """A connection silent mid-frame is closed after tcp_idle_timeout_s; the part is archived."""
    start_collector(collector={"tcp_idle_timeout_s": 1})
    data = tmp_path / "data"
    with socket.create_connection((ports.host, ports.tcp)) as s:
        s.sendall(stream)
        sent = time.monotonic()
        wait_entries(data, 1)
        assert entries(data)[0].raw == b"<13>first"
        wait_entries(data, 2, timeout=30)
        waited = time.monotonic() - sent
        s.settimeout(30)
        assert s.recv(100) == b""  # the collector closed the connection
    assert waited >= 1.0
    assert [(e.raw, e.marker) for e in entries(data)] == [
        (b"<13>first", b""),
        (partial, INCOMPLETE),
    ]
    assert _counter(ports, "framing_errors", "tcp") == 1
    wait_for(
        lambda: (
            metric(
                ports.metrics,
                "logmaster_listener_open_connections",
                listener=_listener(ports, "tcp"),
            )
            == 0
        )
    )


def test_thousand_idle_connections_are_all_served(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path
) -> None:
    """1,000 idle TCP connections are all accepted, one still delivers, closing frees them all."""
    start_collector()
    listener = _listener(ports, "tcp")

    def open_now() -> float:
        return metric(ports.metrics, "logmaster_listener_open_connections", listener=listener)

    conns: list[socket.socket] = []
    try:
        for _ in range(1000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            conns.append(s)
            s.setblocking(False)
            err = s.connect_ex((ports.host, ports.tcp))
            assert err in (0, 115), err  # EINPROGRESS: all connects in flight at once
        for s in conns:
            s.setblocking(True)
        wait_for(lambda: open_now() == 1000, timeout=60)
        conns[500].sendall(octet(b"<13>1 - h app - - - from connection 500"))
        data = tmp_path / "data"
        wait_entries(data, 1)
        assert [(e.raw, e.marker) for e in entries(data)] == [
            (b"<13>1 - h app - - - from connection 500", b"")
        ]
    finally:
        for s in conns:
            s.close()
    wait_for(lambda: open_now() == 0, timeout=60)
    assert _counter(ports, "connections", "tcp") == 1000
    assert _counter(ports, "refused", "tcp") == 0
    assert _counter(ports, "framing_errors", "tcp") == 0
    assert _counter(ports, "received", "tcp") == 1
