"""Real syslog senders against the collector: util-linux logger, rsyslog, loadgen, IPv6."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from collector_support import (
    Rsyslog,
    entries,
    metric,
    octet,
    send_tcp,
    send_udp,
    stop_process,
    verify_cli,
    wait_entries,
)

from logmaster.collector.service import Collector
from support import CollectorProcess, Ports, free_port, wait_for

LOGGER = "/usr/bin/logger"

# What logger's -f file holds, one message per line: UTF-8, a backslash, a tab, quotes.
LOGGER_LINES = [f'msg {i:02d} çğışöü İstanbul back\\slash tab\there [x="y"] end' for i in range(20)]

_TS_3164 = rb"[A-Z][a-z]{2} [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
_TS_5424 = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d"


def _logger_probe(args: list[str]) -> bytes:
    """One message of logger with ``args``, caught on a socket of our own (exact bytes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(10)
        port = s.getsockname()[1]
        subprocess.run(
            [LOGGER, *args, "-n", "127.0.0.1", "-P", str(port), "-d", "-t", "lmtest", "probe"],
            check=True,
            timeout=30,
        )
        return s.recv(65536)


def _logger_patterns(fmt: str, lines: list[str]) -> list[re.Pattern[bytes]]:
    """The exact messages logger sends for ``lines``, only the timestamp left open."""
    if fmt == "--rfc3164":
        host = socket.gethostname().split(".")[0].encode()
        head, middle = rb"<13>" + _TS_3164 + rb" ", host + b" lmtest: "
    else:
        probe = _logger_probe([fmt])
        m = re.fullmatch(
            rb"<13>1 " + _TS_5424 + rb" (\S+) lmtest - - (\[timeQuality [^\]]*\]) probe", probe
        )
        assert m is not None, f"unexpected logger --rfc5424 output {probe!r}"
        head, middle = (
            rb"<13>1 " + _TS_5424 + rb" ",
            m.group(1) + b" lmtest - - " + m.group(2) + b" ",
        )
    return [re.compile(head + re.escape(middle + line.encode()), re.DOTALL) for line in lines]


@pytest.mark.parametrize(
    ("transport", "options"),
    [
        ("-d", ["--rfc3164"]),
        ("-d", ["--rfc5424"]),
        ("-T", ["--rfc3164"]),
        ("-T", ["--rfc5424"]),
        ("-T", ["--rfc3164", "--octet-count"]),
        ("-T", ["--rfc5424", "--octet-count"]),
    ],
    ids=["udp-3164", "udp-5424", "tcp-lf-3164", "tcp-lf-5424", "tcp-octet-3164", "tcp-octet-5424"],
)
def test_logger_messages_arrive_once_as_sent(
    start_collector: Callable[..., Collector],
    ports: Ports,
    tmp_path: Path,
    transport: str,
    options: list[str],
) -> None:
    """Every message util-linux logger sends arrives exactly once, byte for byte as sent."""
    c = start_collector()
    source = tmp_path / "lines.txt"
    source.write_text("".join(line + "\n" for line in LOGGER_LINES), encoding="utf-8")
    port = ports.udp if transport == "-d" else ports.tcp
    command = [LOGGER, *options, "-n", "127.0.0.1", "-P", str(port), transport]
    command += ["-t", "lmtest", "-f", str(source)]
    subprocess.run(
        command,
        check=True,
        timeout=60,
    )
    data = tmp_path / "data"
    wait_entries(data, len(LOGGER_LINES))
    c.stop()  # everything received is written: late duplicates would show now
    got = entries(data)
    assert len(got) == len(LOGGER_LINES)
    patterns = _logger_patterns(options[0], LOGGER_LINES)
    # Over TCP the order is the order sent; one socket on loopback keeps it for UDP too.
    for entry, pattern in zip(got, patterns, strict=True):
        assert pattern.fullmatch(entry.raw), (entry.raw, pattern.pattern)
        assert entry.marker == b""
        assert entry.sender == "127.0.0.1"


def _rsyslog_messages(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        if i % 2:
            msg = f"<13>Nov 28 10:00:{i % 60:02d} relay{i % 3} app[{i}]: seq={i} çalışma \\ ok"
        else:
            msg = f"<165>1 2026-11-28T10:00:00.{i:06d}+03:00 relay app {i} ID47 - seq={i} ğüş"
        out.append(msg.encode())
    return out


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_rsyslog_forwarding_arrives_once_byte_identical(
    start_collector: Callable[..., Collector],
    ports: Ports,
    tls_pair: tuple[Path, Path],
    tmp_path: Path,
    transport: str,
) -> None:
    """rsyslog omfwd (octet-counted TCP, or TLS via gtls) delivers each message once, unchanged."""
    cert, key = tls_pair
    c = start_collector(
        collector={"tls": [f"127.0.0.1:{ports.tls}"], "tls_cert": cert, "tls_key": key}
    )
    port = ports.tcp if transport == "tcp" else ports.tls
    tls = ""
    if transport == "tls":
        tls = (
            'StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/certvalid" '
            f'StreamDriver.CAFile="{cert}" '
        )
    action = (
        f'action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" '
        f'TCP_Framing="octet-counted" template="raw" {tls}'
        'action.resumeRetryCount="-1" action.resumeInterval="1")'
    )
    relay = Rsyslog(tmp_path / "rsyslog", action)
    check = relay.check_config()
    assert check.returncode == 0, check.stderr
    assert "error" not in check.stderr.lower(), check.stderr
    messages = _rsyslog_messages(200)
    data = tmp_path / "data"
    with relay:
        # LF-framed into rsyslog's own imtcp, in a few writes.
        payload = b"".join(m + b"\n" for m in messages)
        send_tcp("127.0.0.1", relay.port, payload[:5000], payload[5000:])
        wait_entries(data, len(messages), timeout=60)
    c.stop()
    got = entries(data)
    assert [e.raw for e in got] == messages
    assert {e.sender for e in got} == {"127.0.0.1"}
    assert {e.marker for e in got} == {b""}
    # It came in over the listener under test, not another one.
    listener = f"{transport}://127.0.0.1:{port}"
    assert c.listener_stats
    received = {st.name: st.received for st in c.listener_stats}
    assert received[listener] == len(messages)
    assert sum(received.values()) == len(messages)
    assert {st.name: st.framing_errors for st in c.listener_stats}[listener] == 0


_LOADGEN = re.compile(rb"<134>1 \S+ loadgen-(\d+) loadgen (\d+) - - seq=(\d+):(\d+) x*", re.DOTALL)


def _loadgen(*args: str) -> int:
    """Run ``logmaster loadgen``; return its pid (which its messages carry) after checking it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "logmaster", "loadgen", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "1000"},
    )
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    result = json.loads(out)
    assert result["sent"] == 4000, result
    return proc.pid


@pytest.fixture
def spawn(
    spawn_collector: Callable[..., CollectorProcess],
) -> Iterator[Callable[[list[str]], CollectorProcess]]:
    """spawn_collector whose processes are killed and whose output pipes are closed at the end."""
    procs: list[CollectorProcess] = []

    def start(args: list[str]) -> CollectorProcess:
        procs.append(spawn_collector(args))
        return procs[-1]

    yield start
    for p in procs:
        stop_process(p, kill=True)


def test_two_workers_archive_every_loadgen_message_once(
    spawn: Callable[[list[str]], CollectorProcess], ports: Ports, tmp_path: Path
) -> None:
    """With --workers 2, 8 UDP and 8 TCP senders lose and duplicate nothing."""
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "--udp", f"127.0.0.1:{ports.udp}"]
    args += ["--tcp", f"127.0.0.1:{ports.tcp}", "--workers", "2"]
    args += ["--metrics", f"127.0.0.1:{ports.metrics}"]
    collector = spawn(args)
    common = ["--senders", "8", "--rate", "2000", "--seconds", "2", "--size", "120"]
    udp_pid = _loadgen("--udp", f"127.0.0.1:{ports.udp}", *common)
    tcp_pid = _loadgen("--tcp", f"127.0.0.1:{ports.tcp}", *common)
    wait_entries(data, 8000, timeout=60)
    # Both receiver processes report; the sums are what the senders sent.
    wait_for(
        lambda: (
            metric(
                ports.metrics,
                "logmaster_listener_received_total",
                listener=f"tcp://127.0.0.1:{ports.tcp}",
            )
            == 4000
        ),
        timeout=30,
    )
    assert (
        metric(
            ports.metrics,
            "logmaster_listener_received_total",
            listener=f"udp://127.0.0.1:{ports.udp}",
        )
        == 4000
    )
    stop_process(collector)
    assert collector.proc.returncode == 0, collector.output

    seen: list[tuple[int, int, int]] = []
    last: dict[tuple[int, int], int] = {}
    for entry in entries(data):
        m = _LOADGEN.fullmatch(entry.raw)
        assert m is not None, entry.raw
        host, pid, sender, n = (int(g) for g in m.groups())
        assert host == sender
        assert entry.sender == f"127.0.1.{sender}"
        assert entry.marker == b""
        # One sender's messages stay in order (one connection / one 4-tuple -> one worker).
        assert n > last.get((pid, sender), 0), (pid, sender, n)
        last[(pid, sender)] = n
        seen.append((pid, sender, n))
    expected = Counter(
        (pid, s, n) for pid in (udp_pid, tcp_pid) for s in range(8) for n in range(1, 501)
    )
    assert Counter(seen) == expected
    done = verify_cli(data)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ipv6_listeners_receive_udp_and_tcp(
    start_collector: Callable[..., Collector], tmp_path: Path, ports: Ports
) -> None:
    """Listeners on [::1] receive UDP and TCP (both framings) from ::1, archived as sent."""
    udp6 = free_port(socket.SOCK_DGRAM, "::1")
    tcp6 = free_port(socket.SOCK_STREAM, "::1")
    c = start_collector(collector={"udp": [f"[::1]:{udp6}"], "tcp": [f"[::1]:{tcp6}"]})
    over_udp = b"<13>Nov 28 10:00:00 v6host app: over udp6 \xc5\x9f"
    octet_tcp = b"<13>1 2026-11-28T10:00:00Z v6host app - - - octet tcp6"
    lf_tcp = b"<13>Nov 28 10:00:01 v6host app: lf tcp6"
    send_udp("::1", udp6, over_udp)
    send_tcp("::1", tcp6, octet(octet_tcp) + octet(octet_tcp + b" again"))
    send_tcp("::1", tcp6, lf_tcp + b"\n")
    data = tmp_path / "data"
    wait_entries(data, 4)
    assert (
        metric(ports.metrics, "logmaster_listener_received_total", listener=f"udp://[::1]:{udp6}")
        == 1
    )
    assert (
        metric(ports.metrics, "logmaster_listener_received_total", listener=f"tcp://[::1]:{tcp6}")
        == 3
    )
    c.stop()
    got = entries(data)
    assert sorted(e.raw for e in got) == sorted(
        [over_udp, octet_tcp, octet_tcp + b" again", lf_tcp]
    )
    assert {e.sender for e in got} == {"::1"}
    assert {e.marker for e in got} == {b""}


def test_loadgen_first_sender_shifts_the_source_addresses() -> None:
    """--first-sender lets several loadgen processes use distinct source addresses."""
    from logmaster.endpoints import Endpoint
    from logmaster.loadgen import source_addresses

    target = Endpoint("127.0.0.1", 514)
    assert source_addresses(target, 1) == [None]
    assert source_addresses(target, 2) == ["127.0.1.0", "127.0.1.1"]
    assert source_addresses(target, 2, 300) == ["127.0.2.44", "127.0.2.45"]
    assert source_addresses(target, 1, 5) == ["127.0.1.5"]
