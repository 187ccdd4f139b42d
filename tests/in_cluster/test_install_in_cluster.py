"""``kubectl apply -f dist/install.yaml`` on the devcluster runs the real controller in its Pod.

The devcluster's local kubelet runs the Deployment's Pod as a process (image ``bifrost:*`` is
this environment's ``bifrost``), sandboxed as the manifest asks where the machine allows it:
UID 65532, read-only root, ``/tmp`` and the data volume writable, the ServiceAccount token and
CA at the standard paths. Nothing else runs bifrost: the Gateway of ``examples/in-cluster`` is
programmed by the Pod, which authenticates with its ServiceAccount token, so the ClusterRoles
of ``deploy/`` are what allows it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from in_cluster_kit import (
    EXAMPLE,
    INSTALL,
    NAMESPACE,
    LocalCluster,
    kubectl_path,
    local_cluster,
)
from support.port_forward import PortForward
from support.waiting import wait_for

pytestmark = pytest.mark.slow

ADMIN = str(Path(sys.executable).parent / "bifrost-admin")


def test_install_manifest_runs_the_controller_pod_which_programs_the_example(
        tmp_path: Path) -> None:
    with local_cluster(tmp_path) as lc:
        lc.kubectl("apply", "-f", str(INSTALL))
        lc.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/bifrost",
                   "--timeout=120s", timeout=150)
        (pod,) = lc.pods()
        name = pod["metadata"]["name"]
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] is True and status["restartCount"] == 0, status
        assert "running" in status["state"], status

        # the Pod leads: its name (POD_NAME from the Downward API) holds the Lease
        wait_for(lambda: lc.lease_holder() == name, timeout=30, what="the Pod leading")

        # inside its sandbox (kubectl exec): UID 65532 as the manifest says, the
        # ServiceAccount's files at the standard path, only /tmp and the data volume writable
        def exec_in(*argv: str) -> Any:
            return lc.kubectl("exec", "-n", NAMESPACE, name, "--", *argv, check=False)

        assert exec_in("id", "-u").stdout.strip() == "65532"
        namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        assert exec_in("cat", namespace_file).stdout == NAMESPACE
        for writable in ("/tmp/probe", "/var/lib/bifrost/probe"):
            done = exec_in("touch", writable)
            assert done.returncode == 0, (writable, done.stderr)
        for read_only in ("/probe", "/etc/probe", "/var/probe", "/usr/probe",
                          "/var/run/secrets/kubernetes.io/serviceaccount/probe"):
            done = exec_in("touch", read_only)
            assert done.returncode != 0 and "Read-only file system" in done.stderr, (
                read_only, done.stderr)
        # docs/operations.md's maintenance command, as written there
        vacuum = lc.kubectl("exec", "-n", NAMESPACE, "deploy/bifrost", "--", "bifrost", "db",
                            "vacuum")
        assert "VACUUM on sqlite:////var/lib/bifrost/bifrost.db" in vacuum.stdout, vacuum.stdout
        assert (lc.kube.get("v1", "Pod", name, NAMESPACE) or {})["status"]["containerStatuses"][
            0]["restartCount"] == 0
        lc.kubectl("apply", "-f", str(EXAMPLE))
        lc.wait_programmed("apps", "edge")

        logs = lc.kubectl("logs", "-n", NAMESPACE, "deployment/bifrost").stdout
        lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert lines, f"no JSON log lines from the Pod:\n{logs[:2000]}"
        messages = " | ".join(str(line.get("message", "")) for line in lines)
        assert f"{name} leads" in messages, messages[:2000]
        assert any("edge" in str(line.get("gateway", "")) for line in lines), messages[:2000]
        table = lc.kubectl("get", "pods,gateways", "-A").stdout
        assert name in table and "edge" in table

        # docs/admin-remote.md's path: kubectl port-forward to the Deployment's admin port,
        # then bifrost-admin --server with the caller's own token (the admin kubeconfig's),
        # which the Pod checks with a TokenReview and a SubjectAccessReview
        env = {**os.environ, "KUBECONFIG": str(lc.admin)}
        forward = PortForward([kubectl_path(), "-n", NAMESPACE, "port-forward",
                               "deploy/bifrost", ":8082"], env)
        try:
            server = f"http://127.0.0.1:{forward.local_port()}"
            admin = subprocess.run([ADMIN, "--server", server, "gateways", "-n", "apps"],
                                   capture_output=True, text=True, timeout=60, env=env,
                                   check=False)
        finally:
            forward.stop()
        assert admin.returncode == 0, (admin.stdout, admin.stderr, forward.output())
        assert "edge" in admin.stdout, admin.stdout


def test_a_permission_removed_from_the_pods_role_shows_and_recovers_without_restart(
        tmp_path: Path) -> None:
    """The controller Pod authenticates as its ServiceAccount: with ``create``/``patch`` on
    ConfigMaps taken out of the aggregated child ClusterRole, a new Gateway's provision fails
    with the documented Forbidden message (condition and Event); put back, the Gateway is
    programmed by the same container — no restart."""
    with local_cluster(tmp_path) as lc:
        lc.kubectl("apply", "-f", str(INSTALL))
        lc.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/bifrost",
                   "--timeout=120s", timeout=150)
        lc.kubectl("apply", "-f", str(EXAMPLE))
        lc.wait_programmed("apps", "edge")
        role = lc.kube.get("rbac.authorization.k8s.io/v1", "ClusterRole",
                           "bifrost-children-in-cluster")
        assert role is not None
        narrowed = json.loads(json.dumps(role))
        for rule in narrowed["rules"]:
            if rule.get("resources") == ["configmaps"]:
                rule["verbs"] = [v for v in rule["verbs"] if v not in ("create", "patch")]
        lc.kubectl("apply", "-f", "-", stdin=json.dumps(strip_server_fields(narrowed)))
        wait_for(lambda: not can_i(lc, "create", "configmaps"), timeout=30,
                 what="the aggregated ClusterRole without create on configmaps")

        second = json.loads(json.dumps(lc.kube.get(
            "gateway.networking.k8s.io/v1", "Gateway", "edge", "apps")))
        second = {"apiVersion": second["apiVersion"], "kind": "Gateway",
                  "metadata": {"name": "edge-two", "namespace": "apps"},
                  "spec": second["spec"]}
        for listener in second["spec"]["listeners"]:
            if listener.get("hostname"):
                listener["hostname"] = "two.example.com"
        lc.kubectl("apply", "-f", "-", stdin=json.dumps(second))

        def forbidden() -> str | None:
            c = lc.gateway_condition("apps", "edge-two", "Programmed")
            message = str((c or {}).get("message", ""))
            return message if c and c["status"] == "False" and "fix: grant" in message else None

        message = wait_for(forbidden, timeout=90, what="edge-two's Forbidden condition")
        assert "configmaps" in message and "bifrost-system/bifrost" in message, message
        events = lc.kubectl("get", "events", "-n", "apps", "-o", "json").stdout
        assert any("fix: grant" in str(e.get("message", "")) and e.get("type") == "Warning"
                   for e in json.loads(events)["items"]), events[:2000]

        lc.kubectl("apply", "-f", "-", stdin=json.dumps(strip_server_fields(role)))
        lc.wait_programmed("apps", "edge-two", timeout=120)
        (pod,) = lc.pods()
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items()
            if k in ("name", "namespace", "labels", "annotations")}
    return {**{k: v for k, v in obj.items() if k not in ("metadata", "status")},
            "metadata": meta}


def can_i(lc: LocalCluster, verb: str, resource: str) -> bool:
    done = lc.kubectl("auth", "can-i", verb, resource, "-n", "apps",
                      "--as=system:serviceaccount:bifrost-system:bifrost", check=False)
    return done.stdout.strip() == "yes"
