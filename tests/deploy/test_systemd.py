"""deploy/systemd: the units parse, are hardened, pass ``systemd-analyze verify`` and
``security --offline``, the sealer is a long-running part of logmaster.target, and every
ExecStart is a real ``logmaster`` command line."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
ANALYZE = shutil.which("systemd-analyze")
LOGMASTER = Path(sys.executable).with_name("logmaster")
INSTALLED = "/opt/logmaster/venv/bin/logmaster"
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze missing")

HARDENING = {
    "User": "logmaster",
    "Group": "logmaster",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/logmaster",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0027",
}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (systemd allows a key several times; configparser does not)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if m := re.fullmatch(r"\[(\w+)\]", line):
            current = sections.setdefault(m.group(1), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: bad line {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_units_exist() -> None:
    names = {p.name for p in UNITS.iterdir()}
    for needed in (
        "logmaster-collector.service",
        "logmaster-indexer.service",
        "logmaster-api.service",
        "logmaster-sealer.service",
    ):
        assert needed in names
    # One sealer only: a timer-started pass beside the long-running sealer would seal twice.
    assert not [n for n in names if n.endswith(".timer")]


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_service_is_hardened(unit: Path) -> None:
    service = parse_unit(unit)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{unit.name}: {key}"
    assert service["SystemCallFilter"][0] == "@system-service"
    assert service["SystemCallFilter"][1].startswith("~@privileged")
    families = set(service["RestrictAddressFamilies"][0].split())
    assert families <= {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service["Environment"] == ["LOGMASTER_CONFIG=/etc/logmaster/logmaster.toml"]
    caps = service.get("AmbientCapabilities", [""])[0].split()
    bounding = service.get("CapabilityBoundingSet", [""])[0].split()
    if unit.name == "logmaster-collector.service":
        assert caps == bounding == ["CAP_NET_BIND_SERVICE"]
        assert int(service["LimitNOFILE"][0]) >= 40_000
    else:
        assert caps == bounding == []


def test_sealer_is_a_long_running_part_of_the_target() -> None:
    """The sealer runs the daily schedule, violations, alerts and seal metrics itself."""
    sealer = parse_unit(UNITS / "logmaster-sealer.service")
    assert sealer["Service"]["ExecStart"] == ["/opt/logmaster/venv/bin/logmaster seal --follow"]
    assert sealer["Service"]["Type"] == ["simple"]
    assert sealer["Service"]["Restart"] == ["on-failure"]
    assert sealer["Install"]["WantedBy"] == ["logmaster.target"]
    target = parse_unit(UNITS / "logmaster.target")["Unit"]
    assert "logmaster-sealer.service" in target["Wants"][0].split()


def _copies(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this venv's logmaster (verify checks it exists)."""
    out = []
    for unit in sorted(UNITS.glob("logmaster*.*")):
        if unit.suffix not in (".service", ".timer", ".target"):
            continue
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(INSTALLED, str(LOGMASTER)))
        out.append(copy)
    return out


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", "--man=no", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        cwd=paths[0].parent,
    )


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    copies = _copies(tmp_path)
    assert len(copies) >= 5
    r = _verify(copies)
    # verify exits 0 on most mistakes and only prints them: the output must be empty.
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


@needs_analyze
def test_systemd_analyze_verify_catches_mistakes(tmp_path: Path) -> None:
    copy = _copies(tmp_path)[0]
    copy.write_text(copy.read_text().replace("ProtectSystem=strict", "ProtectSystem=stricter"))
    r = _verify([copy])
    assert "ProtectSystem" in r.stdout + r.stderr or "protect system" in r.stdout + r.stderr


@needs_analyze
@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_exposure_score(unit: Path, tmp_path: Path) -> None:
    assert ANALYZE is not None
    copy = next(c for c in _copies(tmp_path) if c.name == unit.name)
    r = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout)
    assert m, r.stdout + r.stderr
    # 0 is a sealed box, 10 is unprotected; systemd calls below 2 "OK".
    assert float(m.group(1)) <= 2.0, r.stdout


def _exec_start(unit: Path) -> list[str]:
    argv = shlex.split(parse_unit(unit)["Service"]["ExecStart"][0])
    assert argv[0] == INSTALLED
    return argv[1:]


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_exec_start_is_a_real_command(unit: Path) -> None:
    """``logmaster <command> <options> --help`` accepts the unit's options (exit 0)."""
    argv = _exec_start(unit)
    r = subprocess.run(
        [str(LOGMASTER), *argv, "--help"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr
