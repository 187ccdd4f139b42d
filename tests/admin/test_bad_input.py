"""bifrost-admin answers bad input and a missing, un-migrated or unreachable store with one line
on stderr and a non-zero exit code, never a traceback, and never creates a database."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from support.admin_fleet import Fleet
from typer.testing import CliRunner, Result

from bifrost.cli.admin import app
from bifrost.store import migrate

READS = (["gateways"], ["show", "infra/web"], ["history", "infra/web"], ["schedule"])


def _one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr + result.stdout
    return result.stderr


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(app, list(args))


def test_unknown_gateway_is_a_one_line_error(sqlite_fleet: Fleet) -> None:
    sqlite_fleet.gateway("infra", "web")
    for command in (["show"], ["history"], ["pause"], ["renew"], ["graph", "deliver",
                                                                 "--gateway"]):
        result = sqlite_fleet.admin(*command, "infra/nope")
        message = _one_line_error(result, 1)
        assert "gateway infra/nope is not in the store" in message


@pytest.mark.parametrize("name", ["web", "infra/", "/web", "a/b/c", "Infra/web", "infra/Web_1",
                                  "infra/-web", "x" * 64 + "/web"])
def test_malformed_gateway_name_is_bad_input(sqlite_fleet: Fleet, name: str) -> None:
    for command in ("show", "history", "retry"):
        message = _one_line_error(sqlite_fleet.admin(command, name), 2)
        assert f"gateway {name!r}" in message


def test_missing_sqlite_database_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "bifrost.db"
    for command in (*READS, ["pause", "infra/web"]):
        message = _one_line_error(_run(*command, "--database-url", f"sqlite:///{path}"), 1)
        assert f"no bifrost database at {path}: run `bifrost db upgrade`" in message
    assert not path.exists() and not path.parent.exists()


def test_the_default_database_comes_from_the_controllers_settings(
    tmp_path: Path, sqlite_fleet: Fleet
) -> None:
    sqlite_fleet.gateway("infra", "web")
    # BIFROST_DATA_DIR: the controller's default SQLite file
    message = _one_line_error(_run("gateways", env={"BIFROST_DATA_DIR": str(tmp_path / "d")}), 1)
    assert f"no bifrost database at {tmp_path / 'd' / 'bifrost.db'}" in message
    migrate.upgrade(f"sqlite:///{tmp_path / 'd' / 'bifrost.db'}")
    result = _run("gateways", env={"BIFROST_DATA_DIR": str(tmp_path / "d")})
    assert (result.exit_code, result.stdout.strip()) == (0, "no gateways in the store")
    # BIFROST_DATABASE_URL wins
    result = _run("gateways", "-o", "json", env={"BIFROST_DATABASE_URL": sqlite_fleet.url,
                                                 "BIFROST_DATA_DIR": str(tmp_path / "d")})
    assert result.exit_code == 0 and '"name": "web"' in result.stdout


def test_un_migrated_database_says_to_run_db_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).execute("CREATE TABLE unrelated (x INTEGER)").connection.close()
    for command in (*READS, ["retry", "infra/web"]):
        message = _one_line_error(_run(*command, "--database-url", f"sqlite:///{path}"), 1)
        assert "is at revision none (empty)" in message and "run `bifrost db upgrade`" in message


def test_not_a_database_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    message = _one_line_error(_run("gateways", "--database-url", f"sqlite:///{path}"), 1)
    assert "unavailable" in message


def test_unreachable_postgresql_is_a_one_line_error_without_the_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://bifrost:s3cret@127.0.0.1:{port}/bifrost"
    for command in (["gateways"], ["show", "infra/web"], ["cancel", "infra/web"]):
        message = _one_line_error(_run(*command, "--database-url", url), 1)
        assert "is unavailable" in message and "s3cret" not in message


def test_unsupported_database_url_is_a_one_line_error() -> None:
    message = _one_line_error(_run("gateways", "--database-url", "mysql://x@y/z"), 1)
    assert "unsupported database 'mysql'" in message


def test_unknown_machine_is_bad_input(sqlite_fleet: Fleet) -> None:
    message = _one_line_error(sqlite_fleet.admin("graph", "provision"), 2)
    assert "machine 'provision' is not known" in message and "deliver" in message


def test_bad_limits_are_bad_input(sqlite_fleet: Fleet) -> None:
    assert "--limit must be at least 1" in _one_line_error(
        sqlite_fleet.admin("history", "infra/web", "--limit", "0"), 2)
    assert "--interval must be positive" in _one_line_error(
        sqlite_fleet.admin("gateways", "--watch", "--interval", "0"), 2)


def test_invalid_settings_in_the_environment_are_bad_input() -> None:
    message = _one_line_error(_run("gateways", env={"BIFROST_JOURNAL_CAP_PER_GATEWAY": "many"}), 2)
    assert "invalid settings in the environment: BIFROST_JOURNAL_CAP_PER_GATEWAY" in message
