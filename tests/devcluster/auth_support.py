"""Helpers for the authentication and RBAC tests: raw HTTP as a given bearer token, official
clients for a token, ServiceAccount tokens, and the real kubectl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from devcluster import DevCluster

KUBECTL = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")


def call(
    cluster: DevCluster,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request over plain HTTP; returns the status and the decoded body (JSON, else text)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = dict(headers or {})
    if data is not None:
        h["Content-Type"] = content_type
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(cluster.url + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def api_client(cluster: DevCluster, token: str | None) -> client.ApiClient:
    """An official client over plain HTTP sending ``token`` (none: anonymous)."""
    cfg = client.Configuration()
    cfg.host = cluster.url
    cfg.retries = False
    if token is not None:
        cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(cfg)


def service_account_token(admin: client.ApiClient, namespace: str, name: str, **spec: Any) -> str:
    """Create the ServiceAccount when missing; a TokenRequest token for it."""
    core = client.CoreV1Api(admin)
    try:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    except client.ApiException as e:
        if e.status != 409:
            raise
    answer = core.create_namespaced_service_account_token(
        name,
        namespace,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )
    return str(answer.status.token)


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.run(
        [KUBECTL, "--request-timeout=10s", *args],
        text=True,
        capture_output=True,
        env=env,
        timeout=30,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc


def forbidden_message(user: str, verb: str, resource: str, group: str, namespace: str) -> str:
    """The tail of upstream's 403 message for a resource request."""
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return f'User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {where}'
