"""The ConfigMaps the bifrost.kube tests write (Gateways and Namespaces: support.builders)."""

from __future__ import annotations

from typing import Any


def configmap(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(data),
    }
