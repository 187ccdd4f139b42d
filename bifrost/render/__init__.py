"""Rendering: value merging, sandboxed templates, readiness and status expressions.

Pure functions from (blueprint, gateway, values, live children) to Kubernetes objects — no I/O, no
Kubernetes client, no database — so the provision/update machines can call them at any step and
tests can pin every rule down.

``render_gateway`` is one pass in dependency order. A child whose dependency has no live state yet
is reported ``Pending`` instead of rendered; the machine applies what rendered, waits for the
dependency to appear and renders again (no N² re-apply passes). Errors are collected per child:
one bad template does not hide the others, and each error names the child, the field and the line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bifrost.render.errors import BLUEPRINT, RenderError
from bifrost.render.expressions import (
    Address,
    AddressesResult,
    NotAvailable,
    Readiness,
    check_addresses,
    check_ready_when,
    evaluate_addresses,
    evaluate_expression,
    evaluate_ready,
)
from bifrost.render.merge import MergedValues, deep_merge, explain_values, merge_values
from bifrost.render.model import Blueprint, RenderChild, as_blueprint
from bifrost.render.ordering import (
    CycleError,
    child_dependencies,
    delete_order,
    dependency_graph,
    inferred_dependencies,
    topological_order,
)
from bifrost.render.templates import ChildrenView, render_child

__all__ = [
    "BLUEPRINT",
    "Address",
    "AddressesResult",
    "Blueprint",
    "CycleError",
    "MergedValues",
    "NotAvailable",
    "Pending",
    "Readiness",
    "RenderChild",
    "RenderError",
    "RenderResult",
    "RenderedChild",
    "deep_merge",
    "delete_order",
    "dependency_graph",
    "evaluate_addresses",
    "evaluate_expression",
    "evaluate_ready",
    "explain_values",
    "inferred_dependencies",
    "merge_values",
    "render_certificate",
    "render_gateway",
    "render_route_children",
    "topological_order",
]


@dataclass(frozen=True)
class RenderedChild:
    """One child rendered into a Kubernetes object."""

    id: str
    object: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    template: RenderChild | None = None
    """The blueprint entry it came from (for ``evaluate_ready`` and ``delete_order``)."""


@dataclass(frozen=True)
class Pending:
    """A child not rendered because these dependencies have no live state yet."""

    child_id: str
    waiting_for: tuple[str, ...]


@dataclass(frozen=True)
class RenderResult:
    """Everything one render pass produced.

    - ``children``: rendered objects, in apply (dependency) order;
    - ``pending``: children waiting for a dependency's live state;
    - ``skipped``: children whose template rendered empty (not wanted for this Gateway);
    - ``errors``: one ``RenderError`` per failed child (blueprint-wide ones: ``<blueprint>``);
    - ``order``: the apply order of every child that could be ordered;
    - ``delete_order``: the teardown order of the same children.
    """

    children: tuple[RenderedChild, ...] = ()
    pending: tuple[Pending, ...] = ()
    skipped: tuple[str, ...] = ()
    errors: tuple[RenderError, ...] = ()
    order: tuple[str, ...] = ()
    delete_order: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """No errors (children may still be pending)."""
        return not self.errors

    @property
    def complete(self) -> bool:
        """No errors and nothing pending: every wanted child is rendered."""
        return not self.errors and not self.pending


def render_gateway(
    blueprint: Blueprint | Mapping[str, Any],
    *,
    gateway: Mapping[str, Any],
    values: Mapping[str, Any],
    live_children: Mapping[str, Mapping[str, Any] | None],
    certificates: Sequence[Mapping[str, Any]] = (),
) -> RenderResult:
    """Render ``spec.children`` for one Gateway, one pass in dependency order.

    ``live_children`` maps child id → the child's live object (``None`` or absent: not there yet).
    A template sees ``gateway``, ``values``, ``certificates`` (the attached certificates bifrost
    manages, oldest first; see ``spec.tls``) and ``children`` — the live state of its
    dependencies only.
    """
    try:
        bp = as_blueprint(blueprint)
    except RenderError as exc:
        return RenderResult(errors=(exc,))
    errors: list[RenderError] = []
    try:
        check_addresses(bp.addresses)
    except RenderError as exc:
        errors.append(exc)
    return _render_list(
        bp.children,
        known=frozenset(c.id for c in bp.children),
        context={"gateway": gateway, "values": values,
                 "certificates": [dict(c) for c in certificates]},
        live=live_children,
        errors=errors,
    )


def render_route_children(
    blueprint: Blueprint | Mapping[str, Any],
    *,
    gateway: Mapping[str, Any],
    route: Mapping[str, Any],
    values: Mapping[str, Any],
    live_children: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> RenderResult:
    """Render ``spec.routeChildren`` for one attached HTTPRoute, in dependency order.

    Templates also see ``route``. ``children`` and ``dependsOn`` may name the *Gateway's*
    children (e.g. a shadow route attached to the child gateway) and sibling route children (ids
    are unique across both lists); ``live_children`` gives their live state for this route.
    """
    try:
        bp = as_blueprint(blueprint)
    except RenderError as exc:
        return RenderResult(errors=(exc,))
    return _render_list(
        bp.route_children,
        known=frozenset(c.id for c in (*bp.children, *bp.route_children)),
        context={"gateway": gateway, "values": values, "route": route},
        live=live_children or {},
        errors=[],
    )


TLS_CERTIFICATE_TEMPLATE = "spec.tls.certificateTemplate"


def render_certificate(source: str, *, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render ``spec.tls.certificateTemplate`` into one certificate object.

    ``context`` holds ``gateway``, ``values``, ``listener`` and ``certificate`` (the names bifrost
    chose). An empty output is an error: a TLS blueprint must request a certificate.
    """
    template = RenderChild(id="certificate", template=source, list_name="tls")
    try:
        obj = render_child(template, context)
    except RenderError as exc:
        raise RenderError(exc.child_id, exc.message, exc.line, TLS_CERTIFICATE_TEMPLATE) from None
    if obj is None:
        raise RenderError("certificate", "rendered empty: it must render one certificate object",
                          None, TLS_CERTIFICATE_TEMPLATE)
    return obj


def _render_list(
    children: Sequence[RenderChild],
    *,
    known: frozenset[str],
    context: Mapping[str, Any],
    live: Mapping[str, Mapping[str, Any] | None],
    errors: list[RenderError],
) -> RenderResult:
    """Validate each child (errors stay per child), order them, then one render pass."""
    graph: dict[str, tuple[str, ...]] = {}
    valid: list[RenderChild] = []
    for child in children:
        try:
            graph[child.id] = child_dependencies(child, known)
            check_ready_when(child)
        except RenderError as exc:
            errors.append(exc)
            continue
        valid.append(child)
    order = _order_breaking_cycles(valid, graph, errors)
    by_id = {c.id: c for c in valid}
    ordered = [by_id[cid] for cid in order]
    return _render_pass(
        ordered,
        graph=graph,
        context=context,
        live=live,
        errors=errors,
        order=tuple(order),
        teardown=tuple(delete_order(ordered, graph)),
    )


def _order_breaking_cycles(
    children: Sequence[RenderChild],
    graph: Mapping[str, tuple[str, ...]],
    errors: list[RenderError],
) -> list[str]:
    """Topological order; the members of each cycle become errors and the rest still render."""
    remaining = list(children)
    while True:
        try:
            return topological_order(remaining, graph)
        except CycleError as exc:
            cycle = set(exc.cycle)
            for member in exc.cycle:
                child = next(c for c in remaining if c.id == member)
                errors.append(
                    exc
                    if member == exc.child_id
                    else RenderError(member, exc.message, None, child.field_path("dependsOn"))
                )
            remaining = [c for c in remaining if c.id not in cycle]


def _render_pass(
    ordered: Sequence[RenderChild],
    *,
    graph: Mapping[str, tuple[str, ...]],
    context: Mapping[str, Any],
    live: Mapping[str, Mapping[str, Any] | None],
    errors: list[RenderError],
    order: tuple[str, ...],
    teardown: tuple[str, ...],
) -> RenderResult:
    rendered: list[RenderedChild] = []
    pending: list[Pending] = []
    skipped: list[str] = []
    for child in ordered:
        deps = graph[child.id]
        waiting = tuple(d for d in deps if live.get(d) is None)
        if waiting:
            pending.append(Pending(child.id, waiting))
            continue
        view = ChildrenView({d: live[d] for d in deps})
        try:
            obj = render_child(child, {**context, "children": view})
        except RenderError as exc:
            errors.append(exc)
            continue
        if obj is None:
            skipped.append(child.id)
        else:
            rendered.append(RenderedChild(id=child.id, object=obj, depends_on=deps, template=child))
    return RenderResult(
        children=tuple(rendered),
        pending=tuple(pending),
        skipped=tuple(skipped),
        errors=tuple(errors),
        order=order,
        delete_order=teardown,
    )
