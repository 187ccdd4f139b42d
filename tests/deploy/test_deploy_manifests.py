"""deploy/ is the source of what the controller may do: rendered with the real ``kubectl
kustomize`` (both overlays, and with the expose-metrics component), its RBAC, pod and network
policy are checked against the least-privilege rules of issue 10, and the examples' RBAC against
their blueprints' child kinds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from rbac_kit import (
    AGGREGATE_LABEL,
    CONTROLLER_NAMESPACE,
    DEPLOY,
    EXAMPLES,
    Obj,
    by_kind,
    controller_rules,
    example_documents,
    kustomize,
)

from bifrost.controller.manager import LEASE_NAME

OVERLAYS = ["sqlite", "postgres"]
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "10-blueprint.yaml").exists())

#: The controller's Secret permissions, exactly (see the comment in deploy/base/rbac.yaml).
SECRET_VERBS = {"get", "list", "watch", "delete"}
#: Nothing in deploy/ or beside a blueprint may touch these: they let a holder become someone
#: else (RBAC, ServiceAccounts and their tokens, impersonation), intercept or rewrite API
#: requests (admission webhooks) or change the API itself (CRDs, API services).
FORBIDDEN = {
    ("rbac.authorization.k8s.io", "*"),
    ("", "serviceaccounts"),
    ("", "serviceaccounts/token"),
    ("authentication.k8s.io", "tokenrequests"),
    ("admissionregistration.k8s.io", "*"),
    ("apiextensions.k8s.io", "*"),
    ("apiregistration.k8s.io", "*"),
    ("certificates.k8s.io", "*"),
}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}
#: Pod Security "restricted": the volume types it allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[Obj]:
    return kustomize(DEPLOY / "overlays" / str(request.param))


@pytest.fixture(scope="module")
def with_metrics(tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    """The sqlite overlay plus components/expose-metrics, as an operator would add it."""
    where = tmp_path_factory.mktemp("overlay")
    up = Path(*[".."] * len(where.parts[1:]))  # kustomize wants relative paths
    (where / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(up / DEPLOY.relative_to("/") / "overlays" / "sqlite")],
        "components": [str(up / DEPLOY.relative_to("/") / "components" / "expose-metrics")],
    }))
    return kustomize(where)


def all_roles(docs: list[Obj]) -> list[Obj]:
    roles = [d for d in docs if d["kind"] in ("ClusterRole", "Role")]
    for example in EXAMPLE_NAMES:
        roles += [d for d in example_documents(example) if d["kind"] in ("ClusterRole", "Role")]
    return roles


def deployment(docs: list[Obj]) -> Obj:
    (dep,) = by_kind(docs, "Deployment").values()
    return dep


def container(docs: list[Obj]) -> Obj:
    (c,) = deployment(docs)["spec"]["template"]["spec"]["containers"]
    return dict(c)


# ---- RBAC -------------------------------------------------------------------------------


def test_secrets_exactly_get_list_watch_delete_and_nothing_else(rendered: list[Obj]) -> None:
    """The only Secret permissions: get (by name), list/watch (the metadata-only informer),
    delete (issuer Secrets of certificates bifrost requested). No create/update/patch anywhere,
    the examples' aggregated roles included."""
    secret_rules = [r for r in controller_rules([*rendered, *_example_roles()])
                    if "" in r.groups and ({"secrets", "*"} & r.resources)]
    assert [(r.source, set(r.verbs)) for r in secret_rules] == \
        [("ClusterRole bifrost", SECRET_VERBS)]
    for role in all_roles(rendered):
        for rule in role.get("rules") or []:
            if "" in rule.get("apiGroups", []) and "secrets" in rule.get("resources", []):
                assert not {"create", "update", "patch"} & set(rule["verbs"]), role["metadata"]


def test_leases_only_through_a_role_in_the_controller_namespace(rendered: list[Obj]) -> None:
    for role in by_kind(rendered, "ClusterRole").values():
        for rule in role.get("rules") or []:
            assert "coordination.k8s.io" not in rule.get("apiGroups", []), role["metadata"]
    lease_rules = [r for r in controller_rules(rendered) if "coordination.k8s.io" in r.groups]
    assert lease_rules and all(r.namespace == CONTROLLER_NAMESPACE for r in lease_rules)
    assert {r.source for r in lease_rules} == {"Role bifrost-leader-election"}
    verbs = {v for r in lease_rules for v in r.verbs}
    assert verbs == {"create", "get", "update", "watch"}
    # get/update/watch only of bifrost's own Lease (create cannot be limited to a name)
    for r in lease_rules:
        assert r.verbs == {"create"} or r.names == {LEASE_NAME}, r
    # the Lease is where the controller looks for it: POD_NAMESPACE is the pod's namespace
    dep = deployment(rendered)
    assert dep["metadata"]["namespace"] == CONTROLLER_NAMESPACE
    env = {e["name"]: e for e in container(rendered)["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_no_wildcards_no_escalation_no_identity_or_api_kinds(rendered: list[Obj]) -> None:
    for role in all_roles(rendered):
        where = f"{role['kind']} {role['metadata']['name']}"
        for rule in role.get("rules") or []:
            groups, resources = set(rule.get("apiGroups", [])), set(rule.get("resources", []))
            verbs = set(rule.get("verbs", []))
            assert "*" not in groups and "*" not in resources, (where, rule)
            assert not verbs & FORBIDDEN_VERBS, (where, rule)
            assert not rule.get("nonResourceURLs"), (where, rule)
            for group in groups:
                for resource in resources:
                    assert (group, resource) not in FORBIDDEN and (group, "*") not in FORBIDDEN, (
                        f"{where} grants {sorted(verbs)} on {resource}.{group or 'core'}")


def test_child_kinds_come_only_through_the_aggregated_cluster_role(rendered: list[Obj]) -> None:
    roles = by_kind(rendered, "ClusterRole")
    children = roles["bifrost-children"]
    assert children["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {AGGREGATE_LABEL: "true"}}]
    assert not children.get("rules"), "the aggregator owns bifrost-children's rules"
    bindings = {b["roleRef"]["name"]: b for b in by_kind(rendered, "ClusterRoleBinding").values()}
    for name in ("bifrost", "bifrost-children"):
        assert bindings[name]["subjects"] == [
            {"kind": "ServiceAccount", "name": "bifrost", "namespace": CONTROLLER_NAMESPACE}]
    # bifrost's fixed role creates nothing but Events and the admin API's reviews (answered, not
    # stored): creating objects is a blueprint's child kind
    creatable = [(["events.k8s.io"], ["events"]),
                 (["authentication.k8s.io"], ["tokenreviews"]),
                 (["authorization.k8s.io"], ["subjectaccessreviews"])]
    for rule in roles["bifrost"]["rules"]:
        if "create" in rule["verbs"]:
            assert (rule["apiGroups"], rule["resources"]) in creatable, rule
            assert rule["verbs"] == ["create"] or rule["resources"] == ["events"], rule
    # without an example's RBAC the controller holds no child-kind permission at all
    assert not [r for r in controller_rules(rendered) if r.source == "ClusterRole bifrost-children"]


def _example_roles() -> list[Obj]:
    return [d for e in EXAMPLE_NAMES for d in example_documents(e) if d["kind"] == "ClusterRole"]


_KIND_LINE = re.compile(r"^\s*(apiVersion|kind):\s*([A-Za-z0-9./-]+)\s*$", re.M)


def _template_kinds(template: str) -> tuple[str, str]:
    found = dict(m.groups() for m in _KIND_LINE.finditer(template))
    return found["apiVersion"].rpartition("/")[0], found["kind"].lower() + "s"


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_each_example_ships_aggregated_rbac_for_its_child_kinds(example: str) -> None:
    """Every child kind (and spec.tls certificate kind) of the example's blueprint is allowed by
    a ClusterRole beside it carrying the aggregation label, with the verbs bifrost uses on a
    child: get, create + patch (server-side apply), delete. (The examples' kinds pluralise
    regularly.)"""
    docs = example_documents(example)
    assert (EXAMPLES / example / "05-rbac.yaml").exists()
    roles = [d for d in docs if d["kind"] == "ClusterRole"]
    assert roles and all(
        (r["metadata"].get("labels") or {}).get(AGGREGATE_LABEL) == "true" for r in roles)
    rules = [rule for r in roles for rule in r["rules"]]
    (blueprint,) = by_kind(docs, "GatewayClassBlueprint").values()
    templates = [c["template"] for c in blueprint["spec"]["children"]]
    if (blueprint["spec"].get("tls") or {}).get("certificateTemplate"):
        templates.append(blueprint["spec"]["tls"]["certificateTemplate"])
    needed = {"get", "list", "watch", "create", "patch", "delete"}
    for template in templates:
        group, plural = _template_kinds(template)
        assert any(group in r["apiGroups"] and plural in r["resources"]
                   and needed <= set(r["verbs"]) for r in rules), (
            f"examples/{example}/05-rbac.yaml does not allow {sorted(needed)} on {plural}.{group}")


# ---- the pod ------------------------------------------------------------------------------


def test_pod_meets_pod_security_restricted(rendered: list[Obj]) -> None:
    pod = deployment(rendered)["spec"]["template"]["spec"]
    psc: dict[str, Any] = pod.get("securityContext") or {}
    assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}
    assert psc.get("runAsNonRoot") is True and psc.get("runAsUser", 1) != 0
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), key
    for c in [*pod["containers"], *pod.get("initContainers", [])]:
        sc = c.get("securityContext") or {}
        assert sc.get("allowPrivilegeEscalation") is False, c["name"]
        assert sc.get("privileged") is not True, c["name"]
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], c["name"]
        assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}
        assert sc.get("readOnlyRootFilesystem") is True, c["name"]
        assert sc.get("runAsUser", 1) != 0 and sc.get("runAsNonRoot", True) is True
        assert sc.get("seccompProfile", {"type": "RuntimeDefault"})["type"] in (
            "RuntimeDefault", "Localhost")
        assert all("hostPort" not in p for p in c.get("ports", [])), c["name"]
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, "a writable /tmp (the root filesystem is read-only)"
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for v in volumes.values():
        assert set(v) - {"name"} <= RESTRICTED_VOLUMES, v
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert mounts.get("/var/lib/bifrost"), "the store's directory is a volume"
    (ns,) = by_kind(rendered, "Namespace").values()
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ---- metrics and network ---------------------------------------------------------------------


def _metrics_address(c: Obj) -> str:
    args = list(c["args"])
    return str(args[args.index("--metrics-bind-address") + 1])


def test_metrics_on_loopback_and_only_the_health_port_reachable(rendered: list[Obj]) -> None:
    c = container(rendered)
    assert _metrics_address(c).startswith("127.0.0.1:")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert set(ports) == {"health"}
    args = list(c["args"])
    assert args[args.index("--health-port") + 1] == str(ports["health"])
    (policy,) = by_kind(rendered, "NetworkPolicy").values()
    labels = deployment(rendered)["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert "Ingress" in policy["spec"]["policyTypes"]
    assert policy["spec"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": ports["health"]}]}]


def test_exposing_metrics_opens_them_to_labelled_namespaces_only(with_metrics: list[Obj]) -> None:
    c = container(with_metrics)
    host, _, port = _metrics_address(c).rpartition(":")
    assert host in ("", "0.0.0.0")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == int(port) and ports["metrics"] != ports["health"]
    (policy,) = by_kind(with_metrics, "NetworkPolicy").values()
    rules = policy["spec"]["ingress"]
    assert {"ports": [{"protocol": "TCP", "port": ports["health"]}]} in rules
    (scrape,) = [r for r in rules if r.get("from")]
    assert scrape["ports"] == [{"protocol": "TCP", "port": ports["metrics"]}]
    assert scrape["from"] == [{"namespaceSelector": {"matchLabels": {
        "gateway.bifrost.dev/metrics-scraper": "true"}}}]
    assert len(rules) == 2


def test_the_postgres_overlay_keeps_a_standby_through_rollouts_drains_and_node_loss() -> None:
    docs = kustomize(DEPLOY / "overlays" / "postgres")
    [dep] = by_kind(docs, "Deployment").values()
    spec = dep["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    [pdb] = by_kind(docs, "PodDisruptionBudget").values()
    labels = spec["template"]["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # on different nodes where there are several; a one-node cluster still runs both
    [spread] = spec["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway" and spread["maxSkew"] == 1
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()
    assert spread["matchLabelKeys"] == ["pod-template-hash"]
    # the sqlite overlay (one replica, one volume) has nothing to spread
    [single] = by_kind(kustomize(DEPLOY / "overlays" / "sqlite"), "Deployment").values()
    assert single["spec"]["replicas"] == 1
    assert "topologySpreadConstraints" not in single["spec"]["template"]["spec"]
