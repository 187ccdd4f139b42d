"""Helpers for the provision/teardown machine tests: the test blueprint, a ``Harness`` that
starts operations and drives them with real runners, and a clock shifted past a dead runner's
lease."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bifrost.cli.dev import LB_KIND
from bifrost.clock import Clock, SystemClock
from bifrost.engine import Runner, Step, start_operation
from bifrost.kube import KubeClient
from bifrost.machines.provision import ProvisionContext, provision_spec
from bifrost.machines.registry import MachineRegistry
from bifrost.machines.teardown import TeardownContext, teardown_spec
from bifrost.records import OperationRecord
from bifrost.steps.bindings import bind_steps
from bifrost.store import SqlStore
from devcluster.server import DevCluster

REPO = Path(__file__).resolve().parents[2]
GATEWAY_API = "gateway.networking.k8s.io/v1"
BLUEPRINT_API = "gateway.bifrost.dev/v1alpha1"
LB_API = f"{LB_KIND[0]}/{LB_KIND[1]}"

BLUEPRINT_YAML = """
children:
  - id: config
    template: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "{{ gateway.metadata.name }}-config"}
      data: {hostname: "{{ values.hostname }}"}
  - id: cert
    template: |
      apiVersion: cert-manager.io/v1
      kind: Certificate
      metadata: {name: "{{ gateway.metadata.name }}-cert"}
      spec:
        secretName: "{{ gateway.metadata.name }}-tls"
        dnsNames: ["{{ values.hostname }}"]
        issuerRef: {name: devcluster-ca, kind: ClusterIssuer}
    readyWhen: 'object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")'
  - id: lb
    deleteOrder: 10
    template: |
      apiVersion: elbv2.aws.upbound.io/v1beta1
      kind: LB
      metadata: {name: "{{ gateway.metadata.namespace }}-{{ gateway.metadata.name }}-lb"}
      spec: {forProvider: {scheme: "{{ values.scheme }}"}}
    readyWhen: 'object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")'
  - id: child-gw
    deleteOrder: 20
    template: |
      apiVersion: gateway.networking.k8s.io/v1
      kind: Gateway
      metadata: {name: "{{ gateway.metadata.name }}-child"}
      spec:
        gatewayClassName: devcluster
        listeners:
          - name: https
            protocol: HTTPS
            port: 443
            hostname: "{{ values.hostname }}"
            tls:
              mode: Terminate
              certificateRefs:
                - {kind: Secret, name: "{{ children.cert.spec.secretName }}"}
    readyWhen: 'object.status.conditions.exists(c, c.type == "Programmed" && c.status == "True")'
"""

VALUES = {"hostname": "shop.example.com", "scheme": "internet-facing"}

#: The test blueprint's ``spec.confinement``: the load balancer is cluster-scoped.
CONFINEMENT = {"allow": [{"group": LB_KIND[0], "kind": LB_KIND[2], "clusterScoped": True}]}


def blueprint_children() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(BLUEPRINT_YAML)
    children = loaded["children"]
    assert isinstance(children, list)
    return children


@dataclass
class Cluster:
    devcluster: DevCluster
    kubeconfig: Path


class OffsetClock:
    """System time shifted by ``offset``: a runner that starts after a crashed one's lease."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return SystemClock().now() + self.offset


@dataclass
class Harness:
    cluster: DevCluster
    kube: KubeClient
    store: SqlStore
    namespace: str
    blueprint: str
    registry: MachineRegistry = field(
        default_factory=lambda: MachineRegistry([provision_spec(), teardown_spec()])
    )
    clock: Clock = field(default_factory=SystemClock)

    def steps(self) -> dict[str, Step]:
        return bind_steps(self.kube, self.store)

    def runner(self, *, owner: str | None = None, clock: Clock | None = None,
               max_steps_per_claim: int = 50) -> Runner:
        return Runner(
            self.store, self.registry, self.steps(), clock=clock or self.clock,
            owner=owner or f"test-{uuid.uuid4().hex[:6]}", lease_for=timedelta(seconds=30),
            max_steps_per_claim=max_steps_per_claim,
        )

    # --- cluster objects ----------------------------------------------------------------------
    def set_blueprint(self, children: list[dict[str, Any]],
                      route_children: list[dict[str, Any]] | None = None) -> None:
        spec: dict[str, Any] = {"children": copy.deepcopy(children),
                                "confinement": copy.deepcopy(CONFINEMENT)}
        if route_children is not None:
            spec["routeChildren"] = copy.deepcopy(route_children)
        self.kube.apply({
            "apiVersion": BLUEPRINT_API,
            "kind": "GatewayClassBlueprint",
            "metadata": {"name": self.blueprint},
            "spec": spec,
        })

    def create_gateway(self, name: str = "edge", *, finalizer: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if finalizer:
            meta["finalizers"] = ["gateway.bifrost.dev/finalizer"]
        gateway = self.kube.create({
            "apiVersion": GATEWAY_API,
            "kind": "Gateway",
            "metadata": meta,
            "spec": {
                "gatewayClassName": "bifrost",
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
            },
        })
        self.store.upsert_gateway(uid=gateway["metadata"]["uid"], namespace=self.namespace,
                                  name=name, now=self.clock.now(), gateway_class="bifrost")
        return gateway

    # --- operations ---------------------------------------------------------------------------
    def start_provision(
        self, gateway: dict[str, Any], *, values: dict[str, Any] | None = None,
        routes: tuple[str, ...] = (),
    ) -> OperationRecord:
        meta = gateway["metadata"]
        return start_operation(
            self.store, provision_spec(), gateway_uid=meta["uid"], namespace=self.namespace,
            name=meta["name"], clock=self.clock, actor="test",
            context=ProvisionContext(namespace=self.namespace, gateway=meta["name"],
                                     gateway_uid=meta["uid"], blueprint=self.blueprint,
                                     values=dict(VALUES if values is None else values),
                                     routes=routes),
        )

    def start_teardown(self, gateway: dict[str, Any]) -> OperationRecord:
        meta = gateway["metadata"]
        return start_operation(
            self.store, teardown_spec(), gateway_uid=meta["uid"], namespace=self.namespace,
            name=meta["name"], clock=self.clock, actor="test",
            context=TeardownContext(namespace=self.namespace, gateway=meta["name"],
                                    gateway_uid=meta["uid"], blueprint=self.blueprint),
        )

    def drive(self, operation_id: int, *, timeout: float = 20.0,
              runner: Callable[[], Runner] | None = None) -> OperationRecord:
        """Run until the operation ends; ``runner`` makes the runner for each round (default:
        one runner for all rounds)."""
        shared = self.runner() if runner is None else None
        deadline = time.monotonic() + timeout
        while True:
            (shared or (runner() if runner is not None else self.runner())).run_once()
            op = self.store.get_operation(operation_id)
            if op.status.terminal:
                return op
            if time.monotonic() > deadline:
                recent = [j.message for j in self.store.journal(operation_id=operation_id)][-5:]
                raise AssertionError(
                    f"operation {operation_id} still {op.status} in {op.state} after "
                    f"{timeout}s: {op.last_error}; journal: {recent}"
                )
            time.sleep(0.02)  # poll: waiting steps are due again after their recheck

    def labelled(self, api_version: str, kind: str, uid: str) -> list[dict[str, Any]]:
        items, _ = self.kube.list(api_version, kind, None,
                                  label_selector=f"gateway.bifrost.dev/gateway-uid={uid}")
        return items


