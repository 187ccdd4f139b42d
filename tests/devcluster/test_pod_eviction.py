"""``pods/eviction`` on the devcluster: a pod goes only when its PodDisruptionBudget allows it,
with kube-apiserver's answers (201 Status Success; 429 with the ``DisruptionBudget`` cause; 500
for two budgets) through the official client's ``create_namespaced_pod_eviction``, and
``kubectl drain`` evicting through a budget.

The scenario with a Deployment cordons the Nodes first, as ``kubectl drain`` does: the evicted
pod's replacement then stays Pending (not healthy), as it would for a while on a real cluster,
instead of becoming Ready at once under the simulated kubelet. Cordoning changes the cluster, so
this module runs its own devcluster.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dc_support import body_of
from kubernetes import client
from support.waiting import wait_for
from workloads_support import deployment_yaml, kubectl, needs_kubectl

from devcluster import DevCluster

pytestmark = needs_kubectl

VIOLATES = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevCluster]:
    with DevCluster() as c:
        yield c
    assert c.last_error is None, f"devcluster internal error: {c.last_error!r}"


@pytest.fixture(scope="module")
def kubeconfig(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cluster.write_kubeconfig(tmp_path_factory.mktemp("evict") / "config")


@pytest.fixture
def api(cluster: DevCluster) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    cfg.host = cluster.url
    cfg.api_key = {"authorization": cluster.admin_token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(cfg) as c:
        yield c


@pytest.fixture
def ns(api: client.ApiClient) -> str:
    name = f"e-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def _evict(api: client.ApiClient, ns: str, name: str, **delete_options: Any) -> Any:
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": ns},
    }
    if delete_options:
        body["deleteOptions"] = delete_options
    # the raw answer: the typed one would read the Status as an Eviction
    return client.CoreV1Api(api).create_namespaced_pod_eviction(
        name, ns, body, _preload_content=False
    )


def _refused(api: client.ApiClient, ns: str, name: str) -> client.ApiException:
    with pytest.raises(client.ApiException) as e:
        _evict(api, ns, name)
    return e.value


def _pdb(api: client.ApiClient, ns: str, name: str, **spec: Any) -> None:
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        ns,
        {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}},
    )


def _numbers(api: client.ApiClient, ns: str, name: str) -> tuple[int, int, int, int]:
    s = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, ns).status
    if s is None:
        return (-1, -1, -1, -1)
    return (s.expected_pods, s.desired_healthy, s.current_healthy, s.disruptions_allowed)


def _live_pods(api: client.ApiClient, ns: str) -> list[Any]:
    pods = client.CoreV1Api(api).list_namespaced_pod(ns).items
    return sorted(
        (p for p in pods if p.metadata.deletion_timestamp is None), key=lambda p: p.metadata.name
    )


def _cordon(api: client.ApiClient, unschedulable: bool) -> None:
    core = client.CoreV1Api(api)
    for node in core.list_node().items:
        core.patch_node(node.metadata.name, {"spec": {"unschedulable": unschedulable}})


def test_a_budget_lets_one_pod_go_then_refuses_the_next(
    kubeconfig: Path, ns: str, api: client.ApiClient
) -> None:
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", input=deployment_yaml("web", replicas=2))
    _pdb(api, ns, "web", minAvailable=1)
    wait_for(lambda: _numbers(api, ns, "web") == (2, 1, 2, 1), what="2 healthy pods, 1 allowed")
    first, second = _live_pods(api, ns)

    _cordon(api, True)
    try:
        answer = _evict(api, ns, first.metadata.name)
        assert answer.status == 201
        assert json.loads(answer.data) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }
        err = _refused(api, ns, second.metadata.name)
        assert err.status == 429
        status = body_of(err)
        assert (status["reason"], status["message"]) == ("TooManyRequests", VIOLATES)
        assert status["details"]["causes"] == [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget web needs 1 healthy pods and has 1 currently",
            }
        ]
        core = client.CoreV1Api(api)

        def names() -> set[str]:
            return {p.metadata.name for p in core.list_namespaced_pod(ns).items}

        # a graceful delete, which the kubelet finishes
        wait_for(lambda: first.metadata.name not in names(), what="the evicted pod gone")
        assert second.metadata.name in names()
        # the replacement is Pending on the cordoned nodes: one healthy pod, nothing allowed
        wait_for(lambda: _numbers(api, ns, "web") == (2, 1, 1, 0), what="1 healthy, 0 allowed")
        out = kubectl(kubeconfig, "-n", ns, "get", "pdb", "web", "--no-headers").stdout.split()
        assert out[:4] == ["web", "1", "N/A", "0"]
    finally:
        _cordon(api, False)
    # uncordoned, the replacement runs and the budget allows the second eviction
    wait_for(lambda: _numbers(api, ns, "web") == (2, 1, 2, 1), what="the replacement ready")
    assert _evict(api, ns, second.metadata.name).status == 201


def _pod_elsewhere(api: client.ApiClient, ns: str, name: str, *, ready: bool) -> None:
    """A Running pod on a node nobody runs, Ready or not as the test says (no simulated kubelet
    rewrites its status, and none finishes its graceful deletion)."""
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "elsewhere", "containers": [{"name": "c", "image": "x"}]},
        },
    )
    pod = api.sanitize_for_serialization(core.read_namespaced_pod(name, ns))
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    core.replace_namespaced_pod_status(name, ns, pod)


def _deleting(api: client.ApiClient, ns: str, name: str) -> bool:
    pod = client.CoreV1Api(api).read_namespaced_pod(name, ns)
    return pod.metadata.deletion_timestamp is not None


@pytest.mark.parametrize(
    ("policy", "code"), [(None, 429), ("IfHealthyBudget", 429), ("AlwaysAllow", 201)]
)
def test_an_unready_pod_below_budget_goes_only_with_always_allow(
    ns: str, api: client.ApiClient, policy: str | None, code: int
) -> None:
    _pod_elsewhere(api, ns, "ok", ready=True)
    _pod_elsewhere(api, ns, "sick", ready=False)
    extra = {"unhealthyPodEvictionPolicy": policy} if policy else {}
    _pdb(api, ns, "web", minAvailable=2, **extra)
    if code == 201:
        assert _evict(api, ns, "sick").status == 201
        assert _deleting(api, ns, "sick")
        return
    err = _refused(api, ns, "sick")
    assert (err.status, body_of(err)["details"]["causes"][0]["message"]) == (
        429,
        "The disruption budget web needs 2 healthy pods and has 1 currently",
    )
    assert not _deleting(api, ns, "sick")


def test_an_unready_pod_goes_when_the_budget_is_met_without_it(
    ns: str, api: client.ApiClient
) -> None:
    _pod_elsewhere(api, ns, "ok", ready=True)
    _pod_elsewhere(api, ns, "sick", ready=False)
    _pdb(api, ns, "web", minAvailable=1)
    assert _evict(api, ns, "sick").status == 201  # 1 healthy >= 1 desired
    assert _deleting(api, ns, "sick")
    assert _refused(api, ns, "ok").status == 429


def test_two_budgets_one_pod_is_a_500(ns: str, api: client.ApiClient) -> None:
    _pod_elsewhere(api, ns, "p", ready=True)
    _pdb(api, ns, "one", maxUnavailable=1)
    _pdb(api, ns, "two", maxUnavailable=1)
    err = _refused(api, ns, "p")
    assert (err.status, body_of(err)["message"]) == (
        500,
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does "
        "not support.",
    )


def test_no_budget_dry_run_and_delete_options(ns: str, api: client.ApiClient) -> None:
    _pod_elsewhere(api, ns, "p", ready=True)
    assert _evict(api, ns, "p", dryRun=["All"]).status == 201
    assert not _deleting(api, ns, "p")
    assert _evict(api, ns, "p", gracePeriodSeconds=7).status == 201
    pod = client.CoreV1Api(api).read_namespaced_pod("p", ns)
    assert pod.metadata.deletion_grace_period_seconds == 7

    with pytest.raises(client.ApiException) as e:
        _evict(api, ns, "missing")
    assert (e.value.status, body_of(e.value)["message"]) == (404, 'pods "missing" not found')


def test_edit_may_evict_and_view_may_not(kubeconfig: Path, ns: str) -> None:
    for role in ("edit", "view"):
        kubectl(
            kubeconfig,
            "-n",
            ns,
            "create",
            "rolebinding",
            role,
            f"--clusterrole={role}",
            f"--user={role}-user",
        )

    def can_i(user: str) -> str:
        proc = kubectl(
            kubeconfig,
            "-n",
            ns,
            "auth",
            "can-i",
            "create",
            "pods/eviction",
            "--as",
            user,
            check=False,
        )
        return proc.stdout.strip()

    assert (can_i("edit-user"), can_i("view-user")) == ("yes", "no")


def test_kubectl_drain_evicts_through_the_budget(
    kubeconfig: Path, ns: str, api: client.ApiClient
) -> None:
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", input=deployment_yaml("web", replicas=2))
    _pdb(api, ns, "web", minAvailable=1)
    wait_for(lambda: _numbers(api, ns, "web") == (2, 1, 2, 1), what="2 healthy pods, 1 allowed")
    node = _live_pods(api, ns)[0].spec.node_name
    try:
        out = kubectl(
            kubeconfig, "drain", node, "--pod-selector=app=web", "--timeout=30s", timeout=40
        )
        assert "evicting pod" in out.stderr + out.stdout
        assert f"node/{node} drained" in out.stdout
        assert all(p.spec.node_name != node for p in _live_pods(api, ns))
    finally:
        kubectl(kubeconfig, "uncordon", node)
