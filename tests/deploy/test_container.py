"""Dockerfile and compose.yaml (no Docker here): their shape, and that every command they run
is a real ``logmaster`` command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LOGMASTER = Path(sys.executable).with_name("logmaster")


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return doc


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages[-1] == "python:3.11-slim"
    assert re.search(r"^USER logmaster$", text, re.M)
    assert text.index("USER logmaster") > text.index("pip install")
    assert "-c constraints.txt" in text  # the exact versions of the whole tree
    assert 'VOLUME ["/var/lib/logmaster"]' in text
    assert 'ENTRYPOINT ["logmaster"]' in text
    for path in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for src in path.split():
            assert (ROOT / src).exists(), src


def test_compose_services() -> None:
    doc = compose()
    services = doc["services"]
    assert {"collector", "indexer", "api", "sealer", "postgres", "redis"} <= set(services)
    for name in ("collector", "indexer", "api", "sealer"):
        svc = services[name]
        env = svc["environment"]
        assert env["LOGMASTER_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["LOGMASTER_REDIS_URL"].startswith("redis://")
        assert "@" in env["LOGMASTER_DATABASE_URL"]
        assert ":" not in env["LOGMASTER_DATABASE_URL"].split("//")[1].split("@")[0]  # no pw
        assert svc["cap_drop"] == ["ALL"]
        assert svc["read_only"] is True
        assert svc["volumes"] == ["logmaster-data:/var/lib/logmaster"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets")
    text = (ROOT / "compose.yaml").read_text()
    assert "POSTGRES_PASSWORD:" not in text  # no password in the file, only secrets
    assert "514:514/udp" in services["collector"]["ports"]
    api_ports = services["api"]["ports"]
    assert all(p.startswith("127.0.0.1:") for p in api_ports)  # plain HTTP only locally


@pytest.mark.parametrize("service", ["collector", "indexer", "api", "sealer"])
def test_compose_commands_exist(service: str) -> None:
    argv = compose()["services"][service]["command"]
    r = subprocess.run(
        [str(LOGMASTER), *argv, "--help"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_environment_is_valid_settings() -> None:
    """The LOGMASTER_* variables the containers get are accepted by the settings."""
    from logmaster.config import load_settings

    env = compose()["services"]["collector"]["environment"]
    overrides = {k: v for k, v in env.items() if k.startswith("LOGMASTER_")}
    mp = pytest.MonkeyPatch()
    try:
        for key, value in overrides.items():
            mp.setenv(key, value)
        s = load_settings(None)
    finally:
        mp.undo()
    assert s.index.backend == "postgres"
    assert s.collector.udp == ["0.0.0.0:514"]
    assert s.metrics.listen == "0.0.0.0:9514"
