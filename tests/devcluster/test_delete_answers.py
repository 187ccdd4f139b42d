"""DELETE answers as a real server gives them, and graceful pod deletion.

Pods, Services, ServiceAccounts, Namespaces, CRDs and custom resources answer with the deleted
object; other kinds with a ``Status``; anything still held (finalizers, a running graceful
deletion) with the object carrying ``deletionTimestamp``. The official client's typed methods
must deserialise those answers (``delete_namespaced_pod`` returns ``V1Pod``), and kubectl must
report ``... deleted``.
"""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any

import pytest
from dc_support import body_of, kubectl, needs_kubectl
from kubernetes import client, watch

from devcluster import DevCluster


def _pod(name: str, *, node: str | None = "node-1", grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    else:
        spec["schedulerName"] = "none"  # stays unscheduled: the devcluster's scheduler skips it
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": name}, "spec": spec}


def _ts(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


# ---------------------------------------------------------------- answers by kind


def test_kinds_with_return_deleted_object_answer_with_the_object(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(
        namespace, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    svc = core.delete_namespaced_service("s", namespace)
    assert isinstance(svc, client.V1Service)
    assert svc.metadata.name == "s" and svc.spec.ports[0].port == 80
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "sa"}})
    sa = core.delete_namespaced_service_account("sa", namespace)
    assert isinstance(sa, client.V1ServiceAccount) and sa.metadata.name == "sa"
    # an unscheduled pod has nothing to wait for: deleted at once, answered with the pod
    core.create_namespaced_pod(namespace, _pod("p", node=None))
    pod = core.delete_namespaced_pod("p", namespace)
    assert isinstance(pod, client.V1Pod) and pod.metadata.name == "p"
    assert pod.metadata.deletion_grace_period_seconds == 0
    with pytest.raises(client.ApiException) as ei:
        core.read_namespaced_pod("p", namespace)
    assert ei.value.status == 404


def test_other_kinds_answer_with_a_status(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    st = core.delete_namespaced_config_map("c", namespace)
    assert st["kind"] == "Status" and st["status"] == "Success"
    assert st["details"] == {"name": "c", "group": "", "kind": "configmaps", "uid": cm.metadata.uid}
    apps = client.AppsV1Api(api_client)
    labels = {"app": "d"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        },
    )
    st = apps.delete_namespaced_deployment("d", namespace)
    assert st["kind"] == "Status"
    assert (st["details"]["group"], st["details"]["kind"]) == ("apps", "deployments")


def test_an_object_held_by_finalizers_is_answered_with_its_deletion_mark(
    api_client, namespace
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    held = core.delete_namespaced_config_map("held", namespace)
    assert held["kind"] == "ConfigMap"
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["deletionGracePeriodSeconds"] == 0
    again = core.delete_namespaced_config_map("held", namespace)
    assert again["metadata"]["resourceVersion"] == held["metadata"]["resourceVersion"]
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as ei:
        core.read_namespaced_config_map("held", namespace)
    assert ei.value.status == 404


def test_namespace_delete_answers_with_the_terminating_namespace(api_client) -> None:
    core = client.CoreV1Api(api_client)
    name = f"del-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    out = core.delete_namespace(name)
    assert out["kind"] == "Namespace"
    assert out["metadata"]["deletionTimestamp"]
    assert out["status"]["phase"] == "Terminating"


def test_propagation_policy_sets_the_gc_finalizer(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "fg", "finalizers": ["example.com/hold"]}}
    )
    out = core.delete_namespaced_config_map("fg", namespace, propagation_policy="Foreground")
    assert out["metadata"]["finalizers"] == ["example.com/hold", "foregroundDeletion"]


def test_an_unknown_propagation_policy_is_invalid(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    with pytest.raises(client.ApiException) as ei:
        core.delete_namespaced_config_map("c", namespace, propagation_policy="Sideways")
    assert ei.value.status == 422
    assert 'Unsupported value: "Sideways"' in body_of(ei.value)["message"]


# ---------------------------------------------------------------- graceful pod deletion


def test_scheduled_pod_is_deleted_gracefully_and_finished_by_the_kubelet_hook(
    devcluster: DevCluster, api_client, namespace
) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_pod(namespace, _pod("g", grace=20))
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    pod = core.delete_namespaced_pod("g", namespace)
    assert pod.metadata.deletion_grace_period_seconds == 20
    deadline = _ts(pod.metadata.deletion_timestamp)
    assert before + datetime.timedelta(seconds=19) <= deadline
    assert deadline <= before + datetime.timedelta(seconds=22)
    # still there, terminating
    assert core.read_namespaced_pod("g", namespace).metadata.deletion_timestamp is not None
    # a longer grace period changes nothing; a shorter one moves the deadline earlier
    same = core.delete_namespaced_pod("g", namespace, grace_period_seconds=60)
    assert same.metadata.resource_version == pod.metadata.resource_version
    shorter = core.delete_namespaced_pod("g", namespace, grace_period_seconds=5)
    assert shorter.metadata.deletion_grace_period_seconds == 5
    assert _ts(shorter.metadata.deletion_timestamp) == deadline - datetime.timedelta(seconds=15)
    # the kubelet finishes: grace period 0, guarded by the uid
    assert not devcluster.api.finish_pod_deletion(namespace, "g", uid="another-uid")
    assert devcluster.api.finish_pod_deletion(namespace, "g", uid=created.metadata.uid)
    with pytest.raises(client.ApiException) as ei:
        core.read_namespaced_pod("g", namespace)
    assert ei.value.status == 404


def test_pod_grace_period_defaults_to_30_seconds(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, _pod("d"))
    pod = core.delete_namespaced_pod("d", namespace)
    assert pod.metadata.deletion_grace_period_seconds == 30
    core.delete_namespaced_pod("d", namespace, grace_period_seconds=0)


def test_grace_period_zero_deletes_at_once_after_a_deletion_mark(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_pod(namespace, _pod("z", grace=20))
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_pod,
        namespace,
        resource_version=created.metadata.resource_version,
        timeout_seconds=5,
    )
    pod = core.delete_namespaced_pod("z", namespace, grace_period_seconds=0)
    assert pod.metadata.deletion_grace_period_seconds == 0 and pod.metadata.deletion_timestamp
    events = []
    for ev in stream:
        events.append((ev["type"], ev["object"].metadata.deletion_timestamp is not None))
        if ev["type"] == "DELETED":
            w.stop()
    assert events == [("MODIFIED", True), ("DELETED", True)]


def test_finished_pod_is_deleted_at_once(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, _pod("done", grace=20))
    core.patch_namespaced_pod_status("done", namespace, {"status": {"phase": "Succeeded"}})
    core.delete_namespaced_pod("done", namespace)
    with pytest.raises(client.ApiException) as ei:
        core.read_namespaced_pod("done", namespace)
    assert ei.value.status == 404


def test_dry_run_delete_answers_without_deleting(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, _pod("dry", node=None))
    pod = core.delete_namespaced_pod("dry", namespace, dry_run="All")
    assert pod.metadata.name == "dry"
    assert core.read_namespaced_pod("dry", namespace).metadata.deletion_timestamp is None


# ---------------------------------------------------------------- kubectl


@needs_kubectl
def test_kubectl_delete_reports_every_answer_as_deleted(
    kubeconfig_path: Path, api_client, namespace
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    core.create_namespaced_service(
        namespace, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "sa"}})
    core.create_namespaced_pod(namespace, _pod("unscheduled", node=None))
    core.create_namespaced_pod(namespace, _pod("forced", grace=20))
    core.create_namespaced_pod(namespace, _pod("running", grace=20))
    ns = ["-n", namespace]
    def delete(*args: str) -> str:
        return kubectl(kubeconfig_path, *ns, "delete", *args).stdout

    assert 'configmap "c" deleted' in delete("configmap", "c")
    assert 'service "s" deleted' in delete("service", "s")
    assert 'serviceaccount "sa" deleted' in delete("sa", "sa")
    out = delete("pod", "unscheduled")
    assert 'pod "unscheduled" deleted' in out
    out = delete("pod", "forced", "--grace-period=0", "--force")
    assert 'pod "forced" force deleted' in out
    out = delete("pod", "running", "--wait=false")
    assert 'pod "running" deleted' in out
    left = {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items}
    assert set(left) == {"running"}
    assert left["running"].metadata.deletion_grace_period_seconds == 20
    core.delete_namespaced_pod("running", namespace, grace_period_seconds=0)  # the kubelet's part
