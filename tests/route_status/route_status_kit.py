"""What the route-status scenarios read: a route's ``status.parents`` entries in brief, a
Gateway's condition, and a class of bifrost's with its blueprint."""

from __future__ import annotations

import uuid
from typing import Any

from support.builders import CONTROLLER_NAME, GATEWAY_API, blueprint, gateway_class

from bifrost.kube import KubeClient

#: (controllerName, parent name, Accepted status, Accepted reason) of each entry, in order.
Entry = tuple[str, str, str, str]


def parents(kube: KubeClient, namespace: str, route: str) -> list[Entry]:
    obj = kube.get(GATEWAY_API, "HTTPRoute", route, namespace) or {}
    out: list[Entry] = []
    for p in (obj.get("status") or {}).get("parents") or []:
        accepted = next((c for c in p.get("conditions") or [] if c.get("type") == "Accepted"), {})
        out.append((p["controllerName"], p["parentRef"]["name"],
                    str(accepted.get("status")), str(accepted.get("reason"))))
    return out


def accepted_message(kube: KubeClient, namespace: str, route: str, parent: str) -> str:
    obj = kube.get(GATEWAY_API, "HTTPRoute", route, namespace) or {}
    for p in (obj.get("status") or {}).get("parents") or []:
        if p["controllerName"] == CONTROLLER_NAME and p["parentRef"]["name"] == parent:
            for c in p.get("conditions") or []:
                if c.get("type") == "Accepted":
                    return str(c.get("message"))
    return ""


def condition(kube: KubeClient, namespace: str, gateway: str, type_: str) -> dict[str, Any]:
    obj = kube.get(GATEWAY_API, "Gateway", gateway, namespace) or {}
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def bifrost_class(kube: KubeClient, children: list[dict[str, Any]], **spec: Any) -> str:
    """A GatewayClass of bifrost's whose blueprint has ``children`` (and ``spec``)."""
    suffix = uuid.uuid4().hex[:6]
    kube.create(blueprint(f"bp-{suffix}", children, **spec))
    kube.create(gateway_class(f"cls-{suffix}", f"bp-{suffix}"))
    return f"cls-{suffix}"


CONFIG = {
    "id": "config",
    "template": "apiVersion: v1\nkind: ConfigMap\n"
                "metadata: {name: '{{ gateway.metadata.name }}-config'}\n"
                "data: {address: 192.0.2.10}\n",
}
#: The blueprint's ``addresses`` over CONFIG (a Gateway is Programmed only with an address).
ADDRESSES = '[{"type": "IPAddress", "value": children.config.data.address}]'
