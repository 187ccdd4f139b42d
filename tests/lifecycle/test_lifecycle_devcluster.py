"""The Gateway lifecycle through a real controller on the devcluster (simulated issuer, load
balancer and TLS data plane), read back from ``bifrost-admin gateways -o json``:
pending → provisioning → ready → rotating (``bifrost-admin renew``) → ready → deleting →
deleted, one ``Lifecycle<State>`` Event per transition, ``--state`` filtering, ``graph
lifecycle`` highlighting the current state, and the deleted Gateway purged by housekeeping
after its retention (manual clock), not before.

The transient states are held for the reader by pausing the operation that causes them
(``bifrost-admin pause``, as an operator would) and resuming it once they were read.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.builders import gateway_class
from support.peers_cluster import peers_cluster, scenario
from support.waiting import wait_for
from typer.testing import CliRunner

from bifrost.cli.admin import AdminEnv
from bifrost.cli.admin import app as admin_app
from bifrost.clock import ManualClock
from bifrost.controller.housekeeping import Housekeeper, HousekeepingPolicy
from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.kube import KubeClient
from bifrost.records import OperationRecord
from bifrost.store import SqlStore

REPO = Path(__file__).resolve().parents[2]
GATEWAY_API = "gateway.networking.k8s.io/v1"


@pytest.fixture(scope="module")
def cluster_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=3) as running:
        yield running.kubeconfig


@dataclass
class Env:
    kube: KubeClient
    store: SqlStore
    url: str
    namespace: str

    def admin(self, *args: str) -> str:
        result = CliRunner().invoke(admin_app, [*args, "--database-url", self.url],
                                    obj=AdminEnv())
        assert result.exit_code == 0, f"bifrost-admin {' '.join(args)}: {result.output}"
        return result.output

    def rows(self, *args: str) -> list[dict[str, Any]]:
        doc = json.loads(self.admin("gateways", "-o", "json", *args))
        return [r for r in doc["gateways"] if r["namespace"] == self.namespace]

    def state(self, name: str) -> str | None:
        rows = [r for r in self.rows() if r["name"] == name]
        return rows[0]["lifecycle_state"] if rows else None

    def wait_state(self, name: str, state: str, *, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            rows = [r for r in self.rows() if r["name"] == name]
            return rows[0] if rows and rows[0]["lifecycle_state"] == state else None
        try:
            return dict(wait_for(check, timeout=timeout, what=f"{name} {state}"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {self.state(name)!r}; "
                                 f"journal tail: {self.journal_tail(name)}") from None

    def journal_tail(self, name: str) -> str:
        """The Gateway's last journal rows, for a timeout's message."""
        rows = [r for r in self.rows() if r["name"] == name]
        if not rows:
            return "(no gateway row)"
        tail = self.store.journal(gateway_uid=rows[0]["uid"])[-8:]
        return " | ".join(
            f"{j.started_at:%H:%M:%S.%f}..{j.last_at or j.finished_at} {j.state}/{j.step} "
            f"{j.outcome.value} x{j.repeats} {j.message or ''}"[:300] for j in tail)

    def active(self, uid: str, machine: str) -> OperationRecord:
        def check() -> OperationRecord | None:
            return next((o for o in self.store.list_operations(gateway_uid=uid)
                         if o.machine == machine and o.status.active), None)
        return wait_for(check, timeout=30, what=f"an active {machine}")  # type: ignore[no-any-return]

    def hold(self, name: str, uid: str, machine: str) -> OperationRecord:
        """Pause the Gateway's ``machine`` operation as soon as it exists."""
        op = self.active(uid, machine)
        self.admin("pause", str(op.id), "--reason", "test reads the lifecycle")
        return op

    def events(self) -> list[tuple[str, str]]:
        items, _ = self.kube.list("events.k8s.io/v1", "Event", self.namespace)
        found = [(str(e.get("eventTime") or ""), e["reason"], e.get("note", ""))
                 for e in items if str(e.get("reason", "")).startswith("Lifecycle")]
        return [(reason, note) for _, reason, note in sorted(found)]


@pytest.fixture
def env(cluster_kubeconfig: Path, tmp_path: Path) -> Iterator[Env]:
    with scenario(cluster_kubeconfig, tmp_path, prefix="l") as s:
        namespace = s.namespace
        controller = Controller(s.kube, s.store, options=ControllerOptions(
            identity=f"ctl-{namespace}", lease_name=f"lease-{namespace}",
            lease_namespace="bifrost-system", lease_duration=5, renew_deadline=4,
            retry_period=0.5, runner_idle=timedelta(milliseconds=50),
            operation_poll=timedelta(seconds=0.2), renewal_poll=timedelta(seconds=0.5),
            renewal_jitter=0.0))
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: controller.is_leader and controller.ready(), timeout=20,
                     what="the controller leading and synced")
            yield Env(s.kube, s.store, s.url, namespace)
        finally:
            stop.set()
            thread.join(timeout=20)


def _blueprint(name: str) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load((REPO / "examples/in-cluster/10-blueprint.yaml")
                                       .read_text()))
    doc["metadata"] = {"name": name}
    doc["spec"]["tls"]["drainSeconds"] = 0
    return dict(doc)


def _gateway(namespace: str, name: str, class_name: str) -> dict[str, Any]:
    return {"apiVersion": GATEWAY_API, "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": class_name, "listeners": [
                {"name": "https", "protocol": "HTTPS", "port": 443,
                 "hostname": f"{name}.example.com",
                 "tls": {"certificateRefs": [{"name": f"{name}-user-tls"}]}}]}}


EXPECTED = [
    ("LifecycleProvisioning", "lifecycle pending -> provisioning (provision)"),
    ("LifecycleReady", "lifecycle provisioning -> ready (provisioned)"),
    ("LifecycleRotating", "lifecycle ready -> rotating (rotate)"),
    ("LifecycleReady", "lifecycle rotating -> ready (rotated)"),
    ("LifecycleDeleting", "lifecycle ready -> deleting (delete)"),
    ("LifecycleDeleted", "lifecycle deleting -> deleted (remove)"),
]


@pytest.mark.slow  # ~10 s: a devcluster with peers, a provision, a rotation, a teardown
def test_every_lifecycle_transition_through_the_controller(env: Env) -> None:
    ns = env.namespace
    env.kube.apply(_blueprint(f"bp-{ns}"))
    env.kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
    env.kube.apply(_gateway(ns, "edge", f"gc-{ns}"))

    # pending → provisioning: held by pausing the provision
    uid = wait_for(
        lambda: (env.kube.get(GATEWAY_API, "Gateway", "edge", ns) or {}).get("metadata", {})
        .get("uid"), timeout=10, what="the Gateway's uid")
    provision = env.hold("edge", uid, "provision")
    row = env.wait_state("edge", "provisioning")
    assert row["last_error"] is None
    assert [r["name"] for r in env.rows("--state", "provisioning")] == ["edge"]
    assert env.rows("--state", "ready") == []
    graph = json.loads(env.admin("graph", "lifecycle", "--gateway", f"{ns}/edge", "-o", "json"))
    assert (graph["machine"], graph["current_state"]) == ("lifecycle", "provisioning")
    assert "Class provisioning s_active" in graph["mermaid"]
    env.admin("resume", str(provision.id))

    # provisioning → ready
    env.wait_state("edge", "ready")
    assert [r["name"] for r in env.rows("--state", "ready")] == ["edge"]

    # ready → rotating (bifrost-admin renew) → ready
    env.admin("renew", f"{ns}/edge", "--actor", "test@lifecycle")
    rotation = env.hold("edge", uid, "rotate_certificate")
    env.wait_state("edge", "rotating")
    assert [r["name"] for r in env.rows("--state", "rotating")] == ["edge"]
    env.admin("resume", str(rotation.id))
    env.wait_state("edge", "ready")

    # ready → deleting (held by pausing the teardown) → deleted. A finalizer on a child keeps
    # the teardown waiting for that child to go, so it is still active when it is paused (on
    # the simulated cluster it may otherwise end before the pause).
    hold = "test.example.com/hold"
    env.kube.patch("v1", "ConfigMap", "edge-settings", ns,
                   {"metadata": {"finalizers": [hold]}}, field_manager="lifecycle-test")
    env.kube.delete(GATEWAY_API, "Gateway", "edge", ns)
    teardown = env.hold("edge", uid, "teardown")
    env.wait_state("edge", "deleting")
    env.kube.patch("v1", "ConfigMap", "edge-settings", ns,
                   {"metadata": {"finalizers": None}}, field_manager="lifecycle-test")
    env.admin("resume", str(teardown.id))
    row = env.wait_state("edge", "deleted")
    assert row["deleted_at"] is not None
    assert [r["name"] for r in env.rows("--state", "deleted")] == ["edge"]
    wait_for(lambda: env.kube.get(GATEWAY_API, "Gateway", "edge", ns) is None, timeout=10,
             what="the Gateway to be gone")

    # one Event per transition, in order
    wait_for(lambda: len(env.events()) >= len(EXPECTED), timeout=10, what="the Events")
    assert env.events() == EXPECTED

    # the deleted Gateway's history stays for the retention, then housekeeping purges it
    record = env.store.get_gateway(uid)
    assert record.deleted_at is not None
    policy = HousekeepingPolicy(retention=timedelta(days=7))
    clock = ManualClock(record.deleted_at + timedelta(days=7) - timedelta(seconds=1))
    assert Housekeeper(env.store, clock=clock, policy=policy).run_once().purged == ()
    assert env.store.journal(gateway_uid=uid)
    assert "teardown" in env.admin("history", f"{ns}/edge")
    clock.advance(timedelta(seconds=2))
    purged = Housekeeper(env.store, clock=clock, policy=policy).run_once().purged
    assert [g.uid for g in purged] == [uid]
    assert env.rows() == []
    assert env.store.journal(gateway_uid=uid) == []
