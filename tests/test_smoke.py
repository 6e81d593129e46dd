"""End-to-end smoke: UDP and TCP messages reach the archive, byte-identical and chained."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from logmaster.archive.verify import day_files, verify_day
from logmaster.collector.service import Collector
from support import Ports, archived_messages, wait_for


def test_udp_and_tcp_messages_are_archived(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path
) -> None:
    """A datagram and an octet-counted TCP frame arrive once each, as sent, in a verified file."""
    start_collector()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"<13>Nov 28 10:00:00 gw1 app: over udp", (ports.host, ports.udp))
    with socket.create_connection((ports.host, ports.tcp)) as t:
        msg = b"<13>1 2026-11-28T10:00:00Z gw1 app - - - over tcp \xc3\xa7"
        t.sendall(b"%d %s" % (len(msg), msg))
    data = tmp_path / "data"
    got = wait_for(lambda: (m := archived_messages(data)) and len(m) == 2 and m)
    assert sorted(got) == sorted([b"<13>Nov 28 10:00:00 gw1 app: over udp", msg])
    for dev, day, path in day_files(data / "archive"):
        assert verify_day(dev, day, path).ok
