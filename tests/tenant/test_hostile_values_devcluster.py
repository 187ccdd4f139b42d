"""The issue-10 value injection, tried as a tenant would: on the devcluster, with the controller.

``examples/in-cluster/`` is applied as is, except that the namespace ``GatewayConfig``
(``apps-defaults``) sets ``default.replicas`` to the exploit (``3"`` newline ``kind: Secret``
newline ``metadata:`` … ``namespace: kube-system``), then to its ``---`` and single-quote
variants. After the controller reconciled, exactly one of two outcomes is allowed:

- the policy is ``Accepted=True`` and the settings ConfigMap holds the value verbatim in
  ``data.replicas`` (an untyped blueprint: the value is data); or
- the policy is ``Accepted=False``/``Invalid`` (a blueprint whose ``spec.values`` makes
  ``replicas`` an integer), its message does not quote the value, and the ConfigMap does not hold
  it (the Gateway keeps what it had).

Either way no object the attack names exists (``kube-system`` Secrets/ConfigMaps) and nothing
labelled with ``gateway.bifrost.dev/gateway-uid`` exists outside the Gateway's namespace, for any
kind the cluster serves.

Then a handful of corpus values go through a string-typed tenant key (``text``) of the probe
blueprint (``probe/``): every position of the probe's ConfigMaps holds the value verbatim.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from corpus import Hostile, by_id
from scenes import EXAMPLES, PROBE, documents
from support.builders import namespace_object
from support.inprocess import running_controller
from support.waiting import wait_for

from bifrost.cli.dev import default_crd_dirs, devcluster_running
from bifrost.kube import KubeClient
from bifrost.store import migrate, open_store
from bifrost.store.interface import OperationStore
from devcluster.server import DevCluster

REPO = Path(__file__).resolve().parents[2]
BIFROST_API = "gateway.bifrost.dev/v1alpha1"
GATEWAY_API = "gateway.networking.k8s.io/v1"
UID_LABEL = "gateway.bifrost.dev/gateway-uid"
TIMEOUT = 45.0

#: the exploit and its variants (duplicate keys, ``---``, single quotes), for ``replicas``
EXPLOIT_IDS = (
    "exploit-dq-dup-keys-secret",
    "exploit-dq-docsep-secret",
    "exploit-sq-dup-keys-secret",
    "exploit-sq-docsep-secret",
)
#: a handful of the corpus through the probe's string tenant key
PROBE_IDS = (
    "exploit-dq-dup-keys-secret",
    "exploit-flow-mapping-close",
    "hex",
    "yes",
    "exponent",
    "u2028-line-separator",
    "u0085-nel",
    "tag-python-object",
    "anchors-and-aliases",
    "merge-key-line",
    "jinja-expression",
    "trailing-newline",
)


@dataclass
class Env:
    cluster: DevCluster
    kube: KubeClient
    store: OperationStore


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not default_crd_dirs():
        pytest.skip("the Gateway API and cert-manager CRDs are not in ../shared/")
    workdir = tmp_path_factory.mktemp("tenant")
    url = f"sqlite:///{(workdir / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    with devcluster_running(workdir / "kubeconfig", crds=[REPO / "deploy" / "crds"]) as cluster:
        kube = KubeClient.from_kubeconfig(workdir / "kubeconfig")
        for ns in ("bifrost-system", "kube-system"):
            kube.apply(namespace_object(ns))
        try:
            with running_controller(kube, store, name="tenant", lease_duration=5,
                                    renew_deadline=4, retry_period=1,
                                    runner_idle=timedelta(milliseconds=100)):
                yield Env(cluster, kube, store)
        finally:
            kube.close()
            store.close()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"


# ---- what must never exist ----------------------------------------------------------------------


def _get_json(cluster: DevCluster, path: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{cluster.url}{path}", headers={"Authorization": f"Bearer {cluster.admin_token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def served_kinds(cluster: DevCluster) -> list[tuple[str, str, bool]]:
    """(apiVersion, kind, namespaced) of every listable resource the cluster serves."""
    group_versions = [("/api/v1", "v1")]
    for group in _get_json(cluster, "/apis").get("groups") or []:
        for version in group.get("versions") or []:
            group_versions.append((f"/apis/{version['groupVersion']}", version["groupVersion"]))
    out: list[tuple[str, str, bool]] = []
    for path, api_version in group_versions:
        for resource in _get_json(cluster, path).get("resources") or []:
            if "/" in resource["name"] or "list" not in (resource.get("verbs") or []):
                continue
            out.append((api_version, resource["kind"], bool(resource.get("namespaced"))))
    return sorted(set(out))


def misplaced_children(env: Env) -> list[str]:
    """Every object labelled as a bifrost child that is not in its Gateway's namespace (or whose
    Gateway does not exist)."""
    gateways, _ = env.kube.list(GATEWAY_API, "Gateway")
    home = {g["metadata"]["uid"]: g["metadata"]["namespace"] for g in gateways}
    found: list[str] = []
    for api_version, kind, namespaced in served_kinds(env.cluster):
        items, _ = env.kube.list(api_version, kind, label_selector=UID_LABEL)
        for item in items:
            meta = item.get("metadata") or {}
            ns, uid = meta.get("namespace"), (meta.get("labels") or {}).get(UID_LABEL)
            if not namespaced or ns != home.get(uid):
                found.append(f"{api_version} {kind} {ns}/{meta.get('name')} (Gateway uid {uid})")
    return found


def named_by_attack(env: Env, hostile: Hostile) -> list[str]:
    found = []
    for ns, name in hostile.names:
        for kind in ("Secret", "ConfigMap"):
            if env.kube.get("v1", kind, name, ns) is not None:
                found.append(f"{kind} {ns}/{name}")
    return found


def assert_confined(env: Env, hostile: Hostile) -> None:
    named = named_by_attack(env, hostile)
    assert not named, f"{hostile.id}: the attack created {named}"
    misplaced = misplaced_children(env)
    assert not misplaced, f"{hostile.id}: bifrost children outside their Gateway's namespace: " \
        f"{misplaced}"


# ---- helpers ------------------------------------------------------------------------------------


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def apply_all(env: Env, docs: list[dict[str, Any]]) -> None:
    for doc in docs:  # as `kubectl apply -f` would, in file order
        env.kube.apply(doc)


def latest_operation(env: Env, namespace: str, name: str) -> str:
    gateway = env.kube.get(GATEWAY_API, "Gateway", name, namespace)
    if gateway is None:
        return "no Gateway"
    ops = sorted(env.store.list_operations(gateway_uid=gateway["metadata"]["uid"]),
                 key=lambda o: o.id)
    if not ops:
        return "no operation"
    op = ops[-1]
    return f"operation {op.id} {op.machine} {op.status.value} at {op.state}: {op.last_error}"


def set_policy(env: Env, policy: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Apply ``policy`` with ``spec.default`` = ``values``; the applied object."""
    body = {**policy, "spec": {**policy["spec"], "default": values}}
    return dict(env.kube.apply(body))


def settled_condition(env: Env, policy: dict[str, Any]) -> dict[str, Any] | None:
    """The policy's ``Accepted`` condition once it is about the applied generation."""
    meta = policy["metadata"]
    live = env.kube.get(BIFROST_API, policy["kind"], meta["name"], meta["namespace"])
    cond = condition(live, "Accepted")
    if cond and cond.get("observedGeneration") == (live or {})["metadata"].get("generation"):
        return cond
    return None


# ---- the exploit on examples/in-cluster ---------------------------------------------------------


IN_CLUSTER = EXAMPLES / "in-cluster"
UNTYPED = "untyped"


@dataclass(frozen=True)
class Target:
    """One copy of the in-cluster example: its namespace policy (what tests change) and the
    namespace of its Gateway ``edge``."""

    policy: dict[str, Any]
    namespace: str


def untyped_copy(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The example without ``spec.values`` (an untyped blueprint: tenants may set any value), as
    its own blueprint, class and namespace ``apps-untyped``."""
    out = []
    for doc in docs:
        doc = json.loads(json.dumps(doc))
        kind, meta, spec = doc["kind"], doc["metadata"], doc.get("spec") or {}
        if kind == "GatewayClassBlueprint":
            meta["name"] = f"in-cluster-{UNTYPED}"
            spec.pop("values", None)
        elif kind == "GatewayClass":
            meta["name"] = f"bifrost-in-cluster-{UNTYPED}"
            spec["parametersRef"]["name"] = f"in-cluster-{UNTYPED}"
        elif kind == "Namespace":
            meta["name"] = f"apps-{UNTYPED}"
        elif kind == "GatewayConfig":
            meta["namespace"] = spec["targetRef"]["name"] = f"apps-{UNTYPED}"
        elif kind == "Gateway":
            meta["namespace"] = f"apps-{UNTYPED}"
            spec["gatewayClassName"] = f"bifrost-in-cluster-{UNTYPED}"
        else:
            continue  # RBAC: the example's own applies
        out.append(doc)
    return out


@pytest.fixture(scope="module")
def in_cluster(env: Env) -> dict[str, Target]:
    """``examples/in-cluster/`` applied as is (``example``) and its untyped copy (``untyped``)."""
    docs = documents(IN_CLUSTER)
    targets = {}
    for variant, variant_docs in (("example", docs), (UNTYPED, untyped_copy(docs))):
        [policy] = [d for d in variant_docs if d["kind"] == "GatewayConfig"]
        apply_all(env, variant_docs)
        targets[variant] = Target(policy, policy["metadata"]["namespace"])
    return targets


def configmap_replicas(env: Env, namespace: str) -> Any:
    cm = env.kube.get("v1", "ConfigMap", "edge-settings", namespace)
    return None if cm is None else (cm.get("data") or {}).get("replicas", "<absent>")


@pytest.mark.parametrize("variant", ["example", UNTYPED])
@pytest.mark.parametrize("hostile_id", EXPLOIT_IDS)
def test_the_exploit_through_a_namespace_policy_stays_data(
    env: Env, in_cluster: dict[str, Target], hostile_id: str, variant: str
) -> None:
    hostile = by_id(hostile_id)
    target = in_cluster[variant]
    ns = target.namespace
    policy = set_policy(env, target.policy, {"replicas": hostile.value})

    def outcome() -> str | None:
        # fail as soon as the attack shows (the children are applied within a second)
        named = named_by_attack(env, hostile)
        assert not named, f"{hostile.id}: the attack created {named}"
        cond = settled_condition(env, policy)
        if cond is None:
            return None
        if cond["status"] == "False":
            return "rejected"
        if cond["status"] == "True" and configmap_replicas(env, ns) == hostile.value:
            return "held"
        return None

    def describe() -> str:
        return (f"{hostile.id}: Accepted={settled_condition(env, policy)}, "
                f"data.replicas={configmap_replicas(env, ns)!r}, "
                f"{latest_operation(env, ns, 'edge')}")

    result = wait_for(outcome, what=describe, timeout=TIMEOUT)
    print(f"{variant}/{hostile.id}: {result}")  # shown with -s
    if result == "rejected":
        cond = settled_condition(env, policy)
        assert cond is not None and cond["reason"] == "Invalid", describe()
        lines = [line for line in hostile.value.splitlines() if len(line.strip()) >= 8]
        assert not [line for line in lines if line in cond["message"]], cond["message"]
        # the Gateway keeps children rendered without the rejected policy
        wait_for(lambda: configmap_replicas(env, ns) not in (None, "<absent>"), what=describe,
                 timeout=TIMEOUT)
        assert configmap_replicas(env, ns) != hostile.value
    if variant == UNTYPED:  # nothing to reject: the value is data
        assert result == "held", describe()
    assert_confined(env, hostile)


# ---- corpus values through a string tenant key (probe/) ------------------------------------------


PROBE_NS = "probe"


@pytest.fixture(scope="module")
def probe(env: Env) -> dict[str, Any]:
    """The probe blueprint, its class, namespace, policies and Gateway (not its HTTPRoute)."""
    docs = [d for d in documents(PROBE) if d["kind"] != "HTTPRoute"]
    [policy] = [d for d in docs if d["kind"] == "GatewayConfig"
                and d["spec"]["targetRef"]["kind"] == "Namespace"]
    apply_all(env, docs)
    return policy


def held_positions(env: Env) -> dict[str, Any]:
    """What the probe's ConfigMaps hold where the templates print ``values.text``."""
    main = (env.kube.get("v1", "ConfigMap", "web-probe", PROBE_NS) or {}).get("data") or {}
    flow = (env.kube.get("v1", "ConfigMap", "web-probe-flow", PROBE_NS) or {}).get("data") or {}
    return {
        **{k: main.get(k) for k in ("doubleQuoted", "singleQuoted", "plain", "json", "inside",
                                    "block")},
        "flow": flow.get("text"),
    }


def expected_positions(text: str) -> dict[str, Any]:
    return {"doubleQuoted": text, "singleQuoted": text, "plain": text, "json": text,
            "inside": f"before {text} after", "block": f"{text}\n", "flow": text}


@pytest.mark.parametrize("hostile_id", PROBE_IDS)
def test_a_string_tenant_key_holds_a_hostile_value_verbatim(
    env: Env, probe: dict[str, Any], hostile_id: str
) -> None:
    hostile = by_id(hostile_id)
    assert isinstance(hostile.value, str)
    policy = set_policy(env, probe, {"text": hostile.value})
    expected = expected_positions(hostile.value)

    def describe() -> str:
        return (f"{hostile.id}: Accepted={settled_condition(env, policy)}, "
                f"held={held_positions(env)!r}, {latest_operation(env, PROBE_NS, 'web')}")

    def held() -> bool:
        named = named_by_attack(env, hostile)
        assert not named, f"{hostile.id}: the attack created {named}"
        cond = settled_condition(env, policy)
        # A string value of the probe's `text` key is valid: only "not yet" is allowed (the
        # policy can be judged before the informer has seen its new Namespace: TargetNotFound).
        assert cond is None or cond["status"] == "True" or cond.get("reason") == "TargetNotFound", \
            describe()
        return cond is not None and cond["status"] == "True" and held_positions(env) == expected

    wait_for(held, what=describe, timeout=TIMEOUT)
    assert_confined(env, hostile)
