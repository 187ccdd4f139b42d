"""RBAC rule matching, the Forbidden message, tokens and the RBAC index, without a server
(table-driven; the HTTP behaviour is in tests/devcluster/test_rbac.py and test_auth.py)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from devcluster.auth import ANONYMOUS, UserInfo
from devcluster.auth.aggregation import aggregated_rules, selector_matches
from devcluster.auth.attributes import Attributes, forbidden, from_request
from devcluster.auth.rbac import RbacAuthorizer, compile_rule
from devcluster.auth.tokens import BoundObject, InvalidToken, TokenAuthority
from devcluster.faults import Request
from devcluster.storage import Store

SA = UserInfo(
    "system:serviceaccount:ns:sa",
    ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"),
)


def res(
    verb: str, resource: str, *, sub: str = "", group: str = "", ns: str = "ns", name: str = ""
) -> Attributes:
    return Attributes(SA, verb, True, group, "v1", resource, sub, ns, name)


def url(verb: str, path: str) -> Attributes:
    return Attributes(SA, verb, resource_request=False, path=path)


RULE_CASES: list[tuple[str, dict[str, Any], Attributes, bool]] = [
    (
        "exact verb and resource",
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        res("get", "pods"),
        True,
    ),
    (
        "other verb",
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        res("list", "pods"),
        False,
    ),
    (
        "watch is not list",
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        res("watch", "pods"),
        False,
    ),
    (
        "verb star",
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]},
        res("deletecollection", "pods"),
        True,
    ),
    (
        "other group",
        {"apiGroups": [""], "resources": ["deployments"], "verbs": ["get"]},
        res("get", "deployments", group="apps"),
        False,
    ),
    (
        "group star",
        {"apiGroups": ["*"], "resources": ["deployments"], "verbs": ["get"]},
        res("get", "deployments", group="apps"),
        True,
    ),
    (
        "a resource does not grant its subresources",
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        res("get", "pods", sub="log"),
        False,
    ),
    (
        "subresource by name",
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        res("get", "pods", sub="log"),
        True,
    ),
    (
        "a subresource does not grant the resource",
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get"]},
        res("get", "pods"),
        False,
    ),
    (
        "*/scale",
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]},
        res("update", "deployments", sub="scale", group="apps"),
        True,
    ),
    (
        "*/scale is not the resource",
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]},
        res("update", "deployments", group="apps"),
        False,
    ),
    (
        "resource star covers subresources",
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        res("patch", "gateways", sub="status", group="gateway.networking.k8s.io"),
        True,
    ),
    (
        "resourceNames: the named object",
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]},
        res("get", "configmaps", name="a"),
        True,
    ),
    (
        "resourceNames: another object",
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]},
        res("get", "configmaps", name="b"),
        False,
    ),
    (
        "resourceNames never allow an unnamed list",
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["list"]},
        res("list", "configmaps"),
        False,
    ),
    (
        "resourceNames never allow a create",
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["a"],
            "verbs": ["create"],
        },
        res("create", "configmaps"),
        False,
    ),
    (
        "non-resource exact",
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
        url("get", "/healthz"),
        True,
    ),
    (
        "non-resource exact is not a prefix",
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
        url("get", "/healthz/etcd"),
        False,
    ),
    (
        "non-resource star suffix",
        {"nonResourceURLs": ["/apis/*"], "verbs": ["get"]},
        url("get", "/apis/apps/v1"),
        True,
    ),
    (
        "non-resource star",
        {"nonResourceURLs": ["*"], "verbs": ["get"]},
        url("get", "/anything"),
        True,
    ),
    (
        "non-resource verb",
        {"nonResourceURLs": ["*"], "verbs": ["get"]},
        url("post", "/anything"),
        False,
    ),
    (
        "a resource rule never grants a path",
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        url("get", "/version"),
        False,
    ),
    (
        "a path rule never grants a resource",
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
        res("get", "pods"),
        False,
    ),
]


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [pytest.param(r, a, ok, id=name) for name, r, a, ok in RULE_CASES],
)
def test_rule_matching(rule: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert compile_rule(rule).allows(attrs) is allowed


FORBIDDEN_CASES = [
    (
        res("list", "pods"),
        'pods is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "pods" in API '
        'group "" in the namespace "ns"',
        {"kind": "pods"},
    ),
    (
        res("get", "pods", name="p"),
        'pods "p" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "pods" in '
        'API group "" in the namespace "ns"',
        {"kind": "pods", "name": "p"},
    ),
    (
        res("patch", "pods", sub="status", name="p"),
        'pods "p" is forbidden: User "system:serviceaccount:ns:sa" cannot patch resource '
        '"pods/status" in API group "" in the namespace "ns"',
        {"kind": "pods", "name": "p"},
    ),
    (
        res("list", "gateways", group="gateway.networking.k8s.io", ns=""),
        'gateways.gateway.networking.k8s.io is forbidden: User "system:serviceaccount:ns:sa" '
        'cannot list resource "gateways" in API group "gateway.networking.k8s.io" at the '
        "cluster scope",
        {"kind": "gateways", "group": "gateway.networking.k8s.io"},
    ),
    (
        url("get", "/apis"),
        'forbidden: User "system:serviceaccount:ns:sa" cannot get path "/apis"',
        {},
    ),
]


@pytest.mark.parametrize(("attrs", "message", "details"), FORBIDDEN_CASES)
def test_forbidden_status(attrs: Attributes, message: str, details: dict[str, str]) -> None:
    body = forbidden(attrs).body()
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


def test_forbidden_carries_the_authorizers_reason() -> None:
    err = forbidden(res("get", "pods"), 'RBAC: role.rbac.authorization.k8s.io "r" not found')
    assert err.message.endswith(
        'in the namespace "ns": RBAC: role.rbac.authorization.k8s.io "r" not found'
    )


def test_request_attributes_map_apply_field_names_and_namespace_urls() -> None:
    apply = from_request(SA, Request("apply", "", "v1", "configmaps", None, "ns", "c"))
    assert apply.verb == "patch"
    watch_one = from_request(SA, Request("watch", "", "v1", "pods", None, "ns", None), "p")
    assert (watch_one.verb, watch_one.name) == ("watch", "p")
    create = from_request(SA, Request("create", "", "v1", "pods", None, "ns", None), "p")
    assert create.name == ""
    ns = from_request(SA, Request("get", "", "v1", "namespaces", None, None, "team"))
    assert (ns.namespace, ns.name) == ("team", "team")


# ---------------------------------------------------------------------------- the RBAC index


def _put(store: Store, plural: str, obj: dict[str, Any]) -> None:
    store.commit(("rbac.authorization.k8s.io", plural), "ADDED", obj, None)


def _binding(
    kind: str, name: str, ns: str, role_kind: str, role: str, subjects: list[dict[str, str]]
) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"kind": role_kind, "name": role},
        "subjects": subjects,
    }


def test_bindings_grant_in_their_scope_and_changes_apply_at_once() -> None:
    store = Store()
    rbac = RbacAuthorizer(store)
    sa_subject = [{"kind": "ServiceAccount", "name": "sa"}]  # namespace: the binding's
    _put(
        store,
        "clusterroles",
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
    )
    _put(
        store,
        "rolebindings",
        _binding("RoleBinding", "rb", "ns", "ClusterRole", "reader", sa_subject),
    )
    assert rbac.decide(res("get", "configmaps"))[0] is True
    assert rbac.decide(res("get", "configmaps", ns="other"))[0] is False
    assert rbac.decide(res("get", "configmaps", ns=""))[0] is False
    allowed, reason = rbac.decide(res("get", "configmaps"))
    assert reason == (
        'RBAC: allowed by RoleBinding "rb/ns" of ClusterRole "reader" to ServiceAccount "sa/ns"'
    )
    # a ClusterRoleBinding grants everywhere; groups match as well as users
    _put(
        store,
        "clusterrolebindings",
        _binding(
            "ClusterRoleBinding",
            "crb",
            "",
            "ClusterRole",
            "reader",
            [{"kind": "Group", "name": "system:serviceaccounts:ns"}],
        ),
    )
    assert rbac.decide(res("get", "configmaps", ns="other"))[0] is True
    assert rbac.decide(res("get", "configmaps", ns=""))[0] is True
    assert (
        rbac.decide(Attributes(ANONYMOUS, "get", resource="configmaps", namespace="ns"))[0] is False
    )


def test_a_binding_to_a_missing_role_denies_with_the_reason() -> None:
    store = Store()
    rbac = RbacAuthorizer(store)
    _put(
        store,
        "rolebindings",
        _binding(
            "RoleBinding", "rb", "ns", "Role", "ghost", [{"kind": "User", "name": SA.username}]
        ),
    )
    assert rbac.decide(res("get", "pods")) == (
        False,
        'RBAC: role.rbac.authorization.k8s.io "ghost" not found',
    )
    rules, errors = rbac.rules_for(SA, "ns")
    assert (rules, errors) == ([], ['role.rbac.authorization.k8s.io "ghost" not found'])


def test_system_masters_is_allowed_everything_without_bindings() -> None:
    rbac = RbacAuthorizer(Store())
    admin = UserInfo("me", ("system:masters",))
    assert rbac.decide(Attributes(admin, "delete", resource="nodes")) == (True, "")


# ---------------------------------------------------------------------------- aggregation


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
    ],
)
def test_label_selectors(selector: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


def test_aggregated_rules_are_a_union_in_name_order_without_duplicates() -> None:
    r1 = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
    r2 = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    agg = {
        "metadata": {"name": "agg", "labels": {"x": "y"}},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
    }
    roles = [
        agg,
        {"metadata": {"name": "b", "labels": {"x": "y"}}, "rules": [r2, r1]},
        {"metadata": {"name": "a", "labels": {"x": "y"}}, "rules": [r1]},
        {"metadata": {"name": "c"}, "rules": [{"verbs": ["*"]}]},
    ]
    assert aggregated_rules(agg, roles) == [r1, r2]


# ---------------------------------------------------------------------------- tokens


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _service_account(store: Store, uid: str = "uid-1") -> dict[str, Any]:
    sa = {"metadata": {"namespace": "ns", "name": "sa", "uid": uid}}
    store.commit(("", "serviceaccounts"), "ADDED", sa, None)
    return sa


def test_bound_token_lives_until_it_expires_or_its_service_account_goes() -> None:
    store, clock = Store(), Clock()
    tokens = TokenAuthority(store, clock=clock)
    sa = _service_account(store)
    token, exp = tokens.issue(
        sa, audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=600
    )
    assert exp == 1_000_600
    user = tokens.authenticate(token)
    assert user.username == "system:serviceaccount:ns:sa"
    assert user.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:ns",
        "system:authenticated",
    )
    assert user.uid == "uid-1"
    assert user.extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    clock.now += 601
    with pytest.raises(InvalidToken, match="expired"):
        tokens.authenticate(token)
    clock.now -= 601
    store.commit(("", "serviceaccounts"), "DELETED", sa, sa)
    with pytest.raises(InvalidToken):
        tokens.authenticate(token)
    _service_account(store, uid="uid-2")  # same name, another object
    with pytest.raises(InvalidToken, match="does not match"):
        tokens.authenticate(token)


def test_a_pod_bound_token_outlives_the_pods_deletion_time_by_one_minute() -> None:
    """As upstream: a terminating Pod's processes still authenticate (to release a Lease, say)
    until a minute past its ``deletionTimestamp``, then not."""
    store, clock = Store(), Clock()
    tokens = TokenAuthority(store, clock=clock)
    sa = _service_account(store)
    pod = {"metadata": {"namespace": "ns", "name": "p", "uid": "pod-1"}}
    store.commit(("", "pods"), "ADDED", pod, None)
    token, _ = tokens.issue(sa, audiences=["https://kubernetes.default.svc.cluster.local"],
                            expiration_seconds=3600, bound=BoundObject("Pod", "p", "pod-1"))
    deleting = {"metadata": {**pod["metadata"], "deletionTimestamp": "1970-01-12T13:47:10Z"}}
    assert deleting["metadata"]["deletionTimestamp"] == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_000_030))
    store.commit(("", "pods"), "MODIFIED", deleting, pod)
    assert tokens.authenticate(token).extra["authentication.kubernetes.io/pod-name"] == ("p",)
    clock.now = 1_000_030 + 60  # exactly a minute past: still valid
    assert tokens.authenticate(token).username == "system:serviceaccount:ns:sa"
    clock.now += 1
    with pytest.raises(InvalidToken, match="pods ns/p has been deleted"):
        tokens.authenticate(token)


def test_tokens_for_other_audiences_and_forged_tokens_do_not_authenticate() -> None:
    store = Store()
    tokens = TokenAuthority(store)
    sa = _service_account(store)
    vault, _ = tokens.issue(sa, audiences=["vault"], expiration_seconds=3600)
    with pytest.raises(InvalidToken, match="audiences"):
        tokens.authenticate(vault)
    assert tokens.authenticate(vault, ["vault"]).username == "system:serviceaccount:ns:sa"
    other = TokenAuthority(store)  # another cluster's key
    forged, _ = other.issue(
        sa, audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=3600
    )
    with pytest.raises(InvalidToken):
        tokens.authenticate(forged)
    header, claims, sig = vault.split(".")
    with pytest.raises(InvalidToken):
        tokens.authenticate(f"{header}.{claims}x.{sig}")
    with pytest.raises(InvalidToken):
        tokens.authenticate("not-a-token")


def test_the_signing_key_can_be_kept() -> None:
    store = Store()
    first = TokenAuthority(store, admin_token="secret")
    sa = _service_account(store)
    token, _ = first.issue(
        sa, audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=3600
    )
    again = TokenAuthority(store, admin_token="secret", signing_key_pem=first.signing_key_pem())
    assert again.authenticate(token).username == "system:serviceaccount:ns:sa"
    assert again.authenticate("secret").groups[0] == "system:masters"
    claims = token.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert decoded["sub"] == "system:serviceaccount:ns:sa"
    assert decoded["kubernetes.io"]["serviceaccount"] == {"name": "sa", "uid": "uid-1"}
