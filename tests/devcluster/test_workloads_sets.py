"""ReplicaSets, ReplicationControllers, StatefulSets, DaemonSets and Jobs run their pods as on a
cluster (through the official client and kubectl)."""

from __future__ import annotations

from typing import Any

from kubernetes import client, watch
from support.waiting import wait_for
from workloads_support import condition, kubectl, needs_kubectl, pod_template

NODES = {"devcluster-control-plane", "devcluster-worker"}


def _live_pods(core: client.CoreV1Api, ns: str) -> list[Any]:
    pods = core.list_namespaced_pod(ns).items
    return sorted(
        (p for p in pods if p.metadata.deletion_timestamp is None), key=lambda p: p.metadata.name
    )


def _all_pods(core: client.CoreV1Api, ns: str) -> list[Any]:
    return sorted(core.list_namespaced_pod(ns).items, key=lambda p: p.metadata.name)


def _selector(name: str) -> dict[str, Any]:
    return {"matchLabels": {"app": name}}


# ---------------------------------------------------------------- ReplicaSet / RC


def test_replica_set_keeps_its_count_adopts_orphans_and_replaces_deleted_pods(
    api_client, namespace
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    core.create_namespaced_pod(
        namespace, {**pod_template("rs"), "metadata": {"name": "orphan", "labels": {"app": "rs"}}}
    )
    rs = apps.create_namespaced_replica_set(
        namespace,
        {
            "metadata": {"name": "rs"},
            "spec": {"replicas": 3, "selector": _selector("rs"), "template": pod_template("rs")},
        },
    )

    def settled() -> Any:
        cur = apps.read_namespaced_replica_set("rs", namespace)
        st = cur.status
        ok = st.observed_generation == cur.metadata.generation and st.ready_replicas == 3
        return cur if ok and st.available_replicas == 3 and st.fully_labeled_replicas == 3 else None

    wait_for(settled, what="3 ready replicas")
    pods = _live_pods(core, namespace)
    assert len(pods) == 3
    orphan = next(p for p in pods if p.metadata.name == "orphan")
    (ref,) = orphan.metadata.owner_references
    assert (ref.kind, ref.uid, ref.controller) == ("ReplicaSet", rs.metadata.uid, True)
    assert all(p.metadata.generate_name == "rs-" for p in pods if p.metadata.name != "orphan")

    victim = pods[0].metadata.name
    core.delete_namespaced_pod(victim, namespace)
    wait_for(
        lambda: (
            len(names := {p.metadata.name for p in _all_pods(core, namespace)}) == 3
            and victim not in names
        ),
        what="the deleted pod replaced",
    )


@needs_kubectl
def test_replication_controller_is_served_and_scaled(
    kubeconfig_path, api_client, namespace
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_replication_controller(
        namespace,
        {"metadata": {"name": "rc"}, "spec": {"replicas": 2, "template": pod_template("rc")}},
    )
    wait_for(
        lambda: (
            core.read_namespaced_replication_controller("rc", namespace).status.ready_replicas == 2
        ),
        what="2 ready replicas",
    )
    rc = core.read_namespaced_replication_controller("rc", namespace)
    assert rc.spec.selector == {"app": "rc"}  # defaulted from the template
    assert rc.status.observed_generation == rc.metadata.generation
    scale = core.read_namespaced_replication_controller_scale("rc", namespace)
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (2, 2, "app=rc")

    out = kubectl(kubeconfig_path, "-n", namespace, "scale", "rc/rc", "--replicas=3")
    assert "replicationcontroller/rc scaled" in out.stdout
    wait_for(lambda: len(_live_pods(core, namespace)) == 3, what="3 pods")
    for pod in _live_pods(core, namespace):
        (ref,) = pod.metadata.owner_references
        assert (ref.kind, ref.name) == ("ReplicationController", "rc")
    out = kubectl(kubeconfig_path, "-n", namespace, "get", "rc", "-o", "name").stdout
    assert out.split() == ["replicationcontroller/rc"]


# ---------------------------------------------------------------- StatefulSet


def _statefulset(name: str, replicas: int, image: str = "nginx:1.25") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": _selector(name),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": pod_template(name, image),
        },
    }


@needs_kubectl
def test_stateful_set_creates_ordered_pods_and_rolls_out_highest_first(
    kubeconfig_path, api_client, namespace
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    apps.create_namespaced_stateful_set(namespace, _statefulset("db", 3))
    out = kubectl(
        kubeconfig_path, "-n", namespace, "rollout", "status", "statefulset/db", "--timeout=20s"
    ).stdout
    assert "partitioned roll out complete" in out or "rolling update complete" in out

    # pods were created one at a time, each once the previous one was ready
    added: list[str] = []
    w = watch.Watch()
    for ev in w.stream(
        core.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=10
    ):
        if ev["type"] == "ADDED":
            added.append(ev["object"].metadata.name)
        if len(added) == 3:
            w.stop()
    assert added == ["db-0", "db-1", "db-2"]

    pods = _live_pods(core, namespace)
    s = apps.read_namespaced_stateful_set("db", namespace)
    rev = s.status.update_revision
    assert s.status.current_revision == rev and rev.startswith("db-")
    assert (s.status.replicas, s.status.ready_replicas, s.status.updated_replicas) == (3, 3, 3)
    for i, pod in enumerate(pods):
        assert pod.metadata.name == f"db-{i}"
        assert pod.spec.hostname == f"db-{i}" and pod.spec.subdomain == "db"
        assert pod.metadata.labels["controller-revision-hash"] == rev
        assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == f"db-{i}"
        assert pod.metadata.labels["apps.kubernetes.io/pod-index"] == str(i)
    revisions = apps.list_namespaced_controller_revision(namespace).items
    assert [(r.metadata.name, r.revision) for r in revisions] == [(rev, 1)]

    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    kubectl(kubeconfig_path, "-n", namespace, "set", "image", "statefulset/db", "main=nginx:1.26")
    kubectl(
        kubeconfig_path, "-n", namespace, "rollout", "status", "statefulset/db", "--timeout=20s"
    )

    def updated() -> Any:
        cur = apps.read_namespaced_stateful_set("db", namespace)
        st = cur.status
        done = st.current_revision == st.update_revision != rev and st.updated_replicas == 3
        return cur if done and st.ready_replicas == 3 else None

    wait_for(updated, what="all pods on the new revision")
    deleted: list[str] = []
    w = watch.Watch()
    for ev in w.stream(
        core.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=10
    ):
        if ev["type"] == "DELETED":
            deleted.append(ev["object"].metadata.name)
        if len(deleted) == 3:
            w.stop()
    assert deleted == ["db-2", "db-1", "db-0"]
    assert len(apps.list_namespaced_controller_revision(namespace).items) == 2

    apps.patch_namespaced_stateful_set_scale("db", namespace, {"spec": {"replicas": 1}})
    wait_for(
        lambda: [p.metadata.name for p in _all_pods(core, namespace)] == ["db-0"],
        what="scaled down to db-0",
    )


# ---------------------------------------------------------------- DaemonSet


@needs_kubectl
def test_daemon_set_runs_one_pod_per_node(kubeconfig_path, api_client, namespace) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    apps.create_namespaced_daemon_set(
        namespace,
        {
            "metadata": {"name": "agent"},
            "spec": {"selector": _selector("agent"), "template": pod_template("agent")},
        },
    )
    kubectl(
        kubeconfig_path, "-n", namespace, "rollout", "status", "daemonset/agent", "--timeout=20s"
    )
    ds = apps.read_namespaced_daemon_set("agent", namespace)
    st = ds.status
    assert (st.desired_number_scheduled, st.current_number_scheduled, st.number_ready) == (2, 2, 2)
    assert (st.number_available, st.updated_number_scheduled, st.number_misscheduled) == (2, 2, 0)
    pods = _live_pods(core, namespace)
    assert {p.spec.node_name for p in pods} == NODES
    for pod in pods:
        terms = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
        (field,) = terms.node_selector_terms[0].match_fields
        assert (field.key, field.values) == ("metadata.name", [pod.spec.node_name])
        assert "controller-revision-hash" in pod.metadata.labels

    kubectl(kubeconfig_path, "-n", namespace, "set", "image", "daemonset/agent", "main=busybox:2")
    kubectl(
        kubeconfig_path, "-n", namespace, "rollout", "status", "daemonset/agent", "--timeout=20s"
    )
    wait_for(
        lambda: (
            {(p.spec.node_name, p.spec.containers[0].image) for p in _all_pods(core, namespace)}
            == {(n, "busybox:2") for n in NODES}
        ),
        what="one new pod per node",
    )


# ---------------------------------------------------------------- Job


@needs_kubectl
def test_job_runs_pods_to_completion(kubeconfig_path, api_client, namespace) -> None:
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    template = pod_template("job", restartPolicy="Never")
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "once"},
            "spec": {"completions": 3, "parallelism": 2, "template": template},
        },
    )
    out = kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "wait",
        "--for=condition=complete",
        "job/once",
        "--timeout=20s",
    ).stdout
    assert "job.batch/once condition met" in out
    job = batch.read_namespaced_job("once", namespace)
    assert job.status.succeeded == 3 and not job.status.active
    assert job.status.start_time and job.status.completion_time
    complete = condition(job, "Complete")
    assert (complete.status, complete.reason) == ("True", "CompletionsReached")
    pods = _all_pods(core, namespace)
    assert len(pods) == 3
    for pod in pods:
        assert pod.status.phase == "Succeeded"
        assert pod.metadata.labels["batch.kubernetes.io/job-name"] == "once"
        terminated = pod.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (0, "Completed")


def test_indexed_job_reports_completed_indexes(api_client, namespace) -> None:
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "idx"},
            "spec": {
                "completions": 3,
                "parallelism": 3,
                "completionMode": "Indexed",
                "template": pod_template("idx", restartPolicy="Never"),
            },
        },
    )

    def complete() -> Any:
        job = batch.read_namespaced_job("idx", namespace)
        return job if condition(job, "Complete") else None

    job = wait_for(complete, what="the job complete")
    assert job.status.completed_indexes == "0-2"
    indexes = sorted(
        p.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        for p in _all_pods(core, namespace)
    )
    assert indexes == ["0", "1", "2"]
