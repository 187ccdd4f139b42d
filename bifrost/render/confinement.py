"""Confinement: where a rendered child may land, decided before anything is applied.

A Gateway belongs to an application team; its blueprint (cluster-scoped) belongs to the platform
team. Whatever a Gateway's values or a template produce, a child may only land where the
blueprint says it may:

- A **namespaced** child always lands in its Gateway's namespace (a child that names none gets
  it). Another namespace only where ``spec.confinement.allow`` has an entry for the child's
  (group, kind) listing that namespace.
- A **cluster-scoped** child is refused unless an entry for its (group, kind) says
  ``clusterScoped: true``.
- **Sensitive kinds** are refused even in the Gateway's own namespace unless the blueprint names
  the kind in an entry (an opt-in per kind, never per group): RBAC
  (``rbac.authorization.k8s.io``), ``ServiceAccount``, tokens and access reviews
  (``authentication.k8s.io``, ``authorization.k8s.io``), admission webhooks
  (``admissionregistration.k8s.io``), ``CustomResourceDefinition``, ``APIService``,
  ``CertificateSigningRequest`` (``certificates.k8s.io``), ``Namespace``, and a core ``Secret`` of
  ``type: kubernetes.io/service-account-token`` (it mints a ServiceAccount token). A plain core
  ``Secret`` is ordinary in the Gateway's namespace and needs an entry listing any other one.
  Pods and workloads are ordinary namespaced kinds.

:func:`confine` is the decision, pure: the caller brings the rendered object and whether its kind
is namespaced (from discovery). :func:`static_violations` finds what is known without rendering:
templates whose ``kind`` (and ``namespace``) are literal text. Messages name the child, the kind,
the namespace or scope and the entry to add — never the object's data; a namespace or kind that is
not a valid name is not quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALLOW_FIELD",
    "AllowRule",
    "Allowed",
    "Confinement",
    "Violation",
    "confine",
    "group_of",
    "known_scope",
    "sensitive_reason",
    "static_violations",
]

ALLOW_FIELD = "spec.confinement.allow"

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_GROUP = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,62}$")

#: Groups every kind of which is sensitive, and why (the word the message uses).
_SENSITIVE_GROUPS: Mapping[str, str] = {
    "rbac.authorization.k8s.io": "RBAC",
    "authentication.k8s.io": "a token or authentication review",
    "authorization.k8s.io": "an access review",
    "admissionregistration.k8s.io": "admission control",
    "apiextensions.k8s.io": "an API extension",
    "apiregistration.k8s.io": "an API extension",
    "certificates.k8s.io": "a cluster certificate request",
}
#: Single sensitive kinds of otherwise ordinary groups.
_SENSITIVE_KINDS: Mapping[tuple[str, str], str] = {
    ("", "ServiceAccount"): "an identity",
    ("", "Namespace"): "a namespace",
}

#: Scopes of well-known kinds, for :func:`static_violations` (which has no discovery).
_NAMESPACED: frozenset[tuple[str, str]] = frozenset({
    *(("", k) for k in ("ConfigMap", "Secret", "Service", "ServiceAccount", "Pod", "Endpoints",
                        "PersistentVolumeClaim", "ReplicationController", "LimitRange",
                        "ResourceQuota", "PodTemplate", "Event")),
    *(("apps", k) for k in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")),
    *(("batch", k) for k in ("Job", "CronJob")),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("authorization.k8s.io", "LocalSubjectAccessReview"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "Ingress"),
    ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("coordination.k8s.io", "Lease"),
    ("discovery.k8s.io", "EndpointSlice"),
    *(("gateway.networking.k8s.io", k) for k in ("Gateway", "HTTPRoute", "GRPCRoute",
                                                  "TLSRoute", "TCPRoute", "UDPRoute",
                                                  "ReferenceGrant")),
    ("cert-manager.io", "Certificate"),
    ("cert-manager.io", "Issuer"),
})
_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset({
    *(("", k) for k in ("Namespace", "Node", "PersistentVolume")),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("authentication.k8s.io", "TokenReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("storage.k8s.io", "StorageClass"),
    ("networking.k8s.io", "IngressClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("gateway.bifrost.dev", "GatewayClassBlueprint"),
    ("gateway.bifrost.dev", "GatewayClassConfig"),
    ("cert-manager.io", "ClusterIssuer"),
})


@dataclass(frozen=True)
class AllowRule:
    """One entry of ``spec.confinement.allow``: a (group, kind) and where it may land beyond the
    Gateway's namespace. Naming a kind at all opts it in (see the sensitive kinds above)."""

    group: str
    kind: str
    cluster_scoped: bool = False
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Confinement:
    """The rendering-relevant part of ``spec.confinement`` (no entries: the strictest)."""

    allow: tuple[AllowRule, ...] = ()

    def rule_for(self, group: str, kind: str) -> AllowRule | None:
        return next((r for r in self.allow if r.group == group and r.kind == kind), None)


@dataclass(frozen=True)
class Allowed:
    """The child may be applied; ``namespace`` is where (``None``: cluster-scoped)."""

    namespace: str | None


@dataclass(frozen=True)
class Violation:
    """The child may not be applied: ``message`` names the child, kind, where and the fix."""

    child: str
    message: str

    def __str__(self) -> str:
        return self.message


def group_of(api_version: str) -> str:
    """The API group of an ``apiVersion`` (``""`` for core ``v1``)."""
    group, _, _ = api_version.rpartition("/")
    return group


def sensitive_reason(group: str, kind: str, obj: Mapping[str, Any] | None = None) -> str | None:
    """Why (group, kind) needs a per-kind opt-in wherever it lands, or ``None`` when it does
    not; ``obj`` (the rendered object) decides for a core ``Secret`` by its ``type``."""
    if group in _SENSITIVE_GROUPS:
        return _SENSITIVE_GROUPS[group]
    if (group, kind) in _SENSITIVE_KINDS:
        return _SENSITIVE_KINDS[(group, kind)]
    if group == "" and kind == "Secret" and obj is not None and obj.get("type") == SA_TOKEN_TYPE:
        return f"a Secret of type {SA_TOKEN_TYPE} (it mints a ServiceAccount token)"
    return None


def known_scope(group: str, kind: str) -> bool | None:
    """Whether a well-known kind is namespaced (``None``: not known without discovery)."""
    if (group, kind) in _NAMESPACED:
        return True
    if (group, kind) in _CLUSTER_SCOPED:
        return False
    return None


def confine(
    obj: Mapping[str, Any],
    *,
    child: str,
    namespaced: bool,
    gateway_namespace: str,
    confinement: Confinement,
) -> Allowed | Violation:
    """May rendered ``obj`` (child ``child``) be applied for a Gateway in ``gateway_namespace``?

    ``namespaced`` is the kind's scope from discovery. A namespaced object with no namespace gets
    the Gateway's; a cluster-scoped one's ``metadata.namespace`` is ignored (the API server would
    too).
    """
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    group = group_of(api_version)
    meta = obj.get("metadata")
    written = meta.get("namespace") if isinstance(meta, Mapping) else None
    namespace = (str(written) if written else gateway_namespace) if namespaced else None
    return decide(child=child, group=group, kind=kind, namespace=namespace,
                  gateway_namespace=gateway_namespace, confinement=confinement,
                  sensitive=sensitive_reason(group, kind, obj))


def decide(
    *,
    child: str,
    group: str,
    kind: str,
    namespace: str | None,
    gateway_namespace: str | None,
    confinement: Confinement,
    sensitive: str | None,
) -> Allowed | Violation:
    """The rules of :func:`confine` on the facts: ``namespace`` ``None`` means cluster-scoped;
    ``gateway_namespace`` ``None`` means any Gateway (the static check: a literal namespace is
    another namespace for some Gateway); ``sensitive`` is :func:`sensitive_reason`'s answer."""
    rule = confinement.rule_for(group, kind)
    name = _kind_text(group, kind)
    if namespace is None:
        if rule is not None and rule.cluster_scoped:
            return Allowed(None)
        fix = _entry(group, kind, cluster_scoped=True)
        return Violation(child, f"child {child!r} ({name}) is cluster-scoped, refused unless the "
                         f"blueprint allows the kind cluster-wide: add {fix} to {ALLOW_FIELD}")
    home = namespace == gateway_namespace
    where = "the Gateway's namespace" if home else _ns_text(namespace)
    if sensitive is not None and rule is None:
        fix = _entry(group, kind, namespaces=() if home else (namespace,))
        return Violation(child, f"child {child!r} ({name} in {where}) is {sensitive}, refused "
                         f"unless the blueprint opts in to the kind: add {fix} to {ALLOW_FIELD}")
    if home or (rule is not None and namespace in rule.namespaces):
        return Allowed(namespace)
    gateway = "the Gateway's namespace" + (f" {gateway_namespace}" if gateway_namespace else "")
    if rule is None:
        fix = f"add {_entry(group, kind, namespaces=(namespace,))} to {ALLOW_FIELD}"
    else:
        fix = (f"add {_ns_text(namespace, bare=True)} to the namespaces of the "
               f"{_gk(group, kind)} entry of {ALLOW_FIELD}")
    return Violation(child, f"child {child!r} ({name} in {where}) is outside {gateway}: {fix}")


# --- static check ----------------------------------------------------------------------------

_TOP_KEY = re.compile(r"^(apiVersion|kind|metadata|type)\s*:\s*(.*?)\s*$")
_LITERAL = re.compile(r"""^["']?([A-Za-z0-9][-A-Za-z0-9./]*)["']?$""")


def static_violations(
    templates: Iterable[tuple[str, str, str]],
    confinement: Confinement,
    *,
    is_namespaced: Callable[[str, str], bool | None] = known_scope,
    namespace_forced: bool = False,
) -> list[Violation]:
    """The violations known without rendering, for ``(child id, field path, template)``s.

    Conservative: only a template with exactly one top-level ``apiVersion:`` and ``kind:`` line,
    both literal (no ``{{``/``{%``), is judged, and a ``namespace:`` counts only as exactly one
    literal line directly under a top-level ``metadata:``. The scope comes from
    ``is_namespaced`` (well-known kinds by default; ``None``: unknown, not judged unless the kind
    is sensitive wherever it lands). ``namespace_forced``: the caller puts the object in the
    Gateway's namespace whatever the template says (the TLS certificate). Anything else is
    decided when the child renders.
    """
    out: list[Violation] = []
    for child, _source, text in templates:
        facts = _literal_facts(text)
        if facts is None:
            continue
        group, kind, namespace, secret_type = facts
        if namespace_forced:
            namespace = None
        scope = is_namespaced(group, kind)
        sensitive = sensitive_reason(group, kind, {"type": secret_type})
        if scope is None:
            if sensitive is None or confinement.rule_for(group, kind) is not None:
                continue
            scope = True  # refused wherever it lands: the message names the namespace if any
        verdict = decide(
            child=child, group=group, kind=kind,
            namespace=(namespace or "") if scope else None,
            gateway_namespace="" if not namespace else None,
            confinement=confinement, sensitive=sensitive,
        )
        if isinstance(verdict, Violation):
            out.append(verdict)
    return out


def _literal_facts(text: str) -> tuple[str, str, str | None, str | None] | None:
    """(group, kind, literal namespace, literal ``type``; ``None`` where not literal) of a
    template, or ``None`` when its ``apiVersion`` or ``kind`` is not one literal line."""
    found: dict[str, list[str]] = {"apiVersion": [], "kind": [], "metadata": [], "type": []}
    namespaces: list[str | None] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _TOP_KEY.match(line)
        if match is None:
            continue
        key, value = match.group(1), match.group(2)
        found[key].append(value)
        if key == "metadata":
            namespaces += _metadata_namespaces(lines[index + 1:])
    if len(found["apiVersion"]) != 1 or len(found["kind"]) != 1:
        return None
    api_version, kind = _literal(found["apiVersion"][0]), _literal(found["kind"][0])
    if api_version is None or kind is None or not _KIND.match(kind):
        return None
    namespace = None
    if len(namespaces) == 1 and namespaces[0] is not None and _DNS_LABEL.match(namespaces[0]):
        namespace = namespaces[0]
    secret_type = _literal(found["type"][0]) if len(found["type"]) == 1 else None
    return group_of(api_version), kind, namespace, secret_type


def _metadata_namespaces(rest: Sequence[str]) -> list[str | None]:
    """The ``namespace:`` values directly under a ``metadata:`` block (``None``: not literal)."""
    out: list[str | None] = []
    indent: int | None = None
    for line in rest:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        width = len(line) - len(line.lstrip(" "))
        if width == 0:
            break
        if indent is None:
            indent = width
        if width != indent:
            continue
        key, sep, value = line.strip().partition(":")
        if sep and key == "namespace":
            out.append(_literal(value.strip()))
    return out


def _literal(value: str) -> str | None:
    value = value.split(" #", 1)[0].strip()
    if "{{" in value or "{%" in value:
        return None
    match = _LITERAL.match(value)
    return match.group(1) if match else None


# --- message parts ---------------------------------------------------------------------------


def _gk(group: str, kind: str) -> str:
    return f"{{group: {_group_text(group)}, kind: {kind if _KIND.match(kind) else '<invalid>'}}}"


def _entry(group: str, kind: str, *, cluster_scoped: bool = False,
           namespaces: Sequence[str] = ()) -> str:
    parts = [f"group: {_group_text(group)}",
             f"kind: {kind if _KIND.match(kind) else '<invalid>'}"]
    if cluster_scoped:
        parts.append("clusterScoped: true")
    if namespaces:
        parts.append(f"namespaces: [{', '.join(_ns_text(n, bare=True) for n in namespaces)}]")
    return "{" + ", ".join(parts) + "}"


def _group_text(group: str) -> str:
    if not group:
        return '""'
    return group if _GROUP.match(group) and len(group) <= 253 else "<invalid>"


def _kind_text(group: str, kind: str) -> str:
    name = kind if _KIND.match(kind) else "<invalid kind>"
    return name if not group else f"{name}.{_group_text(group)}"


def _ns_text(namespace: str, *, bare: bool = False) -> str:
    if not namespace:
        return "<namespace>" if bare else "a namespace other than the Gateway's"
    if not _DNS_LABEL.match(namespace):
        return "<invalid>" if bare else "an invalid namespace"
    return namespace if bare else f"namespace {namespace}"
