"""Speed of the Logs screen in a real browser (issue 6): 100,000 rows paged and scrolled, live
tail at 1,000 lines/s, no frame longer than 100 ms; first load under 1 MB of compressed JS.

The test runs its own ``logmaster run`` (not the shared session server): its archive is filled
with 100,000 lines of one device (``seed``) by the real archive writer before the start, so
the run's indexer indexes them during its catch-up. ``logmaster loadgen`` sends 1,000 lines/s
to the collector from a second sender for the whole measurement.

Phases, all in one page, frames recorded throughout:

1. ``scroll``: search ``device:seed`` over the last hour and scroll down through the results
   (~90 rows per frame, as fast as a dragged scroll bar) while the table pages on; ends when
   the screen reports 100,000 lines loaded and the oldest seed line is the last row on screen.
2. ``switch``: clear the query, search, switch live tail on (reported, not bounded).
3. ``tail``: scroll up and down for ``TAIL_S`` seconds while the 1,000 lines/s stream in; then,
   scrolled away from the newest lines, the row being read must stay in place.

How to read the figures (printed, and written to ``tests/e2e/screenshots/perf-logs.json``):

- ``frames``: the time between two ``requestAnimationFrame`` callbacks, i.e. how long each
  frame the user saw stayed on screen (16.7 ms at 60 Hz when nothing blocks). ``max_ms`` is the
  figure the issue bounds (100 ms); ``p99_ms`` and ``over_50`` / ``over_100`` (counts) show
  whether a long frame was a one-off.
- ``loaf``: Chromium's Long Animation Frames (frames over 50 ms) with the script that took the
  time (``top``): where to look when ``max_ms`` is high. ``longtask``: tasks over 50 ms.
- ``heap_mb_*``: the page's JavaScript heap with 100,000 rows loaded and after the tail phase;
  a frame with no script to blame in ``loaf`` may be a garbage collection of that heap.
- ``loaf_blocked_max_ms``: the longest frame in which the page's own code blocked (a long
  task); a long frame without one waited for the CPU or the browser (``cpu_pressure_*``: Linux
  PSI, percent of the last 10 s that runnable tasks waited for a CPU).
- ``calibration_s``: seconds this machine took for ``sum(range(10**8))`` just before the
  measurement (a quiet run of this 2-core machine: ~1.0-1.5 s), ``load`` its load average:
  frames on a loaded machine also wait for the CPU, which no code on the page can fix.

The frame bound is a speed figure, and speed is measured by the benchmarks on a quiet machine
(house rule: benchmarks print figures, they are not timed unit tests): ``make bench`` runs this
test with ``LOGMASTER_FRAME_BOUND=1`` and then asserts no frame over 100 ms. In ``make test``
(the whole suite on a busy CI machine) everything else is asserted — 100,000 rows reachable,
tail lines arriving, the row being read kept in place, first-load JavaScript under 1 MB — and
the frame figures are recorded, not bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from e2e_support import ADMIN_PASSWORD, DIST, SCREENSHOTS, Server, console_page, launch

from logmaster.archive.line import Clock, format_line
from logmaster.archive.writer import ArchiveWriter

pytestmark = pytest.mark.slow

ZONE = ZoneInfo("Europe/Istanbul")
SEED_DEVICE = "seed"
SEED_IP = "10.99.0.1"
SEED_LINES = 100_000
SEED_SPAN_S = 1200  # the seed lines' receive times cover the 20 minutes before the start
LIVE_SENDER = 40  # loadgen --first-sender: 127.0.1.40, a pending device
LIVE_RATE = 1000
TAIL_S = 20
FRAME_BOUND_MS = 100
JS_BUDGET = 1_000_000
RESULTS = SCREENSHOTS / "perf-logs.json"


def seed_line(n: int, header: str) -> bytes:
    """A MikroTik firewall line (parsed into fields) carrying its number ``perf<n>``; the
    event time is the BSD ``header`` time (searches select by it)."""
    return (
        f"<134>{header} gw-seed firewall,info perf{n:06d} forward: in:bridge "
        f"out:ether1, connection-state:new src-mac 02:00:00:00:{n % 256:02x}:aa, proto TCP "
        f"(SYN), 192.168.{n % 200}.{n % 250 + 1}:{40000 + n % 20000}->"
        f"93.184.216.{n % 250 + 1}:443, len 60"
    ).encode()


def write_seed(archive: Path) -> None:
    """SEED_LINES archive lines of SEED_DEVICE, oldest first, written as the collector would."""
    writer = ArchiveWriter(archive, "never")
    clock = Clock(ZONE)
    first = time.time_ns() - SEED_SPAN_S * 1_000_000_000
    step = SEED_SPAN_S * 1_000_000_000 // SEED_LINES
    second, header = -1, ""
    for n in range(SEED_LINES):
        sec, frac = divmod(first + n * step, 1_000_000_000)
        stamp = clock.stamp(sec)
        if sec != second:
            second = sec
            local = dt.datetime.fromtimestamp(sec, ZONE)
            header = f"{local:%b} {local.day:2d} {local:%H:%M:%S}"
        df = writer.day_file(SEED_DEVICE, stamp.day)
        line = seed_line(n, header)
        writer.add(df, format_line(stamp, frac // 1000, SEED_IP.encode(), line))
        if n % 10_000 == 9_999:
            writer.flush()
    writer.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running server whose index holds the SEED_LINES lines of SEED_DEVICE."""
    assert DIST.exists(), "the console is not built: run `make console` (npm ci + npm run build)"
    base = tmp_path_factory.mktemp("perf")
    data = base / "data"
    env = {k: v for k, v in os.environ.items() if k != "LOGMASTER_CONFIG"}
    data.mkdir()
    subprocess.run(
        [
            *(sys.executable, "-m", "logmaster", "device", "add", SEED_DEVICE),
            *("--ip", SEED_IP, "--timezone", ZONE.key, "--data-dir", str(data)),
        ],
        env=env,
        cwd=base,
        check=True,
        capture_output=True,
        timeout=120,
    )
    write_seed(data / "archive")
    with launch(data, base) as server:
        started = time.monotonic()
        with server.api() as api:
            while (total := seed_total(api)) < SEED_LINES:
                assert time.monotonic() - started < 120, f"only {total} seed lines indexed"
                time.sleep(1)
        print(f"\n{SEED_LINES} seed lines indexed {time.monotonic() - started:.0f} s after start")
        yield server


def seed_total(api: Any) -> int:
    r = api.get(
        "/api/v1/search/histogram",
        params={"q": f"device:{SEED_DEVICE}", "from": "-1h", "buckets": 10},
    )
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


# Records every frame (rAF deltas), Long Animation Frame and long task with the phase it fell
# in; ``window.__perf.scroll`` moves the results table by that many pixels per frame (a
# negative-free "bounce" between top and bottom when ``bounce`` is set).
PROBE = """
() => {
  const perf = (window.__perf = { phase: "idle", frames: [], loaf: [], longtask: [],
                                  scroll: 0, bounce: false, dir: 1 });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const top = [...(e.scripts || [])].sort((a, b) => b.duration - a.duration)[0];
      perf.loaf.push({ phase: perf.phase, duration: e.duration,
                       blocking: e.blockingDuration, render: e.renderStart ? e.startTime
                         + e.duration - e.renderStart : 0,
                       top: top ? `${top.invoker} ${top.sourceFunctionName || ""} `
                                  + `${(top.sourceURL || "").split("/").pop()} `
                                  + `${Math.round(top.duration)}ms` : "" });
    }
  }).observe({ type: "long-animation-frame" });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) perf.longtask.push({ phase: perf.phase,
                                                            duration: e.duration });
  }).observe({ type: "longtask" });
  let last = performance.now();
  const tick = (now) => {
    if (perf.phase !== "idle") perf.frames.push([perf.phase, now - last]);
    last = now;
    const s = document.querySelector("[data-testid=results]");
    if (s && perf.scroll) {
      s.scrollTop += perf.dir * perf.scroll;
      if (perf.bounce) {
        if (s.scrollTop + s.clientHeight >= s.scrollHeight - 1) perf.dir = -1;
        if (s.scrollTop <= 0) perf.dir = 1;
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""


# The text of the table row in the middle of the visible rows, after scrolling to ``to`` px.
ROW_AT_MIDDLE = """
(to) => {
  const s = document.querySelector("[data-testid=results]");
  if (to !== null) s.scrollTop = to;
  const r = s.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + 40, r.top + r.height / 2);
  const row = hit && hit.closest("[data-testid=result-row]");
  return row ? row.textContent : null;
}
"""


def summary(frames: list[float]) -> dict[str, float | int]:
    """Frame figures: count, p50, p99, max (ms) and how many were over 50 / 100 ms."""
    if not frames:
        return {"count": 0}
    ordered = sorted(frames)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_ms": round(ordered[-1], 1),
        "over_50": sum(f > 50 for f in ordered),
        "over_100": sum(f > 100 for f in ordered),
    }


def cpu_pressure() -> float | None:
    """Share of the last 10 s in which runnable tasks waited for a CPU (Linux PSI), percent."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None
    return float(line.split()[1].removeprefix("avg10="))


def calibrate() -> float:
    """Seconds for sum(range(10**8)) in a fresh interpreter (the team's noise yardstick)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "sum(range(10**8))"], check=True, timeout=120)
    return round(time.monotonic() - started, 2)


def number(text: str) -> int:
    """The first number in ``text`` ("100.000 satır yüklendi" -> 100000)."""
    found = re.search(r"\d[\d.,]*", text)
    assert found, f"no number in {text!r}"
    return int(re.sub(r"[.,]", "", found.group()))


def heap_mb(page: Any) -> float:
    """The page's JavaScript heap in use, MB (a big heap means long garbage collections)."""
    used = float(page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0"))
    return round(used / 1e6, 1)


def sign_in(page: Any) -> None:
    page.goto("/")
    page.get_by_test_id("username").fill("admin")
    page.get_by_test_id("password").fill(ADMIN_PASSWORD)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("nav-overview").wait_for()


def first_load_js(page: Any) -> dict[str, int]:
    """Bytes of JavaScript the browser fetched so far: as sent (compressed) and decoded."""
    scripts = page.evaluate(
        """() => performance.getEntriesByType("resource")
             .filter((e) => e.name.endsWith(".js"))
             .map((e) => [e.name, e.encodedBodySize, e.decodedBodySize])"""
    )
    return {
        "files": len(scripts),
        "compressed_bytes": sum(s[1] for s in scripts),
        "decoded_bytes": sum(s[2] for s in scripts),
    }


@pytest.fixture
def page(browser: Any, seeded: Server) -> Iterator[Any]:
    with console_page(browser, seeded.url, 30_000) as p:
        yield p


def test_logs_screen_100k_rows_and_live_tail_frames(page: Any, seeded: Server) -> None:
    """100,000 rows paged and scrolled, then live tail, with 1,000 lines/s arriving all along:
    no frame over 100 ms; the first load fetches under 1 MB of compressed JavaScript."""
    page.goto("/")
    page.get_by_test_id("username").wait_for()
    first_load = first_load_js(page)
    sign_in(page)
    figures: dict[str, Any] = {"first_load_js": first_load, "cpus": os.cpu_count()}

    page.goto(f"/logs?q={quote(f'device:{SEED_DEVICE}')}&from=-1h")
    page.get_by_test_id("result-row").first.wait_for()
    figures["calibration_s"] = calibrate()
    figures["load_before"] = round(os.getloadavg()[0], 2)
    figures["cpu_pressure_before"] = cpu_pressure()
    page.evaluate(PROBE)
    live = subprocess.Popen(
        [
            *(sys.executable, "-m", "logmaster", "loadgen"),
            *("--udp", f"127.0.0.1:{seeded.syslog_port}", "--first-sender", str(LIVE_SENDER)),
            *("--rate", str(LIVE_RATE), "--seconds", "600"),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        started = time.monotonic()
        page.evaluate("window.__perf.phase = 'scroll'; window.__perf.scroll = 2000")
        loaded_text = page.get_by_test_id("loaded")
        while number(loaded_text.inner_text()) < SEED_LINES:
            assert time.monotonic() - started < 150, f"paging stalled: {loaded_text.inner_text()}"
            page.wait_for_timeout(500)
        figures["scroll_s"] = round(time.monotonic() - started, 1)
        # The last rows are reachable: at the bottom, the oldest seed line is the last row.
        page.wait_for_function(
            """() => { const s = document.querySelector("[data-testid=results]");
                       return s.scrollTop + s.clientHeight >= s.scrollHeight - 1; }"""
        )
        page.get_by_test_id("result-row").get_by_text("perf000000").wait_for()
        loaded = number(loaded_text.inner_text())
        total = number(page.get_by_test_id("hit-total").inner_text())
        page.screenshot(path=str(SCREENSHOTS / "15-logs-100k-bottom.png"))
        figures["heap_mb_100k_rows"] = heap_mb(page)

        page.evaluate("window.__perf.phase = 'switch'; window.__perf.scroll = 0")
        page.get_by_test_id("query").fill("")
        page.get_by_test_id("search").click()
        page.get_by_test_id("tail-toggle").check(force=True)
        page.get_by_test_id("tail-state").get_by_text("Canlı", exact=True).wait_for()
        page.get_by_test_id("result-row").first.wait_for()
        page.evaluate("Object.assign(window.__perf, {phase: 'tail', scroll: 400, bounce: true})")
        page.wait_for_timeout(TAIL_S * 1000)
        page.evaluate("window.__perf.phase = 'idle'; window.__perf.scroll = 0")
        shown = number(page.get_by_test_id("tail-shown").inner_text())
        # Scrolled away from the newest lines, the line being read stays put as lines arrive.
        page.evaluate(ROW_AT_MIDDLE, 2200)
        page.wait_for_timeout(300)
        reading = page.evaluate(ROW_AT_MIDDLE, None)
        page.wait_for_timeout(1500)
        still = page.evaluate(ROW_AT_MIDDLE, None)
        later = number(page.get_by_test_id("tail-shown").inner_text())
        rate = page.get_by_test_id("tail-rate").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "16-live-tail-1000s.png"))
        figures["heap_mb_tail"] = heap_mb(page)
    finally:
        live.kill()
        live.wait()

    figures["load_after"] = round(os.getloadavg()[0], 2)
    figures["cpu_pressure_after"] = cpu_pressure()
    perf = page.evaluate("window.__perf")
    for phase in ("scroll", "switch", "tail"):
        loaf = [e for e in perf["loaf"] if e["phase"] == phase]
        # Long frames in which the page itself blocked (a long task of its own): the others
        # waited for the CPU or the browser, not for the page's code.
        blocked = [e["duration"] for e in loaf if e["blocking"]]
        figures[phase] = {
            "frames": summary([d for p, d in perf["frames"] if p == phase]),
            "loaf_blocked_max_ms": round(max(blocked, default=0)),
            "loaf": sorted(loaf, key=lambda e: -e["duration"])[:5],
            "longtask": summary([e["duration"] for e in perf["longtask"] if e["phase"] == phase]),
        }
    figures.update(rows_loaded=loaded, hit_total=total, tail_rows=shown, tail_rate=rate)
    everything = [d for p, d in perf["frames"] if p in ("scroll", "tail")]
    figures["all"] = summary(everything)
    figures["at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nLogs screen figures ({RESULTS}):\n{json.dumps(figures, indent=2)}")

    assert loaded == SEED_LINES and total == SEED_LINES, (loaded, total)
    assert reading is not None and still == reading and later > shown, (reading, still)
    assert shown >= LIVE_RATE * TAIL_S // 2, f"only {shown} tail lines in {TAIL_S} s"
    assert first_load["compressed_bytes"] < JS_BUDGET, first_load
    # The bound; frames of the 'switch' (query and mode change) are reported only.
    worst = figures["all"]["max_ms"]
    if os.environ.get("LOGMASTER_FRAME_BOUND") != "1":
        return  # make test: recorded above; make bench asserts it on a quiet machine
    assert worst <= FRAME_BOUND_MS, (
        f"a frame took {worst} ms (bound {FRAME_BOUND_MS} ms); calibration "
        f"{figures['calibration_s']} s, load {figures['load_before']}: see {RESULTS}"
    )
