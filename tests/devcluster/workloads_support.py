"""Helpers of the workload tests: running the real kubectl, and manifests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

KUBECTL = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
needs_kubectl = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")


def kubectl(
    kubeconfig: Path, *args: str, input: str | None = None, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.run(
        [KUBECTL, "--request-timeout=10s", *args],
        input=input,
        text=True,
        capture_output=True,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc


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
