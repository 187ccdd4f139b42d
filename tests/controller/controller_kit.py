"""Helpers for the controller tests: free ports, example objects."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

GATEWAY_API = "gateway.networking.k8s.io/v1"
BIFROST_API = "gateway.bifrost.dev/v1alpha1"
CONTROLLER_NAME = "gateway.bifrost.dev/bifrost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_class(name: str, blueprint: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"controllerName": CONTROLLER_NAME}
    if blueprint is not None:
        spec["parametersRef"] = {
            "group": "gateway.bifrost.dev",
            "kind": "GatewayClassBlueprint",
            "name": blueprint,
        }
    return {
        "apiVersion": GATEWAY_API,
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": spec,
    }


def blueprint(
    name: str,
    *,
    defaults: dict[str, Any] | None = None,
    children: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": BIFROST_API,
        "kind": "GatewayClassBlueprint",
        "metadata": {"name": name},
        "spec": {
            "defaults": defaults or {},
            "children": children
            if children is not None
            else [
                {
                    "id": "config",
                    "template": "apiVersion: v1\nkind: ConfigMap\n"
                    "metadata: {name: '{{ gateway.metadata.name }}-config'}\n",
                },
            ],
        },
    }


def gateway(
    namespace: str, name: str, class_name: str, listeners: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": class_name,
            "listeners": listeners or [{"name": "http", "protocol": "HTTP", "port": 80}],
        },
    }


def accepted(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``Accepted`` condition of an object's status, if any."""
    if obj is None:
        return None
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Accepted":
            return dict(cond)
    return None


REPO = Path(__file__).resolve().parents[2]
BIFROST_CRDS = REPO / "deploy" / "crds"
SYSTEM_NAMESPACE = "bifrost-system"
