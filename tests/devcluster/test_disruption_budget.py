"""PodDisruptionBudgets: the budget computation (table-driven, on plain objects) and the status
the disruption controller writes on the devcluster, as ``kubectl get pdb`` shows it."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from support.waiting import wait_for
from workloads_support import deployment_yaml, kubectl, needs_kubectl

from devcluster.disruption_budget import Budget, allowed_condition, compute, store_scale_lookup

JSON = dict[str, Any]
NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def _pod(
    name: str, *, ready: bool = True, deleting: bool = False, owner: str | None = "rs"
) -> JSON:
    meta: JSON = {"name": name, "namespace": "ns", "labels": {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T11:59:00Z"
    if owner:
        meta["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": owner, "uid": f"uid-{owner}", "controller": True}
        ]
    cond = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": meta, "status": {"phase": "Running", "conditions": [cond]}}


def _pdb(status: JSON | None = None, **spec: Any) -> JSON:
    return {
        "metadata": {"name": "pdb", "namespace": "ns", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
        "status": status or {},
    }


def _rs(replicas: int) -> Any:
    """A lookup where the pods' ReplicaSet ``rs`` has ``replicas`` (and no Deployment)."""
    stored = {
        (("apps", "replicasets"), "ns", "rs"): {
            "metadata": {"name": "rs", "uid": "uid-rs"},
            "spec": {"replicas": replicas},
        }
    }
    return store_scale_lookup(lambda key, ns, name: stored.get((key, ns, name)))


THREE_READY = [_pod("a"), _pod("b"), _pod("c")]

CASES = [
    # (name, pdb, pods, controller replicas, expected Budget(expected, desired, current, allowed))
    ("minAvailable int", _pdb(minAvailable=2), THREE_READY, 3, Budget(3, 2, 3, 1)),
    ("minAvailable int, too few", _pdb(minAvailable=3), THREE_READY[:2], 3, Budget(2, 3, 2, 0)),
    (
        "minAvailable percent rounds up",
        _pdb(minAvailable="50%"),
        THREE_READY,
        3,
        Budget(3, 2, 3, 1),
    ),
    ("minAvailable percent of scale", _pdb(minAvailable="50%"), THREE_READY, 5, Budget(5, 3, 3, 0)),
    ("maxUnavailable int", _pdb(maxUnavailable=1), THREE_READY, 3, Budget(3, 2, 3, 1)),
    ("maxUnavailable percent", _pdb(maxUnavailable="34%"), THREE_READY, 3, Budget(3, 1, 3, 2)),
    ("maxUnavailable above scale", _pdb(maxUnavailable=5), THREE_READY, 3, Budget(3, 0, 3, 3)),
    (
        "unready and deleting pods are not healthy",
        _pdb(minAvailable=1),
        [_pod("a"), _pod("b", ready=False), _pod("c", deleting=True)],
        3,
        Budget(3, 1, 1, 0),
    ),
    (
        "a pod evicted a minute ago is not healthy",
        _pdb({"disruptedPods": {"a": "2026-01-01T11:59:00Z"}}, minAvailable=1),
        THREE_READY,
        3,
        Budget(3, 1, 2, 1),
    ),
    (
        "an eviction older than two minutes is forgotten",
        _pdb({"disruptedPods": {"a": "2026-01-01T11:50:00Z"}}, minAvailable=1),
        THREE_READY,
        3,
        Budget(3, 1, 3, 2),
    ),
    (
        "unmanaged pods count for nothing in the scale",
        _pdb(maxUnavailable=0),
        [_pod("a", owner=None), _pod("b")],
        1,
        Budget(1, 1, 2, 1),
    ),
    ("no pods", _pdb(minAvailable=1), [], 3, Budget(0, 1, 0, 0)),
    ("neither field", _pdb(), THREE_READY, 3, Budget(0, 0, 3, 0)),
    (
        "nil selector selects nothing",
        _pdb(selector=None, minAvailable=0),
        THREE_READY,
        3,
        Budget(0, 0, 0, 0),
    ),
    (
        "empty selector selects all",
        _pdb(selector={}, minAvailable=0),
        THREE_READY,
        3,
        Budget(3, 0, 3, 3),
    ),
]


@pytest.mark.parametrize(
    ("pdb", "pods", "replicas", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_budget(pdb: JSON, pods: list[JSON], replicas: int, want: Budget) -> None:
    assert compute(pdb, pods, _rs(replicas), NOW) == want


def test_a_replica_set_of_a_deployment_counts_the_deployments_scale() -> None:
    stored = {
        (("apps", "replicasets"), "ns", "rs"): {
            "metadata": {
                "name": "rs",
                "uid": "uid-rs",
                "ownerReferences": [
                    {"kind": "Deployment", "name": "d", "uid": "uid-d", "controller": True}
                ],
            },
            "spec": {"replicas": 1},
        },
        (("apps", "deployments"), "ns", "d"): {
            "metadata": {"name": "d", "uid": "uid-d"},
            "spec": {"replicas": 4},
        },
    }
    lookup = store_scale_lookup(lambda key, ns, name: stored.get((key, ns, name)))
    assert compute(_pdb(maxUnavailable="25%"), THREE_READY, lookup, NOW) == Budget(4, 3, 3, 0)


def test_the_condition_keeps_its_transition_time_until_it_flips() -> None:
    first = allowed_condition([], 1, 1, "t1")
    assert first == [
        {
            "type": "DisruptionAllowed",
            "status": "True",
            "reason": "SufficientPods",
            "message": "",
            "observedGeneration": 1,
            "lastTransitionTime": "t1",
        }
    ]
    assert allowed_condition(first, 2, 2, "t2")[0]["lastTransitionTime"] == "t1"
    flipped = allowed_condition(first, 0, 2, "t3")[0]
    assert (flipped["status"], flipped["reason"], flipped["lastTransitionTime"]) == (
        "False",
        "InsufficientPods",
        "t3",
    )


# ---------------------------------------------------------------- on the devcluster


def _pdb_status(api: client.ApiClient, ns: str, name: str) -> Any:
    return client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, ns).status


@needs_kubectl
def test_the_disruption_controller_keeps_the_status(
    kubeconfig_path: Path, namespace: str, api_client: client.ApiClient
) -> None:
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=deployment_yaml("web", replicas=3),
    )
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=50%",
    )

    def settled(want: tuple[int, int, int, int]) -> Any:
        s = _pdb_status(api_client, namespace, "web")
        got = (s.expected_pods, s.desired_healthy, s.current_healthy, s.disruptions_allowed)
        return s if got == want else None

    s = wait_for(lambda: settled((3, 2, 3, 1)), what="the PDB of 3 ready pods")
    assert s.observed_generation == 1
    (cond,) = s.conditions
    assert (cond.type, cond.status, cond.reason) == ("DisruptionAllowed", "True", "SufficientPods")

    out = kubectl(kubeconfig_path, "-n", namespace, "get", "pdb", "web").stdout.split("\n")
    assert out[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]
    assert out[1].split()[:4] == ["web", "50%", "N/A", "1"]

    # a new spec: the generation moves and the budget is recomputed against it
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        '{"spec": {"minAvailable": 3}}',
    )
    s = wait_for(lambda: settled((3, 3, 3, 0)), what="the PDB after minAvailable 3")
    assert s.observed_generation == 2
    (cond,) = s.conditions
    assert (cond.status, cond.reason) == ("False", "InsufficientPods")

    # scaling the Deployment changes the expected pods of a percentage budget
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        '{"spec": {"minAvailable": null, "maxUnavailable": "50%"}}',
    )
    kubectl(kubeconfig_path, "-n", namespace, "scale", "deployment/web", "--replicas=4")
    wait_for(lambda: settled((4, 2, 4, 2)), what="the PDB of the scaled Deployment")
