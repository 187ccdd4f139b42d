"""Deployments on the devcluster behave as on a cluster: kubectl applies, scales and rolls them
out, ``kubectl rollout status`` completes, ReplicaSets and Pods appear with owner references,
status and conditions are the real ones, and deleting the Deployment garbage-collects the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dc_support import body_of
from kubernetes import client, watch
from support.waiting import wait_for
from workloads_support import condition, deployment_yaml, kubectl, needs_kubectl

pytestmark = needs_kubectl


def _apply(kubeconfig: Path, ns: str, manifest: str) -> None:
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", input=manifest)


def _rollout(kubeconfig: Path, ns: str, name: str) -> str:
    out = kubectl(
        kubeconfig, "-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=20s"
    ).stdout
    assert f'deployment "{name}" successfully rolled out' in out
    return out


def _replica_sets(api: client.ApiClient, ns: str) -> list[Any]:
    items = client.AppsV1Api(api).list_namespaced_replica_set(ns).items
    return sorted(items, key=lambda rs: rs.metadata.name)


def _pods(api: client.ApiClient, ns: str, *, live: bool = True) -> list[Any]:
    items = client.CoreV1Api(api).list_namespaced_pod(ns).items
    return [p for p in items if not live or p.metadata.deletion_timestamp is None]


def test_apply_then_rollout_status_completes_with_owned_replica_set_and_pods(
    kubeconfig_path, namespace, api_client
) -> None:
    _apply(kubeconfig_path, namespace, deployment_yaml("web", replicas=3))
    _rollout(kubeconfig_path, namespace, "web")

    d = client.AppsV1Api(api_client).read_namespaced_deployment("web", namespace)
    assert d.status.observed_generation == d.metadata.generation
    assert (
        d.status.replicas,
        d.status.updated_replicas,
        d.status.ready_replicas,
        d.status.available_replicas,
    ) == (3, 3, 3, 3)
    assert d.status.unavailable_replicas is None
    available, progressing = condition(d, "Available"), condition(d, "Progressing")
    assert (available.status, available.reason) == ("True", "MinimumReplicasAvailable")
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"

    (rs,) = _replica_sets(api_client, namespace)
    h = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{h}"
    assert progressing.message == f'ReplicaSet "web-{h}" has successfully progressed.'
    (ref,) = rs.metadata.owner_references
    assert (ref.kind, ref.name, ref.uid, ref.controller, ref.block_owner_deletion) == (
        "Deployment",
        "web",
        d.metadata.uid,
        True,
        True,
    )
    assert rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": h}
    assert rs.spec.template.metadata.labels == {"app": "web", "pod-template-hash": h}
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert rs.metadata.annotations["deployment.kubernetes.io/desired-replicas"] == "3"
    assert (rs.status.replicas, rs.status.ready_replicas, rs.status.available_replicas) == (3, 3, 3)
    assert rs.status.observed_generation == rs.metadata.generation

    pods = _pods(api_client, namespace)
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.name.startswith(f"web-{h}-")
        assert pod.metadata.generate_name == f"web-{h}-"
        assert pod.metadata.labels == {"app": "web", "pod-template-hash": h}
        (pref,) = pod.metadata.owner_references
        assert (pref.kind, pref.name, pref.uid, pref.controller) == (
            "ReplicaSet",
            rs.metadata.name,
            rs.metadata.uid,
            True,
        )
        assert pod.status.phase == "Running"
    managers = {m.manager for m in rs.metadata.managed_fields}
    assert "kube-controller-manager" in managers


def test_kubectl_scale_up_and_down(kubeconfig_path, namespace, api_client) -> None:
    apps = client.AppsV1Api(api_client)
    _apply(kubeconfig_path, namespace, deployment_yaml("web", replicas=2))
    _rollout(kubeconfig_path, namespace, "web")
    generation = apps.read_namespaced_deployment("web", namespace).metadata.generation

    out = kubectl(kubeconfig_path, "-n", namespace, "scale", "deployment/web", "--replicas=4")
    assert "deployment.apps/web scaled" in out.stdout
    _rollout(kubeconfig_path, namespace, "web")
    d = apps.read_namespaced_deployment("web", namespace)
    assert d.spec.replicas == 4
    assert d.metadata.generation == generation + 1 == d.status.observed_generation
    assert d.status.available_replicas == 4
    assert len(_pods(api_client, namespace)) == 4

    kubectl(kubeconfig_path, "-n", namespace, "scale", "deployment/web", "--replicas=1")
    _rollout(kubeconfig_path, namespace, "web")
    # the surplus pods are deleted gracefully and the kubelet finishes them
    wait_for(lambda: len(_pods(api_client, namespace, live=False)) == 1, what="one pod left")
    (rs,) = _replica_sets(api_client, namespace)
    assert rs.spec.replicas == 1
    wait_for(
        lambda: apps.read_namespaced_deployment("web", namespace).status.replicas == 1,
        what="status.replicas 1",
    )


def test_image_change_rolls_out_a_new_replica_set_and_scales_the_old_to_zero(
    kubeconfig_path, namespace, api_client
) -> None:
    _apply(kubeconfig_path, namespace, deployment_yaml("web", replicas=2))
    _rollout(kubeconfig_path, namespace, "web")
    (old,) = _replica_sets(api_client, namespace)

    kubectl(kubeconfig_path, "-n", namespace, "set", "image", "deployment/web", "main=nginx:1.26")
    _rollout(kubeconfig_path, namespace, "web")
    rss = {rs.metadata.name: rs for rs in _replica_sets(api_client, namespace)}
    assert set(rss) - {old.metadata.name} and len(rss) == 2
    new = next(rs for name, rs in rss.items() if name != old.metadata.name)
    assert rss[old.metadata.name].spec.replicas == 0
    assert new.spec.replicas == 2
    assert new.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    d = client.AppsV1Api(api_client).read_namespaced_deployment("web", namespace)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    h = new.metadata.labels["pod-template-hash"]
    wait_for(
        lambda: (
            {
                p.metadata.labels["pod-template-hash"]
                for p in _pods(api_client, namespace, live=False)
            }
            == {h}
        ),
        what="only pods of the new ReplicaSet",
    )
    for pod in _pods(api_client, namespace):
        assert pod.status.container_statuses[0].image == "docker.io/library/nginx:1.26"

    out = kubectl(kubeconfig_path, "-n", namespace, "rollout", "restart", "deployment/web")
    assert "restarted" in out.stdout
    _rollout(kubeconfig_path, namespace, "web")
    assert len(_replica_sets(api_client, namespace)) == 3


def test_rollout_undo_brings_back_the_previous_replica_set_under_a_new_revision(
    kubeconfig_path, namespace, api_client
) -> None:
    _apply(kubeconfig_path, namespace, deployment_yaml("web", replicas=2))
    _rollout(kubeconfig_path, namespace, "web")
    (first,) = _replica_sets(api_client, namespace)
    kubectl(kubeconfig_path, "-n", namespace, "set", "image", "deployment/web", "main=nginx:1.26")
    _rollout(kubeconfig_path, namespace, "web")
    history = kubectl(kubeconfig_path, "-n", namespace, "rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == [
        "1",
        "2",
    ]

    kubectl(kubeconfig_path, "-n", namespace, "rollout", "undo", "deployment/web")
    _rollout(kubeconfig_path, namespace, "web")
    rss = {rs.metadata.name: rs for rs in _replica_sets(api_client, namespace)}
    assert len(rss) == 2  # the old set is reused, not a third one made
    back = rss[first.metadata.name]
    assert back.spec.replicas == 2
    assert back.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert back.metadata.annotations["deployment.kubernetes.io/revision-history"] == "1"
    d = client.AppsV1Api(api_client).read_namespaced_deployment("web", namespace)
    assert d.spec.template.spec.containers[0].image == "nginx:1.25"
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"


def _watch_replica_sets(api: client.ApiClient, ns: str, rv: str) -> Iterator[Any]:
    """The ReplicaSets of ``ns`` as they changed after ``rv``."""
    w = watch.Watch()
    try:
        for ev in w.stream(
            client.AppsV1Api(api).list_namespaced_replica_set,
            ns,
            resource_version=rv,
            timeout_seconds=20,
        ):
            yield ev["object"]
    finally:
        w.stop()


@pytest.mark.parametrize(
    ("strategy", "most", "least"),
    [
        # maxSurge 1, maxUnavailable 0: up to 5 pods wanted, never fewer than 4 available
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, 5, 4),
        # Recreate: the old set is gone before the new one gets any pod
        ({"type": "Recreate"}, 4, 0),
    ],
    ids=["rolling", "recreate"],
)
def test_rollout_stays_within_its_strategy(
    api_client, namespace, strategy: dict[str, Any], most: int, least: int
) -> None:
    apps = client.AppsV1Api(api_client)
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 4,
            "strategy": strategy,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]},
            },
        },
    }
    apps.create_namespaced_deployment(namespace, body)

    def complete() -> bool:
        d = apps.read_namespaced_deployment("web", namespace)
        c = condition(d, "Progressing")
        return (
            d.status.observed_generation == d.metadata.generation
            and c is not None
            and c.reason == "NewReplicaSetAvailable"
            and d.status.updated_replicas == d.status.replicas == 4
        )

    wait_for(complete, what="first rollout")
    before = apps.list_namespaced_replica_set(namespace)
    state: dict[str, Any] = {rs.metadata.name: rs for rs in before.items}
    apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}},
    )
    wait_for(complete, what="second rollout")
    final = {
        rs.metadata.name: rs.metadata.resource_version
        for rs in apps.list_namespaced_replica_set(namespace).items
    }

    wanted, available = [], []
    for rs in _watch_replica_sets(api_client, namespace, before.metadata.resource_version):
        state[rs.metadata.name] = rs
        wanted.append(sum(r.spec.replicas for r in state.values()))
        available.append(sum(r.status.available_replicas or 0 for r in state.values()))
        if strategy["type"] == "Recreate":
            running = [r for r in state.values() if r.spec.replicas or r.status.replicas]
            assert len(running) <= 1, "Recreate ran old and new pods at once"
        if {n: r.metadata.resource_version for n, r in state.items()} == final:
            break
    assert len(state) == 2
    assert max(wanted) == most  # the surge is used, never exceeded
    assert min(available) == least


def test_delete_garbage_collects_replica_sets_and_pods(
    kubeconfig_path, namespace, api_client
) -> None:
    _apply(kubeconfig_path, namespace, deployment_yaml("web", replicas=2))
    _rollout(kubeconfig_path, namespace, "web")
    assert _replica_sets(api_client, namespace) and _pods(api_client, namespace)
    out = kubectl(kubeconfig_path, "-n", namespace, "delete", "deployment", "web")
    assert 'deployment.apps "web" deleted' in out.stdout
    wait_for(lambda: not _replica_sets(api_client, namespace), what="ReplicaSets collected")
    wait_for(lambda: not _pods(api_client, namespace, live=False), what="Pods collected")


def test_paused_deployment_waits_for_resume(kubeconfig_path, namespace, api_client) -> None:
    apps = client.AppsV1Api(api_client)
    _apply(kubeconfig_path, namespace, deployment_yaml("web", replicas=2))
    _rollout(kubeconfig_path, namespace, "web")
    kubectl(kubeconfig_path, "-n", namespace, "rollout", "pause", "deployment/web")
    kubectl(kubeconfig_path, "-n", namespace, "set", "image", "deployment/web", "main=nginx:1.26")

    def observed_paused() -> Any:
        d = apps.read_namespaced_deployment("web", namespace)
        c = condition(d, "Progressing")
        ok = (
            d.status.observed_generation == d.metadata.generation and c.reason == "DeploymentPaused"
        )
        return d if ok else None

    d = wait_for(observed_paused, what="the paused generation observed")
    progressing = condition(d, "Progressing")
    assert (progressing.status, progressing.message) == ("Unknown", "Deployment is paused")
    assert len(_replica_sets(api_client, namespace)) == 1  # no rollout while paused

    kubectl(kubeconfig_path, "-n", namespace, "rollout", "resume", "deployment/web")
    _rollout(kubeconfig_path, namespace, "web")
    assert len(_replica_sets(api_client, namespace)) == 2


def _replace_scale(apps: client.AppsV1Api, ns: str, name: str, replicas: int) -> Any:
    """Replace the Deployment's Scale from a fresh read, reading again on a 409: the
    deployment controller writes the Deployment's status (which moves the Scale's
    resourceVersion) while its Pods become ready, as any client of a live object must expect."""
    for _ in range(20):
        fresh = apps.read_namespaced_deployment_scale(name, ns)
        fresh.spec.replicas = replicas
        try:
            return apps.replace_namespaced_deployment_scale(name, ns, fresh)
        except client.ApiException as e:
            if e.status != 409:
                raise
    raise AssertionError(f"cannot replace the Scale of {ns}/{name}: 20 conflicts in a row")


def test_scale_subresource(api_client, namespace) -> None:
    apps = client.AppsV1Api(api_client)
    _body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
            },
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "a"}},
                "spec": {"containers": [{"name": "main", "image": "nginx"}]},
            },
        },
    }
    created = apps.create_namespaced_deployment(namespace, _body)
    wait_for(
        lambda: apps.read_namespaced_deployment_scale("web", namespace).status.replicas == 2,
        what="status.replicas 2 in the Scale",
    )
    scale = apps.read_namespaced_deployment_scale("web", namespace)
    assert (scale.kind, scale.api_version) == ("Scale", "autoscaling/v1")
    assert scale.metadata.uid == created.metadata.uid
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=web,tier in (a,b)"

    # a stale resourceVersion is a conflict on the parent
    stale = {
        "metadata": {"name": "web", "resourceVersion": created.metadata.resource_version},
        "spec": {"replicas": 5},
    }
    with pytest.raises(client.ApiException) as ei:
        apps.replace_namespaced_deployment_scale("web", namespace, stale)
    assert ei.value.status == 409
    assert body_of(ei.value)["details"] == {"name": "web", "group": "apps", "kind": "deployments"}

    with pytest.raises(client.ApiException) as ei:
        apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": -1}})
    assert ei.value.status == 422
    assert body_of(ei.value)["details"]["causes"][0]["field"] == "spec.replicas"

    out = _replace_scale(apps, namespace, "web", 3)
    assert out.spec.replicas == 3
    d = apps.read_namespaced_deployment("web", namespace)
    assert d.spec.replicas == 3 and d.metadata.generation == created.metadata.generation + 1

    out = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})
    assert out.spec.replicas == 1
    wait_for(
        lambda: apps.read_namespaced_deployment("web", namespace).status.replicas == 1,
        what="scaled down to 1",
    )
