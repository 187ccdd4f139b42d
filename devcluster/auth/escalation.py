"""RBAC escalation prevention: nobody grants through RBAC what they do not hold themselves.

As the real API server's RBAC storage does (``ConfirmNoEscalation`` and ``BindingAuthorized`` in
``pkg/registry/rbac``):

* writing a **Role or ClusterRole** is refused unless the requester holds every permission its
  rules grant (in the Role's namespace; cluster-wide for a ClusterRole), or may ``escalate``
  roles/clusterroles; a ClusterRole with an ``aggregationRule`` needs full authority (``*`` on
  everything), since aggregation may gather any rule into it;
* writing a **RoleBinding or ClusterRoleBinding** is refused unless the requester may ``bind``
  the referenced role (by name), or holds every permission of that role where the binding
  applies (the binding's namespace; cluster-wide for a ClusterRoleBinding).

"Holds" is the authorizer's own decision for every (verb, group, resource, name) or (verb, URL)
the rule names, wildcards taken literally: a rule granting ``*`` is covered only by a rule
holding ``*``. ``system:masters`` holds everything. The cluster's own writes (bootstrap roles,
the aggregation controller) have no requester and are not checked. The refusal is upstream's 403:
``... is attempting to grant RBAC permissions not currently held:`` and the rules missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from devcluster.auth import UserInfo
from devcluster.auth.attributes import Attributes
from devcluster.errors import ApiError
from devcluster.handlers import Api, Target

__all__ = ["EscalationCheck"]

JSON = dict[str, Any]
Decide = Callable[[Attributes], tuple[bool, str]]

RBAC = "rbac.authorization.k8s.io"
ROLES = {(RBAC, "roles"), (RBAC, "clusterroles")}
BINDINGS = {(RBAC, "rolebindings"), (RBAC, "clusterrolebindings")}
FULL_AUTHORITY: list[JSON] = [
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    {"nonResourceURLs": ["*"], "verbs": ["*"]},
]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _asks(rule: JSON, user: UserInfo, namespace: str) -> Iterator[Attributes]:
    """Every single permission ``rule`` grants, as the request that would use it."""
    verbs = _strings(rule.get("verbs"))
    for url in _strings(rule.get("nonResourceURLs")):
        for verb in verbs:
            yield Attributes(user, verb, resource_request=False, path=url)
    names = _strings(rule.get("resourceNames")) or [""]
    for group in _strings(rule.get("apiGroups")):
        for combined in _strings(rule.get("resources")):
            resource, _, sub = combined.partition("/")
            for verb in verbs:
                for name in names:
                    yield Attributes(
                        user, verb, True, group, "", resource, sub, namespace, name
                    )


def _text(rule: JSON) -> str:
    """A rule as upstream's message prints it (``{APIGroups:[""], Resources:["pods"], ...}``)."""
    parts = []
    for key, label in (
        ("apiGroups", "APIGroups"),
        ("resources", "Resources"),
        ("resourceNames", "ResourceNames"),
        ("nonResourceURLs", "NonResourceURLs"),
        ("verbs", "Verbs"),
    ):
        values = _strings(rule.get(key))
        if values:
            parts.append(f"{label}:[{', '.join(json.dumps(v) for v in values)}]")
    return "{" + ", ".join(parts) + "}"


class EscalationCheck:
    """An :attr:`Api.admission` check over the authorizer's ``decide``."""

    def __init__(self, api: Api, decide: Decide) -> None:
        self.api = api
        self.decide = decide

    def __call__(self, t: Target, obj: JSON, old: JSON | None, user: UserInfo) -> None:
        key = (t.rt.group, t.rt.plural)
        if key in ROLES:
            self._role(t, obj, user)
        elif key in BINDINGS:
            self._binding(t, obj, user)

    def _allowed(self, user: UserInfo, verb: str, resource: str, ns: str, name: str) -> bool:
        return self.decide(Attributes(user, verb, True, RBAC, "v1", resource, "", ns, name))[0]

    def _missing(self, rules: list[JSON], user: UserInfo, namespace: str) -> list[JSON]:
        return [
            r
            for r in rules
            if not all(self.decide(a)[0] for a in _asks(r, user, namespace))
        ]

    def _role(self, t: Target, obj: JSON, user: UserInfo) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace") or ""
        if self._allowed(user, "escalate", t.rt.plural, ns, meta["name"]):
            return
        aggregated = t.rt.plural == "clusterroles" and obj.get("aggregationRule")
        rules = FULL_AUTHORITY if aggregated else [r for r in obj.get("rules") or [] if r]
        self._refuse_missing(t, meta["name"], rules, user, ns)

    def _binding(self, t: Target, obj: JSON, user: UserInfo) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace") or ""
        ref = obj.get("roleRef") or {}
        kind, role_name = ref.get("kind"), str(ref.get("name") or "")
        plural = "clusterroles" if kind == "ClusterRole" else "roles"
        # asked in the binding's namespace (a Role granting ``bind`` on a ClusterRole by name
        # lets its holder bind that ClusterRole there), as upstream's BindingAuthorized does
        if self._allowed(user, "bind", plural, ns, role_name):
            return
        role = self.api.store.get((RBAC, plural), "" if kind == "ClusterRole" else ns, role_name)
        if role is None:
            # upstream cannot resolve the rules either: only ``bind`` would have allowed it
            raise self._forbidden(t, meta["name"], user, f"{kind} {role_name!r} not found")
        self._refuse_missing(t, meta["name"], list(role.get("rules") or []), user, ns)

    def _refuse_missing(
        self, t: Target, name: str, rules: list[JSON], user: UserInfo, ns: str
    ) -> None:
        missing = self._missing(rules, user, ns)
        if missing:
            detail = "attempting to grant RBAC permissions not currently held:\n" + "\n".join(
                _text(r) for r in missing
            )
            raise self._forbidden(t, name, user, detail)

    def _forbidden(self, t: Target, name: str, user: UserInfo, detail: str) -> ApiError:
        groups = ", ".join(json.dumps(g) for g in user.groups)
        message = (
            f'{t.rt.group_resource} "{name}" is forbidden: user "{user.username}" '
            f"(groups=[{groups}]) is {detail}"
        )
        return ApiError(403, message, "Forbidden", name=name, group=t.rt.group, kind=t.rt.plural)
