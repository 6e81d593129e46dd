"""`logmaster device add/list/approve/reject/retire` through the real typer app."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from logmaster.cli import app
from logmaster.collector.devices import Registry
from logmaster.db import make_engine


@pytest.fixture(autouse=True)
def clean_env_and_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LOGMASTER_* of the machine leaks in; the CLI's root log handler is undone after."""
    for key in list(os.environ):
        if key.startswith("LOGMASTER_"):
            monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    alembic = logging.getLogger("alembic").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(alembic)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def cli(data: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        app, [*args, "--data-dir", str(data)], env={"COLUMNS": "250", **(env or {})}
    )


def listed(data: Path, *args: str) -> list[dict[str, Any]]:
    res = cli(data, "device", "list", "--json", *args)
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- add ------------------------------------------------------------------------------------


def test_add_and_list(data: Path) -> None:
    """add prints what it registered; list --json shows every field, one JSON object a line."""
    res = cli(
        data,
        "device",
        "add",
        "gw1",
        "--ip",
        "10.0.0.1",
        "--ip",
        "192.168.0.0/24",
        "--name",
        "Main gateway",
        "--location",
        "Istanbul DC",
        "--timezone",
        "Europe/Berlin",
        "--hostname",
        "gw1.example",
    )
    assert res.exit_code == 0, res.output
    assert one_line(res.stdout) == (
        "added device gw1 (10.0.0.1, 192.168.0.0/24), timezone Europe/Berlin"
    )
    assert (data / "logmaster.db").is_file()
    assert listed(data) == [
        {
            "slug": "gw1",
            "name": "Main gateway",
            "location": "Istanbul DC",
            "status": "approved",
            "timezone": "Europe/Berlin",
            "hostname": "gw1.example",
            "sources": ["10.0.0.1/32", "192.168.0.0/24"],
            "last_seen_at": None,
        }
    ]


def test_add_uses_the_default_timezone_setting(data: Path) -> None:
    """Without --timezone the device gets devices.default_timezone (env or default)."""
    assert cli(data, "device", "add", "a", "--ip", "10.0.0.1").exit_code == 0
    res = cli(
        data,
        "device",
        "add",
        "b",
        "--ip",
        "10.0.0.2",
        env={"LOGMASTER_DEVICES__DEFAULT_TIMEZONE": "Asia/Tokyo"},
    )
    assert res.exit_code == 0, res.output
    assert {d["slug"]: d["timezone"] for d in listed(data)} == {
        "a": "Europe/Istanbul",
        "b": "Asia/Tokyo",
    }


def test_list_json_keeps_text_exactly(data: Path) -> None:
    """Names with brackets or colons come out of --json byte for byte (no markup, no emoji)."""
    name, location = "[b]Core[/b] :smile: router", "rack [a1] \\ row 2"
    res = cli(
        data, "device", "add", "gw1", "--ip", "10.0.0.1", "--name", name, "--location", location
    )
    assert res.exit_code == 0, res.output
    [dev] = listed(data)
    assert (dev["name"], dev["location"]) == (name, location)
    table = cli(data, "device", "list")
    assert table.exit_code == 0, table.output
    assert "rack [a1]" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad-Slug", "--ip", "10.0.0.1"], "slug 'Bad-Slug'"),
        (["gw1", "--ip", "10.0.0.300"], "'10.0.0.300' is not an IP address or CIDR network"),
        (["gw1", "--ip", "[fe80::1]"], "'[fe80::1]' is not an IP address"),
        (["gw1", "--ip", "10.0.0.1[/x]"], "'10.0.0.1[/x]' is not an IP address"),
        (["gw1", "--ip", "10.0.0.1", "--timezone", "Mars/Olympus"], "unknown timezone"),
    ],
)
def test_add_errors_exit_2_with_a_message(data: Path, args: list[str], message: str) -> None:
    """Bad input: exit 2, one error line quoting the input as typed, nothing added."""
    res = cli(data, "device", "add", *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error:")
    assert message in one_line(res.stderr)
    assert "Traceback" not in res.output
    assert listed(data) == []


def test_add_duplicate_exits_2(data: Path) -> None:
    """A slug that exists already: exit 2, 'already exists', the first device unchanged."""
    assert cli(data, "device", "add", "gw1", "--ip", "10.0.0.1").exit_code == 0
    res = cli(data, "device", "add", "gw1", "--ip", "10.0.0.2")
    assert res.exit_code == 2
    assert "device 'gw1' already exists" in one_line(res.stderr)
    assert [d["sources"] for d in listed(data)] == [["10.0.0.1/32"]]


def test_add_without_ip_is_a_usage_error(data: Path) -> None:
    """--ip is required: the usage error names it, exit 2."""
    res = cli(data, "device", "add", "gw1")
    assert res.exit_code == 2
    assert "--ip" in res.output


def test_missing_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    """A data directory that does not exist: exit 2 with a hint, not a traceback."""
    res = cli(tmp_path / "nope", "device", "list")
    assert res.exit_code == 2, res.output
    assert "cannot open the metadata database" in one_line(res.stderr)
    assert "logmaster init" in res.stderr
    assert "Traceback" not in res.output


# -- list -----------------------------------------------------------------------------------


def test_list_table_and_status_filter(data: Path) -> None:
    """The table shows each device's status, senders and 'never' seen; --status filters."""
    for slug, ip in (("zeta", "10.0.0.3"), ("alpha", "10.0.0.1"), ("mid", "10.0.0.2")):
        assert cli(data, "device", "add", slug, "--ip", ip).exit_code == 0
    assert cli(data, "device", "reject", "mid").exit_code == 0
    res = cli(data, "device", "list")
    assert res.exit_code == 0, res.output
    rows = [line for line in res.stdout.splitlines() if "10.0.0." in line]
    assert [row.split("│")[1].strip() for row in rows] == ["alpha", "mid", "zeta"]
    assert "rejected" in rows[1]
    assert all("never" in row for row in rows)
    assert [d["slug"] for d in listed(data, "--status", "approved")] == ["alpha", "zeta"]
    assert [d["slug"] for d in listed(data, "--status", "rejected")] == ["mid"]
    assert listed(data, "--status", "pending") == []


def test_list_of_an_empty_registry(data: Path) -> None:
    """No devices: --json prints nothing, the table only its header; exit 0."""
    assert listed(data) == []
    res = cli(data, "device", "list")
    assert res.exit_code == 0
    assert "device" in res.stdout


def test_list_shows_pending_devices_and_last_seen(data: Path) -> None:
    """Senders the collector met are listed as pending with their last message time."""
    engine = make_engine(f"sqlite:///{data / 'logmaster.db'}")
    assert cli(data, "device", "list").exit_code == 0  # creates the schema
    reg = Registry(engine, "Europe/Istanbul", 10)
    reg.resolve("192.0.2.9", b"x").seen = True
    reg.save_pending()
    reg.mark_seen()
    engine.dispose()
    [dev] = listed(data, "--status", "pending")
    assert dev["slug"] == "ip-192.0.2.9"
    assert dev["sources"] == ["192.0.2.9/32"]
    assert dev["last_seen_at"] is not None
    res = cli(data, "device", "list")
    row = next(line for line in res.stdout.splitlines() if "ip-192.0.2.9" in line)
    assert "pending" in row
    assert "never" not in row
    assert "+03" in row  # shown in the device's timezone


# -- status changes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "status"),
    [("approve", "approved"), ("reject", "rejected"), ("retire", "retired")],
)
def test_status_commands(data: Path, command: str, status: str) -> None:
    """approve/reject/retire set the status and say so; exit 0."""
    assert cli(data, "device", "add", "gw1", "--ip", "10.0.0.1").exit_code == 0
    if command == "approve":
        assert cli(data, "device", "reject", "gw1").exit_code == 0
    res = cli(data, "device", command, "gw1")
    assert res.exit_code == 0, res.output
    assert one_line(res.stdout) == f"device gw1 is now {status}"
    assert [d["status"] for d in listed(data)] == [status]


def test_status_cycle_is_reversible(data: Path) -> None:
    """A rejected or retired device is approved again with approve."""
    assert cli(data, "device", "add", "gw1", "--ip", "10.0.0.1").exit_code == 0
    for command, status in (
        ("reject", "rejected"),
        ("approve", "approved"),
        ("retire", "retired"),
        ("approve", "approved"),
    ):
        assert cli(data, "device", command, "gw1").exit_code == 0
        assert listed(data)[0]["status"] == status


@pytest.mark.parametrize("command", ["approve", "reject", "retire"])
def test_status_of_an_unknown_device_exits_2(data: Path, command: str) -> None:
    """An unknown slug: exit 2 and a pointer to `logmaster device list`."""
    res = cli(data, "device", command, "nope")
    assert res.exit_code == 2, res.output
    assert "no device 'nope'" in one_line(res.stderr)
    assert "logmaster device list" in one_line(res.stderr)


def test_status_command_needs_a_slug(data: Path) -> None:
    """The slug argument is required: usage error, exit 2."""
    res = cli(data, "device", "approve")
    assert res.exit_code == 2


def test_pinned_format_is_set_and_cleared(data: Path) -> None:
    """`device add --format` pins a parser; `device format SLUG auto` clears it; typos fail."""
    assert (
        cli(data, "device", "add", "fw1", "--ip", "10.1.1.1", "--format", "fortigate").exit_code
        == 0
    )
    [dev] = [d for d in listed(data) if d["slug"] == "fw1"]
    engine = make_engine(f"sqlite:///{data / 'logmaster.db'}")
    from logmaster.collector.devices import list_devices

    assert [d.format for d in list_devices(engine) if d.slug == "fw1"] == ["fortigate"]
    assert cli(data, "device", "format", "fw1", "auto").exit_code == 0
    assert [d.format for d in list_devices(engine) if d.slug == "fw1"] == [None]
    bad = cli(data, "device", "format", "fw1", "fortigat")
    assert bad.exit_code == 2 and "unknown format" in bad.output
    engine.dispose()
    assert dev["slug"] == "fw1"
