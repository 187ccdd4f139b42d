"""Every bad input a person can give ``bifrost`` and ``bifrost-admin`` ends in one line on stderr
and the exit code the README's CLI section documents — never a traceback.

The commands run as the installed console scripts (``bifrost.cli.entry``), in a process each, so
what is checked is what a person sees: bad option values, invalid ``BIFROST_*`` settings, a
corrupt, locked, missing or newer database, a missing kubeconfig, an unreachable cluster.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bifrost.store import open_store

BIN = Path(sys.executable).parent

USAGE, FAILURE = 2, 1  # bifrost.cli.entry / README: bad input, a failure of the store or cluster


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    code: int
    says: str  # a fragment the one line must contain: what is wrong, or where
    env: dict[str, str] = field(default_factory=dict)


def cases() -> list[Case]:
    """``{corrupt}``, ``{ok}``, ``{newer}``, ``{locked}``, ``{missing}``, ``{kc_unreachable}``,
    ``{tmp}``: filled in by the ``world`` fixture."""
    return [
        Case("run: --log-level foo", ["bifrost", "run", "--log-level", "foo"], USAGE,
             "'foo' is not a log level"),
        Case("dev: --log-level foo",
             ["bifrost", "dev", "--log-level", "foo", "--kubeconfig-out", "{tmp}/kc"], USAGE,
             "'foo' is not a log level"),
        Case("run: --workers x", ["bifrost", "run", "--workers", "x"], USAGE, "--workers"),
        Case("run: --metrics-bind-address nonsense",
             ["bifrost", "run", "--metrics-bind-address", "nonsense"], USAGE, "HOST:PORT"),
        Case("dev: --crds not a directory",
             ["bifrost", "dev", "--no-controller", "--crds", "{tmp}/none",
              "--kubeconfig-out", "{tmp}/kc"], USAGE, "is not a directory"),
        Case("unknown command", ["bifrost", "nosuch"], USAGE, "No such command"),
        Case("unknown option", ["bifrost", "db", "current", "--nosuch"], USAGE, "--nosuch"),
        Case("invalid BIFROST_* setting", ["bifrost", "db", "current"], USAGE,
             "BIFROST_JOURNAL_CAP_PER_GATEWAY", env={"BIFROST_JOURNAL_CAP_PER_GATEWAY": "x"}),
        Case("unsupported database URL", ["bifrost", "db", "current", "--database-url",
                                          "mysql://h/db"], FAILURE, "unsupported database"),
        Case("db current: corrupt SQLite", ["bifrost", "db", "current", "--database-url",
                                            "{corrupt}"], FAILURE, "file is not a database"),
        Case("db upgrade: corrupt SQLite", ["bifrost", "db", "upgrade", "--database-url",
                                            "{corrupt}"], FAILURE, "file is not a database"),
        Case("demo: corrupt SQLite", ["bifrost", "demo", "--database-url", "{corrupt}"],
             FAILURE, "file is not a database"),
        Case("db upgrade: locked SQLite", ["bifrost", "db", "upgrade", "--database-url",
                                           "{locked}"], FAILURE, "database is locked"),
        Case("run: locked SQLite", ["bifrost", "run", "--database-url", "{locked}",
                                    "--kubeconfig", "{kc_unreachable}"], FAILURE,
             "database is locked"),
        Case("db vacuum: locked SQLite", ["bifrost", "db", "vacuum", "--database-url",
                                          "{locked}"], FAILURE, "database is locked"),
        Case("db upgrade: database newer than the code",
             ["bifrost", "db", "upgrade", "--database-url", "{newer}"], FAILURE,
             "a newer bifrost migrated it"),
        Case("run: database newer than the code",
             ["bifrost", "run", "--database-url", "{newer}", "--kubeconfig",
              "{kc_unreachable}"], FAILURE, "a newer bifrost migrated it"),
        Case("db downgrade: unknown revision",
             ["bifrost", "db", "downgrade", "nosuch", "--database-url", "{ok}"], FAILURE,
             "nosuch"),
        Case("run: missing kubeconfig",
             ["bifrost", "run", "--database-url", "{ok}", "--kubeconfig", "{tmp}/no-kc"],
             FAILURE, "no-kc"),
        Case("run: unreachable cluster",
             ["bifrost", "run", "--database-url", "{ok}", "--kubeconfig", "{kc_unreachable}"],
             FAILURE, "cannot reach the API server"),
        Case("admin: unknown command", ["bifrost-admin", "nosuch"], USAGE, "No such command"),
        Case("admin: bad -o", ["bifrost-admin", "gateways", "-o", "xml", "--database-url",
                               "{ok}"], USAGE, "xml"),
        Case("admin: bad gateway reference", ["bifrost-admin", "history", "no-slash",
                                              "--database-url", "{ok}"], USAGE, "no-slash"),
        Case("admin: invalid BIFROST_* setting", ["bifrost-admin", "gateways"], USAGE,
             "BIFROST_JOURNAL_CAP_PER_GATEWAY", env={"BIFROST_JOURNAL_CAP_PER_GATEWAY": "x"}),
        Case("admin: missing database", ["bifrost-admin", "gateways", "--database-url",
                                         "{missing}"], FAILURE, "bifrost db upgrade"),
        Case("admin: corrupt SQLite", ["bifrost-admin", "gateways", "--database-url",
                                       "{corrupt}"], FAILURE, "file is not a database"),
        Case("admin: newer database", ["bifrost-admin", "gateways", "--database-url",
                                       "{newer}"], FAILURE, "a newer bifrost migrated it"),
        Case("admin: unknown gateway", ["bifrost-admin", "show", "apps/nosuch",
                                        "--database-url", "{ok}"], FAILURE, "apps/nosuch"),
        Case("admin: missing kubeconfig",
             ["bifrost-admin", "show", "apps/edge", "--database-url", "{ok}",
              "--kubeconfig", "{tmp}/no-kc"], FAILURE, "no-kc"),
        Case("admin: unreachable cluster",
             ["bifrost-admin", "show", "apps/edge", "--database-url", "{ok}",
              "--kubeconfig", "{kc_unreachable}"], FAILURE, "did not answer"),
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("cli-errors")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp / "state")}
    corrupt = tmp / "corrupt.db"
    corrupt.write_bytes(b"this is not a database\n" * 400)

    def migrated(name: str) -> Path:
        path = tmp / name
        subprocess.run([str(BIN / "bifrost"), "db", "upgrade", "--database-url",
                        f"sqlite:///{path}"], check=True, env=env, capture_output=True)
        return path

    ok, newer, locked = migrated("ok.db"), migrated("newer.db"), migrated("locked.db")
    store = open_store(f"sqlite:///{ok}")
    try:  # a Gateway bifrost-admin show can find, so it goes on to read the cluster
        store.upsert_gateway(uid="uid-edge", namespace="apps", name="edge", now=datetime.now(UTC))
    finally:
        store.close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    kubeconfig = tmp / "unreachable.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{_closed_port()}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n")
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # held for the module: every writer finds it locked
    try:
        yield {
            "tmp": str(tmp),
            "corrupt": f"sqlite:///{corrupt}",
            "ok": f"sqlite:///{ok}",
            "newer": f"sqlite:///{newer}",
            "locked": f"sqlite:///{locked}?timeout=0.2",
            "missing": f"sqlite:///{tmp / 'missing.db'}",
            "kc_unreachable": str(kubeconfig),
        }
    finally:
        holder.close()


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_one_line_documented_exit_code_no_traceback(case: Case, world: dict[str, str]) -> None:
    argv = [arg.format(**world) for arg in case.argv]
    env = {**os.environ, "XDG_STATE_HOME": str(Path(world["tmp"]) / "state"), "COLUMNS": "80",
           **case.env}
    env.pop("BIFROST_DATABASE_URL", None)
    env.pop("BIFROST_DEBUG", None)
    result = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                            env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert case.says in lines[0], lines[0]
    assert result.returncode == case.code, (result.returncode, lines[0])
    assert result.stdout == ""


def test_an_unexpected_error_is_one_line_too(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The net under every command: a bug is one line and exit 70 (BIFROST_DEBUG=1 re-raises)."""
    import typer

    from bifrost.cli.entry import EXIT_INTERNAL, run_app

    app = typer.Typer()

    @app.command()
    def broken() -> None:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.delenv("BIFROST_DEBUG", raising=False)
    assert run_app(app, "bifrost", []) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err == ("bifrost: internal error: RuntimeError: a bug over two lines "
                   "(BIFROST_DEBUG=1 shows the traceback; please report it)\n")
    monkeypatch.setenv("BIFROST_DEBUG", "1")
    with pytest.raises(RuntimeError):
        run_app(app, "bifrost", [])


def test_version_of_both_commands() -> None:
    from importlib.metadata import version

    for command in ("bifrost", "bifrost-admin"):
        result = subprocess.run([str(BIN / command), "--version"], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{command} (bifrost-gateway) {version('bifrost-gateway')}\n"
