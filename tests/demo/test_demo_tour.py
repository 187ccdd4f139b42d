"""``bifrost demo`` end to end: the real controller and engine on SQLite drive real objects in the
devcluster (issuer, load balancer and TLS data plane peers): provision, a certificate rotation
under verified TLS handshakes, and the ordered teardown. The text a person reads comes in order,
part by part, and carries the same data as ``--json``; the store goes to the state directory,
never the working directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bifrost.cli.demo import (
    PART_1,
    PART_2,
    PART_3,
    provision_lines,
    rotation_lines,
    teardown_lines,
    verdict_lines,
)
from bifrost.cli.main import app


def _in_order(lines: list[str], *prefixes: str) -> None:
    """Each prefix starts a line, and the first such lines come in the given order."""
    at = [next(i for i, line in enumerate(lines) if line.startswith(p)) for p in prefixes]
    assert at == sorted(at), list(zip(prefixes, at, strict=True))


def test_demo_runs_the_tour_and_rotates_under_verified_handshakes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(app, ["demo", "--json", "--database-url", url, "--timeout", "90"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["database"] == url

    # the controller provisioned the in-cluster example, then tore it down
    c = report["controller"]
    programmed = {x["type"]: x for x in c["gateway_status"]["conditions"]}
    assert programmed["Programmed"]["status"] == "True"
    assert programmed["Accepted"]["status"] == "True"
    ids = {child["id"] for child in c["children"]}
    (cert_id,) = [i for i in ids if i.startswith("tls:")]  # the certificate spec.tls manages
    assert ids == {"settings", "child", cert_id}
    assert all(child["ready"] for child in c["children"])
    assert c["replicas_from_policy"] == "3"  # the namespace policy beat the blueprint default
    assert [(o["machine"], o["status"]) for o in c["operations"]] == [
        ("provision", "succeeded"),
        ("rotate_certificate", "succeeded"),
        ("teardown", "succeeded"),
    ]
    # the rotation replaced the certificate while handshakes went on, none failing
    r = c["rotation"]
    assert r["ok"] is True and r["failures"] == 0 and r["handshakes"] > 0
    assert r["old"] == cert_id.removeprefix("tls:") and r["new"] != [r["old"]]
    assert r["fingerprints_served"] == 2
    assert c["deleted"] is True
    assert c["children_left_after_teardown"] == []

    # The text (on stderr with --json) is the JSON's data: each part's summary, formatted from
    # the report, appears verbatim and in its part.
    text = result.stderr.splitlines()
    summary = [*provision_lines(c), *rotation_lines(r), *teardown_lines(c),
               *verdict_lines(report)]
    for line in summary:
        assert line in text, line
    assert f"store written to {tmp_path / 'demo.db'}" in text
    _in_order(text, PART_1, "  applied Gateway apps/edge", provision_lines(c)[0], PART_2,
              "rotating ", rotation_lines(r)[0], PART_3, teardown_lines(c)[0], "OK;")


def test_demo_text_in_order_store_in_the_state_dir_read_by_bifrost_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --database-url the demo writes SQLite under $XDG_STATE_HOME/bifrost, not into the
    working directory, and says so; bifrost-admin finds it there by the same default."""
    from bifrost.cli.admin import app as admin_app

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("BIFROST_DATA_DIR", raising=False)
    monkeypatch.delenv("BIFROST_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    result = CliRunner().invoke(app, ["demo", "--timeout", "90"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    _in_order(lines, PART_1, "  applied Gateway apps/edge", "  child ", PART_2, "rotating ",
              "  done/-", "  certificate rotation ", PART_3, "  operation 3 teardown", "OK;")
    database = tmp_path / "state" / "bifrost" / "bifrost.db"
    assert lines[-1] == f"store written to {database}"
    assert database.is_file()
    assert list(workdir.iterdir()) == []

    history = CliRunner().invoke(admin_app, ["history", "apps/edge", "--output", "json"])
    assert history.exit_code == 0, history.output
    operations = json.loads(history.stdout)["operations"]
    assert sorted(op["summary"]["machine"] for op in operations) == [
        "provision", "rotate_certificate", "teardown"]
    assert all(op["summary"]["status"] == "succeeded" for op in operations)
