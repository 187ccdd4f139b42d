"""``examples/cloud-edge`` end to end: the example's YAML, applied as is to the devcluster that
``bifrost dev`` runs (``devcluster_running``: the real Gateway API and cert-manager CRDs,
bifrost's CRDs, the cloud kinds registered, the issuer, load-balancer and Crossplane-like peers)
with ``bifrost run``'s Controller in-process on SQLite.

Both classes converge — each Gateway ``Programmed`` with the load balancer's DNS name as a
``Hostname`` address, internet-facing vs internal from the class, security-group CIDRs from the
policies, the DNS record on the LB's DNS name, the WAF association on the LB — and deleting the
Gateways tears every (cluster-scoped) child down in the declared order, read from the
devcluster's request log, before the finalizer goes. Also: every example's YAML parses as the
bifrost models and its templates and expressions compile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.builders import namespace_object
from support.inprocess import running_controller
from support.waiting import wait_for

from bifrost.api import GatewayClassBlueprint, GatewayClassConfig, GatewayConfig
from bifrost.api.errors import parse_resource
from bifrost.cli.dev import default_crd_dirs, devcluster_running
from bifrost.kube import KubeClient
from bifrost.render import Blueprint, RenderError, render_gateway
from bifrost.render.expressions import check_addresses, check_ready_when
from bifrost.render.ordering import dependency_graph
from bifrost.render.templates import compile_child
from bifrost.store import migrate, open_store
from bifrost.store.interface import OperationStore
from devcluster.server import DevCluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CLOUD_EDGE = EXAMPLES / "cloud-edge"
GATEWAY_API = "gateway.networking.k8s.io/v1"
NAMESPACE = "shop"
FINALIZER = "gateway.bifrost.dev/finalizer"
TIMEOUT = 60.0

#: child id → (apiVersion, kind, plural) of the cloud-edge blueprint's children
CHILD_KINDS = {
    "sg": ("ec2.aws.upbound.io/v1beta1", "SecurityGroup", "securitygroups"),
    "sg-ingress": ("ec2.aws.upbound.io/v1beta1", "SecurityGroupRule", "securitygrouprules"),
    "lb": ("elbv2.aws.upbound.io/v1beta1", "LB", "lbs"),
    "cert": ("acm.aws.upbound.io/v1beta1", "Certificate", "certificates"),
    "listener": ("elbv2.aws.upbound.io/v1beta1", "LBListener", "lblisteners"),
    "listener-cert": (
        "elbv2.aws.upbound.io/v1beta1", "LBListenerCertificate", "lblistenercertificates"
    ),
    "waf": ("wafv2.aws.upbound.io/v1beta1", "WebACLAssociation", "webaclassociations"),
    "dns": ("route53.aws.upbound.io/v1beta1", "Record", "records"),
}
#: The teardown the blueprint declares: DNS first, then the WAF association, the listener
#: certificate, listener and load balancer, the security group (rule first), the certificate last.
DELETE_ORDER = ["dns", "waf", "listener-cert", "listener", "lb", "sg-ingress", "sg", "cert"]


def documents(directory: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(directory.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def status_of(obj: dict[str, Any] | None, ctype: str) -> str | None:
    cond = condition(obj, ctype)
    return str(cond["status"]) if cond else None


# ---- every example parses as bifrost's models ---------------------------------------------------


@pytest.mark.parametrize("example", ["in-cluster", "cloud-edge"])
def test_example_yaml_parses_as_bifrost_models(example: str) -> None:
    docs = documents(EXAMPLES / example)
    assert docs, f"no YAML in examples/{example}"
    seen: set[str] = set()
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        seen.add(kind)
        if kind == "GatewayClassBlueprint":
            model = parse_resource(GatewayClassBlueprint, doc)
            bp = Blueprint.from_dict(doc)
            for child in bp.children:
                compile_child(child)  # Jinja syntax, no include/import
                check_ready_when(child)  # CEL compiles
            check_addresses(bp.addresses)
            dependency_graph(bp.children)  # dependsOn and inferred reads name known ids
            assert [c.id for c in model.spec.children] == [c.id for c in bp.children]
        elif kind == "GatewayClassConfig":
            policy = parse_resource(GatewayClassConfig, doc)
            assert policy.placement_error() is None, (name, policy.placement_error())
        elif kind == "GatewayConfig":
            gw_policy = parse_resource(GatewayConfig, doc)
            assert gw_policy.placement_error() is None, (name, gw_policy.placement_error())
        elif kind == "GatewayClass":
            ref = doc["spec"]["parametersRef"]
            assert doc["spec"]["controllerName"] == "gateway.bifrost.dev/bifrost"
            assert (ref["group"], ref["kind"]) == ("gateway.bifrost.dev", "GatewayClassBlueprint")
            assert ref["name"] in by_kind(docs, "GatewayClassBlueprint"), ref
        elif kind == "Gateway":
            assert doc["spec"]["gatewayClassName"] in by_kind(docs, "GatewayClass")
    assert {"GatewayClassBlueprint", "GatewayClass", "Gateway"} <= seen


def test_cloud_edge_renders_every_child_for_each_class() -> None:
    """A dry render with the values each class's policies give (no cluster): every child
    renders once its dependencies have live state, and the scheme follows the class."""
    docs = documents(CLOUD_EDGE)
    [bp_doc] = by_kind(docs, "GatewayClassBlueprint").values()
    configs = by_kind(docs, "GatewayClassConfig")
    for gateway in by_kind(docs, "Gateway").values():
        cls = gateway["spec"]["gatewayClassName"]
        values = {
            **bp_doc["spec"]["defaults"],
            **configs[cls]["spec"]["default"],
            **configs[cls]["spec"]["override"],
            "accessLogs": {**bp_doc["spec"]["defaults"]["accessLogs"], "enabled": True},
        }
        live: dict[str, dict[str, Any]] = {}
        for _ in range(len(CHILD_KINDS)):
            result = render_gateway(bp_doc, gateway=gateway, values=values, live_children=live)
            assert result.ok, [str(e) for e in result.errors]
            for child in result.children:
                live.setdefault(child.id, {**child.object, "status": {"atProvider": {
                    "arn": f"arn:{child.id}", "dnsName": "lb.example", "id": child.id}}})
        assert result.complete and set(live) == set(CHILD_KINDS)
        internal = live["lb"]["spec"]["forProvider"]["internal"]
        assert internal is (configs[cls]["spec"]["override"]["scheme"] == "internal")
        assert live["dns"]["spec"]["forProvider"]["records"] == ["lb.example"]
        assert list(result.delete_order) == DELETE_ORDER


def test_a_template_mistake_is_reported_with_the_child_and_line() -> None:
    [bp_doc] = by_kind(documents(CLOUD_EDGE), "GatewayClassBlueprint").values()
    broken = {**bp_doc, "spec": {**bp_doc["spec"], "children": [
        {**c, "template": c["template"].replace("values.dnsTtl", "values.dnsTTL")}
        for c in bp_doc["spec"]["children"]
    ]}}
    gateway = by_kind(documents(CLOUD_EDGE), "Gateway")["storefront"]
    live = {"lb": {"status": {"atProvider": {"dnsName": "x", "arn": "y"}}}}
    result = render_gateway(broken, gateway=gateway, values=bp_doc["spec"]["defaults"],
                            live_children=live)
    [error] = [e for e in result.errors if e.child_id == "dns"]
    assert isinstance(error, RenderError) and "dnsTTL" in str(error)


# ---- on the devcluster, with the controller -----------------------------------------------------


@dataclass
class Edge:
    cluster: DevCluster
    kube: KubeClient
    store: OperationStore
    docs: list[dict[str, Any]]

    def gateway(self, name: str) -> dict[str, Any] | None:
        return self.kube.get(GATEWAY_API, "Gateway", name, NAMESPACE)

    def child(self, child_id: str, name: str) -> dict[str, Any] | None:
        api_version, kind, _ = CHILD_KINDS[child_id]
        return self.kube.get(api_version, kind, name)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    if not default_crd_dirs():
        pytest.skip("the Gateway API and cert-manager CRDs are not in ../shared/")
    workdir = tmp_path_factory.mktemp("cloud-edge")
    url = f"sqlite:///{(workdir / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    with devcluster_running(
        workdir / "kubeconfig", crds=[REPO / "deploy" / "crds"], dataplane=False
    ) as cluster:
        kube = KubeClient.from_kubeconfig(workdir / "kubeconfig")
        kube.apply(namespace_object("bifrost-system"))
        try:
            with running_controller(kube, store, name="cloud-edge", lease_duration=5,
                                    renew_deadline=4, retry_period=1,
                                    runner_idle=timedelta(milliseconds=100)):
                docs = documents(CLOUD_EDGE)
                for doc in docs:  # as `kubectl apply -f examples/cloud-edge/` would, in file order
                    kube.apply(doc)
                yield Edge(cluster, kube, store, docs)
        finally:
            kube.close()
            store.close()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"


def programmed(edge: Edge, name: str) -> dict[str, Any] | None:
    gw = edge.gateway(name)
    cond = condition(gw, "Programmed")
    if cond and cond["status"] == "True" and (gw or {}).get("status", {}).get("addresses"):
        return gw
    return None


def inventory(edge: Edge, gateway: dict[str, Any]) -> dict[str, Any]:
    return {r.child_id: r for r in edge.store.list_children(gateway["metadata"]["uid"])}


@pytest.fixture(scope="module")
def converged(edge: Edge) -> dict[str, dict[str, Any]]:
    """Both example Gateways once Programmed (bounded wait)."""
    return {
        name: wait_for(lambda n=name: programmed(edge, n), what=f"Gateway {name} Programmed",
                       timeout=TIMEOUT)
        for name in by_kind(edge.docs, "Gateway")
    }


def test_both_classes_converge_to_a_programmed_gateway_on_its_load_balancer(
    edge: Edge, converged: dict[str, dict[str, Any]]
) -> None:
    configs = by_kind(edge.docs, "GatewayClassConfig")
    policy = by_kind(edge.docs, "GatewayConfig")["backoffice-acl"]
    expected_cidrs = {
        "storefront": configs["edge-public"]["spec"]["default"]["allowedCidrs"],
        # the Gateway-level policy beats the class-wide default
        "backoffice": policy["spec"]["default"]["allowedCidrs"],
    }
    assert expected_cidrs["backoffice"] != configs["edge-internal"]["spec"]["default"][
        "allowedCidrs"]
    internal: dict[str, bool] = {}
    for name, gw in converged.items():
        cls = gw["spec"]["gatewayClassName"]
        # the class's status is its own queue key's write: not ordered before the Gateway's
        wait_for(lambda c=cls: status_of(edge.kube.get(GATEWAY_API, "GatewayClass", c),
                                         "Accepted") == "True",
                 what=f"GatewayClass {cls} Accepted", timeout=TIMEOUT)
        assert status_of(gw, "Accepted") == "True"
        assert FINALIZER in gw["metadata"]["finalizers"]
        [listener] = gw["status"]["listeners"]
        states = {c["type"]: c["status"] for c in listener["conditions"]}
        # the certificate comes from the blueprint (tls.options), not a Secret
        assert states["ResolvedRefs"] == states["Programmed"] == "True", listener

        records = inventory(edge, gw)
        assert set(records) == set(CHILD_KINDS), sorted(records)
        assert all(r.ready for r in records.values())
        assert all(r.namespace is None for r in records.values())  # cluster-scoped, tracked
        live: dict[str, dict[str, Any]] = {}
        for cid, r in records.items():
            obj = edge.child(cid, r.name)
            assert obj is not None, cid
            live[cid] = obj
        at = {cid: obj["status"]["atProvider"] for cid, obj in live.items()}
        for cid, obj in live.items():
            assert obj["metadata"]["labels"]["gateway.bifrost.dev/gateway-uid"] == \
                gw["metadata"]["uid"]
            assert status_of(obj, "Ready") == "True", cid
            assert status_of(obj, "Synced") == "True", cid

        # the Gateway's address is the load balancer's DNS name
        assert gw["status"]["addresses"] == [{"type": "Hostname", "value": at["lb"]["dnsName"]}]
        lb = live["lb"]["spec"]["forProvider"]
        internal[name] = lb["internal"]
        assert lb["accessLogs"] == [{"bucket": "example-edge-access-logs", "enabled": True,
                                     "prefix": f"{NAMESPACE}/{name}"}]
        # security-group ACLs from the values
        rule = live["sg-ingress"]["spec"]["forProvider"]
        assert rule["cidrBlocks"] == expected_cidrs[name]
        assert (rule["fromPort"], rule["toPort"], rule["type"]) == (443, 443, "ingress")
        assert at["sg-ingress"]["securityGroupId"] == at["sg"]["id"]
        assert at["lb"]["arn"] and lb["securityGroupRefs"] == [{"name": records["sg"].name}]
        # the DNS record points at the LB's DNS name, in the class's hosted zone
        dns = live["dns"]["spec"]["forProvider"]
        hostname = gw["spec"]["listeners"][0]["hostname"]
        assert (dns["name"], dns["type"], dns["records"]) == (
            hostname, "CNAME", [at["lb"]["dnsName"]])
        assert dns["zoneId"] == configs[cls]["spec"]["default"]["hostedZoneId"]
        # the WAF association ties the class's web ACL to this LB
        waf = live["waf"]["spec"]["forProvider"]
        assert waf["resourceArn"] == at["lb"]["arn"]
        assert waf["webAclArn"] == configs[cls]["spec"]["default"]["waf"]["webAclArn"]
        # HTTPS listener on the LB with the issued ACM certificate, also in its certificate list
        assert at["cert"]["status"] == "ISSUED" and at["cert"]["domainName"] == hostname
        assert at["listener"]["loadBalancerArn"] == at["lb"]["arn"]
        assert at["listener"]["certificateArn"] == at["cert"]["arn"]
        assert at["listener-cert"]["listenerArn"] == at["listener"]["arn"]
        assert at["listener-cert"]["certificateArn"] == at["cert"]["arn"]

    # internet-facing vs internal: the class decides (a class-wide override)
    assert internal == {"storefront": False, "backoffice": True}


def test_the_route_attaches_to_the_public_gateway(
    edge: Edge, converged: dict[str, dict[str, Any]]
) -> None:
    def accepted() -> dict[str, Any] | None:
        route = edge.kube.get(GATEWAY_API, "HTTPRoute", "storefront", NAMESPACE)
        for parent in ((route or {}).get("status") or {}).get("parents") or []:
            cond = condition({"status": parent}, "Accepted")
            if parent["parentRef"]["name"] == "storefront" and cond and cond["status"] == "True":
                return dict(parent)
        return None

    parent = wait_for(accepted, what="HTTPRoute storefront accepted", timeout=TIMEOUT)
    assert parent["controllerName"] == "gateway.bifrost.dev/bifrost"
    assert status_of({"status": parent}, "ResolvedRefs") == "True"

    def attached() -> int:
        gw = edge.gateway("storefront") or {}
        return int(gw.get("status", {}).get("listeners", [{}])[0].get("attachedRoutes", 0))

    assert wait_for(attached, what="attachedRoutes 1", timeout=TIMEOUT) == 1


def test_deleting_the_gateways_tears_every_child_down_in_the_declared_order(
    edge: Edge, converged: dict[str, dict[str, Any]]
) -> None:
    # gateway name → (API group, plural, object name) → child id, from the store's inventory
    children: dict[str, dict[tuple[str, str, str], str]] = {}
    uids: dict[str, str] = {}
    for gw_name, gw in converged.items():
        uids[gw_name] = gw["metadata"]["uid"]
        children[gw_name] = {
            (CHILD_KINDS[cid][0].split("/")[0], CHILD_KINDS[cid][2], r.name): cid
            for cid, r in inventory(edge, gw).items()
        }
    edge.cluster.request_log.reset()
    for gw_name in converged:
        edge.kube.delete(GATEWAY_API, "Gateway", gw_name, NAMESPACE)

    for gw_name in converged:
        # the finalizer goes last, so the Gateway is gone only once its teardown is done
        wait_for(lambda n=gw_name: edge.gateway(n) is None, what=f"Gateway {gw_name} deleted",
                 timeout=TIMEOUT)
        for (_, _, child_name), cid in children[gw_name].items():
            assert edge.child(cid, child_name) is None, f"{cid} {child_name} leaked"
        assert edge.store.list_children(uids[gw_name]) == []

        def teardown_done(uid: str = uids[gw_name]) -> bool:
            ops = sorted(edge.store.list_operations(gateway_uid=uid), key=lambda o: o.id)
            return (ops[-1].machine, ops[-1].status.value) == ("teardown", "succeeded")

        # the engine commits "done" right after the finalizer's removal
        wait_for(teardown_done, what=f"teardown of {gw_name} succeeded", timeout=TIMEOUT)

    # Writes to the children, in the order the API server answered them.
    writes = [
        (req.verb, (req.group, req.resource, req.name or ""))
        for req, code in edge.cluster.request_log.recent()
        if req.verb in ("delete", "patch") and code < 300 and req.subresource is None
    ]
    for gw_name in converged:
        mine = [(verb, children[gw_name][obj]) for verb, obj in writes
                if obj in children[gw_name]]
        deleted = [cid for verb, cid in mine if verb == "delete"]
        assert deleted == DELETE_ORDER, (gw_name, deleted)
        # Each wave was gone before the next began: the Crossplane-like provider released its
        # finalizer (a patch) on the previous child before the next child's DELETE. The LB is
        # the load-balancer peer's and has no finalizer.
        for before, after in zip(DELETE_ORDER, DELETE_ORDER[1:], strict=False):
            if before == "lb":
                continue
            d_before = mine.index(("delete", before))
            d_after = mine.index(("delete", after))
            assert ("patch", before) in mine[d_before:d_after], (gw_name, before, after, mine)


def test_the_controller_cluster_role_covers_the_cloud_edge_kinds() -> None:
    """The example's aggregated ClusterRole (examples/cloud-edge/05-rbac.yaml, aggregated into
    deploy/'s bifrost-children) lists every cloud-edge kind with the verbs provisioning and
    teardown use."""
    [role] = [d for d in yaml.safe_load_all((CLOUD_EDGE / "05-rbac.yaml").read_text())
              if d and d["kind"] == "ClusterRole"]
    assert role["metadata"]["labels"]["gateway.bifrost.dev/aggregate-to-controller"] == "true"
    needed = {"get", "list", "watch", "create", "patch", "delete"}
    for cid, (api_version, _, plural) in CHILD_KINDS.items():
        group = api_version.split("/")[0]
        assert any(
            group in rule["apiGroups"] and plural in rule["resources"]
            and needed <= set(rule["verbs"])
            for rule in role["rules"]
        ), f"{cid}: {plural}.{group} is not in the bifrost ClusterRole"
