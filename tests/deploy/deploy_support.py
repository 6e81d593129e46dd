"""A real ``logmaster run`` (collector + indexer + API) on free loopback ports, for the tests
that put nginx or Prometheus in front of it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support import free_port, wait_for

ADMIN_PASSWORD = "Adm1n-Test-Passw0rd!"


@dataclass
class Running:
    data_dir: Path
    syslog_port: int  # UDP and TCP
    metrics_port: int  # collector
    index_metrics_port: int
    api_port: int
    api_metrics_port: int
    sealer_metrics_port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


@contextlib.contextmanager
def logmaster_run(
    tmp: Path, *, extra_env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[Running]:
    """Start ``python -m logmaster run``; wait until collector, indexer and API answer."""
    syslog, metrics, index_metrics, api = free_port(), free_port(), free_port(), free_port()
    api_metrics, sealer_metrics = free_port(), free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "data"
    log = tmp / "logmaster-run.log"
    env = {
        **os.environ,
        "LOGMASTER_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LOGMASTER_API__LISTEN": f"127.0.0.1:{api}",
        "LOGMASTER_API__COOKIE_SECURE": "false",
        "LOGMASTER_INDEX__METRICS_LISTEN": f"127.0.0.1:{index_metrics}",
        "LOGMASTER_API__METRICS_LISTEN": f"127.0.0.1:{api_metrics}",
        "LOGMASTER_COMPLIANCE__METRICS_LISTEN": f"127.0.0.1:{sealer_metrics}",
        "LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS": "20",
        "LOGMASTER_INDEX__WORKERS": "1",
        **(extra_env or {}),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "logmaster",
                "run",
                "--data-dir",
                str(data),
                "--udp",
                f"{host}:{syslog}",
                "--tcp",
                f"{host}:{syslog}",
                "--metrics",
                f"127.0.0.1:{metrics}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    running = Running(
        data, syslog, metrics, index_metrics, api, api_metrics, sealer_metrics, proc, log
    )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"logmaster run exited: {running.output()}")
            return (
                _answers(f"http://127.0.0.1:{metrics}/metrics")
                and _answers(f"http://127.0.0.1:{index_metrics}/metrics")
                and _answers(f"http://127.0.0.1:{api}/api/v1/health")
            )

        wait_for(ready, timeout=90, interval=0.25)
        yield running
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
