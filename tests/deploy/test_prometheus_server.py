"""Debian's Prometheus scrapes a running ``logmaster run`` with the shipped rules loaded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import Running, logmaster_run
from test_grafana import expressions

from support import free_port, wait_for

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="run scripts/system-deps.sh (Debian prometheus)"),
]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    with logmaster_run(tmp_path) as r:
        yield r


def _config(r: Running) -> dict[str, Any]:
    """The shipped prometheus.yml with the targets moved to the test's ports."""
    doc: dict[str, Any] = yaml.safe_load((PROM / "prometheus.yml").read_text())
    doc["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    doc["rule_files"] = [str(PROM / "alerts.yml")]
    ports = {
        "logmaster-collector": r.metrics_port,
        "logmaster-indexer": r.index_metrics_port,
        "logmaster-sealer": r.sealer_metrics_port,
        "logmaster-api": r.api_metrics_port,
    }
    # The node exporter job stays out: none runs here (it would only show up == 0).
    jobs = [j for j in doc["scrape_configs"] if j["job_name"] in ports]
    assert len(jobs) == len(ports)
    for job in jobs:
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{ports[job['job_name']]}"]
    doc["scrape_configs"] = jobs
    return doc


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
    except OSError:
        return []
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_logmaster(running: Running, tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(_config(running)))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # A line from the device, so the per-device series exist.
        with socket.create_connection(("127.0.0.1", running.syslog_port)) as s:
            s.sendall(b"<134>Nov 28 10:00:00 gw1 kernel: deploy-test line\n")

        def all_up() -> bool:
            up = {x["metric"]["job"]: x["value"][1] for x in _query(port, "up")}
            return up == {
                "logmaster-collector": "1",
                "logmaster-indexer": "1",
                "logmaster-sealer": "1",
                "logmaster-api": "1",
            }

        wait_for(all_up, timeout=60, interval=0.5)
        received = wait_for(lambda: _query(port, "logmaster_device_received_total > 0"), timeout=30)
        assert received[0]["metric"]["job"] == "logmaster-collector"
        assert received[0]["metric"]["device"] == "ip-127.0.0.1"
        assert wait_for(lambda: _query(port, "logmaster_index_lines_total"), timeout=30)
        # The sealer's and the API's own series, with the labels the rules and panels use.
        for expr, job in (
            ("logmaster_seal_pending_stamps", "logmaster-sealer"),
            ("logmaster_seal_overdue_device_days", "logmaster-sealer"),
            ("logmaster_tail_sessions", "logmaster-api"),
            ('logmaster_api_signin_failures_total{reason="credentials"}', "logmaster-api"),
            (
                'logmaster_api_requests_total{route="/api/v1/health",method="GET",status="2xx"}',
                "logmaster-api",
            ),
        ):
            found = wait_for(lambda e=expr: _query(port, e), timeout=30)
            assert found[0]["metric"]["job"] == job, (expr, found)
        # The shipped rules are loaded and evaluate without error against real series.
        assert len(_rules(port)) >= 10
        wait_for(lambda: all(r.get("lastEvaluation", "").startswith("2") for r in _rules(port)))
        assert {r["health"] for r in _rules(port)} == {"ok"}
        # Every Grafana panel's expression is valid PromQL to this Prometheus.
        for expr in expressions():
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": expr.replace("$__rate_interval", "1m")}
            )
            with urllib.request.urlopen(url, timeout=5) as resp:
                assert json.loads(resp.read())["status"] == "success", expr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _rules(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as resp:
        groups = json.loads(resp.read())["data"]["groups"]
    return [rule for g in groups for rule in g["rules"]]
