"""``bifrost demo`` end to end: the real engine on SQLite drives real objects in the devcluster
(issuer, load balancer and TLS data plane peers), verifies the served certificate with a real
handshake, and tears everything down."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bifrost.cli.main import app


def test_demo_runs_the_tour_and_verifies_the_served_certificate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(app, ["demo", "--json", "--database-url", url, "--timeout", "90"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True

    # part 1: the controller provisioned the in-cluster example, then tore it down
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
    assert report["operation"]["status"] == "succeeded"
    assert report["operation"]["state"] == "done"

    v = report["verification"]
    assert v["served_fingerprint"] == v["issued_fingerprint"]
    assert len(v["served_fingerprint"]) == 64
    assert v["served_from"].startswith("127.0.0.1:")

    kinds = sorted(child.split(" ")[0] for child in report["children"])
    assert kinds == ["cert-manager.io/v1/Certificate", "gateway.networking.k8s.io/v1/Gateway"]
    assert report["children_left_after_teardown"] == []

    # the store recorded the certificate (no key material) and, after teardown, that it is gone
    [cert] = report["certificates_recorded"]
    assert cert["fingerprint_sha256"] == v["issued_fingerprint"]
    assert cert["state"] == "deleted"

    # every step finished exactly once, in machine order
    done = [j["step"] for j in report["journal"] if j["outcome"] == "done"]
    assert done == [
        "apply_certificate",
        "wait_issued",
        "apply_child_gateway",
        "wait_programmed",
        "probe_tls",
        "record_certificate",
        "remove_children",
    ]
    sequences = [j["sequence"] for j in report["journal"]]
    assert sequences == list(range(1, len(sequences) + 1))


def test_demo_history_is_readable_with_bifrost_admin(tmp_path: Path) -> None:
    from bifrost.cli.admin import app as admin_app

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert CliRunner().invoke(app, ["demo", "--json", "--database-url", url]).exit_code == 0
    result = CliRunner().invoke(
        admin_app, ["history", "demo/edge", "--database-url", url, "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    history = json.loads(result.stdout)
    assert [op["summary"]["machine"] for op in history["operations"]] == ["edge_certificate"]
    assert history["operations"][0]["summary"]["status"] == "succeeded"
