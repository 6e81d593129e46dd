"""PROXY protocol v1/v2 on the collector's TCP listener: the parser, then real sockets."""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from logmaster.archive.line import ArchiveLine, parse_line
from logmaster.collector import proxy
from logmaster.collector.service import Collector
from logmaster.config import load_settings
from support import Ports, archived_lines, wait_for

V2 = proxy.V2_SIGNATURE


def v2(src: str, sport: int = 40000, *, command: int = 1, tlv: bytes = b"") -> bytes:
    addr = ipaddress.ip_address(src)
    if addr.version == 4:
        body = (
            addr.packed + ipaddress.IPv4Address("10.9.9.9").packed + struct.pack("!HH", sport, 514)
        )
        family = 0x11
    else:
        body = addr.packed + ipaddress.IPv6Address("::1").packed + struct.pack("!HH", sport, 514)
        family = 0x21
    body += tlv
    return V2 + struct.pack("!BBH", 0x20 | command, family, len(body)) + body


# --- the parser -----------------------------------------------------------------------------


def test_v1_tcp4() -> None:
    head = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 514\r\n"
    h = proxy.parse(head + b"<13>hello\n")
    assert h == proxy.Header("203.0.113.7", 51000, len(head))


def test_v1_tcp6_and_mapped() -> None:
    h = proxy.parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n")
    assert isinstance(h, proxy.Header) and h.source == "2001:db8::7"
    h = proxy.parse(b"PROXY TCP6 ::ffff:198.51.100.4 ::1 1 2\r\n")
    assert isinstance(h, proxy.Header) and h.source == "198.51.100.4"


def test_v1_unknown_keeps_the_peer() -> None:
    h = proxy.parse(b"PROXY UNKNOWN\r\nrest")
    assert h == proxy.Header(None, None, 15)


def test_v2_ipv4_ipv6_local_and_tlvs() -> None:
    h = proxy.parse(v2("203.0.113.9", 123, tlv=b"\x04\x00\x02ab") + b"<13>x\n")
    assert isinstance(h, proxy.Header)
    assert (h.source, h.port, h.length) == ("203.0.113.9", 123, 16 + 12 + 5)
    h6 = proxy.parse(v2("2001:db8::9"))
    assert isinstance(h6, proxy.Header) and h6.source == "2001:db8::9"
    local = proxy.parse(v2("203.0.113.9", command=0))
    assert isinstance(local, proxy.Header) and local.source is None


def test_incremental() -> None:
    for whole in (b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 514\r\n", v2("203.0.113.7")):
        for cut in range(len(whole)):
            assert proxy.parse(whole[:cut]) is proxy.NEED_MORE, cut
        assert isinstance(proxy.parse(whole), proxy.Header)


def test_absent() -> None:
    for start in (b"<13>hello\n", b"123 <13>x", b"PROXZ", b"\r\n\r\nhello world!!!"):
        assert proxy.parse(start) is proxy.ABSENT


@pytest.mark.parametrize(
    "bad",
    [
        b"PROXY TCP4 203.0.113.7 192.0.2.1 51000\r\n",  # a field missing
        b"PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",  # wrong family
        b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 514\r\n",  # port out of range
        b"PROXY TCP4 203.0.113.7 192.0.2.1 0514 514\r\n",  # leading zero
        b"PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n",
        b"PROXY " + b"A" * 120,  # no CRLF within 107 bytes
        b"PROXY TCP4 \xff\r\n",
        V2 + b"\x11\x11\x00\x0c" + bytes(12),  # version 1 in the v2 format
        V2 + b"\x25\x11\x00\x0c" + bytes(12),  # command 5
        V2 + b"\x21\x11\x00\x04" + bytes(4),  # IPv4 addresses cut short
        V2 + b"\x21\x11\xff\xff",  # longer than any real header
    ],
)
def test_malformed(bad: bytes) -> None:
    with pytest.raises(proxy.ProxyError):
        proxy.parse(bad)


def test_setting_validates_networks() -> None:
    s = load_settings(None, collector={"proxy_protocol": ["127.0.0.1/32", "2001:db8::/32"]})
    assert s.collector.proxy_protocol == ["127.0.0.1/32", "2001:db8::/32"]
    with pytest.raises(ValidationError, match="not a network"):
        load_settings(None, collector={"proxy_protocol": ["nginx"]})


# --- real sockets ---------------------------------------------------------------------------


def _send(port: int, *chunks: bytes, source: str = "127.0.0.1") -> bytes:
    """Connect from ``source``, send the chunks, close; what the collector answered (b"" or
    the marker of a reset)."""
    with socket.socket() as s:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        try:
            for chunk in chunks:
                s.sendall(chunk)
                time.sleep(0.02)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            return s.recv(100)
        except ConnectionResetError:
            return b"<reset>"


def _entries(data: Path) -> list[ArchiveLine]:
    return [parse_line(line) for line in archived_lines(data)]


def _proxy_refused(ports: Ports) -> float:
    url = f"http://127.0.0.1:{ports.metrics}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("logmaster_listener_proxy_refused_total{") and "tcp://" in line:
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError("logmaster_listener_proxy_refused_total not exported")


@pytest.fixture
def behind_proxy(start_collector: Callable[..., Collector], tmp_path: Path) -> Path:
    start_collector(collector={"proxy_protocol": ["127.0.0.1/32"]})
    return tmp_path / "data"


def test_trusted_v1_names_the_sender(behind_proxy: Path, ports: Ports) -> None:
    _send(ports.tcp, b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 514\r\n<13>one\n<13>two\n")
    got = wait_for(lambda: len(_entries(behind_proxy)) >= 2 and _entries(behind_proxy))
    assert [(e.sender, e.raw) for e in got] == [
        ("203.0.113.7", b"<13>one"),
        ("203.0.113.7", b"<13>two"),
    ]
    assert (behind_proxy / "archive" / "ip-203.0.113.7").is_dir()
    assert _proxy_refused(ports) == 0


def test_trusted_v2_byte_by_byte_and_octet_counting(behind_proxy: Path, ports: Ports) -> None:
    stream = v2("2001:db8::42") + b"9 <13>hello"
    _send(ports.tcp, *[stream[i : i + 1] for i in range(len(stream))])
    got = wait_for(lambda: _entries(behind_proxy))
    assert [(e.sender, e.raw) for e in got] == [("2001:db8::42", b"<13>hello")]


def test_v2_local_keeps_the_peer(behind_proxy: Path, ports: Ports) -> None:
    _send(ports.tcp, v2("203.0.113.9", command=0) + b"<13>health\n")
    got = wait_for(lambda: _entries(behind_proxy))
    assert [(e.sender, e.raw) for e in got] == [("127.0.0.1", b"<13>health")]


def test_untrusted_peer_with_header_is_refused(behind_proxy: Path, ports: Ports) -> None:
    # 127.0.0.2 is not in proxy_protocol: it must not pass itself off as 203.0.113.7.
    answer = _send(
        ports.tcp, b"PROXY TCP4 203.0.113.7 127.0.0.1 1 514\r\n<13>forged\n", source="127.0.0.2"
    )
    assert answer in (b"", b"<reset>")  # closed, nothing said
    wait_for(lambda: _proxy_refused(ports) == 1)
    # An honest line from the same untrusted address is archived under its own address.
    _send(ports.tcp, b"<13>honest\n", source="127.0.0.2")
    got = wait_for(lambda: _entries(behind_proxy))
    assert [(e.sender, e.raw) for e in got] == [("127.0.0.2", b"<13>honest")]


def test_trusted_peer_without_header_is_refused(behind_proxy: Path, ports: Ports) -> None:
    assert _send(ports.tcp, b"<13>no header\n") in (b"", b"<reset>")
    wait_for(lambda: _proxy_refused(ports) == 1)
    assert _send(ports.tcp, b"PROXY TCP4 nonsense\r\n<13>x\n") in (b"", b"<reset>")
    wait_for(lambda: _proxy_refused(ports) == 2)
    time.sleep(0.2)
    assert _entries(behind_proxy) == []


def test_off_by_default(
    start_collector: Callable[..., Collector], tmp_path: Path, ports: Ports
) -> None:
    start_collector()
    _send(ports.tcp, b"PROXY TCP4 203.0.113.7 127.0.0.1 1 514\r\n")
    got = wait_for(lambda: _entries(tmp_path / "data"))
    # Without the setting the header is just a line from 127.0.0.1, archived as received.
    assert [(e.sender, e.raw) for e in got] == [
        ("127.0.0.1", b"PROXY TCP4 203.0.113.7 127.0.0.1 1 514")
    ]
