"""Every machine's operations are announced on the Gateway with the same Event shape:
``<Machine>Started`` / ``<Machine>Succeeded`` / ``<Machine>Failed``, ``action`` the machine,
``regarding`` the Gateway (with its uid), the note ``operation <id> (<machine>) …``. The
teardown's end is announced although its last step removed the finalizer and the Gateway is
gone by then: the Event regards the Gateway that was (same namespace, name and uid)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from events_kit import Running
from support.builders import gateway_class
from support.waiting import wait_for
from typer.testing import CliRunner

from bifrost.cli.admin import AdminEnv, app

REPO = Path(__file__).resolve().parents[2]
GATEWAY_API = "gateway.networking.k8s.io/v1"


def _blueprint(name: str) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load(
        (REPO / "examples" / "in-cluster" / "10-blueprint.yaml").read_text()))
    doc["metadata"] = {"name": name}
    doc["spec"]["tls"]["drainSeconds"] = 0
    return dict(doc)


def _gateway(namespace: str, name: str, class_name: str) -> dict[str, Any]:
    return {"apiVersion": GATEWAY_API, "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": class_name, "listeners": [
                {"name": "https", "protocol": "HTTPS", "port": 443,
                 "hostname": "ev.example.com",
                 "tls": {"certificateRefs": [{"name": f"{name}-user-tls"}]}}]}}


def _operation_events(run: Running, uid: str) -> list[dict[str, Any]]:
    items, _ = run.kube.list("events.k8s.io/v1", "Event", run.namespace)
    return sorted((e for e in items if (e.get("regarding") or {}).get("uid") == uid
                   and re.match(r"^(Provision|RotateCertificate|Teardown)(Started|Succeeded|"
                                r"Failed)$", str(e.get("reason")))),
                  key=lambda e: str(e.get("eventTime") or ""))


def _op_id(event: dict[str, Any]) -> int:
    found = re.match(r"^operation (\d+) \(", str(event.get("note")))
    assert found, event.get("note")
    return int(found.group(1))


def test_provision_rotation_and_teardown_each_get_started_and_succeeded(
    running: Running,
) -> None:
    run, ns = running, running.namespace
    run.kube.apply(_blueprint(f"bp-{ns}"))
    run.kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
    uid = str(run.kube.apply(_gateway(ns, "edge", f"gc-{ns}"))["metadata"]["uid"])

    def reasons() -> set[str]:
        return {str(e["reason"]) for e in _operation_events(run, uid)}

    wait_for(lambda: {"ProvisionStarted", "ProvisionSucceeded"} <= reasons(), timeout=60,
             what="the provision's Events")

    renew = CliRunner().invoke(app, ["--database-url", run.url, "renew", f"{ns}/edge",
                                     "--actor", "ops@test"], obj=AdminEnv())
    assert renew.exit_code == 0, renew.output
    wait_for(lambda: {"RotateCertificateStarted", "RotateCertificateSucceeded"} <= reasons(),
             timeout=60, what="the rotation's Events")

    run.kube.delete(GATEWAY_API, "Gateway", "edge", ns)
    wait_for(lambda: run.kube.get(GATEWAY_API, "Gateway", "edge", ns) is None, timeout=60,
             what="the Gateway gone after its teardown")
    wait_for(lambda: {"TeardownStarted", "TeardownSucceeded"} <= reasons(), timeout=30,
             what="the teardown's Events, after the Gateway is gone")

    ops = {o.id: o for o in run.store.list_operations(gateway_uid=uid)}
    events = _operation_events(run, uid)
    by_reason = {str(e["reason"]): e for e in events}
    for machine, prefix in (("provision", "Provision"), ("rotate_certificate",
                                                         "RotateCertificate"),
                            ("teardown", "Teardown")):
        started, succeeded = by_reason[f"{prefix}Started"], by_reason[f"{prefix}Succeeded"]
        for event in (started, succeeded):
            assert event["type"] == "Normal" and event["action"] == prefix
            assert event["regarding"] == {"apiVersion": GATEWAY_API, "kind": "Gateway",
                                          "namespace": ns, "name": "edge", "uid": uid} | {
                k: v for k, v in event["regarding"].items()
                if k not in ("apiVersion", "kind", "namespace", "name", "uid")}
        op = ops[_op_id(started)]
        assert op.machine == machine and _op_id(succeeded) == op.id
        assert str(started["note"]).startswith(f"operation {op.id} ({machine}) started")
        assert succeeded["note"] == f"operation {op.id} ({machine}) succeeded"
    # A machine that records why it runs says so in its Started note.
    assert str(by_reason["RotateCertificateStarted"]["note"]).endswith(
        ": renewal requested by ops@test")
    # Each announced once.
    assert len(events) == len(by_reason) == 6
