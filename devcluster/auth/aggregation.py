"""The ClusterRole aggregation controller (in-process, like kube-controller-manager's).

A ClusterRole with ``aggregationRule.clusterRoleSelectors`` gets as its ``rules`` the union of
the rules of every other ClusterRole whose labels match one of the selectors: selector by
selector, matching roles by name, each rule once. It is kept up to date as ClusterRoles are
created, relabelled, changed and deleted, a moment after the change (poll for it, as on a real
cluster). The write is a forced server-side apply of ``rules`` by the field manager
``clusterrole-aggregation-controller``, as upstream.
"""

from __future__ import annotations

import json
from typing import Any

from devcluster.errors import ApiError
from devcluster.handlers import APPLY, Api, Target
from devcluster.storage import Event
from devcluster.wakeloop import WakeLoop

__all__ = ["AggregationController", "selector_matches"]

JSON = dict[str, Any]

_KEY = ("rbac.authorization.k8s.io", "clusterroles")
MANAGER = "clusterrole-aggregation-controller"
_MAX_PASSES = 10  # chains of aggregation (admin <- edit <- view) settle in a few


def selector_matches(selector: JSON, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (``matchLabels`` and ``matchExpressions``); ``{}`` matches all."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator")
        values = expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def aggregated_rules(role: JSON, all_roles: list[JSON]) -> list[JSON]:
    """The rules ``role``'s aggregationRule selects from ``all_roles``."""
    name = role["metadata"]["name"]
    out: list[JSON] = []
    ordered = sorted(all_roles, key=lambda r: str(r["metadata"]["name"]))
    for selector in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        if not isinstance(selector, dict):
            continue
        for other in ordered:
            if other["metadata"]["name"] == name:
                continue
            if not selector_matches(selector, other["metadata"].get("labels") or {}):
                continue
            for rule in other.get("rules") or []:
                if rule not in out:
                    out.append(rule)
    return out


class AggregationController:
    """Keeps aggregated ClusterRoles' rules current; :meth:`run_once` is one pass."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._loop = WakeLoop("devcluster-clusterrole-aggregation", self.run_once)
        api.store.add_listener(self._changed)

    def _changed(self, ev: Event) -> None:
        if ev.key == _KEY:
            self._loop.wake()

    def run_once(self) -> bool:
        """Bring every aggregated role up to date (roles that aggregate aggregated roles, like
        ``admin`` from ``edit``, settle within the call); True when a write failed (a role
        changed or went meanwhile): run again."""
        for _ in range(_MAX_PASSES):
            wrote, failed = self._pass()
            if failed:
                return True
            if not wrote:
                return False
        return True

    def _pass(self) -> tuple[bool, bool]:
        rt = self.api.registry.by_key(_KEY)
        if rt is None:
            return False, False
        wrote = failed = False
        _, roles = self.api.store.list_objects(_KEY)
        for role in roles:
            if not role.get("aggregationRule"):
                continue
            rules = aggregated_rules(role, roles)
            if rules == (role.get("rules") or []):
                continue
            name = role["metadata"]["name"]
            body = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": rules,
            }
            try:
                self.api.patch(
                    Target(rt, "v1", None, name),
                    json.dumps(body).encode(),
                    APPLY,
                    {"fieldManager": MANAGER, "force": "true"},
                    MANAGER,
                )
                wrote = True
            except ApiError:
                failed = True
        return wrote, failed

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
