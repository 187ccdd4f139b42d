"""Helpers shared by the bifrost.kube tests (objects to write, polling with a deadline)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def configmap(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(data),
    }


def gateway(name: str, namespace: str, *, listeners: list[dict[str, Any]] | None = None) -> dict:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": "bifrost",
            "listeners": listeners
            if listeners is not None
            else [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }


def eventually(
    check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: {last!r}")
