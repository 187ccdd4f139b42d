"""Confinement as a table: kinds × where the template puts them × what the blueprint allows.

Every kind belongs to one class (ordinary namespaced, sensitive namespaced, cluster-scoped); the
expected verdict of each (class, placement, opt-in) cell is written out below, not recomputed, so
a change to any rule shows up as a failing cell named by kind, placement and opt-in.
"""

from __future__ import annotations

from typing import Any

import pytest

from bifrost.api.blueprint import GatewayClassBlueprint
from bifrost.render import Blueprint, RenderError
from bifrost.render.confinement import (
    ALLOW_FIELD,
    Allowed,
    AllowRule,
    Confinement,
    Violation,
    confine,
)

GATEWAY_NS = "apps"
OTHER_NS = "kube-system"

ORDINARY, SENSITIVE, CLUSTER = "ordinary", "sensitive", "cluster"

#: (apiVersion, kind, extra top-level fields, class)
KINDS: list[tuple[str, str, dict[str, Any], str]] = [
    ("v1", "ConfigMap", {}, ORDINARY),
    ("v1", "Pod", {}, ORDINARY),
    ("apps/v1", "Deployment", {}, ORDINARY),
    ("v1", "Secret", {"type": "Opaque"}, ORDINARY),
    ("v1", "Secret", {"type": "kubernetes.io/tls"}, ORDINARY),
    ("gateway.networking.k8s.io/v1", "Gateway", {}, ORDINARY),
    ("cert-manager.io/v1", "Certificate", {}, ORDINARY),
    ("v1", "Secret", {"type": "kubernetes.io/service-account-token"}, SENSITIVE),
    ("v1", "ServiceAccount", {}, SENSITIVE),
    ("rbac.authorization.k8s.io/v1", "Role", {}, SENSITIVE),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", {}, SENSITIVE),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", {}, SENSITIVE),
    ("authentication.k8s.io/v1", "TokenRequest", {}, SENSITIVE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", {}, CLUSTER),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", {}, CLUSTER),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, CLUSTER),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", {}, CLUSTER),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", {}, CLUSTER),
    ("apiregistration.k8s.io/v1", "APIService", {}, CLUSTER),
    ("certificates.k8s.io/v1", "CertificateSigningRequest", {}, CLUSTER),
    ("authentication.k8s.io/v1", "TokenReview", {}, CLUSTER),
    ("v1", "Namespace", {}, CLUSTER),
    ("elbv2.aws.upbound.io/v1beta1", "LB", {}, CLUSTER),
]

#: Where the template puts the child: no namespace, the Gateway's (written), another one.
PLACEMENTS = ("unset", "home", "other")

#: What the blueprint allows for the child's (group, kind).
OPT_INS = ("none", "kind", "kind+namespace", "kind+clusterScoped", "sibling-kind")

A, V = "allowed", "violation"

#: (class, placement, opt-in) → verdict.
EXPECTED: dict[tuple[str, str, str], str] = {
    # ordinary namespaced kinds: anywhere in the Gateway's namespace; elsewhere only where listed
    **{(ORDINARY, p, o): A for p in ("unset", "home") for o in OPT_INS},
    (ORDINARY, "other", "none"): V,
    (ORDINARY, "other", "kind"): V,
    (ORDINARY, "other", "kind+namespace"): A,
    (ORDINARY, "other", "kind+clusterScoped"): V,
    (ORDINARY, "other", "sibling-kind"): V,
    # sensitive namespaced kinds: only when the kind itself is named
    **{(SENSITIVE, p, "none"): V for p in PLACEMENTS},
    **{(SENSITIVE, p, "sibling-kind"): V for p in PLACEMENTS},
    **{(SENSITIVE, p, o): A for p in ("unset", "home")
       for o in ("kind", "kind+namespace", "kind+clusterScoped")},
    (SENSITIVE, "other", "kind"): V,
    (SENSITIVE, "other", "kind+namespace"): A,
    (SENSITIVE, "other", "kind+clusterScoped"): V,
    # cluster-scoped kinds: only with clusterScoped on the kind's own entry (a namespace the
    # template wrote does not matter)
    **{(CLUSTER, p, o): V for p in PLACEMENTS for o in OPT_INS},
    **{(CLUSTER, p, "kind+clusterScoped"): A for p in PLACEMENTS},
}


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _sibling(group: str, kind: str) -> str:
    return "RoleBinding" if kind == "Role" else "Role" if group.startswith("rbac.") else "Other"


def _confinement(group: str, kind: str, opt_in: str) -> Confinement:
    rules = {
        "none": (),
        "kind": (AllowRule(group, kind),),
        "kind+namespace": (AllowRule(group, kind, namespaces=("bifrost-system", OTHER_NS)),),
        "kind+clusterScoped": (AllowRule(group, kind, cluster_scoped=True),),
        "sibling-kind": (AllowRule(group, _sibling(group, kind), cluster_scoped=True,
                                   namespaces=(OTHER_NS,)),),
    }[opt_in]
    return Confinement(rules)


def _object(api_version: str, kind: str, extra: dict[str, Any], placement: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x"}
    if placement == "home":
        meta["namespace"] = GATEWAY_NS
    elif placement == "other":
        meta["namespace"] = OTHER_NS
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **extra}


CASES = [
    pytest.param(api_version, kind, extra, cls, placement, opt_in,
                 id=f"{kind}{'-' + extra['type'].rsplit('/', 1)[-1] if extra else ''}"
                    f"-{placement}-{opt_in}")
    for api_version, kind, extra, cls in KINDS
    for placement in PLACEMENTS
    for opt_in in OPT_INS
]


def test_the_table_is_complete() -> None:
    classes = {cls for *_, cls in KINDS}
    assert set(EXPECTED) == {(c, p, o) for c in classes for p in PLACEMENTS for o in OPT_INS}


@pytest.mark.parametrize(("api_version", "kind", "extra", "cls", "placement", "opt_in"), CASES)
def test_confinement_table(api_version: str, kind: str, extra: dict[str, Any], cls: str,
                           placement: str, opt_in: str) -> None:
    group = _group(api_version)
    verdict = confine(
        _object(api_version, kind, extra, placement), child="c1",
        namespaced=cls != CLUSTER, gateway_namespace=GATEWAY_NS,
        confinement=_confinement(group, kind, opt_in),
    )
    expected = EXPECTED[(cls, placement, opt_in)]
    if expected == A:
        assert isinstance(verdict, Allowed), verdict
        if cls == CLUSTER:
            assert verdict.namespace is None
        else:
            assert verdict.namespace == (OTHER_NS if placement == "other" else GATEWAY_NS)
        return
    assert isinstance(verdict, Violation), verdict
    message = verdict.message
    assert message.startswith("child 'c1' (") and kind in message, message
    assert ALLOW_FIELD in message and "\n" not in message
    if cls == CLUSTER:
        assert "cluster-scoped" in message and "clusterScoped: true" in message
        assert f"group: {group or chr(34) * 2}, kind: {kind}" in message
    elif placement == "other":
        assert f"namespace {OTHER_NS}" in message and OTHER_NS in message.split(": ", 1)[1]
    else:
        assert "the Gateway's namespace" in message


@pytest.mark.parametrize(
    ("obj", "confinement", "expected"),
    [
        # a Secret in another namespace: the exact fix
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": OTHER_NS},
          "data": {"k": "c2VjcmV0"}}, Confinement(),
         "child 'c1' (Secret in namespace kube-system) is outside the Gateway's namespace apps:"
         ' add {group: "", kind: Secret, namespaces: [kube-system]} to spec.confinement.allow'),
        # the kind is listed, without that namespace
        ({"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "s", "namespace": OTHER_NS}},
         Confinement((AllowRule("", "ConfigMap", namespaces=("bifrost-system",)),)),
         "child 'c1' (ConfigMap in namespace kube-system) is outside the Gateway's namespace "
         'apps: add kube-system to the namespaces of the {group: "", kind: ConfigMap} entry of '
         "spec.confinement.allow"),
        ({"apiVersion": "elbv2.aws.upbound.io/v1beta1", "kind": "LB", "metadata": {"name": "l"}},
         Confinement(),
         "child 'c1' (LB.elbv2.aws.upbound.io) is cluster-scoped, refused unless the blueprint "
         "allows the kind cluster-wide: add {group: elbv2.aws.upbound.io, kind: LB, "
         "clusterScoped: true} to spec.confinement.allow"),
        ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
          "metadata": {"name": "rb"}}, Confinement(),
         "child 'c1' (RoleBinding.rbac.authorization.k8s.io in the Gateway's namespace) is RBAC, "
         "refused unless the blueprint opts in to the kind: add {group: "
         "rbac.authorization.k8s.io, kind: RoleBinding} to spec.confinement.allow"),
        ({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
          "metadata": {"name": "t", "namespace": GATEWAY_NS}}, Confinement(),
         "child 'c1' (Secret in the Gateway's namespace) is a Secret of type "
         "kubernetes.io/service-account-token (it mints a ServiceAccount token), refused unless "
         'the blueprint opts in to the kind: add {group: "", kind: Secret} to '
         "spec.confinement.allow"),
    ],
)
def test_messages_name_the_child_the_kind_where_and_the_fix(
    obj: dict[str, Any], confinement: Confinement, expected: str
) -> None:
    namespaced = obj["kind"] != "LB"
    verdict = confine(obj, child="c1", namespaced=namespaced, gateway_namespace=GATEWAY_NS,
                      confinement=confinement)
    assert isinstance(verdict, Violation)
    assert verdict.message == expected
    assert "c2VjcmV0" not in verdict.message


def test_a_namespace_that_is_no_name_is_not_quoted() -> None:
    hostile = 'x"\nkind: Secret'
    verdict = confine({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "c", "namespace": hostile}},
                      child="c1", namespaced=True, gateway_namespace=GATEWAY_NS,
                      confinement=Confinement())
    assert isinstance(verdict, Violation)
    assert "an invalid namespace" in verdict.message and hostile not in verdict.message
    assert "\n" not in verdict.message


def test_a_cluster_scoped_child_drops_the_namespace_it_wrote() -> None:
    verdict = confine({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "n", "namespace": GATEWAY_NS}},
                      child="ns", namespaced=False, gateway_namespace=GATEWAY_NS,
                      confinement=Confinement((AllowRule("", "Namespace", cluster_scoped=True),)))
    assert verdict == Allowed(None)


# --- parsing spec.confinement ---------------------------------------------------------------


def test_render_model_reads_spec_confinement() -> None:
    bp = Blueprint.from_dict({"spec": {"children": [], "confinement": {"allow": [
        {"group": "elbv2.aws.upbound.io", "kind": "LB", "clusterScoped": True},
        {"group": "", "kind": "ConfigMap", "namespaces": ["bifrost-system"]},
        {"group": "", "kind": "ServiceAccount"},  # group is required, as the CRD says
    ]}}})
    assert bp.confinement.allow == (
        AllowRule("elbv2.aws.upbound.io", "LB", cluster_scoped=True),
        AllowRule("", "ConfigMap", namespaces=("bifrost-system",)),
        AllowRule("", "ServiceAccount"),
    )
    assert Blueprint.from_dict({"spec": {"children": []}}).confinement == Confinement()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("all", "spec.confinement"),
        ({"allow": {"kind": "X"}}, "spec.confinement.allow"),
        ({"allow": [{"group": "Not A Group", "kind": "X"}]}, "spec.confinement.allow[0].group"),
        ({"allow": [{"group": "", "kind": "*"}]}, "spec.confinement.allow[0].kind"),
        ({"allow": [{"group": "", "kind": "X", "clusterScoped": "yes"}]},
         "spec.confinement.allow[0].clusterScoped"),
        ({"allow": [{"group": "", "kind": "X", "namespaces": ["Kube_System"]}]},
         "spec.confinement.allow[0].namespaces"),
        ({"allow": [{"group": "", "kind": "X"}, {"group": "", "kind": "X"}]},
         "spec.confinement.allow[1]"),
    ],
)
def test_render_model_rejects_a_bad_confinement(raw: Any, field: str) -> None:
    with pytest.raises(RenderError) as info:
        Blueprint.from_dict({"spec": {"children": [], "confinement": raw}})
    assert info.value.source == field


def test_api_model_mirrors_it() -> None:
    spec = {"children": [{"id": "a", "template": "x"}], "confinement": {"allow": [
        {"group": "", "kind": "ConfigMap", "namespaces": ["bifrost-system"]},
        {"group": "elbv2.aws.upbound.io", "kind": "LB", "clusterScoped": True},
    ]}}
    parsed = GatewayClassBlueprint.model_validate({"metadata": {"name": "b"}, "spec": spec})
    assert parsed.spec.confinement is not None
    assert [(r.group, r.kind, r.cluster_scoped, r.namespaces)
            for r in parsed.spec.confinement.allow] == [
        ("", "ConfigMap", False, ("bifrost-system",)),
        ("elbv2.aws.upbound.io", "LB", True, ()),
    ]
    dup = {**spec, "confinement": {"allow": [{"group": "", "kind": "X"}] * 2}}
    with pytest.raises(ValueError, match="listed once"):
        GatewayClassBlueprint.model_validate({"metadata": {"name": "b"}, "spec": dup})
    with pytest.raises(ValueError):
        GatewayClassBlueprint.model_validate({"metadata": {"name": "b"}, "spec": {
            **spec, "confinement": {"allow": [{"kind": "X"}]}}})  # group is required
