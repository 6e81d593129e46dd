"""Late lines for a sealed day go to supplements, with the real collector writing them."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from logmaster.archive.keys import KeyStore
from logmaster.archive.manifest import Part, load, parts
from logmaster.archive.seal import SealRun
from logmaster.archive.seal_status import seal_status
from logmaster.archive.verdict import verify_days
from logmaster.collector.service import Collector
from support import Ports, wait_for

ZONE = ZoneInfo("Europe/Istanbul")


def send(ports: Ports, *messages: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for m in messages:
            s.sendto(m, (ports.host, ports.udp))


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def test_late_lines_go_to_supplements(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path
) -> None:
    """After a day is sealed the collector writes s1, then s2; each is sealed and chained."""
    collector = start_collector()
    settings = collector.settings
    KeyStore(settings.data_dir / "keys").init("ecdsa-p256")
    day = dt.datetime.now(ZONE).date()
    device = "ip-127.0.0.1"
    main = Part(settings.archive_dir, device, day)
    send(ports, *(b"<13>early %d" % i for i in range(5)))
    wait_for(lambda: len(lines_of(main.log)) == 5)
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    [sealed] = SealRun(settings, now=tomorrow).seal_day(day)
    assert sealed.state == "sealed"
    content = main.log.read_bytes()
    _raw, man = load(main.manifest)
    assert man["lines"] == 5 and man["sha256"] == hashlib.sha256(content).hexdigest()

    send(ports, *(b"<13>late %d" % i for i in range(3)))
    s1 = Part(settings.archive_dir, device, day, 1)
    wait_for(lambda: len(lines_of(s1.log)) == 3)
    assert main.log.read_bytes() == content  # the sealed file never changes
    assert seal_status(settings.archive_dir, device, day).state == "unsealed"

    [late] = SealRun(settings, now=tomorrow).seal_day(day)
    assert (late.part, late.state) == (1, "sealed")
    _raw, man1 = load(s1.manifest)
    assert man1["part"] == 1 and man1["lines"] == 3
    assert man1["file"] == {"name": f"{day:%d}.s1.log", "path": s1.relative}
    assert (
        man1["previous_manifest_sha256"] == hashlib.sha256(main.manifest.read_bytes()).hexdigest()
    )

    send(ports, b"<13>later still")
    s2 = Part(settings.archive_dir, device, day, 2)
    wait_for(lambda: len(lines_of(s2.log)) == 1)
    SealRun(settings, now=tomorrow).seal_day(day)
    assert [p.index for p in parts(settings.archive_dir, device, day)] == [0, 1, 2]
    [verdict] = verify_days(settings, workers=1)
    assert verdict.verdict == "OK", verdict.reasons
    assert (verdict.parts, verdict.lines) == (3, 9)
    assert seal_status(settings.archive_dir, device, day).state == "sealed"
