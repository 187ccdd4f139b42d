"""Helpers of the local-pods tests: the ``probe-app`` image's command, Pod bodies running it,
waiting for a Pod's state, HTTP to a pod IP, and the processes a test left behind."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client  # type: ignore[import-untyped]
from support.waiting import wait_for

from devcluster.localpods import ImageCommand

JSON = dict[str, Any]
APP = Path(__file__).with_name("app.py")
#: the app, this interpreter and its packages stay visible in the sandbox even when they lie
#: under /tmp (a CI checkout), where the Pod's own /tmp would hide them
IMAGE = ImageCommand("probe-app:*", entrypoint=(sys.executable, str(APP)),
                     paths=(str(APP.parent), sys.prefix, sys.base_prefix))


def pod_body(
    name: str,
    *,
    env: list[JSON] | None = None,
    volumes: list[JSON] | None = None,
    mounts: list[JSON] | None = None,
    security: JSON | None = None,
    probes: JSON | None = None,
    spec: JSON | None = None,
    labels: dict[str, str] | None = None,
) -> JSON:
    container: JSON = {"name": "app", "image": "probe-app:1", "env": env or []}
    container["ports"] = [{"name": "health", "containerPort": 8080}]
    if mounts:
        container["volumeMounts"] = mounts
    if security:
        container["securityContext"] = security
    ready = {"httpGet": {"path": "/readyz", "port": "health"}, "periodSeconds": 1}
    container.update(probes if probes is not None else {"readinessProbe": ready})
    body: JSON = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"containers": [container], "volumes": volumes or [], **(spec or {})},
    }
    return body


def status_of(core: client.CoreV1Api, namespace: str, name: str) -> JSON:
    pod = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, namespace))
    return dict(pod.get("status") or {})


def container_status(core: client.CoreV1Api, namespace: str, name: str) -> JSON:
    statuses = status_of(core, namespace, name).get("containerStatuses") or [{}]
    return dict(statuses[0])


def wait_ready(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 20) -> JSON:
    def ready() -> JSON | None:
        st = status_of(core, namespace, name)
        cs = (st.get("containerStatuses") or [{}])[0]
        return st if cs.get("ready") else None

    return wait_for(
        ready,
        what=lambda: f"pod {namespace}/{name} ready: {status_of(core, namespace, name)}",
        timeout=timeout,
    )


def http(ip: str, path: str, port: int = 8080) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def http_json(ip: str, path: str) -> Any:
    code, text = http(ip, path)
    assert code == 200, (path, code, text)
    return json.loads(text)


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (a pod's directory, the runtime's root)."""
    out: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            out.append(int(entry))
    return out


def events_of(core: client.CoreV1Api, namespace: str, name: str) -> list[tuple[str, str]]:
    items = core.list_namespaced_event(namespace).items
    return [(e.reason, e.message) for e in items if e.involved_object.name == name]


def token_allowed(core: client.CoreV1Api, namespace: str, name: str,
                  rules: list[JSON]) -> str:
    """A token of a new ServiceAccount ``name`` in ``namespace`` that holds exactly ``rules``
    there (a Role and its RoleBinding of the same name)."""
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    })
    token = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"audiences": []}}).status.token
    return str(token)
