"""The bench of the intake tests: example objects and :class:`Intake`, an observer on a FakeKube
(no server) with an informer cache fed from the fake's changes and a SQLite store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from support.fake_kube import FakeKube

from bifrost.api.objects import Obj, meta
from bifrost.clock import ManualClock
from bifrost.controller.informers import CONTROLLER_NAME, Cache, gateway_key
from bifrost.controller.observe import Observer
from bifrost.records import OperationRecord
from bifrost.store import SqlStore

GATEWAY_API = "gateway.networking.k8s.io/v1"
BIFROST_API = "gateway.bifrost.dev/v1alpha1"
NAMESPACE = "shop"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def gateway_class(name: str = "bifrost", blueprint: str = "edge-bp") -> Obj:
    return {
        "apiVersion": GATEWAY_API, "kind": "GatewayClass", "metadata": {"name": name},
        "spec": {"controllerName": CONTROLLER_NAME,
                 "parametersRef": {"group": "gateway.bifrost.dev",
                                   "kind": "GatewayClassBlueprint", "name": blueprint}},
    }


def blueprint(name: str = "edge-bp") -> Obj:
    return {
        "apiVersion": BIFROST_API, "kind": "GatewayClassBlueprint", "metadata": {"name": name},
        "spec": {"defaults": {}, "children": [{
            "id": "config",
            "template": "apiVersion: v1\nkind: ConfigMap\n"
                        "metadata: {name: '{{ gateway.metadata.name }}-config'}\n",
        }]},
    }


def gateway(name: str = "edge", class_name: str = "bifrost", **metadata: object) -> Obj:
    return {
        "apiVersion": GATEWAY_API, "kind": "Gateway",
        "metadata": {"name": name, "namespace": NAMESPACE, **metadata},
        "spec": {"gatewayClassName": class_name,
                 "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    }


class Outcome(Protocol):
    """What :meth:`Observer.observe` answers (only what these tests read of it)."""

    @property
    def actions(self) -> tuple[str, ...]: ...

    @property
    def requeue_after(self) -> float | None: ...


@dataclass
class Intake:
    kube: FakeKube
    cache: Cache
    store: SqlStore
    observer: Observer
    clock: ManualClock

    def sync(self) -> None:
        """Deliver what the fake's watches would have (the informers' job)."""
        for change in self.kube.drain_changes():
            self.cache.apply(change.kind, change.type, change.obj)

    def observe(self, name: str = "edge") -> Outcome:
        return self.observer.observe(gateway_key(NAMESPACE, name))

    def gateway(self, name: str = "edge") -> Obj | None:
        return self.kube.get(GATEWAY_API, "Gateway", name, NAMESPACE)

    def uid(self, name: str = "edge") -> str:
        return str(meta(self.gateway(name))["uid"])

    def operations(self, name: str = "edge") -> list[OperationRecord]:
        return sorted(self.store.list_operations(gateway_uid=self.uid(name)),
                      key=lambda o: o.id)
