"""The RBAC objects a new cluster starts with (a short subset of upstream's bootstrap policy,
``plugin/pkg/auth/authorizer/rbac/bootstrappolicy``), created when missing.

ClusterRoles: ``cluster-admin``; the user-facing ``admin``, ``edit`` and ``view``, which are
aggregated (``rbac.authorization.k8s.io/aggregate-to-admin|edit|view``: ``edit`` aggregates into
``admin``, ``view`` into ``edit``) from ``system:aggregate-to-admin|edit|view``;
``system:basic-user`` (create SelfSubjectAccessReviews, SelfSubjectRulesReviews,
SelfSubjectReviews), ``system:discovery`` (discovery, OpenAPI, health and version paths),
``system:public-info-viewer`` (health and version), ``system:auth-delegator`` (TokenReviews,
SubjectAccessReviews) and ``system:monitoring`` (health and metrics paths).

ClusterRoleBindings: ``cluster-admin`` to ``system:masters``; ``system:basic-user`` and
``system:discovery`` to ``system:authenticated``; ``system:public-info-viewer`` to
``system:authenticated`` and ``system:unauthenticated``; ``system:monitoring`` to the group
``system:monitoring``. So an anonymous request may read only ``/healthz``, ``/livez``,
``/readyz`` and ``/version``.

Every object carries upstream's label ``kubernetes.io/bootstrapping: rbac-defaults`` and
annotation ``rbac.authorization.kubernetes.io/autoupdate: "true"``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from devcluster.errors import ApiError
from devcluster.handlers import Api, Target

__all__ = ["bootstrap_objects", "ensure_bootstrap_policy"]

JSON = dict[str, Any]

_RBAC = "rbac.authorization.k8s.io"
_AGG = "rbac.authorization.k8s.io/aggregate-to-"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
READ_WRITE = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _rule(verbs: list[str], groups: list[str], resources: list[str]) -> JSON:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _urls(verbs: list[str], urls: list[str]) -> JSON:
    return {"nonResourceURLs": urls, "verbs": verbs}


def _meta(name: str, labels: dict[str, str] | None = None) -> JSON:
    return {
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }


def _cluster_role(
    name: str,
    rules: list[JSON],
    *,
    labels: dict[str, str] | None = None,
    aggregate_from: str | None = None,
) -> JSON:
    role: JSON = {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": _meta(name, labels),
        "rules": rules,
    }
    if aggregate_from is not None:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {_AGG + aggregate_from: "true"}}]
        }
    return role


def _binding(name: str, groups: list[str]) -> JSON:
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": _RBAC, "kind": "Group", "name": g} for g in groups],
    }


def _aggregate_to_admin() -> list[JSON]:
    return [
        _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
        _rule(READ_WRITE, [_RBAC], ["rolebindings", "roles"]),
    ]


def _aggregate_to_edit() -> list[JSON]:
    return [
        _rule(
            READ,
            [""],
            [
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        _rule(["impersonate"], [""], ["serviceaccounts"]),
        _rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
        _rule(["create"], [""], ["pods/eviction"]),
        _rule(
            WRITE,
            [""],
            [
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        _rule(["create"], [""], ["serviceaccounts/token"]),
        _rule(
            WRITE,
            ["apps"],
            [
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        _rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
        _rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
        _rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
        _rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
        _rule(READ_WRITE, ["coordination.k8s.io"], ["leases"]),
    ]


def _aggregate_to_view() -> list[JSON]:
    return [
        _rule(
            READ,
            [""],
            [
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        _rule(
            READ,
            [""],
            [
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        _rule(READ, [""], ["namespaces"]),
        _rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        _rule(
            READ,
            ["apps"],
            [
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        _rule(
            READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]
        ),
        _rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
        _rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        _rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
    ]


def bootstrap_objects() -> list[JSON]:
    """The ClusterRoles, then the ClusterRoleBindings (fresh dicts)."""
    health = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    return [
        _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])]),
        _cluster_role("admin", [], aggregate_from="admin"),
        _cluster_role("edit", [], labels={_AGG + "admin": "true"}, aggregate_from="edit"),
        _cluster_role("view", [], labels={_AGG + "edit": "true"}, aggregate_from="view"),
        _cluster_role(
            "system:aggregate-to-admin", _aggregate_to_admin(), labels={_AGG + "admin": "true"}
        ),
        _cluster_role(
            "system:aggregate-to-edit", _aggregate_to_edit(), labels={_AGG + "edit": "true"}
        ),
        _cluster_role(
            "system:aggregate-to-view", _aggregate_to_view(), labels={_AGG + "view": "true"}
        ),
        _cluster_role(
            "system:basic-user",
            [
                _rule(
                    ["create"],
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
            ],
        ),
        _cluster_role(
            "system:discovery",
            [
                _urls(
                    ["get"],
                    [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                )
            ],
        ),
        _cluster_role("system:public-info-viewer", [_urls(["get"], health)]),
        _cluster_role(
            "system:auth-delegator",
            [
                _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            ],
        ),
        _cluster_role(
            "system:monitoring",
            [
                _urls(
                    ["get"],
                    [
                        "/healthz",
                        "/healthz/*",
                        "/livez",
                        "/livez/*",
                        "/metrics",
                        "/metrics/slis",
                        "/readyz",
                        "/readyz/*",
                    ],
                )
            ],
        ),
        _binding("cluster-admin", ["system:masters"]),
        _binding("system:basic-user", ["system:authenticated"]),
        _binding("system:discovery", ["system:authenticated"]),
        _binding("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
        _binding("system:monitoring", ["system:monitoring"]),
    ]


def ensure_bootstrap_policy(api: Api) -> None:
    """Create every bootstrap object that does not exist yet (a restart from a state file keeps
    what is there, edits included)."""
    for obj in bootstrap_objects():
        plural = "clusterroles" if obj["kind"] == "ClusterRole" else "clusterrolebindings"
        rt = api.registry.by_key((_RBAC, plural))
        if rt is None:
            continue
        with api.store.lock:
            if api.store.get(rt.key, "", obj["metadata"]["name"]) is not None:
                continue
            with contextlib.suppress(ApiError):
                api.create(Target(rt, "v1", None), obj, {}, manager="kube-apiserver")
