"""What the Gateway acceptance scenarios share: a class with a one-ConfigMap blueprint (the
ConfigMap holds ``values.tier`` and an address, so Programmed can become True), and readers of
the Gateway's conditions, its listeners' and its child."""

from __future__ import annotations

import uuid
from typing import Any

from support.builders import GATEWAY_API, blueprint, gateway_class
from support.waiting import wait_for

from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore

TIMEOUT = 30.0
OPERATION = "gateway.bifrost.dev/Operation"

CHILD = {
    "id": "config",
    "template": "apiVersion: v1\nkind: ConfigMap\n"
    "metadata: {name: '{{ gateway.metadata.name }}-config'}\n"
    "data: {tier: '{{ values.tier }}', address: 192.0.2.10}\n",
}
ADDRESSES = '[{"type": "IPAddress", "value": children.config.data.address}]'


def new_class(kube: KubeClient, *, children: list[dict[str, Any]] | None = None) -> str:
    """A bifrost GatewayClass and its blueprint (default tier "bronze"); the class's name."""
    name = f"acc-{uuid.uuid4().hex[:6]}"
    kube.create(blueprint(name, children or [CHILD], defaults={"tier": "bronze"},
                          addresses=ADDRESSES))
    kube.create(gateway_class(name, name))
    return name


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def gw(kube: KubeClient, ns: str, name: str = "edge") -> dict[str, Any]:
    obj = kube.get(GATEWAY_API, "Gateway", name, ns)
    assert obj is not None
    return obj


def wait_condition(kube: KubeClient, ns: str, type_: str, status: str, reason: str,
                   name: str = "edge", *, generation: int | None = None) -> dict[str, Any]:
    """The Gateway's ``type_`` condition once it is ``status``/``reason`` (at ``generation``
    when given)."""
    def check() -> dict[str, Any] | None:
        cond = condition(gw(kube, ns, name), type_)
        if cond is None or (cond["status"], cond["reason"]) != (status, reason):
            return None
        if generation is not None and cond.get("observedGeneration") != generation:
            return None
        return cond

    found: dict[str, Any] = wait_for(
        check, timeout=TIMEOUT,
        what=f"Gateway {ns}/{name} {type_}={status}/{reason} "
        f"(now {condition(gw(kube, ns, name), type_)})")
    return found


def listener_conditions(obj: dict[str, Any], listener: str) -> dict[str, dict[str, Any]]:
    for item in (obj.get("status") or {}).get("listeners") or []:
        if item.get("name") == listener:
            return {str(c["type"]): dict(c) for c in item.get("conditions") or []}
    return {}


def child(kube: KubeClient, ns: str, name: str = "edge") -> dict[str, Any] | None:
    return kube.get("v1", "ConfigMap", f"{name}-config", ns)


def operations(store: SqlStore, uid: str) -> list[Any]:
    return store.list_operations(gateway_uid=uid, limit=100)
