"""``--help`` reads as sentences: a docstring's line breaks are not carried into the output (help is
rendered as Markdown), so on a wide terminal every command's summary is one line, and completion
and ``--version`` are offered."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from bifrost.cli.admin import app as admin_app
from bifrost.cli.main import app


def _help(target: typer.Typer, *args: str) -> list[str]:
    result = CliRunner().invoke(target, [*args, "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def _line_with(lines: list[str], start: str) -> str:
    (line,) = [x for x in lines if x.strip(" │").startswith(start)]
    return line


@pytest.mark.parametrize(("target", "args", "entry", "ends"), [
    (app, (), "dev ", "the bifrost controller until interrupted."),
    (app, ("db",), "vacuum ", "prints what it removed."),
    (admin_app, (), "gateways ", "next renewal, last error."),
    (admin_app, (), "show ", "listeners and addresses beside them."),
])
def test_command_summaries_are_one_line(target: typer.Typer, args: tuple[str, ...], entry: str,
                                        ends: str) -> None:
    assert _line_with(_help(target, *args), entry).rstrip(" │").endswith(ends)


def test_a_command_description_is_one_paragraph() -> None:
    lines = _help(app, "dev")
    assert any(x.strip().startswith("Run a local Kubernetes-compatible API server") and
               x.strip().endswith("controller until interrupted.") for x in lines), lines


@pytest.mark.parametrize("target", [app, admin_app])
def test_version_and_completion_are_offered(target: typer.Typer) -> None:
    text = "\n".join(_help(target))
    for option in ("--version", "--install-completion", "--show-completion"):
        assert option in text


def test_the_installed_command_completes_subcommands() -> None:
    """Shell completion through the console script (bifrost.cli.entry), as bash asks for it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "_BIFROST_COMPLETE": "complete_bash", "COMP_WORDS": "bifrost d",
           "COMP_CWORD": "1"}
    result = subprocess.run([str(Path(sys.executable).parent / "bifrost")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"dev", "demo", "db"}
