"""Helpers of the workload tests: manifests (kubectl is :func:`dc_support.kubectl`, re-exported)."""

from __future__ import annotations

from typing import Any

from dc_support import KUBECTL, kubectl, needs_kubectl

__all__ = ["KUBECTL", "condition", "deployment_yaml", "kubectl", "needs_kubectl", "pod_template"]


def deployment_yaml(
    name: str,
    *,
    replicas: int = 2,
    image: str = "nginx:1.25",
    strategy: str = "",
) -> str:
    extra = f"  strategy: {{type: {strategy}}}\n" if strategy else ""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
{extra}  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
        ports: [{{containerPort: 80}}]
"""


def pod_template(name: str, image: str = "busybox:1.36", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": image}], **spec},
    }


def condition(obj: Any, type_: str) -> Any:
    """The condition of a typed client object (None if absent)."""
    for c in (obj.status.conditions or []) if obj.status else []:
        if c.type == type_:
            return c
    return None
