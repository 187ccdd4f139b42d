"""The Gateway API v1.6.1 conformance base manifests (namespaces, Gateways, Services,
Deployments, a ConfigMap) apply cleanly with ``kubectl apply``, and their backend Deployments
become Available as on a cluster."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import yaml
from kubernetes import client
from support.devcluster import GATEWAY_API_CRDS
from support.waiting import wait_for
from workloads_support import kubectl, needs_kubectl

MANIFESTS = GATEWAY_API_CRDS / "conformance" / "manifests.yaml"

pytestmark = [
    needs_kubectl,
    pytest.mark.skipif(not MANIFESTS.exists(), reason="no ../shared conformance manifests"),
]


def test_conformance_base_manifests_apply_cleanly(kubeconfig_path, api_client) -> None:
    docs: list[dict[str, Any]] = [
        d for d in yaml.safe_load_all(MANIFESTS.read_text()) if isinstance(d, dict)
    ]
    namespaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    deployments = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"].get("replicas", 1)
        for d in docs
        if d["kind"] == "Deployment"
    }
    assert len(namespaces) == 3 and len(deployments) == 14
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    try:
        proc = kubectl(kubeconfig_path, "apply", "-f", str(MANIFESTS))
        assert proc.stderr == ""  # no warning, no error
        lines = proc.stdout.splitlines()
        assert len(lines) == len(docs) and all(line.endswith(" created") for line in lines)

        def all_available() -> bool:
            for (ns, name), replicas in deployments.items():
                d = apps.read_namespaced_deployment(name, ns)
                if (d.status.available_replicas or 0) != replicas:
                    return False
            return True

        wait_for(all_available, what="every conformance backend Available", timeout=20)
        pods = [p for ns in namespaces for p in core.list_namespaced_pod(ns).items]
        assert len(pods) == sum(deployments.values())
        assert all(p.status.phase == "Running" and p.status.pod_ip for p in pods)
        # a second apply leaves the Deployments alone: what the controllers wrote (status,
        # revision annotation) is not the user's configuration
        again = kubectl(kubeconfig_path, "apply", "-f", str(MANIFESTS)).stdout.splitlines()
        applied = [line for line in again if line.startswith("deployment.apps/")]
        assert len(applied) == 14 and all(line.endswith(" unchanged") for line in applied)
    finally:
        for ns in namespaces:
            with contextlib.suppress(client.ApiException):
                core.delete_namespace(ns)
    wait_for(
        lambda: not [p for ns in namespaces for p in core.list_namespaced_pod(ns).items],
        what="the conformance pods collected",
        timeout=20,
    )
