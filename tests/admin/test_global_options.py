"""``--database-url`` and ``-o/--output`` before the subcommand (as with kubectl), after it (as
always), and the rule when both are given: the subcommand's own option wins, then the one
before the subcommand, then ``BIFROST_DATABASE_URL``."""

from __future__ import annotations

import json
from pathlib import Path

from support.admin_fleet import Fleet
from typer.testing import CliRunner, Result

from bifrost.cli.admin import app
from bifrost.store import migrate


def _invoke(fleet: Fleet, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(app, list(args), obj=fleet.env())


def _names(stdout: str) -> list[str]:
    return [f"{g['namespace']}/{g['name']}" for g in json.loads(stdout)["gateways"]]


def _other_store(tmp_path: Path) -> str:
    """An empty, migrated store: a command reading it lists no gateway."""
    url = f"sqlite:///{(tmp_path / 'other.db').as_posix()}"
    migrate.upgrade(url)
    return url


def test_database_url_and_output_before_the_subcommand(sqlite_fleet: Fleet) -> None:
    sqlite_fleet.gateway("infra", "web")
    result = _invoke(sqlite_fleet, "--database-url", sqlite_fleet.url, "-o", "json", "gateways")
    assert result.exit_code == 0, result.output
    assert _names(result.stdout) == ["infra/web"]

    result = _invoke(sqlite_fleet, "--database-url", sqlite_fleet.url, "--output", "yaml",
                     "show", "infra/web")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("kind: GatewayDetail") or "kind: GatewayDetail" in result.stdout


def test_the_spelling_after_the_subcommand_still_works(sqlite_fleet: Fleet) -> None:
    sqlite_fleet.gateway("infra", "web")
    result = _invoke(sqlite_fleet, "gateways", "--database-url", sqlite_fleet.url, "-o", "json")
    assert result.exit_code == 0, result.output
    assert _names(result.stdout) == ["infra/web"]


def test_the_subcommands_option_wins_over_the_global_one(
    sqlite_fleet: Fleet, tmp_path: Path
) -> None:
    sqlite_fleet.gateway("infra", "web")
    other = _other_store(tmp_path)
    result = _invoke(sqlite_fleet, "--database-url", other, "-o", "table",
                     "gateways", "--database-url", sqlite_fleet.url, "-o", "json")
    assert result.exit_code == 0, result.output
    assert _names(result.stdout) == ["infra/web"]

    result = _invoke(sqlite_fleet, "--database-url", sqlite_fleet.url, "-o", "json",
                     "gateways", "--database-url", other)
    assert result.exit_code == 0, result.output
    assert _names(result.stdout) == []


def test_the_global_option_wins_over_the_environment(
    sqlite_fleet: Fleet, tmp_path: Path
) -> None:
    sqlite_fleet.gateway("infra", "web")
    other = _other_store(tmp_path)
    env = {"BIFROST_DATABASE_URL": other}
    result = _invoke(sqlite_fleet, "--database-url", sqlite_fleet.url, "gateways", "-o", "json",
                     env=env)
    assert result.exit_code == 0, result.output
    assert _names(result.stdout) == ["infra/web"]
    # Without it, the environment is read as before.
    result = _invoke(sqlite_fleet, "gateways", "-o", "json", env=env)
    assert result.exit_code == 0, result.output
    assert _names(result.stdout) == []


def test_actions_take_the_global_options(sqlite_fleet: Fleet) -> None:
    web = sqlite_fleet.gateway("infra", "web")
    sqlite_fleet.start(web)
    result = _invoke(sqlite_fleet, "--database-url", sqlite_fleet.url, "-o", "json",
                     "pause", "infra/web", "--actor", "ops@test")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["action"], doc["to_status"]) == ("pause", "paused")


def test_help_states_the_rule() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--database-url" in text and "--output" in text
    assert "the subcommand's wins" in text
