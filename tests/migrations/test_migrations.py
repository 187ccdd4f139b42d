"""Migrations: upgrade to head matches the tables exactly (drift check), downgrade works, and a
database from a newer bifrost is refused with a clear message — through the CLI too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from bifrost.cli.main import app
from bifrost.records import EngineBookkeeping
from bifrost.store import SchemaMismatch, migrate, open_store
from bifrost.store.sql import connect
from bifrost.store.sql.tables import metadata

runner = CliRunner()
HEAD = "0005"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
    else:
        yield request.getfixturevalue("fresh_postgres_url")


def _tables(url: str) -> set[str]:
    engine, _ = connect(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _set_revision(url: str, revision: str) -> None:
    engine, _ = connect(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def test_upgrade_to_head_has_no_drift_from_the_tables(empty_url: str) -> None:
    assert migrate.current(empty_url) is None
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) == migrate.head() == HEAD
    engine, _ = connect(empty_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
    assert diffs == []
    assert {"gateways", "operations", "journal", "certificates", "children"} <= _tables(empty_url)
    engine, _ = connect(empty_url)
    try:
        indexes = {i["name"]: i for i in inspect(engine).get_indexes("operations")}
    finally:
        engine.dispose()
    lane = indexes["uq_operations_active_lane"]
    assert lane["unique"] and lane["column_names"] == ["gateway_uid", "lane"]
    migrate.check(empty_url)
    migrate.upgrade(empty_url)  # idempotent
    assert migrate.current(empty_url) == HEAD


def test_drift_check_detects_a_difference(empty_url: str) -> None:
    """The drift check is not vacuous: a column missing from the database shows up."""
    migrate.upgrade(empty_url)
    engine, _ = connect(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE gateways DROP COLUMN last_error"))
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert [d[0] for d in diffs] == ["add_column"]


def test_downgrade_to_base_removes_everything(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    migrate.downgrade(empty_url, "base")
    assert migrate.current(empty_url) is None
    assert _tables(empty_url) <= {"alembic_version"}
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) == HEAD


def _stored(url: str, when: datetime) -> datetime:
    """A time as the store keeps it: SQLite naive UTC (see tables.UTCDateTime), PostgreSQL
    aware."""
    return when if url.startswith("postgresql") else when.replace(tzinfo=None)


def _execute(url: str, sql: str, **params: object) -> None:
    engine, _ = connect(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _scalar(url: str, sql: str, **params: object) -> object:
    engine, _ = connect(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


def _insert_gateway(url: str, now: datetime) -> None:
    _execute(
        url,
        "INSERT INTO gateways (uid, namespace, name, lifecycle_state, created_at, updated_at) "
        "VALUES ('u1', 'ns', 'gw', 'pending', :t, :t)",
        t=_stored(url, now),
    )


def _insert_operation(
    url: str, now: datetime, *, context: str = "{}", state: str = "render", status: str = "waiting"
) -> int:
    """An operation of gateway 'u1' and its 'created' journal row, as the code of revisions
    0001-0002 wrote them; its id."""
    t = _stored(url, now)
    engine, _ = connect(url)
    try:
        with engine.begin() as conn:
            operation_id = conn.execute(
                text(
                    "INSERT INTO operations (gateway_uid, namespace, name, machine, "
                    "machine_version, lane, state, status, context, step, attempt, version, "
                    "last_sequence, created_at, updated_at) VALUES ('u1', 'ns', 'gw', "
                    "'provision', 1, 'default', :state, :status, :context, NULL, 0, 1, 1, :t, "
                    ":t) RETURNING id"
                ),
                {"state": state, "status": status, "context": context, "t": t},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO journal (operation_id, gateway_uid, sequence, state, attempt, "
                    "outcome, message, actor, started_at, finished_at) VALUES (:id, 'u1', 1, "
                    ":state, 0, 'transition', 'created', 'test', :t, :t)"
                ),
                {"id": operation_id, "state": state, "t": t},
            )
    finally:
        engine.dispose()
    return int(operation_id)


def test_0002_input_hash_up_and_down_keeps_every_row(empty_url: str) -> None:
    """Adding and dropping ``gateways.input_hash`` never recreates the table: on SQLite a
    "move and copy" batch would DROP ``gateways`` and cascade into operations and journal."""
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    migrate.upgrade(empty_url, "0001")
    _insert_gateway(empty_url, now)
    migrate.upgrade(empty_url, "0002")
    # The store code needs head: at 0002 the rows are read and written by hand.
    assert _scalar(empty_url, "SELECT input_hash FROM gateways WHERE uid = 'u1'") is None
    _insert_operation(empty_url, now)
    _execute(empty_url, "UPDATE gateways SET input_hash = :h WHERE uid = 'u1'", h="ab" * 32)
    assert _scalar(empty_url, "SELECT input_hash FROM gateways WHERE uid = 'u1'") == "ab" * 32

    migrate.downgrade(empty_url, "0001")
    engine, _ = connect(empty_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("gateways")}
        with engine.connect() as conn:
            counts = [
                conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("gateways", "operations", "journal")
            ]
    finally:
        engine.dispose()
    assert "input_hash" not in columns
    assert counts == [1, 1, 1]
    migrate.upgrade(empty_url)
    store = open_store(empty_url)
    try:
        assert store.get_gateway("u1").input_hash is None
        assert len(store.list_operations(gateway_uid="u1")) == 1
    finally:
        store.close()


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _contexts(url: str) -> dict[int, str]:
    engine, _ = connect(url)
    try:
        with engine.connect() as conn:
            return {row.id: row.context
                    for row in conn.execute(text("SELECT id, context FROM operations"))}
    finally:
        engine.dispose()


def test_0003_moves_the_engine_bookkeeping_out_of_the_context_and_back(empty_url: str) -> None:
    """Upgrade with operations present: the ``"_engine"`` object of each context becomes the
    engine_* columns (read back as ``OperationRecord.bookkeeping``) and leaves the context;
    downgrade puts it back exactly as the engine wrote it; up again gives the same records."""
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    since = datetime(2026, 3, 1, 12, 0, 4, 250, tzinfo=UTC)
    envelope = {"state": "verify", "step": "check", "input": {"issued": False, "n": 1},
                "since": since.isoformat(), "failures": 2, "finished": 3,
                "error": "probe refused", "failed": True}
    migrate.upgrade(empty_url, "0002")
    _insert_gateway(empty_url, now)
    before = {
        "kept": _compact({"hosts": ["a.example"], "_engine": envelope}),
        # an operation that finished: the engine had dropped its bookkeeping
        "plain": _compact({"hosts": []}),
        # not an object: left where it is, for the runner to report
        "odd": _compact({"hosts": [], "_engine": [1, 2]}),
    }
    ids = {}
    for lane, context in before.items():
        ids[lane] = _insert_operation(empty_url, now, context=context,
                                      status="succeeded" if lane == "plain" else "waiting")
        _execute(empty_url, "UPDATE operations SET lane = :lane WHERE id = :id",
                 lane=lane, id=ids[lane])

    def check_upgraded() -> None:
        store = open_store(empty_url)
        try:
            kept = store.get_operation(ids["kept"])
            assert kept.context == {"hosts": ["a.example"]}
            assert "_engine" not in kept.context_raw
            assert kept.bookkeeping == EngineBookkeeping(
                state="verify", step="check", input={"issued": False, "n": 1},
                input_raw='{"issued":false,"n":1}', since=since, failures=2, finished=3,
                error="probe refused", failed=True,
            )
            plain = store.get_operation(ids["plain"])
            assert (plain.context, plain.bookkeeping) == ({"hosts": []}, EngineBookkeeping())
            odd = store.get_operation(ids["odd"])
            assert odd.context == {"hosts": [], "_engine": [1, 2]}
            assert odd.bookkeeping == EngineBookkeeping()
            assert len(store.journal(gateway_uid="u1")) == 3
        finally:
            store.close()

    migrate.upgrade(empty_url)  # through 0003 (the store opens only at the head revision)
    check_upgraded()

    migrate.downgrade(empty_url, "0002")
    engine, _ = connect(empty_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("operations")}
    finally:
        engine.dispose()
    assert not {c for c in columns if c.startswith("engine_")}
    assert _contexts(empty_url) == {ids[lane]: context for lane, context in before.items()}

    migrate.upgrade(empty_url)
    check_upgraded()


def test_database_from_a_newer_bifrost_is_refused(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    _set_revision(empty_url, "9999")

    with pytest.raises(SchemaMismatch, match="revision 9999.*does not know"):
        open_store(empty_url)
    with pytest.raises(SchemaMismatch, match="does not know"):
        migrate.check(empty_url)
    with pytest.raises(SchemaMismatch, match="does not know"):
        migrate.upgrade(empty_url)
    with pytest.raises(SchemaMismatch, match="does not know"):
        migrate.downgrade(empty_url, "base")
    assert migrate.current(empty_url) == "9999"  # untouched

    result = runner.invoke(app, ["db", "upgrade", "--database-url", empty_url])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "revision 9999" in lines[0] and "does not know" in lines[0]
    assert "Traceback" not in result.stderr

    current = runner.invoke(app, ["db", "current", "--database-url", empty_url])
    assert current.exit_code == 0
    assert current.stdout.startswith("9999 (unknown to this code")


def test_cli_upgrade_current_downgrade(empty_url: str) -> None:
    before = runner.invoke(app, ["db", "current", "--database-url", empty_url])
    assert before.exit_code == 0, before.output
    assert before.stdout.startswith("none (empty")

    up = runner.invoke(app, ["db", "upgrade", "--database-url", empty_url])
    assert up.exit_code == 0, up.output
    assert up.stdout.strip().endswith(f"is at revision {HEAD}")

    now = runner.invoke(app, ["db", "current", "--database-url", empty_url])
    assert now.stdout.strip() == f"{HEAD} (head)"

    down = runner.invoke(app, ["db", "downgrade", "base", "--database-url", empty_url])
    assert down.exit_code == 0, down.output
    assert migrate.current(empty_url) is None


def test_cli_expected_failures_are_one_line_without_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    for args in (
        ["db", "downgrade", "0042", "--database-url", url],
        ["db", "upgrade", "--revision", "nope", "--database-url", url],
        ["db", "upgrade", "--database-url", "postgresql://u:pw@127.0.0.1:1/db"],
        ["db", "current", "--database-url", "mysql://u@localhost/db"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.stderr.splitlines()) == 1, (args, result.stderr)
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr


def test_bifrost_db_upgrade_works_from_any_directory_with_the_default_url(
    tmp_path: Path,
) -> None:
    """The installed command finds the migrations without an alembic.ini in the cwd and puts
    the default SQLite database under BIFROST_DATA_DIR."""
    bifrost = Path(sys.executable).with_name("bifrost")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIFROST_")}
    env["BIFROST_DATA_DIR"] = str(tmp_path / "data")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    up = subprocess.run(
        [str(bifrost), "db", "upgrade"], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "data" / "bifrost.db").is_file()
    current = subprocess.run(
        [str(bifrost), "db", "current"], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert current.stdout.strip() == f"{HEAD} (head)"
