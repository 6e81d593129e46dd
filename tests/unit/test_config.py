"""Settings: defaults, TOML, environment, command-line overrides, errors, and --help everywhere."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel
from typer.core import TyperGroup
from typer.testing import CliRunner

from logmaster.cli import app
from logmaster.config import (
    ArchiveSettings,
    CollectorSettings,
    Settings,
    describe,
    load_settings,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LOGMASTER_* variable of the machine running the tests leaks in."""
    for key in list(os.environ):
        if key.startswith("LOGMASTER_"):
            monkeypatch.delenv(key)


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """The CLI installs its own log handler on the root logger; put pytest's back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    alembic = logging.getLogger("alembic").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(alembic)


TOML = """
data_dir = "{data}"
log_level = "warning"

[collector]
udp = ["127.0.0.1:5514"]
max_message_bytes = 4096

[archive]
flush_interval_ms = 300
fsync = "never"

[devices]
default_timezone = "Europe/Berlin"
"""


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "logmaster.toml"
    path.write_text(TOML.format(data=tmp_path / "from-toml"))
    return path


# -- sources and priority -------------------------------------------------------------------


def test_defaults() -> None:
    """With no file, environment or flags every field has its documented default."""
    s = load_settings(None)
    assert s.data_dir == Path("/var/lib/logmaster")
    assert s.archive_dir == Path("/var/lib/logmaster/archive")
    assert s.db_url == "sqlite:////var/lib/logmaster/logmaster.db"
    assert s.log_level == "info"
    assert s.collector.udp == ["0.0.0.0:514", "[::]:514"]
    assert s.collector.tcp == ["0.0.0.0:514", "[::]:514"]
    assert s.collector.tls == ["0.0.0.0:6514", "[::]:6514"]
    assert s.collector.max_message_bytes == 64 * 1024
    assert s.collector.max_pending_devices == 1000
    assert s.archive.flush_interval_ms == 200
    assert s.archive.fsync == "interval"
    assert s.archive.max_open_files == 4096
    assert s.metrics.listen == "127.0.0.1:9514"
    assert s.devices.default_timezone == "Europe/Istanbul"
    # describe() shows the same defaults.
    rows = {name: default for name, default, _ in describe()}
    assert rows["archive.flush_interval_ms"] == "200"
    assert rows["devices.default_timezone"] == "'Europe/Istanbul'"


def test_toml_file(toml: Path, tmp_path: Path) -> None:
    """Values of the TOML file replace defaults; fields it does not name keep theirs."""
    s = load_settings(toml)
    assert s.data_dir == tmp_path / "from-toml"
    assert s.log_level == "warning"
    assert s.collector.udp == ["127.0.0.1:5514"]
    assert s.collector.tcp == ["0.0.0.0:514", "[::]:514"]
    assert s.collector.max_message_bytes == 4096
    assert (s.archive.flush_interval_ms, s.archive.fsync) == (300, "never")
    assert s.archive.max_open_files == 4096
    assert s.devices.default_timezone == "Europe/Berlin"


def test_toml_file_from_logmaster_config(
    toml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOGMASTER_CONFIG names the file when no path is given."""
    monkeypatch.setenv("LOGMASTER_CONFIG", str(toml))
    assert load_settings(None).data_dir == tmp_path / "from-toml"


def test_environment_overrides_toml(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGMASTER_* variables win over the file, nested ones field by field."""
    monkeypatch.setenv("LOGMASTER_LOG_LEVEL", "debug")
    monkeypatch.setenv("LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS", "50")
    monkeypatch.setenv("LOGMASTER_COLLECTOR__TCP", '["127.0.0.1:6000"]')
    monkeypatch.setenv("LOGMASTER_DATA_DIR", "/srv/logmaster")
    s = load_settings(toml)
    assert s.log_level == "debug"
    assert s.archive.flush_interval_ms == 50
    assert s.archive.fsync == "never"  # the file's other archive settings stay
    assert s.collector.udp == ["127.0.0.1:5514"]
    assert s.collector.tcp == ["127.0.0.1:6000"]
    assert s.data_dir == Path("/srv/logmaster")


def test_nested_environment_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS alone changes only that field."""
    monkeypatch.setenv("LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS", "75")
    monkeypatch.setenv("LOGMASTER_ARCHIVE__FSYNC", "message")
    s = load_settings(None)
    assert (s.archive.flush_interval_ms, s.archive.fsync) == (75, "message")
    assert s.archive.max_open_files == 4096


def test_command_line_overrides_win(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides (command-line flags) beat environment and file; None means not given."""
    monkeypatch.setenv("LOGMASTER_LOG_LEVEL", "debug")
    monkeypatch.setenv("LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS", "50")
    s = load_settings(
        toml,
        log_level="error",
        data_dir=Path("/cli/dir"),
        archive={"flush_interval_ms": 7},
        database_url=None,
    )
    assert s.log_level == "error"
    assert s.data_dir == Path("/cli/dir")
    assert s.archive.flush_interval_ms == 7
    assert s.archive.fsync == "never"
    assert s.database_url is None
    assert s.db_url == "sqlite:////cli/dir/logmaster.db"


def test_relative_data_dir_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative or ~ data_dir is made absolute at load time."""
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, data_dir=Path("rel")).data_dir == tmp_path / "rel"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings(None, data_dir=Path("~/x")).data_dir == tmp_path / "home" / "x"


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("collector", "message"),
    [
        ({"udp": ["nonsense"]}, r"'nonsense': expected HOST:PORT"),
        ({"tcp": ["::1:514"]}, r"write IPv6 listeners as \[ADDRESS\]:PORT"),
        ({"tcp": ["[::1]514"]}, r"write IPv6 listeners as \[ADDRESS\]:PORT"),
        ({"tls": ["[not-v6]:6514"]}, r"'not-v6' is not an IPv6 address"),
        ({"udp": ["0.0.0.0:70000"]}, r"port must be a number from 0 to 65535"),
        ({"udp": ["0.0.0.0:http"]}, r"port must be a number"),
    ],
)
def test_bad_listener_is_a_clear_value_error(collector: dict[str, list[str]], message: str) -> None:
    """A listener that is not HOST:PORT names itself and says what is expected."""
    with pytest.raises(ValueError, match=message):
        load_settings(None, collector=collector)


def test_bad_metrics_listener_is_a_value_error() -> None:
    """The metrics listener is checked like the others; empty disables it."""
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        load_settings(None, metrics={"listen": "9514"})
    assert load_settings(None, metrics={"listen": None}).metrics.listen is None


def test_bad_timezone_is_a_clear_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown default timezone is refused by name, from overrides and environment."""
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        load_settings(None, devices={"default_timezone": "Mars/Olympus"})
    monkeypatch.setenv("LOGMASTER_DEVICES__DEFAULT_TIMEZONE", "Europe/Atlantis")
    with pytest.raises(ValueError, match="unknown timezone 'Europe/Atlantis'"):
        load_settings(None)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"archive": {"fsync": "sometimes"}}, "archive.fsync"),
        ({"archive": {"flush_interval_ms": 0}}, "archive.flush_interval_ms"),
        ({"archive": {"max_open_files": 15}}, "archive.max_open_files"),
        ({"collector": {"max_message_bytes": 100}}, "collector.max_message_bytes"),
        ({"collector": {"workers": 65}}, "collector.workers"),
        ({"log_level": "verbose"}, "log_level"),
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"archive": {"no_such_setting": 1}}, "archive.no_such_setting"),
    ],
)
def test_out_of_range_and_unknown_settings_are_refused(
    overrides: dict[str, object], field: str
) -> None:
    """Limits, choices and unknown names are ValueErrors naming the field."""
    with pytest.raises(ValueError, match=re.escape(field)):
        load_settings(None, **overrides)


def test_unknown_key_in_toml_is_refused(tmp_path: Path) -> None:
    """A typo in the file is an error, not silently ignored."""
    path = tmp_path / "bad.toml"
    path.write_text("[archive]\nflush_interval = 5\n")
    with pytest.raises(ValueError, match=r"archive\.flush_interval"):
        load_settings(path)


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config path that does not exist is an error naming it (flag or LOGMASTER_CONFIG)."""
    with pytest.raises(FileNotFoundError, match=r"nope\.toml does not exist"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("LOGMASTER_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        load_settings(None)


# -- describe and `logmaster config` ----------------------------------------------------------


def leaf_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field name; a list of models is named itself and then its items' fields."""
    names = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names += leaf_fields(ann, f"{prefix}{name}.")
            continue
        names.append(prefix + name)
        item = ann.__args__[0] if getattr(ann, "__origin__", None) is list else None
        if isinstance(item, type) and issubclass(item, BaseModel):
            names += leaf_fields(item, f"{prefix}{name}[].")
    return names


def test_every_field_is_described() -> None:
    """describe() lists every leaf field once, each with a sentence of description."""
    rows = describe()
    names = [name for name, _, _ in rows]
    assert names == leaf_fields(Settings)
    assert len(set(names)) == len(names)
    assert "archive.flush_interval_ms" in names
    assert "collector.max_pending_devices" in names
    assert {"tsa.servers", "tsa.servers[].url", "tsa.servers[].accredited"} <= set(names)
    assert dict((n, d) for n, d, _ in rows)["tsa.servers[].name"] == "(required)"
    for name, _default, text in rows:
        assert text.strip(), f"{name} has no description"
        assert len(text) > 15, f"{name}: description too short: {text!r}"
    for model in (CollectorSettings, ArchiveSettings):
        assert model.__doc__


def test_config_command_lists_every_field() -> None:
    """`python -m logmaster config` prints every setting name and its description."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGMASTER_")}
    res = subprocess.run(
        [sys.executable, "-m", "logmaster", "config"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "400"},
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    flat = " ".join(res.stdout.split())
    for name, _default, text in describe():
        assert re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", res.stdout), name
        assert " ".join(text.split()) in flat, f"description of {name} missing"
    assert "LOGMASTER_" in res.stdout


def test_config_show_prints_effective_values(
    toml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_logging: None
) -> None:
    """`logmaster config --show`: JSON of the merged settings; --data-dir beats env and file."""
    monkeypatch.setenv("LOGMASTER_ARCHIVE__FLUSH_INTERVAL_MS", "55")
    res = CliRunner().invoke(
        app, ["config", "--show", "--config", str(toml), "--data-dir", str(tmp_path / "flag")]
    )
    assert res.exit_code == 0, res.output
    shown = json.loads(res.stdout)
    assert shown["data_dir"] == str(tmp_path / "flag")
    assert shown["archive"]["flush_interval_ms"] == 55
    assert shown["archive"]["fsync"] == "never"
    assert shown["log_level"] == "warning"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOGMASTER_COLLECTOR__UDP": '["bad"]'}, "'bad': expected HOST:PORT"),
        ({"LOGMASTER_DEVICES__DEFAULT_TIMEZONE": "Mars/X"}, "unknown timezone 'Mars/X'"),
        ({"LOGMASTER_CONFIG": "/nonexistent/lm.toml"}, "does not exist"),
    ],
)
def test_cli_reports_bad_settings_with_exit_2(
    env: dict[str, str], message: str, keep_logging: None
) -> None:
    """Bad settings reach the operator as one error message and exit code 2."""
    res = CliRunner().invoke(app, ["config", "--show"], env=env)
    assert res.exit_code == 2, res.output
    assert "error:" in res.stderr
    assert message in " ".join(res.stderr.split())


# -- --help everywhere ----------------------------------------------------------------------


def command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the app: the root, each command and each sub-command."""
    paths = [prefix]
    if isinstance(group, TyperGroup):
        for name, cmd in sorted(group.commands.items()):
            paths += command_paths(cmd, (*prefix, name))
    return paths


ALL_COMMANDS = command_paths(typer.main.get_command(app))


def test_the_command_tree_is_complete() -> None:
    """The walk finds the documented commands and sub-commands."""
    names = {" ".join(p) for p in ALL_COMMANDS}
    expected = {
        "",
        "init",
        "config",
        "collect",
        "run",
        "loadgen",
        "device",
        "device add",
        "device list",
        "device approve",
        "device reject",
        "device retire",
        "archive",
        "archive verify",
        "archive stats",
    }
    assert expected <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "logmaster")
def test_every_command_answers_help(path: tuple[str, ...]) -> None:
    """`logmaster ... --help` exits 0 with a usage line and a description for every command."""
    res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.stdout
    assert f"{' '.join(path)}".strip() in res.stdout
    # The command's docstring (its help text) is shown.
    cmd: Any = typer.main.get_command(app)
    for part in path:
        assert isinstance(cmd, TyperGroup)
        cmd = cmd.commands[part]
    assert cmd.help, f"{' '.join(path)} has no help text"
    assert " ".join(cmd.help.split()[:4]) in " ".join(res.stdout.split())


def test_version() -> None:
    """`logmaster --version` prints the version and exits 0."""
    from logmaster import __version__

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert __version__ in res.stdout
