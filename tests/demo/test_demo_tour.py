"""``bifrost demo`` end to end: the real controller and engine on SQLite drive real objects in the
devcluster (issuer, load balancer and TLS data plane peers): provision, a certificate rotation
under verified TLS handshakes, and the ordered teardown."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bifrost.cli.main import app


def test_demo_runs_the_tour_and_rotates_under_verified_handshakes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(app, ["demo", "--json", "--database-url", url, "--timeout", "90"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True

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


def test_demo_history_is_readable_with_bifrost_admin(tmp_path: Path) -> None:
    from bifrost.cli.admin import app as admin_app

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert CliRunner().invoke(app, ["demo", "--json", "--database-url", url]).exit_code == 0
    result = CliRunner().invoke(
        admin_app, ["history", "apps/edge", "--database-url", url, "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    history = json.loads(result.stdout)
    assert sorted(op["summary"]["machine"] for op in history["operations"]) == [
        "provision", "rotate_certificate", "teardown"]
    assert all(op["summary"]["status"] == "succeeded" for op in history["operations"])
