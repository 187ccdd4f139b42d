"""Confinement in the steps: every body rendered from a blueprint template is checked with
discovery and :func:`bifrost.render.confinement.confine` before it is applied.

``check_children`` runs over everything one render pass produced (the Gateway's children and
every attached route's) *before* any of it is applied: one violation fails the operation with
every violation's message, so nothing of the pass reaches the cluster. ``place`` is the same
decision for one body, giving the namespace to apply it in (the Gateway's when the template wrote
none; ``None`` when the kind is cluster-scoped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bifrost.api.blueprint import BLUEPRINT_KIND
from bifrost.engine import Fail, NotDone
from bifrost.kube import KubeError, KubeReader, UnknownKind
from bifrost.render.confinement import Allowed, Confinement, Violation, confine
from bifrost.render.errors import RenderError
from bifrost.render.model import Blueprint
from bifrost.steps.kube_outcomes import outcome_for

__all__ = ["check_children", "confinement_of", "place"]


def confinement_of(raw_blueprint: Mapping[str, Any]) -> Confinement | Fail:
    """The blueprint object's ``spec.confinement`` (no entries when absent), or a ``Fail``. Read
    from the blueprint as the one parser (the API model, through the render view) reads it."""
    try:
        return Blueprint.from_dict(raw_blueprint).confinement
    except RenderError as exc:  # names the field and what is wrong, never a value
        name = (raw_blueprint.get("metadata") or {}).get("name")
        return Fail(f"{BLUEPRINT_KIND} {name!r} is invalid: {exc}")


def place(
    kube: KubeReader,
    obj: Mapping[str, Any],
    *,
    child: str,
    source: str,
    gateway_namespace: str,
    confinement: Confinement,
) -> Allowed | Violation | NotDone:
    """Where ``obj`` (child ``child``, rendered from ``source``) may be applied, a violation, or
    the outcome of a discovery error (an unknown kind fails, an API error per error)."""
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    try:
        namespaced = kube.is_namespaced(api_version, kind)
    except UnknownKind:
        return Fail(f"child {child!r} ({source}): the cluster does not serve {api_version} {kind}"
                    " (is its CRD installed?)")
    except KubeError as e:
        return outcome_for(e, doing=f"discovering {api_version} {kind}")
    return confine(obj, child=child, namespaced=namespaced, gateway_namespace=gateway_namespace,
                   confinement=confinement)


def check_children(
    kube: KubeReader,
    children: Iterable[tuple[str, str, Mapping[str, Any]]],
    *,
    blueprint: str,
    gateway_namespace: str,
    confinement: Confinement,
) -> NotDone | None:
    """``None`` when every ``(child key, source field, rendered object)`` may be applied; else a
    ``Fail`` naming every violation (or a discovery error's outcome)."""
    violations: list[str] = []
    for key, source, obj in children:
        verdict = place(kube, obj, child=key, source=source,
                        gateway_namespace=gateway_namespace, confinement=confinement)
        if isinstance(verdict, Violation):
            violations.append(verdict.message)
        elif not isinstance(verdict, Allowed):
            return verdict
    if violations:
        return Fail(f"{BLUEPRINT_KIND} {blueprint!r}: children not confined, nothing applied: "
                    + "; ".join(violations))
    return None
