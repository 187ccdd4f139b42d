"""The built-in kinds the devcluster serves: names, scope and subresources as a real API server
(v1.31) lists them in discovery.

Schemas, defaults and printer columns of these kinds are attached elsewhere in this package; this
file is only the table of what exists.
"""

from __future__ import annotations

from devcluster.kinds.resource_type import CREATE_ONLY, ResourceType, Subresource

__all__ = ["builtin_types"]

_SCALE = Subresource(("get", "patch", "update"), "Scale", "autoscaling", "v1")
_TOKEN = Subresource(("create",), "TokenRequest", "authentication.k8s.io", "v1")
_POD_LOG = Subresource(("get",), "Pod")
_EVICTION = Subresource(("create",), "Eviction", "policy", "v1")

_RBAC = "rbac.authorization.k8s.io"
_AUTHZ = "authorization.k8s.io"
_AUTHN = "authentication.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"


def _review(group: str, kind: str, plural: str, namespaced: bool = False) -> ResourceType:
    return ResourceType(group, ["v1"], kind, plural, kind.lower(), namespaced, verbs=CREATE_ONLY)


def builtin_types() -> list[ResourceType]:
    """A fresh list (each :class:`~devcluster.registry.Registry` owns its copies)."""
    return [
        # core/v1
        ResourceType(
            "", ["v1"], "Namespace", "namespaces", "namespace", False, ["ns"], [], status=True
        ),
        ResourceType("", ["v1"], "ConfigMap", "configmaps", "configmap", True, ["cm"], []),
        ResourceType("", ["v1"], "Secret", "secrets", "secret", True, [], []),
        ResourceType(
            "", ["v1"], "Service", "services", "service", True, ["svc"], ["all"], status=True
        ),
        ResourceType("", ["v1"], "Event", "events", "event", True, ["ev"], []),
        ResourceType(
            "", ["v1"], "Pod", "pods", "pod", True, ["po"], ["all"], status=True,
            subresources={"log": _POD_LOG, "eviction": _EVICTION},
        ),
        ResourceType("", ["v1"], "Endpoints", "endpoints", "endpoints", True, ["ep"], []),
        ResourceType(
            "", ["v1"], "PersistentVolumeClaim", "persistentvolumeclaims",
            "persistentvolumeclaim", True, ["pvc"], [], status=True,
        ),
        ResourceType(
            "",
            ["v1"],
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            True,
            ["sa"],
            subresources={"token": _TOKEN},
        ),
        ResourceType("", ["v1"], "Node", "nodes", "node", False, ["no"], [], status=True),
        ResourceType(
            "",
            ["v1"],
            "ReplicationController",
            "replicationcontrollers",
            "replicationcontroller",
            True,
            ["rc"],
            ["all"],
            status=True,
            subresources={"scale": _SCALE},
        ),
        # apps/v1
        ResourceType(
            "apps",
            ["v1"],
            "Deployment",
            "deployments",
            "deployment",
            True,
            ["deploy"],
            ["all"],
            status=True,
            subresources={"scale": _SCALE},
        ),
        ResourceType(
            "apps",
            ["v1"],
            "ReplicaSet",
            "replicasets",
            "replicaset",
            True,
            ["rs"],
            ["all"],
            status=True,
            subresources={"scale": _SCALE},
        ),
        ResourceType(
            "apps",
            ["v1"],
            "StatefulSet",
            "statefulsets",
            "statefulset",
            True,
            ["sts"],
            ["all"],
            status=True,
            subresources={"scale": _SCALE},
        ),
        ResourceType(
            "apps", ["v1"], "DaemonSet", "daemonsets", "daemonset", True, ["ds"], ["all"],
            status=True,
        ),
        ResourceType(
            "apps", ["v1"], "ControllerRevision", "controllerrevisions", "controllerrevision",
            True,
        ),
        # autoscaling/v2, policy/v1, batch/v1
        ResourceType(
            "autoscaling",
            ["v2"],
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            True,
            ["hpa"],
            ["all"],
            status=True,
        ),
        ResourceType(
            "policy",
            ["v1"],
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            True,
            ["pdb"],
            status=True,
        ),
        ResourceType("batch", ["v1"], "Job", "jobs", "job", True, [], ["all"], status=True),
        ResourceType(
            "batch", ["v1"], "CronJob", "cronjobs", "cronjob", True, ["cj"], ["all"], status=True
        ),
        # networking.k8s.io/v1
        ResourceType(
            "networking.k8s.io",
            ["v1"],
            "NetworkPolicy",
            "networkpolicies",
            "networkpolicy",
            True,
            ["netpol"],
        ),
        ResourceType(
            "networking.k8s.io", ["v1"], "Ingress", "ingresses", "ingress", True, ["ing"],
            status=True,
        ),
        ResourceType(
            "networking.k8s.io", ["v1"], "IngressClass", "ingressclasses", "ingressclass", False
        ),
        # rbac.authorization.k8s.io/v1
        ResourceType(_RBAC, ["v1"], "ClusterRole", "clusterroles", "clusterrole", False),
        ResourceType(
            _RBAC, ["v1"], "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding",
            False,
        ),
        ResourceType(_RBAC, ["v1"], "Role", "roles", "role", True),
        ResourceType(_RBAC, ["v1"], "RoleBinding", "rolebindings", "rolebinding", True),
        # authorization.k8s.io/v1 and authentication.k8s.io/v1: reviews, answered, not stored
        _review(_AUTHZ, "SelfSubjectAccessReview", "selfsubjectaccessreviews"),
        _review(_AUTHZ, "SelfSubjectRulesReview", "selfsubjectrulesreviews"),
        _review(_AUTHZ, "SubjectAccessReview", "subjectaccessreviews"),
        _review(_AUTHZ, "LocalSubjectAccessReview", "localsubjectaccessreviews", namespaced=True),
        _review(_AUTHN, "TokenReview", "tokenreviews"),
        _review(_AUTHN, "SelfSubjectReview", "selfsubjectreviews"),
        # admissionregistration.k8s.io/v1: stored, not enforced
        ResourceType(
            _ADMISSION,
            ["v1"],
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            False,
            categories=["api-extensions"],
        ),
        ResourceType(
            _ADMISSION,
            ["v1"],
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            "mutatingwebhookconfiguration",
            False,
            categories=["api-extensions"],
        ),
        ResourceType(
            _ADMISSION,
            ["v1"],
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            "validatingadmissionpolicy",
            False,
            categories=["api-extensions"],
            status=True,
        ),
        ResourceType(
            _ADMISSION,
            ["v1"],
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            "validatingadmissionpolicybinding",
            False,
            categories=["api-extensions"],
        ),
        # the rest
        ResourceType("coordination.k8s.io", ["v1"], "Lease", "leases", "lease", True),
        ResourceType(
            "events.k8s.io",
            ["v1"],
            "Event",
            "events",
            "event",
            True,
            ["ev"],
            storage_key=("", "events"),
        ),
        ResourceType(
            "discovery.k8s.io", ["v1"], "EndpointSlice", "endpointslices", "endpointslice", True
        ),
        ResourceType(
            "apiextensions.k8s.io",
            ["v1"],
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "customresourcedefinition",
            False,
            ["crd", "crds"],
            ["api-extensions"],
            status=True,
        ),
    ]
