"""RBAC on the devcluster, through HTTP, the official client and the real kubectl: a
ServiceAccount token with a Role can do exactly what the Role allows (verbs, subresources,
resourceNames, namespaces, cluster-scoped kinds, non-resource URLs), the 403 Status is
upstream's, ClusterRoles bound by RoleBindings stay in their namespace, aggregated ClusterRoles
follow their labelled parts, and access reviews and ``kubectl auth can-i`` answer from the same
rules."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from auth_support import (
    KUBECTL,
    api_client,
    call,
    forbidden_message,
    kubectl,
    service_account_token,
)
from kubernetes import client
from support.waiting import wait_for

from devcluster import DevCluster

RBAC = "rbac.authorization.k8s.io"


@dataclass
class Robot:
    """A ServiceAccount ``robot`` in ``ns`` with the Role of ``robot`` below, and its token."""

    cluster: DevCluster
    ns: str
    other: str
    token: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.ns}:robot"


ROLE_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update", "patch"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["allowed", "doomed"],
        "verbs": ["get", "list", "watch", "update", "delete"],
    },
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]},
    {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["get"]},
]


def _admin(cluster: DevCluster) -> client.ApiClient:
    return api_client(cluster, cluster.admin_token)


def _pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}]}}


@pytest.fixture(scope="module")
def robot(devcluster: DevCluster) -> Iterator[Robot]:
    admin = _admin(devcluster)
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    ns = f"rbac-{uuid.uuid4().hex[:8]}"
    other = f"{ns}-other"
    for n in (ns, other):
        core.create_namespace({"metadata": {"name": n}})
        core.create_namespaced_pod(n, _pod("p"))
    for name in ("allowed", "doomed", "other"):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": {"k": "v"}})
    rbac.create_namespaced_role(ns, {"metadata": {"name": "robot"}, "rules": ROLE_RULES})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "robot"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "robot"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": ns}],
        },
    )
    token = service_account_token(admin, ns, "robot")
    yield Robot(devcluster, ns, other, token)
    for n in (ns, other):
        core.delete_namespace(n)
    admin.close()


def _current_pod(r: Robot) -> dict[str, Any]:
    status, pod = call(r.cluster, "GET", f"/api/v1/namespaces/{r.ns}/pods/p", token=r.token)
    assert status == 200
    pod["status"] = {**(pod.get("status") or {}), "message": "checked"}
    return dict(pod)


# (id, method, path, body, expected status, and for a 403 what it names: verb, resource, API
# group, namespace, object name). Paths and names may say {ns} (the robot's namespace) and
# {other}; a body may be computed from the Robot.
Denial = tuple[str, str, str, str, str]
Case = tuple[str, str, str, Any, int, Denial | None]
CASES: list[Case] = [
    ("list pods", "GET", "/api/v1/namespaces/{ns}/pods", None, 200, None),
    ("get a pod", "GET", "/api/v1/namespaces/{ns}/pods/p", None, 200, None),
    ("watch pods", "GET", "/api/v1/namespaces/{ns}/pods?watch=1&timeoutSeconds=1", None, 200, None),
    (
        "create a pod",
        "POST",
        "/api/v1/namespaces/{ns}/pods",
        _pod("new"),
        403,
        ("create", "pods", "", "{ns}", ""),
    ),
    (
        "delete a pod",
        "DELETE",
        "/api/v1/namespaces/{ns}/pods/p",
        None,
        403,
        ("delete", "pods", "", "{ns}", "p"),
    ),
    (
        "patch a pod",
        "PATCH",
        "/api/v1/namespaces/{ns}/pods/p",
        {"metadata": {"labels": {"a": "b"}}},
        403,
        ("patch", "pods", "", "{ns}", "p"),
    ),
    (
        "patch pods/status",
        "PATCH",
        "/api/v1/namespaces/{ns}/pods/p/status",
        {"status": {"message": "hi"}},
        200,
        None,
    ),
    ("update pods/status", "PUT", "/api/v1/namespaces/{ns}/pods/p/status", _current_pod, 200, None),
    ("get a named configmap", "GET", "/api/v1/namespaces/{ns}/configmaps/allowed", None, 200, None),
    (
        "update a named configmap",
        "PUT",
        "/api/v1/namespaces/{ns}/configmaps/allowed",
        {"metadata": {"name": "allowed"}, "data": {"k": "w"}},
        200,
        None,
    ),
    (
        "get another configmap",
        "GET",
        "/api/v1/namespaces/{ns}/configmaps/other",
        None,
        403,
        ("get", "configmaps", "", "{ns}", "other"),
    ),
    (
        "list configmaps (resourceNames do not cover lists)",
        "GET",
        "/api/v1/namespaces/{ns}/configmaps",
        None,
        403,
        ("list", "configmaps", "", "{ns}", ""),
    ),
    (
        "list one named configmap by field selector",
        "GET",
        "/api/v1/namespaces/{ns}/configmaps?fieldSelector=metadata.name%3Dallowed",
        None,
        200,
        None,
    ),
    (
        "create a configmap",
        "POST",
        "/api/v1/namespaces/{ns}/configmaps",
        {"metadata": {"name": "made"}},
        201,
        None,
    ),
    (
        "delete a named configmap",
        "DELETE",
        "/api/v1/namespaces/{ns}/configmaps/doomed",
        None,
        200,
        None,
    ),
    (
        "list pods in another namespace",
        "GET",
        "/api/v1/namespaces/{other}/pods",
        None,
        403,
        ("list", "pods", "", "{other}", ""),
    ),
    ("list pods in all namespaces", "GET", "/api/v1/pods", None, 403, ("list", "pods", "", "", "")),
    (
        "get its own namespace",
        "GET",
        "/api/v1/namespaces/{ns}",
        None,
        403,
        ("get", "namespaces", "", "{ns}", "{ns}"),
    ),
    ("list namespaces", "GET", "/api/v1/namespaces", None, 403, ("list", "namespaces", "", "", "")),
    (
        "list clusterroles",
        "GET",
        f"/apis/{RBAC}/v1/clusterroles",
        None,
        403,
        ("list", "clusterroles", RBAC, "", ""),
    ),
    ("list deployments", "GET", "/apis/apps/v1/namespaces/{ns}/deployments", None, 200, None),
    (
        "get a deployment",
        "GET",
        "/apis/apps/v1/namespaces/{ns}/deployments/d",
        None,
        403,
        ("get", "deployments", "apps", "{ns}", "d"),
    ),
    (
        "get deployments/scale (allowed: a 404 for a missing deployment)",
        "GET",
        "/apis/apps/v1/namespaces/{ns}/deployments/d/scale",
        None,
        404,
        None,
    ),
    (
        "update deployments/scale",
        "PUT",
        "/apis/apps/v1/namespaces/{ns}/deployments/d/scale",
        {"spec": {"replicas": 2}},
        403,
        ("update", "deployments/scale", "apps", "{ns}", "d"),
    ),
    ("discovery (system:discovery)", "GET", "/apis", None, 200, None),
    ("version (system:public-info-viewer)", "GET", "/version", None, 200, None),
    (
        "a kind that is not served is still a 403 first",
        "GET",
        "/apis/example.com/v1/namespaces/{ns}/widgets",
        None,
        403,
        ("list", "widgets", "example.com", "{ns}", ""),
    ),
    (
        "and a 404 when the role covers it",
        "GET",
        "/apis/apps/v1/namespaces/{ns}/widgets/w/scale",
        None,
        404,
        None,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected", "denied"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_a_service_account_token_can_do_exactly_what_its_role_allows(
    robot: Robot,
    method: str,
    path: str,
    body: Any,
    expected: int,
    denied: Denial | None,
) -> None:
    path = path.format(ns=robot.ns, other=robot.other)
    ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
    for _ in range(5):  # a body read from the pod may race the simulated kubelet: 409, again
        sent = body(robot) if callable(body) else body
        status, answer = call(
            robot.cluster, method, path, token=robot.token, body=sent, content_type=ctype
        )
        if status != 409:
            break
    assert status == expected, answer
    if denied is None:
        return
    verb, resource, group, ns, name = (d.format(ns=robot.ns, other=robot.other) for d in denied)
    plain = resource.split("/")[0]
    qualified = f"{plain}.{group}" if group else plain
    head = f'{qualified} "{name}"' if name else qualified
    tail = forbidden_message(robot.user, verb, resource, group, ns)
    assert answer == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"{head} is forbidden: {tail}",
        "reason": "Forbidden",
        "details": {
            "kind": plain,
            **({"name": name} if name else {}),
            **({"group": group} if group else {}),
        },
        "code": 403,
    }


def test_server_side_apply_is_the_patch_verb(robot: Robot) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "allowed"}}
    status, answer = call(
        robot.cluster,
        "PATCH",
        f"/api/v1/namespaces/{robot.ns}/configmaps/allowed?fieldManager=robot",
        token=robot.token,
        body=body,
        content_type="application/apply-patch+yaml",
    )
    assert status == 403
    assert 'cannot patch resource "configmaps"' in answer["message"]


def test_an_apply_that_creates_needs_create_too(devcluster: DevCluster) -> None:
    """As upstream: PATCH (server-side apply) is authorized as ``patch`` from the URL, and when
    it creates the object, ``create`` is checked as well; an apply of an existing object needs
    only ``patch``."""
    admin = _admin(devcluster)
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    ns = f"apply-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "there"}})
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}]
    rbac.create_namespaced_role(ns, {"metadata": {"name": "applier"}, "rules": rules})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "applier"},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "applier"},
        "subjects": [{"kind": "ServiceAccount", "name": "applier", "namespace": ns}],
    })
    token = service_account_token(admin, ns, "applier")

    def apply(name: str) -> tuple[int, dict[str, Any]]:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                "data": {"k": "v"}}
        return call(devcluster, "PATCH",
                    f"/api/v1/namespaces/{ns}/configmaps/{name}?fieldManager=applier",
                    token=token, body=body, content_type="application/apply-patch+yaml")

    try:
        assert apply("there")[0] == 200
        status, answer = apply("new")
        assert status == 403, answer
        assert answer["message"] == (
            f'configmaps "new" is forbidden: User "system:serviceaccount:{ns}:applier" '
            f'cannot create resource "configmaps" in API group "" in the namespace "{ns}"')
        assert core.list_namespaced_config_map(ns, field_selector="metadata.name=new").items == []
        rules[0]["verbs"].append("create")
        rbac.patch_namespaced_role("applier", ns, {"rules": rules})
        assert apply("new")[0] == 201
    finally:
        core.delete_namespace(ns)
        admin.close()


def test_the_403_reaches_the_official_client_as_the_real_status(robot: Robot) -> None:
    core = client.CoreV1Api(api_client(robot.cluster, robot.token))
    assert [p.metadata.name for p in core.list_namespaced_pod(robot.ns).items] == ["p"]
    with pytest.raises(client.ApiException) as denied:
        core.list_namespaced_pod(robot.other)
    assert denied.value.status == 403
    assert json.loads(denied.value.body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "pods is forbidden: "
        + forbidden_message(robot.user, "list", "pods", "", robot.other),
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }


# ------------------------------------------------------------------- bindings and their scope


def _binding(kind: str, name: str, role_kind: str, role: str, subject_ns: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": subject_ns}],
    }


def test_a_cluster_role_bound_by_a_role_binding_grants_only_in_that_namespace(
    devcluster: DevCluster,
) -> None:
    admin = _admin(devcluster)
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    ns, other = f"rb-{uuid.uuid4().hex[:8]}", f"rb-{uuid.uuid4().hex[:8]}"
    role = f"secret-reader-{ns}"
    try:
        for n in (ns, other):
            core.create_namespace({"metadata": {"name": n}})
        rbac.create_cluster_role(
            {
                "metadata": {"name": role},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
            }
        )
        token = service_account_token(admin, ns, "reader")
        as_reader = client.CoreV1Api(api_client(devcluster, token))
        with pytest.raises(client.ApiException) as before:
            as_reader.list_namespaced_secret(ns)
        assert before.value.status == 403
        # a RoleBinding in another namespace grants there, not in the subject's own
        rbac.create_namespaced_role_binding(
            other, _binding("RoleBinding", "read", "ClusterRole", role, ns)
        )
        as_reader.list_namespaced_secret(other)
        with pytest.raises(client.ApiException):
            as_reader.list_namespaced_secret(ns)
        with pytest.raises(client.ApiException) as everywhere:
            as_reader.list_secret_for_all_namespaces()
        assert json.loads(everywhere.value.body)["message"].endswith("at the cluster scope")
        # a ClusterRoleBinding grants everywhere
        rbac.create_cluster_role_binding(
            _binding("ClusterRoleBinding", role, "ClusterRole", role, ns)
        )
        as_reader.list_namespaced_secret(ns)
        as_reader.list_secret_for_all_namespaces()
    finally:
        for n in (ns, other):
            core.delete_namespace(n)
        rbac.delete_cluster_role(role)
        rbac.delete_cluster_role_binding(role)
        admin.close()


def test_non_resource_urls_are_granted_by_cluster_role_bindings_only(robot: Robot) -> None:
    admin = _admin(robot.cluster)
    rbac = client.RbacAuthorizationV1Api(admin)
    role = f"logs-{robot.ns}"
    status, answer = call(robot.cluster, "GET", "/logs/kube.log", token=robot.token)
    assert (status, answer["message"]) == (
        403,
        f'forbidden: User "{robot.user}" cannot get path "/logs/kube.log"',
    )
    rbac.create_cluster_role(
        {"metadata": {"name": role}, "rules": [{"nonResourceURLs": ["/logs*"], "verbs": ["get"]}]}
    )
    try:
        rbac.create_namespaced_role_binding(
            robot.ns, _binding("RoleBinding", "logs", "ClusterRole", role, robot.ns)
        )
        assert call(robot.cluster, "GET", "/logs/kube.log", token=robot.token)[0] == 403
        subject = [{"kind": "ServiceAccount", "name": "robot", "namespace": robot.ns}]
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": role},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                "subjects": subject,
            }
        )
        # allowed now: the path itself does not exist
        status, answer = call(robot.cluster, "GET", "/logs/kube.log", token=robot.token)
        assert (status, answer) == (404, "404 page not found\n")
        assert call(robot.cluster, "POST", "/logs/kube.log", token=robot.token, body={})[0] == 403
    finally:
        rbac.delete_cluster_role(role)
        rbac.delete_cluster_role_binding(role)
        admin.close()


def test_a_binding_to_a_missing_role_says_so_in_the_403(robot: Robot) -> None:
    admin = _admin(robot.cluster)
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role_binding(
        robot.ns,
        {
            "metadata": {"name": "dangling"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "ghost"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": robot.ns}],
        },
    )
    try:
        status, answer = call(
            robot.cluster, "GET", f"/api/v1/namespaces/{robot.ns}/secrets", token=robot.token
        )
        assert status == 403
        assert answer["message"].endswith(
            f'in the namespace "{robot.ns}": RBAC: role.{RBAC} "ghost" not found'
        )
    finally:
        rbac.delete_namespaced_role_binding("dangling", robot.ns)
        admin.close()


# ------------------------------------------------------------------- aggregation


def _rules(rbac: client.RbacAuthorizationV1Api, name: str) -> list[dict[str, Any]]:
    role = rbac.api_client.sanitize_for_serialization(rbac.read_cluster_role(name))
    return list(role.get("rules") or [])


def test_an_aggregated_cluster_role_follows_its_labelled_parts(devcluster: DevCluster) -> None:
    admin = _admin(devcluster)
    rbac = client.RbacAuthorizationV1Api(admin)
    tag = uuid.uuid4().hex[:8]
    label = f"example.com/aggregate-to-monitor-{tag}"
    agg, part1, part2 = f"monitor-{tag}", f"monitor-pods-{tag}", f"monitor-leases-{tag}"
    pods = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    leases = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]}
    more = {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
    try:
        rbac.create_cluster_role(
            {
                "metadata": {"name": agg},
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]},
            }
        )
        rbac.create_cluster_role(
            {"metadata": {"name": part1, "labels": {label: "true"}}, "rules": [pods]}
        )
        wait_for(lambda: _rules(rbac, agg) == [pods])
        rbac.create_cluster_role(
            {"metadata": {"name": part2, "labels": {label: "true"}}, "rules": [leases]}
        )
        wait_for(lambda: _rules(rbac, agg) == [leases, pods])  # by role name
        rbac.patch_cluster_role(part1, {"rules": [pods, more]})
        wait_for(lambda: _rules(rbac, agg) == [leases, pods, more])
        rbac.patch_cluster_role(part2, {"metadata": {"labels": {label: "false"}}})
        wait_for(lambda: _rules(rbac, agg) == [pods, more])
        rbac.delete_cluster_role(part1)
        wait_for(lambda: _rules(rbac, agg) == [])
        managers = {m.manager for m in rbac.read_cluster_role(agg).metadata.managed_fields or []}
        assert "clusterrole-aggregation-controller" in managers
    finally:
        for name in (agg, part1, part2):
            with contextlib.suppress(client.ApiException):
                rbac.delete_cluster_role(name)
        admin.close()


def test_the_bootstrap_roles_are_aggregated_and_grant_through_a_binding(robot: Robot) -> None:
    admin = _admin(robot.cluster)
    rbac = client.RbacAuthorizationV1Api(admin)
    view, edit, admin_role = (_rules(rbac, n) for n in ("view", "edit", "admin"))
    for rule in _rules(rbac, "system:aggregate-to-view"):
        assert rule in view and rule in edit and rule in admin_role  # view -> edit -> admin
    assert not any("secrets" in r.get("resources", []) for r in view)
    assert any("secrets" in r.get("resources", []) for r in edit)
    # bind the aggregated "view" in the robot's namespace: it may now read services there
    path = f"/api/v1/namespaces/{robot.ns}/services"
    assert call(robot.cluster, "GET", path, token=robot.token)[0] == 403
    rbac.create_namespaced_role_binding(
        robot.ns,
        {
            "metadata": {"name": "view"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": robot.ns}],
        },
    )
    try:
        assert call(robot.cluster, "GET", path, token=robot.token)[0] == 200
        other = f"/api/v1/namespaces/{robot.other}/services"
        assert call(robot.cluster, "GET", other, token=robot.token)[0] == 403
    finally:
        rbac.delete_namespaced_role_binding("view", robot.ns)
        admin.close()


# ------------------------------------------------------------------- reviews (official client)


def _attrs(ns: str, verb: str, resource: str, **more: str) -> client.V1ResourceAttributes:
    return client.V1ResourceAttributes(namespace=ns, verb=verb, resource=resource, **more)


def test_self_subject_access_reviews_answer_for_the_requester(robot: Robot) -> None:
    authz = client.AuthorizationV1Api(api_client(robot.cluster, robot.token))

    def review(attrs: client.V1ResourceAttributes) -> client.V1SubjectAccessReviewStatus:
        spec = client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs)
        body = client.V1SelfSubjectAccessReview(spec=spec)
        return authz.create_self_subject_access_review(body).status

    allowed = review(_attrs(robot.ns, "list", "pods"))
    assert allowed.allowed is True
    assert allowed.reason == (
        f'RBAC: allowed by RoleBinding "robot/{robot.ns}" of Role "robot" to '
        f'ServiceAccount "robot/{robot.ns}"'
    )
    assert review(_attrs(robot.ns, "create", "pods")).allowed is False
    assert review(_attrs(robot.other, "list", "pods")).allowed is False
    assert review(_attrs(robot.ns, "patch", "pods", subresource="status")).allowed is True
    assert review(_attrs(robot.ns, "get", "configmaps", name="allowed")).allowed is True
    assert review(_attrs(robot.ns, "get", "configmaps", name="other")).allowed is False
    paths = client.V1NonResourceAttributes(path="/apis", verb="get")
    spec = client.V1SelfSubjectAccessReviewSpec(non_resource_attributes=paths)
    status = authz.create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(spec=spec)
    ).status
    assert status.allowed is True


def test_subject_access_reviews_need_their_own_permission(robot: Robot) -> None:
    admin_authz = client.AuthorizationV1Api(_admin(robot.cluster))
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{robot.ns}"]

    def sar(verb: str, ns: str) -> client.V1SubjectAccessReview:
        spec = client.V1SubjectAccessReviewSpec(
            user=robot.user, groups=groups, resource_attributes=_attrs(ns, verb, "pods")
        )
        return admin_authz.create_subject_access_review(client.V1SubjectAccessReview(spec=spec))

    answer = sar("watch", robot.ns)
    assert answer.status.allowed is True and answer.spec.user == robot.user
    assert sar("delete", robot.ns).status.allowed is False
    local = client.V1LocalSubjectAccessReview(
        metadata={"namespace": robot.ns},
        spec=client.V1SubjectAccessReviewSpec(
            user=robot.user, resource_attributes=_attrs(robot.ns, "get", "pods")
        ),
    )
    made = admin_authz.create_namespaced_local_subject_access_review(robot.ns, local)
    assert made.status.allowed is True
    # the robot itself may not ask about others
    robot_authz = client.AuthorizationV1Api(api_client(robot.cluster, robot.token))
    spec = client.V1SubjectAccessReviewSpec(
        user="someone", resource_attributes=_attrs(robot.ns, "get", "pods")
    )
    with pytest.raises(client.ApiException) as denied:
        robot_authz.create_subject_access_review(client.V1SubjectAccessReview(spec=spec))
    assert denied.value.status == 403
    assert json.loads(denied.value.body)["message"] == (
        "subjectaccessreviews.authorization.k8s.io is forbidden: "
        + forbidden_message(
            robot.user, "create", "subjectaccessreviews", "authorization.k8s.io", ""
        )
    )


def test_self_subject_rules_review_lists_the_rules(robot: Robot) -> None:
    authz = client.AuthorizationV1Api(api_client(robot.cluster, robot.token))
    body = client.V1SelfSubjectRulesReview(
        spec=client.V1SelfSubjectRulesReviewSpec(namespace=robot.ns)
    )
    status = authz.create_self_subject_rules_review(body).status
    rules = {(tuple(r.resources), tuple(r.verbs)) for r in status.resource_rules}
    assert (("pods",), ("get", "list", "watch")) in rules
    assert (("pods/status",), ("update", "patch")) in rules
    named = [r for r in status.resource_rules if r.resource_names]
    assert [r.resource_names for r in named] == [["allowed", "doomed"]]
    assert any("/apis" in r.non_resource_urls for r in status.non_resource_rules)
    assert status.incomplete is False


# ------------------------------------------------------------------- kubectl


def _needs_kubectl() -> None:
    if not Path(KUBECTL).exists():
        pytest.skip("kubectl not installed")


def test_kubectl_auth_can_i_as_a_service_account(robot: Robot, kubeconfig_path: Path) -> None:
    _needs_kubectl()
    sa = f"--as={robot.user}"

    def can_i(*args: str) -> tuple[int, str]:
        proc = kubectl(kubeconfig_path, "auth", "can-i", *args, sa, check=False)
        return proc.returncode, proc.stdout.strip()

    assert can_i("list", "pods", "-n", robot.ns) == (0, "yes")
    assert can_i("create", "pods", "-n", robot.ns) == (1, "no")
    assert can_i("list", "pods", "-n", robot.other) == (1, "no")
    assert can_i("patch", "pods", "--subresource=status", "-n", robot.ns) == (0, "yes")
    assert can_i("get", "configmaps/allowed", "-n", robot.ns) == (0, "yes")
    assert can_i("get", "configmaps/other", "-n", robot.ns) == (1, "no")
    assert can_i("list", "deployments.apps", "-n", robot.ns) == (0, "yes")
    assert can_i("get", "/apis") == (0, "yes")
    assert can_i("list", "namespaces") == (1, "no")


def test_kubectl_auth_can_i_list(robot: Robot, kubeconfig_path: Path) -> None:
    _needs_kubectl()
    out = kubectl(
        kubeconfig_path, "auth", "can-i", "--list", f"--as={robot.user}", "-n", robot.ns
    ).stdout
    rows = [line.split(None, 1) for line in out.splitlines()[1:] if line.strip()]

    def row(resource: str, text: str) -> bool:
        return any(r[0] == resource and text in r[1] for r in rows if len(r) == 2)

    assert row("pods", "[get list watch]")
    assert row("pods/status", "[update patch]")
    assert row("configmaps", "[allowed]") and row("configmaps", "[doomed]")
    assert row("configmaps", "[create]")
    assert row("deployments.apps", "[list]")
    assert not row("secrets", "")


def test_kubectl_acts_as_the_service_account(robot: Robot, kubeconfig_path: Path) -> None:
    _needs_kubectl()
    sa = f"--as={robot.user}"
    names = kubectl(kubeconfig_path, "get", "pods", "-n", robot.ns, "-o", "name", sa).stdout
    assert names.split() == ["pod/p"]
    denied = kubectl(kubeconfig_path, "get", "pods", "-n", robot.other, sa, check=False)
    assert denied.returncode == 1
    assert (
        "Error from server (Forbidden): pods is forbidden: "
        + forbidden_message(robot.user, "list", "pods", "", robot.other)
    ) in denied.stderr
    # and with the token itself (kubectl sends it over TLS)
    own = kubectl(
        kubeconfig_path, "--token", robot.token, "get", "pods", "-n", robot.ns, "-o", "name"
    )
    assert own.stdout.split() == ["pod/p"]
    whoami = kubectl(kubeconfig_path, "--token", robot.token, "auth", "whoami", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == robot.user
