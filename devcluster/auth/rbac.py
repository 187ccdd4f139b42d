"""RBAC authorization with Kubernetes' semantics, over the stored Roles, ClusterRoles,
RoleBindings and ClusterRoleBindings.

A request is allowed when some rule of a role bound to the user allows it:

* ClusterRoleBindings grant their ClusterRole everywhere (every namespace, cluster-scoped kinds,
  non-resource URLs); RoleBindings grant their Role, or the ClusterRole they name, only in their
  own namespace;
* a binding's subjects are Users (by name), Groups (one of the user's groups) and
  ServiceAccounts (the user ``system:serviceaccount:<ns>:<name>``; the namespace defaults to the
  binding's);
* a rule allows a resource request when its verbs (``*`` = any), apiGroups (``*``) and resources
  match — ``*`` is any resource and subresource, ``pods/log`` one subresource, ``*/scale`` that
  subresource of any resource — and, when it lists resourceNames, the request names one of them
  (so never a create or an unnamed list/watch); a non-resource request (verb = HTTP method)
  when a nonResourceURL is the path, ``*``, or a prefix ending in ``*``;
* a binding whose role does not exist grants nothing; a denial then carries the reason
  ``RBAC: clusterrole.rbac.authorization.k8s.io "x" not found``, as upstream.

Members of ``system:masters`` are allowed everything without looking (the API server's
privileged-group authorizer).

Speed: the objects are indexed by subject once per change (a store listener bumps a generation;
the next decision rebuilds), and the rules that apply to one (user, namespace) are cached until
the next change, so a decision is a few dictionary look-ups and a scan of that user's rules.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from devcluster.auth import MASTERS, UserInfo
from devcluster.auth.attributes import Attributes
from devcluster.storage import Event, Store

__all__ = ["RBAC_GROUP", "RbacAuthorizer", "Rule", "compile_rule"]

JSON = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"
_ROLES = (RBAC_GROUP, "roles")
_CLUSTER_ROLES = (RBAC_GROUP, "clusterroles")
_BINDINGS = (RBAC_GROUP, "rolebindings")
_CLUSTER_BINDINGS = (RBAC_GROUP, "clusterrolebindings")
_KEYS = frozenset({_ROLES, _CLUSTER_ROLES, _BINDINGS, _CLUSTER_BINDINGS})

SubjectKey = tuple[str, str]  # ("User", name) | ("Group", name)

_CACHE_LIMIT = 4096


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


@dataclass(frozen=True)
class Rule:
    """One PolicyRule, ready to match."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: tuple[str, ...]
    names: frozenset[str]
    urls: tuple[str, ...]
    source: JSON = field(compare=False, hash=False)

    def allows(self, a: Attributes) -> bool:
        if "*" not in self.verbs and a.verb not in self.verbs:
            return False
        if not a.resource_request:
            return self._url_matches(a.path)
        if "*" not in self.groups and a.group not in self.groups:
            return False
        if not self._resource_matches(a.combined_resource, a.subresource):
            return False
        return not self.names or a.name in self.names

    def _resource_matches(self, combined: str, subresource: str) -> bool:
        for r in self.resources:
            if r == "*" or r == combined:
                return True
            if subresource and r == f"*/{subresource}":
                return True
        return False

    def _url_matches(self, path: str) -> bool:
        for u in self.urls:
            if u == "*" or u == path:
                return True
            if u.endswith("*") and path.startswith(u.rstrip("*")):
                return True
        return False


def compile_rule(rule: JSON) -> Rule:
    return Rule(
        frozenset(_strings(rule.get("verbs"))),
        frozenset(_strings(rule.get("apiGroups"))),
        _strings(rule.get("resources")),
        frozenset(_strings(rule.get("resourceNames"))),
        _strings(rule.get("nonResourceURLs")),
        rule,
    )


@dataclass(frozen=True)
class _Grant:
    """One subject of one binding: where its role is and how a reason describes it."""

    describe: str
    role_kind: str  # Role | ClusterRole
    role_namespace: str  # the binding's namespace for a Role
    role_name: str


@dataclass
class _Index:
    cluster_roles: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    roles: dict[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict)
    cluster_grants: dict[SubjectKey, list[_Grant]] = field(default_factory=dict)
    grants: dict[str, dict[SubjectKey, list[_Grant]]] = field(default_factory=dict)


def _describe_subject(subject: JSON, binding_ns: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_ns}"'
    return f'{kind} "{name}"'


def _subject_key(subject: JSON, binding_ns: str) -> SubjectKey | None:
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind in ("User", "Group"):
        return (kind, name)
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return ("User", f"system:serviceaccount:{ns}:{name}")
    return None


def _add_grants(into: dict[SubjectKey, list[_Grant]], binding: JSON, kind: str, ns: str) -> None:
    ref = binding.get("roleRef") or {}
    role_kind, role_name = ref.get("kind", ""), ref.get("name", "")
    name = binding["metadata"]["name"]
    shown = f"{name}/{ns}" if ns else name
    for subject in binding.get("subjects") or []:
        if not isinstance(subject, dict):
            continue
        key = _subject_key(subject, ns)
        if key is None:
            continue
        describe = (
            f'{kind} "{shown}" of {role_kind} "{role_name}" to {_describe_subject(subject, ns)}'
        )
        into.setdefault(key, []).append(_Grant(describe, role_kind, ns, role_name))


def _rules(obj: JSON) -> tuple[Rule, ...]:
    return tuple(compile_rule(r) for r in obj.get("rules") or [] if isinstance(r, dict))


def _build(store: Store) -> _Index:
    idx = _Index()
    with store.lock:
        _, cluster_roles = store.list_objects(_CLUSTER_ROLES)
        _, roles = store.list_objects(_ROLES)
        _, cluster_bindings = store.list_objects(_CLUSTER_BINDINGS)
        _, bindings = store.list_objects(_BINDINGS)
    for cr in cluster_roles:
        idx.cluster_roles[cr["metadata"]["name"]] = _rules(cr)
    for r in roles:
        m = r["metadata"]
        idx.roles[(m.get("namespace") or "", m["name"])] = _rules(r)
    for b in cluster_bindings:
        if (b.get("roleRef") or {}).get("kind") == "ClusterRole":
            _add_grants(idx.cluster_grants, b, "ClusterRoleBinding", "")
    for b in bindings:
        ns = b["metadata"].get("namespace") or ""
        _add_grants(idx.grants.setdefault(ns, {}), b, "RoleBinding", ns)
    return idx


@dataclass(frozen=True)
class _Applicable:
    """The rules that apply to one user in one namespace, with where each came from."""

    rules: tuple[tuple[Rule, str], ...]
    errors: tuple[str, ...]


_Cache = dict[tuple[str, tuple[str, ...], str], _Applicable]


class RbacAuthorizer:
    """Decides requests against the RBAC objects of one :class:`Store` (see the module doc)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._generation = 0
        self._built = -1
        # the index and the rules cache built from it, swapped together
        self._state: tuple[_Index, _Cache] = (_Index(), {})
        store.add_listener(self._changed)

    def _changed(self, ev: Event) -> None:
        if ev.key in _KEYS:
            with self._lock:
                self._generation += 1

    def _current(self) -> tuple[_Index, _Cache]:
        if self._built == self._generation:
            return self._state
        with self._lock:
            generation = self._generation
        index = _build(self._store)
        with self._lock:
            if generation >= self._built:
                self._state = (index, {})
                self._built = generation
            return self._state

    def _applicable(self, user: UserInfo, namespace: str) -> _Applicable:
        index, cache = self._current()
        key = (user.username, user.groups, namespace)
        found = cache.get(key)
        if found is not None:
            return found
        subjects: list[SubjectKey] = [("User", user.username)]
        subjects += [("Group", g) for g in user.groups]
        rules: list[tuple[Rule, str]] = []
        errors: list[str] = []
        for s in subjects:
            for grant in index.cluster_grants.get(s, ()):
                self._collect(index, grant, rules, errors)
        if namespace:
            ns_grants = index.grants.get(namespace) or {}
            for s in subjects:
                for grant in ns_grants.get(s, ()):
                    self._collect(index, grant, rules, errors)
        applicable = _Applicable(tuple(rules), tuple(errors))
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = applicable
        return applicable

    @staticmethod
    def _collect(
        index: _Index, grant: _Grant, rules: list[tuple[Rule, str]], errors: list[str]
    ) -> None:
        if grant.role_kind == "ClusterRole":
            found = index.cluster_roles.get(grant.role_name)
            missing = f'clusterrole.{RBAC_GROUP} "{grant.role_name}" not found'
        elif grant.role_kind == "Role":
            found = index.roles.get((grant.role_namespace, grant.role_name))
            missing = f'role.{RBAC_GROUP} "{grant.role_name}" not found'
        else:
            return
        if found is None:
            errors.append(missing)
            return
        rules.extend((r, grant.describe) for r in found)

    # ---------------------------------------------------------------- the questions

    def decide(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) — the reason a SubjectAccessReview reports, and on a denial the
        suffix of the Forbidden message (empty unless a bound role is missing)."""
        user = attrs.user
        if MASTERS in user.groups:
            return True, ""
        namespace = attrs.namespace if attrs.resource_request else ""
        applicable = self._applicable(user, namespace)
        for rule, describe in applicable.rules:
            if rule.allows(attrs):
                return True, f"RBAC: allowed by {describe}"
        errors = applicable.errors
        if not errors:
            return False, ""
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        return False, f"RBAC: {joined}"

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[JSON], list[str]]:
        """Every PolicyRule that applies to ``user`` in ``namespace`` (cluster-wide ones
        included), and the errors met on the way (missing roles)."""
        applicable = self._applicable(user, namespace)
        return [r.source for r, _ in applicable.rules], list(applicable.errors)
