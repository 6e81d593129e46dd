"""deploy/README.md: every ``logmaster`` command it tells the operator to type exists, with the
options it shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from logmaster.cli import app

README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
GROUPS = {"device", "archive", "user", "audit", "keys", "tsa", "compliance"}


def commands() -> list[list[str]]:
    """``logmaster ...`` invocations of the README (code blocks and inline code)."""
    text = README.read_text().replace("\\\n", " ")
    found = []
    # Zero-width, so "sudo -u logmaster logmaster verify" yields "logmaster verify" too.
    for m in re.finditer(r"(?<![-\w.=])(?=logmaster ([a-z][a-z-]*(?: [^`\n|;&#]*)?))", text):
        try:
            words = shlex.split(m.group(1))
        except ValueError:
            words = m.group(1).split()
        if words[0] != "logmaster":
            found.append(words)
    return found


def test_readme_commands_exist() -> None:
    names = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    names |= {g.name for g in app.registered_groups if g.name}
    runner = CliRunner()
    checked = set()
    for words in commands():
        path = words[:2] if words[0] in GROUPS and len(words) > 1 else words[:1]
        assert path[0] in names, f"README: unknown command logmaster {' '.join(words)}"
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (words, result.output)
        for opt in (w.split("=")[0] for w in words if w.startswith("--")):
            assert opt in result.output, f"README: logmaster {' '.join(path)} has no {opt}"
        checked.add(" ".join(path))
    assert {"init", "keys init", "serve", "backup", "restore", "verify", "device add"} <= checked
