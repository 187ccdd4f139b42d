"""Helpers for the controller tests: polling with a deadline, free ports, example objects."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GATEWAY_API = "gateway.networking.k8s.io/v1"
BIFROST_API = "gateway.bifrost.dev/v1alpha1"
CONTROLLER_NAME = "gateway.bifrost.dev/bifrost"


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


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


@dataclass
class ControllerProcess:
    identity: str
    proc: subprocess.Popen[bytes]
    health_port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def describe(self) -> dict[str, Any] | None:
        import json
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/readyz", timeout=2
            ) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))
        except OSError:
            return None
