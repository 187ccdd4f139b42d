"""RBAC escalation prevention: a user who may write Roles and bindings still cannot grant what
they do not hold — unless they may ``escalate`` (roles) or ``bind`` (the role named)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from auth_support import api_client, service_account_token
from dc_support import body_of
from kubernetes import client

from devcluster import DevCluster

RBAC = "rbac.authorization.k8s.io"


@dataclass
class Delegate:
    ns: str
    rbac: client.RbacAuthorizationV1Api  # as the ServiceAccount ``delegate``
    admin: client.RbacAuthorizationV1Api
    user: str


@pytest.fixture
def delegate(devcluster: DevCluster) -> Iterator[Delegate]:
    admin = api_client(devcluster, devcluster.admin_token)
    ns = f"esc-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(admin).create_namespace({"metadata": {"name": ns}})
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(ns, role("delegate", [
        {"apiGroups": [RBAC], "resources": ["roles", "rolebindings"],
         "verbs": ["create", "update", "patch", "get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    ]))
    rbac.create_namespaced_role_binding(ns, binding("delegate", "Role", "delegate", ns))
    token = service_account_token(admin, ns, "delegate")
    as_sa = api_client(devcluster, token)
    yield Delegate(ns, client.RbacAuthorizationV1Api(as_sa), rbac,
                   f"system:serviceaccount:{ns}:delegate")
    client.CoreV1Api(admin).delete_namespace(ns)
    as_sa.close()
    admin.close()


def role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "rules": rules}


def binding(name: str, kind: str, role_name: str, ns: str, sa: str = "delegate") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
    }


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(client.ApiException) as err:
        call()
    assert err.value.status == 403
    return body_of(err.value)


PODS_GET = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
PODS_DELETE = {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}


def test_a_role_may_grant_only_what_its_author_holds(delegate: Delegate) -> None:
    d = delegate
    d.rbac.create_namespaced_role(d.ns, role("readers", [PODS_GET]))
    body = refused(lambda: d.rbac.create_namespaced_role(d.ns, role("deleters", [PODS_DELETE])))
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        f'roles.{RBAC} "deleters" is forbidden: user "{d.user}" (groups=['
        f'"system:serviceaccounts", "system:serviceaccounts:{d.ns}", "system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}'
    )
    # widening an existing role is an update, checked the same way
    refused(lambda: d.rbac.patch_namespaced_role(
        "readers", d.ns, {"rules": [PODS_GET, {**PODS_GET, "resources": ["*"]}]}))
    # the escalate verb lifts the check
    d.admin.create_namespaced_role(d.ns, role("escalator", [
        {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]}]))
    d.admin.create_namespaced_role_binding(d.ns, binding("escalator", "Role", "escalator", d.ns))
    d.rbac.create_namespaced_role(d.ns, role("deleters", [PODS_DELETE]))


def test_a_binding_may_grant_only_a_role_its_author_holds_or_may_bind(delegate: Delegate) -> None:
    d = delegate
    d.rbac.create_namespaced_role(d.ns, role("readers", [PODS_GET]))
    d.rbac.create_namespaced_role_binding(d.ns, binding("readers", "Role", "readers", d.ns, "x"))
    body = refused(lambda: d.rbac.create_namespaced_role_binding(
        d.ns, binding("editors", "ClusterRole", "edit", d.ns, "x")))
    assert "is attempting to grant RBAC permissions not currently held" in body["message"]
    # the bind verb on that ClusterRole, by name, lifts it for that role only
    d.admin.create_namespaced_role(d.ns, role("binder", [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["bind"],
         "resourceNames": ["edit"]}]))
    d.admin.create_namespaced_role_binding(d.ns, binding("binder", "Role", "binder", d.ns))
    editors = binding("editors", "ClusterRole", "edit", d.ns, "x")
    d.rbac.create_namespaced_role_binding(d.ns, editors)
    refused(lambda: d.rbac.create_namespaced_role_binding(
        d.ns, binding("admins", "ClusterRole", "admin", d.ns, "x")))


def test_the_cluster_admin_is_never_refused(devcluster: DevCluster) -> None:
    admin = api_client(devcluster, devcluster.admin_token)
    rbac = client.RbacAuthorizationV1Api(admin)
    name = f"esc-{uuid.uuid4().hex[:8]}"
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
    rbac.delete_cluster_role(name)
    admin.close()


def test_an_aggregated_cluster_role_needs_full_authority(delegate: Delegate) -> None:
    d = delegate
    writer = f"{d.ns}-writer"
    d.admin.create_cluster_role({"metadata": {"name": writer}, "rules": [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["create"]},
        PODS_GET]})
    d.admin.create_cluster_role_binding({
        "metadata": {"name": writer},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": writer},
        "subjects": [{"kind": "ServiceAccount", "name": "delegate", "namespace": d.ns}]})
    try:
        d.rbac.create_cluster_role({"metadata": {"name": f"{d.ns}-plain"}, "rules": [PODS_GET]})
        body = refused(lambda: d.rbac.create_cluster_role({
            "metadata": {"name": f"{d.ns}-gather"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
            "rules": []}))
        assert '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}' in body["message"]
    finally:
        for name in (writer, f"{d.ns}-plain"):
            d.admin.delete_cluster_role(name)
        d.admin.delete_cluster_role_binding(writer)
