"""Label selectors as the workload controllers use them: matching a ``LabelSelector`` (or the
map selector of a ReplicationController) against labels, the string form a Scale's
``status.selector`` carries, and a pod's node selector and required node affinity against a Node.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "map_selector_string",
    "node_matches",
    "selector_matches",
    "selector_string",
    "tolerates",
]

JSON = dict[str, Any]


def selector_matches(selector: JSON | None, labels: dict[str, str] | None) -> bool:
    """Does a ``metav1.LabelSelector`` select these labels? ``None`` selects nothing, ``{}``
    everything (as ``LabelSelectorAsSelector`` has it)."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    return all(_requirement(req, labels) for req in selector.get("matchExpressions") or [])


def _requirement(req: JSON, labels: dict[str, str]) -> bool:
    key = req.get("key", "")
    op = req.get("operator", "")
    values = [str(v) for v in req.get("values") or []]
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):  # node selector requirements only
        try:
            have, want = int(labels[key]), int(values[0])
        except (KeyError, IndexError, ValueError):
            return False
        return have > want if op == "Gt" else have < want
    return False


def selector_string(selector: JSON | None) -> str:
    """``LabelSelectorAsSelector(s).String()``: requirements sorted by key, e.g.
    ``app=web,tier in (a,b)``."""
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for req in selector.get("matchExpressions") or []:
        key = req.get("key", "")
        op = req.get("operator", "")
        values = ",".join(sorted(str(v) for v in req.get("values") or []))
        if op == "In":
            reqs.append((key, f"{key} in ({values})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({values})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def map_selector_string(selector: dict[str, str] | None) -> str:
    """A ReplicationController's map selector as a string: ``a=b,c=d`` (sorted)."""
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items()))


def node_matches(pod_spec: JSON, node: JSON) -> bool:
    """``spec.nodeSelector`` and ``requiredDuringSchedulingIgnoredDuringExecution`` node
    affinity of a pod against one Node (terms are ORed, requirements within a term ANDed)."""
    labels = node["metadata"].get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    affinity = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not affinity:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in affinity.get("nodeSelectorTerms") or []:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue  # an empty term selects nothing
        if all(_requirement(r, labels) for r in exprs) and all(
            _requirement(r, fields) for r in field_exprs
        ):
            return True
    return False


def tolerates(pod_spec: JSON, node: JSON) -> bool:
    """Does the pod tolerate every NoSchedule/NoExecute taint of the node?"""
    tolerations = pod_spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(t, taint) for t in tolerations):
            return False
    return True


def _tolerates(toleration: JSON, taint: JSON) -> bool:
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    op = toleration.get("operator") or "Equal"
    if not key:
        return op == "Exists"
    if key != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")
