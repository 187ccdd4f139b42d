"""Helpers for the controller tests: free ports, example objects."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from support import builders

GATEWAY_API = "gateway.networking.k8s.io/v1"
BIFROST_API = "gateway.bifrost.dev/v1alpha1"
CONTROLLER_NAME = "gateway.bifrost.dev/bifrost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def blueprint(
    name: str,
    *,
    defaults: dict[str, Any] | None = None,
    children: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A blueprint with one ConfigMap child named after the Gateway unless ``children``."""
    if children is None:
        children = [{
            "id": "config",
            "template": "apiVersion: v1\nkind: ConfigMap\n"
            "metadata: {name: '{{ gateway.metadata.name }}-config'}\n",
        }]
    return builders.blueprint(name, children, defaults=defaults or {})


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
