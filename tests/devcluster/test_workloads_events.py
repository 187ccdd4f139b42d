"""The workload controllers, the scheduler and the kubelet record the Events a real cluster's do,
so ``kubectl get events`` and ``kubectl describe`` tell what happened to a Deployment."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client
from support.waiting import wait_for
from workloads_support import deployment_yaml, kubectl, needs_kubectl

pytestmark = needs_kubectl


def _reasons(api: client.ApiClient, ns: str) -> list[tuple[str, str, str, str]]:
    events = client.CoreV1Api(api).list_namespaced_event(ns).items
    return sorted(
        (e.involved_object.kind, e.reason, e.source.component, e.message) for e in events
    )


def _rollout(kubeconfig: Path, ns: str, name: str) -> None:
    kubectl(kubeconfig, "-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=20s")


def test_a_rollout_and_a_scale_down_are_told_by_events(
    kubeconfig_path: Path, namespace: str, api_client: client.ApiClient
) -> None:
    kubectl(kubeconfig_path, "-n", namespace, "apply", "-f", "-",
            input=deployment_yaml("web", replicas=2))
    _rollout(kubeconfig_path, namespace, "web")
    (rs,) = client.AppsV1Api(api_client).list_namespaced_replica_set(namespace).items
    rs_name = rs.metadata.name
    listed = client.CoreV1Api(api_client).list_namespaced_pod(namespace).items
    pods = [p.metadata.name for p in listed]
    assert len(pods) == 2

    def recorded() -> list[tuple[str, str, str, str]] | None:
        got = _reasons(api_client, namespace)
        return got if sum(1 for e in got if e[1] == "Started") == 2 else None

    got = wait_for(recorded, what="the pods' Started events", timeout=10)
    assert ("Deployment", "ScalingReplicaSet", "deployment-controller",
            f"Scaled up replica set {rs_name} from 0 to 2") in got
    for pod in pods:
        assert ("ReplicaSet", "SuccessfulCreate", "replicaset-controller",
                f"Created pod: {pod}") in got
        scheduled = [e for e in got if e[1] == "Scheduled" and f"/{pod} to " in e[3]]
        assert len(scheduled) == 1 and scheduled[0][2] == "default-scheduler"
    assert {e[1] for e in got if e[0] == "Pod" and e[2] == "kubelet"} == {
        "Pulled", "Created", "Started"}

    kubectl(kubeconfig_path, "-n", namespace, "scale", "deployment/web", "--replicas=1")
    # The Deployment's event and the ReplicaSet's are written by two controllers, in either
    # order (the ReplicaSet may delete its Pod before the Deployment's event is posted).
    scaled_down = ("Deployment", "ScalingReplicaSet", "deployment-controller",
                   f"Scaled down replica set {rs_name} from 2 to 1")
    got = wait_for(lambda: (g := _reasons(api_client, namespace)) and scaled_down in g
                   and any(e[1] == "SuccessfulDelete" for e in g) and g,
                   what="the Deployment's scale-down and the ReplicaSet's SuccessfulDelete events",
                   timeout=10)
    deleted = [e for e in got if e[1] == "SuccessfulDelete"]
    assert len(deleted) == 1 and deleted[0][:3] == ("ReplicaSet", "SuccessfulDelete",
                                                    "replicaset-controller")

    described = kubectl(kubeconfig_path, "-n", namespace, "describe", "deployment", "web").stdout
    assert "ScalingReplicaSet" in described and f"Scaled down replica set {rs_name}" in described
    table = kubectl(kubeconfig_path, "-n", namespace, "get", "events").stdout
    assert table.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT",
                                             "MESSAGE"]
    assert f"replicaset/{rs_name}" in table and "SuccessfulCreate" in table
