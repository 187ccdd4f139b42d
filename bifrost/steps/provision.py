"""Provision steps: render a Gateway's blueprint and apply its children, wait until they are
ready, prune the children no longer rendered — plus the inventory and deletion helpers the
teardown steps share.

Why it is shaped this way:

- **One render pass per run.** A child depends on the live state of other children (explicit
  ``dependsOn`` or read in its template). The renderer sees a dependency only once it exists *and*
  is ready (its ``readyWhen``), as the blueprint CRD documents; a child whose dependencies are not
  ready is ``Pending``. ``apply_children`` applies what rendered and answers ``Wait``; the next run
  renders again. A child whose body hash is unchanged and which still exists (same uid) is not
  written again, so a pass costs reads, not writes: no N² re-apply, and re-provisioning an
  unchanged Gateway writes nothing.
- **Inventory first.** A child gets its inventory row (``ChildRecord``) *before* it is first
  applied and is completed after, so a crash between the two cannot leak an object (cluster-scoped
  ones have no owner reference for the garbage collector to fall back on). A child whose identity
  changed (kind, namespace or name) keeps its old object under a superseded inventory key, pruned
  once the new one is ready.
- **Ownership.** Every child carries the gateway-uid label; namespaced children in the Gateway's
  namespace also get an owner reference. An object found with another Gateway's uid label is never
  taken over or deleted: provisioning waits (bounded by the step timeout) and teardown skips it.
- **Visible failures.** Render errors and children the API server rejects (422, 403, …) fail the
  operation with the child id, the error and where it came from (template field and line, or the
  server's message); retryable API errors retry with the server's delay.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bifrost.api.blueprint import API_VERSION as BLUEPRINT_API_VERSION
from bifrost.api.blueprint import BLUEPRINT_KIND
from bifrost.api.objects import Obj
from bifrost.certificates.rules import (
    is_certificate_child,
)
from bifrost.engine import (
    Done,
    Fail,
    NoInput,
    NotDone,
    Outcome,
    Retry,
    Step,
    StepContext,
    StepOutput,
    Wait,
)
from bifrost.engine.step import wait_key
from bifrost.kube import (
    Invalid,
    Kube,
    KubeError,
    KubeReader,
    PathNotServed,
    Retryable,
    UnknownKind,
)
from bifrost.machines.provision import ProvisionContext
from bifrost.records import CertificateRecord, ChildRecord
from bifrost.render import (
    Blueprint,
    RenderChild,
    RenderedChild,
    RenderError,
    RenderResult,
    dependency_graph,
    topological_order,
)
from bifrost.render.budgets import check_gateway_output
from bifrost.render.confinement import Allowed, Confinement, Violation
from bifrost.sandbox import evaluate_ready, render_gateway, render_route_children
from bifrost.steps.confinement import check_children, place
from bifrost.steps.drift import drifted, field_shape, keep_live_values, observed_hash
from bifrost.steps.kube_outcomes import outcome_for
from bifrost.steps.ownership import (
    GATEWAY_API,
    GATEWAY_UID_LABEL,
    body_hash,
    gateway_owner_reference,
    owned_by,
)
from bifrost.steps.redaction import Redactor, rejection
from bifrost.steps.tls import (
    attached_certificates,
    delete_certificate_object,
    references,
)
from bifrost.store.interface import OperationStore

#: The state of a certificate whose listener went away: detached, deleted by prune.
RETIRED = "retired"

CHILD_ID_LABEL = "gateway.bifrost.dev/child-id"
ROUTE_ANNOTATION = "gateway.bifrost.dev/route"
"""On a route child: ``namespace/name`` of the HTTPRoute it was rendered for."""
SUPERSEDED = "#superseded-"
"""Inventory keys ``<child id>#superseded-<hash>`` hold objects replaced by a renamed child."""


class BlueprintSource(Protocol):
    """Where steps read a blueprint by name (``None``: it does not exist)."""

    def get(self, name: str) -> Mapping[str, Any] | None: ...


class ClusterBlueprints:
    """Blueprints as ``GatewayClassBlueprint`` objects in the cluster (cluster-scoped)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def get(self, name: str) -> Mapping[str, Any] | None:
        return self.kube.get(BLUEPRINT_API_VERSION, BLUEPRINT_KIND, name)


# --- helpers shared with the teardown steps -------------------------------------------------


def superseded_key(record: ChildRecord) -> str:
    """The inventory key of an object replaced by a child whose kind/namespace/name changed."""
    identity = [record.api_version, record.kind, record.namespace, record.name]
    return f"{record.child_id}{SUPERSEDED}{body_hash({'identity': identity})[:12]}"


def describe_record(record: ChildRecord) -> str:
    where = f"{record.namespace}/{record.name}" if record.namespace else record.name
    return f"{record.kind} {where}"


def gateway_children(store: OperationStore, gateway_uid: str) -> dict[str, ChildRecord]:
    """The Gateway's inventory (per-route children excluded), by child id."""
    return {r.child_id: r for r in store.list_children(gateway_uid) if r.route_key is None}


def route_children(store: OperationStore, gateway_uid: str) -> dict[str, dict[str, ChildRecord]]:
    """The Gateway's per-route inventory: route key (``namespace/name``) → child id → record."""
    out: dict[str, dict[str, ChildRecord]] = {}
    for r in store.list_children(gateway_uid):
        if r.route_key is not None:
            out.setdefault(r.route_key, {})[r.child_id] = r
    return out


def child_key(child_id: str, route_key: str | None) -> str:
    """How a child is named in progress, messages and ``live`` maps: its id for a Gateway child,
    ``<id>@<namespace>/<route>`` for a route child (ids are DNS labels: no ``@`` in them)."""
    return child_id if route_key is None else f"{child_id}@{route_key}"


def record_key(record: ChildRecord) -> str:
    return child_key(record.child_id, record.route_key)


def record_wait_key(record: ChildRecord) -> str:
    """What a step waiting on the recorded child names it by (``Wait.on``)."""
    return wait_key(record.kind, record.namespace, record.name)


def object_wait_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return wait_key(str(obj.get("kind")), meta.get("namespace"), str(meta.get("name")))


def observe(kube: KubeReader, record: ChildRecord) -> Obj | None:
    """The recorded child's live object, or None when it is gone (a NotFound kind included)."""
    try:
        return kube.get(record.api_version, record.kind, record.name, record.namespace)
    except UnknownKind:
        return None  # the CRD is gone, and with it every object of the kind


def load_raw_blueprint(source: BlueprintSource, name: str) -> Mapping[str, Any] | NotDone:
    """The blueprint object, or the outcome to answer (missing → Fail, API error → per error)."""
    try:
        raw = source.get(name)
    except KubeError as e:
        return outcome_for(e, doing=f"reading {BLUEPRINT_KIND} {name}")
    if raw is None:
        return Fail(f"{BLUEPRINT_KIND} {name!r} not found")
    return raw


def load_blueprint(source: BlueprintSource, name: str) -> Blueprint | NotDone:
    """The parsed blueprint, or the outcome to answer (missing → Fail, API error → per error)."""
    raw = load_raw_blueprint(source, name)
    if not isinstance(raw, Mapping):
        return raw
    try:
        return Blueprint.from_dict(raw)
    except RenderError as e:
        return Fail(f"{BLUEPRINT_KIND} {name!r} is invalid: {e}")


def render_failure(blueprint: str, errors: Sequence[RenderError], *,
                   route: str | None = None) -> Fail:
    return Fail(
        f"{BLUEPRINT_KIND} {blueprint!r}: cannot render "
        + (f"for HTTPRoute {route}: " if route else "")
        + "; ".join(str(e) for e in errors)
    )


def route_render_error(blueprint: str, errors: Sequence[RenderError]) -> str:
    """Why a route's ``routeChildren`` could not be rendered, as its ``status.parents`` says it
    (render errors name the child, field and line, never a value)."""
    return (
        f"{BLUEPRINT_KIND} {blueprint!r} cannot render this route's children (its last "
        "rendered children, if any, are kept): " + "; ".join(str(e) for e in errors)
    )[:4096]


def deletion_waves(
    records: Iterable[ChildRecord],
    blueprint: Blueprint | None,
    live: Mapping[str, Mapping[str, Any] | None],
) -> list[list[ChildRecord]]:
    """The children to delete, in waves: each wave is deleted together and must be gone before
    the next starts.

    Groups by ``deleteOrder`` (the blueprint's value for children it still declares, else the
    inventory's), higher first. Within a group, reverse dependency order: a child is in a later
    wave than every child that depends on it (dependencies from the blueprint; a route child
    depends on its route's siblings and on the Gateway's children). Within a wave, children the
    blueprint no longer declares go first, then reverse apply order (the blueprint's topological
    order, else reverse creation time, then id), then route. ``live`` is keyed by
    :func:`record_key`.
    """
    records = list(records)
    declared = (*blueprint.children, *blueprint.route_children) if blueprint is not None else ()
    templates = {t.id: t for t in declared}
    graph: dict[str, tuple[str, ...]] = {}
    position: dict[str, int] = {}
    if declared:
        try:
            graph = dependency_graph(declared)
            position = {cid: i for i, cid in enumerate(topological_order(declared, graph))}
        except RenderError:
            graph, position = {}, {}

    def group(r: ChildRecord) -> int:
        template = templates.get(r.child_id)
        if template is not None:
            return template.delete_order or 0
        return r.delete_order

    def created(r: ChildRecord) -> str:
        obj = live.get(record_key(r))
        return str(((obj or {}).get("metadata") or {}).get("creationTimestamp") or "")

    def within_wave(r: ChildRecord) -> tuple[int, int, str, str, str]:
        known = r.child_id in position
        # descending apply position / creation time: negate the position, invert the text order
        return (1 if known else 0, -position.get(r.child_id, 0), _desc(created(r)),
                _desc(r.child_id), r.route_key or "")

    def dependencies(r: ChildRecord) -> set[str]:
        # a dependency is a sibling of the same route, or one of the Gateway's children
        return {child_key(d, rk) for d in graph.get(r.child_id, ())
                for rk in {r.route_key, None}}

    waves: list[list[ChildRecord]] = []
    for value in sorted({group(r) for r in records}, reverse=True):
        members = {record_key(r): r for r in records if group(r) == value}
        while members:
            depended_on = {d for r in members.values() for d in dependencies(r) if d in members}
            wave = [r for key, r in members.items() if key not in depended_on]
            if not wave:  # a cycle (an invalid blueprint): delete the rest together
                wave = list(members.values())
            wave.sort(key=within_wave)
            waves.append(wave)
            for r in wave:
                del members[record_key(r)]
    return waves


def _desc(text: str) -> str:
    """A key that sorts strings in descending order when sorted ascending."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text) + "\U0010ffff"


@dataclass(frozen=True)
class DeletionProgress:
    """What one ``delete_in_waves`` pass did: children gone (and removed from the inventory),
    children still being deleted, children skipped because another Gateway owns the object —
    each named by :func:`record_key`."""

    gone: tuple[str, ...]
    remaining: tuple[str, ...]
    foreign: tuple[str, ...]


def delete_in_waves(
    kube: Kube,
    store: OperationStore,
    *,
    gateway_uid: str,
    records: Sequence[ChildRecord],
    blueprint: Blueprint | None,
) -> DeletionProgress | NotDone:
    """Delete ``records`` wave by wave (see ``deletion_waves``); stop at the first wave not yet
    gone. Each object is deleted only if it carries this Gateway's uid label, with its uid as a
    precondition; an object that is gone (or not ours) leaves the inventory."""
    live: dict[str, Obj | None] = {}
    try:
        for r in records:
            live[record_key(r)] = observe(kube, r)
    except KubeError as e:
        return outcome_for(e, doing="reading the children to delete")
    gone: list[str] = []
    foreign: list[str] = []
    remaining: list[str] = []
    for wave in deletion_waves(records, blueprint, live):
        for r in wave:
            key = record_key(r)
            obj = live[key]
            if obj is None or not owned_by(obj, gateway_uid):
                if obj is not None:
                    foreign.append(key)
                store.delete_child(gateway_uid, r.child_id, route_key=r.route_key)
                gone.append(key)
                continue
            meta = obj.get("metadata") or {}
            try:
                if not meta.get("deletionTimestamp"):
                    kube.delete(r.api_version, r.kind, r.name, r.namespace, uid=meta.get("uid"))
                still = observe(kube, r)
            except KubeError as e:
                return outcome_for(e, doing=f"deleting child {key!r} ({describe_record(r)})")
            if still is None or (still.get("metadata") or {}).get("uid") != meta.get("uid"):
                store.delete_child(gateway_uid, r.child_id, route_key=r.route_key)
                gone.append(key)
            else:
                remaining.append(key)
        if remaining:
            break
    return DeletionProgress(tuple(gone), tuple(remaining), tuple(foreign))


# --- the provision steps --------------------------------------------------------------------


class _ProvisionStep:
    def __init__(
        self,
        kube: Kube,
        store: OperationStore,
        *,
        blueprints: BlueprintSource | None = None,
        recheck: timedelta = timedelta(seconds=0.2),
    ) -> None:
        self.kube = kube
        self.store = store
        self.blueprints: BlueprintSource = blueprints or ClusterBlueprints(kube)
        self.recheck = recheck

    def _gateway(self, c: ProvisionContext) -> Obj | NotDone:
        try:
            gateway = self.kube.get(GATEWAY_API, "Gateway", c.gateway, c.namespace)
        except KubeError as e:
            return outcome_for(e, doing=f"reading Gateway {c.namespace}/{c.gateway}")
        if gateway is None:
            return Fail(f"Gateway {c.namespace}/{c.gateway} (uid {c.gateway_uid}) is gone")
        uid = (gateway.get("metadata") or {}).get("uid")
        if uid != c.gateway_uid:
            return Fail(
                f"Gateway {c.namespace}/{c.gateway} was re-created (uid {uid}, this operation is "
                f"for uid {c.gateway_uid}); the new Gateway needs its own operation"
            )
        return gateway


@dataclass(frozen=True)
class _LiveState:
    live: dict[str, Obj | None]  # child id → live object (None: gone)
    ready: dict[str, Obj]  # ours and ready
    not_ready: dict[str, str]  # ours, not ready: why


def _source(child: RenderedChild) -> str:
    """The blueprint field a rendered child came from (for messages)."""
    return (child.template.field_path("template") if child.template
            else f"spec.children[{child.id}].template")


@dataclass(frozen=True)
class _RouteRender:
    """One attached route's render result, with its inventory and live state."""

    route_key: str
    inventory: dict[str, ChildRecord]
    state: _LiveState
    result: RenderResult


@dataclass
class _RoutesRendered:
    """The routes whose children rendered, and why the others' did not: a route whose
    ``routeChildren`` fail to render keeps the children it has (they stay wanted, so the prune
    leaves them) and its error goes to ``ProvisionContext.route_errors``, which the controller
    reports on that HTTPRoute's ``status.parents`` — the Gateway and the other routes go on."""

    renders: list[_RouteRender] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    kept: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class _RoutePass:
    wanted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    on: set[str] = field(default_factory=set)  # wait keys of the objects waited for


class ChildrenApplied(StepOutput):
    """``apply_children``: child keys written this pass, found unchanged, and rendered empty;
    ``repaired``: those among ``applied`` written because they drifted (a field bifrost sets
    was changed, or the object was deleted)."""

    applied: tuple[str, ...]
    unchanged: tuple[str, ...]
    skipped: tuple[str, ...]
    repaired: tuple[str, ...] = ()


class ApplyChildren(_ProvisionStep, Step[NoInput, ChildrenApplied]):
    """``apply_children``: one render pass with the live state of ready dependencies; apply each
    rendered child that changed (server-side apply, field manager ``bifrost``) in dependency
    order and record it in the inventory; ``Wait`` while children are pending.

    Then the same for every attached HTTPRoute in ``routes`` (``spec.routeChildren``): the route
    is read live (gone: treated as detached, its children are pruned), its templates see the
    route and the live state of the Gateway's ready children and of the route's own ready
    siblings, and each child is recorded under (child id, route). Route children of different
    routes must have different names — templates derive them from ``route.metadata.namespace``
    and ``route.metadata.name``; an object that is already another route's child (or a Gateway
    child) fails the operation instead of being taken over."""

    input_model = NoInput

    def execute(self, ctx: StepContext[ProvisionContext],
                input: NoInput) -> Outcome[ChildrenApplied]:
        c = ctx.context
        gateway = self._gateway(c)
        if not isinstance(gateway, dict):
            return gateway
        blueprint = load_blueprint(self.blueprints, c.blueprint)
        if not isinstance(blueprint, Blueprint):
            return blueprint
        templates = {t.id: t for t in blueprint.children}
        inventory = gateway_children(self.store, c.gateway_uid)
        state = self._live_state(c, templates, inventory)
        if not isinstance(state, _LiveState):
            return state
        live, ready_live, not_ready = state.live, state.ready, state.not_ready
        view = copy.deepcopy(gateway)
        (view.get("metadata") or {}).pop("managedFields", None)
        result = render_gateway(blueprint, gateway=view, values=c.values, live_children=ready_live,
                                certificates=attached_certificates(self.store, c.gateway_uid))
        if result.errors:
            return render_failure(c.blueprint, result.errors)
        routes_rendered = self._render_routes(ctx, blueprint, view, ready_live)
        if not isinstance(routes_rendered, _RoutesRendered):
            return routes_rendered
        rendered_routes = routes_rendered.renders
        over = check_gateway_output([
            *(ch.object for ch in result.children),
            *(ch.object for r in rendered_routes for ch in r.result.children),
        ])
        if over is not None:
            return Fail(f"{BLUEPRINT_KIND} {c.blueprint!r}: {over}; nothing applied")
        # Confinement before anything of this pass is applied (bifrost.steps.confinement).
        confined = check_children(
            self.kube,
            [*((ch.id, _source(ch), ch.object) for ch in result.children),
             *((child_key(ch.id, r.route_key), _source(ch), ch.object)
               for r in rendered_routes for ch in r.result.children)],
            blueprint=c.blueprint, gateway_namespace=c.namespace,
            confinement=blueprint.confinement)
        if confined is not None:
            return confined

        applied: list[str] = []
        conflicts: list[str] = []
        repaired: list[str] = []
        for child in result.children:
            outcome = self._apply_one(ctx, child, inventory, live, applied, conflicts,
                                      confinement=blueprint.confinement, repaired=repaired)
            if outcome is not None:
                return outcome
        wanted = tuple(
            cid for cid in result.order
            if cid in {ch.id for ch in result.children} | {p.child_id for p in result.pending}
        )
        waiting = [
            f"{p.child_id} waits for "
            + ", ".join(
                f"{d} ({not_ready[d]})" if d in not_ready else f"{d} (not applied yet)"
                for d in p.waiting_for
            )
            for p in result.pending
        ]
        routes = self._apply_routes(ctx, rendered_routes, not_ready, applied, conflicts,
                                    blueprint.confinement, repaired)
        if not isinstance(routes, _RoutePass):
            return routes
        context = c.model_copy(update={
            "wanted": wanted, "route_wanted": {**routes_rendered.kept, **routes.wanted},
            "route_errors": routes_rendered.errors,
            "applied": tuple(dict.fromkeys((*c.applied, *applied))),
        })
        waiting += routes.waiting
        if conflicts:
            waiting = [*conflicts, *waiting]
        if waiting:
            # woken by a change of a dependency waited for (or of a conflicting object)
            on = {object_wait_key(obj) for p in result.pending for d in p.waiting_for
                  if (obj := live.get(d)) is not None}
            on |= routes.on
            return Wait("; ".join(waiting), self.recheck, context=context, on=tuple(sorted(on)))
        return Done(
            output=ChildrenApplied(applied=tuple(applied), unchanged=(
                *(ch.id for ch in result.children if ch.id not in applied),
                *(k for k in routes.rendered if k not in applied),
            ), skipped=(*result.skipped, *routes.skipped),
                repaired=tuple(k for k in repaired if k in applied)),
            context=context,
        )

    def _live_state(self, c: ProvisionContext, templates: Mapping[str, RenderChild],
                    inventory: Mapping[str, ChildRecord]) -> _LiveState | NotDone:
        """The live objects of the inventory's children that still have a template, and which
        of them (ours) are ready."""
        live: dict[str, Obj | None] = {}
        try:
            for cid, record in inventory.items():
                if cid in templates:
                    live[cid] = observe(self.kube, record)
        except KubeError as e:
            return outcome_for(e, doing="reading the live children")
        ready_live: dict[str, Obj] = {}
        not_ready: dict[str, str] = {}
        errors: list[RenderError] = []
        for cid, obj in live.items():
            if obj is None or not owned_by(obj, c.gateway_uid):
                continue
            try:
                readiness = evaluate_ready(templates[cid], obj)
            except RenderError as e:
                errors.append(e)
                continue
            if readiness.ready:
                ready_live[cid] = obj
            else:  # (a Secret child's data never reaches the message)
                not_ready[cid] = Redactor.of(obj).text(readiness.reason)
        if errors:
            return render_failure(c.blueprint, errors)
        return _LiveState(live, ready_live, not_ready)

    def _render_routes(
        self,
        ctx: StepContext[ProvisionContext],
        blueprint: Blueprint,
        gateway: Obj,
        gateway_ready: Mapping[str, Obj],
    ) -> _RoutesRendered | NotDone:
        """Render ``spec.routeChildren`` for each route of ``c.routes`` (applied later, by
        ``_apply_routes``, once the whole pass is known to be confined). A route whose children
        fail to render is left out and keeps its recorded children (:class:`_RoutesRendered`)."""
        c = ctx.context
        out = _RoutesRendered()
        if not blueprint.route_children:
            return out
        templates = {t.id: t for t in blueprint.route_children}
        by_route = route_children(self.store, c.gateway_uid)
        for route_key in c.routes:
            route_ns, _, route_name = route_key.partition("/")
            try:
                route = self.kube.get(GATEWAY_API, "HTTPRoute", route_name, route_ns)
            except KubeError as e:
                return outcome_for(e, doing=f"reading HTTPRoute {route_key}")
            if route is None or (route.get("metadata") or {}).get("deletionTimestamp"):
                continue  # gone: detached, prune deletes its children
            (route.get("metadata") or {}).pop("managedFields", None)
            inventory = by_route.get(route_key, {})
            state = self._live_state(c, templates, inventory)
            if not isinstance(state, _LiveState):
                return state
            result = render_route_children(
                blueprint, gateway=gateway, route=route, values=c.values,
                live_children={**gateway_ready, **state.ready})
            if result.errors:
                out.errors[route_key] = route_render_error(c.blueprint, result.errors)
                out.kept[route_key] = tuple(inventory)
                continue
            out.renders.append(_RouteRender(route_key, inventory, state, result))
        return out

    def _apply_routes(
        self,
        ctx: StepContext[ProvisionContext],
        rendered: Sequence[_RouteRender],
        gateway_not_ready: Mapping[str, str],
        applied: list[str],
        conflicts: list[str],
        confinement: Confinement,
        repaired: list[str],
    ) -> _RoutePass | NotDone:
        """Apply the rendered ``spec.routeChildren`` of each route."""
        out = _RoutePass()
        for r in rendered:
            route_key, state, result = r.route_key, r.state, r.result
            for child in result.children:
                outcome = self._apply_one(ctx, child, r.inventory, state.live, applied, conflicts,
                                          confinement=confinement, route_key=route_key,
                                          repaired=repaired)
                if outcome is not None:
                    return outcome
                out.rendered.append(child_key(child.id, route_key))
            keep = {ch.id for ch in result.children} | {p.child_id for p in result.pending}
            out.wanted[route_key] = tuple(cid for cid in result.order if cid in keep)
            out.skipped += [child_key(cid, route_key) for cid in result.skipped]
            not_ready = {**gateway_not_ready, **state.not_ready}
            out.on |= {object_wait_key(obj) for p in result.pending for d in p.waiting_for
                       if (obj := state.live.get(d)) is not None}
            out.waiting += [
                f"{child_key(p.child_id, route_key)} waits for "
                + ", ".join(
                    f"{d} ({not_ready[d]})" if d in not_ready else f"{d} (not applied yet)"
                    for d in p.waiting_for
                )
                for p in result.pending
            ]
        return out

    def _apply_one(
        self,
        ctx: StepContext[ProvisionContext],
        child: RenderedChild,
        inventory: dict[str, ChildRecord],
        live: dict[str, Obj | None],
        applied: list[str],
        conflicts: list[str],
        *,
        confinement: Confinement,
        route_key: str | None = None,
        repaired: list[str] | None = None,
    ) -> NotDone | None:
        """Apply one rendered child if needed; an outcome ends the step. ``inventory`` and
        ``live`` are those of the Gateway's children, or of ``route_key``'s route children;
        ``confinement`` (the blueprint's) decides the namespace."""
        c = ctx.context
        repaired = repaired if repaired is not None else []
        obj = child.object
        api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
        key = child_key(child.id, route_key)
        source = _source(child)
        verdict = place(self.kube, obj, child=key, source=source, gateway_namespace=c.namespace,
                        confinement=confinement)
        if isinstance(verdict, Violation):  # checked before the pass; the blueprint changed?
            return Fail(f"{BLUEPRINT_KIND} {c.blueprint!r}: {verdict.message}")
        if not isinstance(verdict, Allowed):
            return verdict
        namespace = verdict.namespace
        body = self._prepare(c, child, namespace=namespace, route_key=route_key)
        meta = body["metadata"]
        name = str(meta["name"])
        digest = body_hash(body)
        where = f"{namespace}/{name}" if namespace else name
        record = inventory.get(child.id)
        same_identity = record is not None and (
            record.api_version, record.kind, record.namespace, record.name
        ) == (api_version, kind, namespace, name)
        current = live.get(child.id) if same_identity else None
        if not same_identity:
            try:
                current = self.kube.get(api_version, kind, name, namespace)
            except KubeError as e:
                return outcome_for(e, doing=f"reading child {key!r} ({kind} {where})")
        if current is not None and not owned_by(current, c.gateway_uid):
            owner = ((current.get("metadata") or {}).get("labels") or {}).get(GATEWAY_UID_LABEL)
            conflicts.append(
                f"child {key!r}: {kind} {where} exists and belongs to "
                + (f"Gateway uid {owner}" if owner else "no bifrost Gateway")
                + " (not taken over; waiting for it to go)"
            )
            return None
        if current is not None:
            current_meta = current.get("metadata") or {}
            other_route = (current_meta.get("annotations") or {}).get(ROUTE_ANNOTATION)
            if other_route != route_key:
                other = child_key(str((current_meta.get("labels") or {}).get(CHILD_ID_LABEL)),
                                  other_route)
                return Fail(
                    f"child {key!r} ({source}) renders {kind} {where}, which is already child "
                    f"{other!r} of this Gateway: route children need a name per route (derive "
                    "it from route.metadata.namespace and route.metadata.name)"
                )
        ignore = child.template.ignore_drift if child.template else ()
        shape = field_shape(body, ignore)
        shape_text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
        present = (same_identity and record is not None and current is not None
                   and (current.get("metadata") or {}).get("uid") == record.uid)
        if present and record is not None and current is not None \
                and record.applied_hash == digest:
            # the recorded baseline holds only for the shape it was taken with
            changed = drifted(current, shape_text if record.field_shape == shape_text
                              else None, record.observed_hash)
            if changed is False:
                return None  # unchanged, present and not drifted: no write
            if changed:
                repaired.append(key)  # a field bifrost sets was changed: restore it
            else:
                # Recorded before drift detection (or ignoreDrift changed): the live object as
                # it is now becomes the baseline; the store is written, the cluster is not.
                self.store.upsert_child(record.model_copy(update={
                    "field_shape": shape_text,
                    "observed_hash": observed_hash(current, shape),
                    "updated_at": ctx.now()}))
                return None
        elif (same_identity and record is not None and record.applied_hash == digest
              and record.uid is not None):
            repaired.append(key)  # applied before, gone now: re-create it
        if current is not None and ignore:
            body = keep_live_values(body, current, ignore)
        now = ctx.now()
        delete_order = (child.template.delete_order if child.template else None) or 0
        if record is not None and not same_identity:
            # Keep the replaced object in the inventory so that prune deletes it.
            self.store.upsert_child(record.model_copy(
                update={"child_id": superseded_key(record), "updated_at": now}
            ))
        if record is None or not same_identity:
            # Write-ahead: a crash after the apply must find this child in the inventory.
            self.store.upsert_child(ChildRecord(
                gateway_uid=c.gateway_uid, child_id=child.id, api_version=api_version,
                kind=kind, namespace=namespace, name=name, uid=None, route_key=route_key,
                applied_hash=None, ready=False, delete_order=delete_order, updated_at=now,
            ))
        try:
            result = self.kube.apply(body)
        except Invalid as e:
            return Fail(
                f"child {key!r} ({kind} {where}, from {source}) "
                f"was rejected by the API server: {_said(e, body)}"
            )
        except Retryable as e:
            return Retry(f"applying child {key!r} ({kind} {where}): {e}",
                         backoff=timedelta(seconds=e.delay))
        except PathNotServed:
            return Fail(f"child {key!r} ({source}): the cluster no longer serves {api_version} "
                        f"{kind} (its CRD was deleted?): reinstall the CRD, then change the "
                        "Gateway or run bifrost-admin retry NS/NAME")
        except KubeError as e:
            return Fail(
                f"child {key!r} ({kind} {where}, from {source}) "
                f"could not be applied: {_said(e, body)}"
            )
        self.store.upsert_child(ChildRecord(
            gateway_uid=c.gateway_uid, child_id=child.id, api_version=api_version, kind=kind,
            namespace=namespace, name=name, uid=(result.get("metadata") or {}).get("uid"),
            route_key=route_key, applied_hash=digest, ready=False, delete_order=delete_order,
            updated_at=now, field_shape=shape_text, observed_hash=observed_hash(result, shape),
        ))
        live[child.id] = result
        applied.append(key)
        return None

    @staticmethod
    def _prepare(c: ProvisionContext, child: RenderedChild, *, namespace: str | None,
                 route_key: str | None = None) -> Obj:
        """The body to apply: the namespace confinement decided (``None``: cluster-scoped, none
        set), ownership labels (and for a route child the route's annotation), and an owner
        reference to the Gateway when in its namespace."""
        body = copy.deepcopy(child.object)
        meta = body.setdefault("metadata", {})
        if namespace is not None:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta["labels"] = {
            **(meta.get("labels") or {}),
            GATEWAY_UID_LABEL: c.gateway_uid,
            CHILD_ID_LABEL: child.id,
        }
        if route_key is not None:
            meta["annotations"] = {**(meta.get("annotations") or {}), ROUTE_ANNOTATION: route_key}
        elif ROUTE_ANNOTATION in (meta.get("annotations") or {}):
            meta["annotations"] = {k: v for k, v in meta["annotations"].items()
                                   if k != ROUTE_ANNOTATION}
        if namespace == c.namespace:
            refs = [r for r in meta.get("ownerReferences") or []
                    if r.get("uid") != c.gateway_uid]
            refs.append(gateway_owner_reference(c.gateway, c.gateway_uid))
            meta["ownerReferences"] = refs
        return body


class ChildrenReady(StepOutput):
    """``wait_ready``: the child keys found ready; ``recreated``: those it applied again because
    they were gone (deleted after ``apply_children`` last saw them)."""

    ready: tuple[str, ...]
    recreated: tuple[str, ...] = ()


class WaitReady(_ProvisionStep, Step[NoInput, ChildrenReady]):
    """``wait_ready``: every wanted child — the Gateway's and each attached route's — exists
    (ours) and satisfies its ``readyWhen``; the inventory's ``ready`` flag follows (written only
    when it changes).

    A wanted child that is gone cannot become ready by waiting: it was deleted after
    ``apply_children`` last read it (by hand, or just before that read reached the watch cache,
    whose delete event then wakes this step). The step then runs the apply pass once more, which
    re-creates it (at most one pass per run), and goes on waiting for the re-created object.
    Something that deletes it again and again (another controller) is not fought in a tight
    loop: the n-th re-apply of an operation waits :func:`recreate_spacing` after the one
    before (1 s, doubling, at most 5 minutes); the step's timeout still bounds the wait."""

    input_model = NoInput

    def execute(self, ctx: StepContext[ProvisionContext],
                input: NoInput) -> Outcome[ChildrenReady]:
        return self._check(ctx, recreated=None)

    def _check(self, ctx: StepContext[ProvisionContext],
               recreated: tuple[str, ...] | None) -> Outcome[ChildrenReady]:
        """``recreated``: the keys this run re-applied (None: it has not run the apply pass)."""
        c = ctx.context
        blueprint = load_blueprint(self.blueprints, c.blueprint)
        if not isinstance(blueprint, Blueprint):
            return blueprint
        templates = {t.id: t for t in (*blueprint.children, *blueprint.route_children)}
        inventories: dict[str | None, dict[str, ChildRecord]] = {
            None: gateway_children(self.store, c.gateway_uid)}
        inventories.update(route_children(self.store, c.gateway_uid))
        wanted: list[tuple[str, str | None]] = [(cid, None) for cid in c.wanted]
        wanted += [(cid, rk) for rk, ids in c.route_wanted.items() for cid in ids]
        waiting: list[str] = []
        on: list[str] = []
        ready: list[str] = []
        gone: list[str] = []
        for cid, route_key in wanted:
            key = child_key(cid, route_key)
            record = inventories.get(route_key, {}).get(cid)
            if record is None:
                waiting.append(f"{key} (not applied)")
                continue
            try:
                obj = observe(self.kube, record)
            except KubeError as e:
                return outcome_for(e, doing=f"reading child {key!r} ({describe_record(record)})")
            if obj is None:
                gone.append(key)
            elif not owned_by(obj, c.gateway_uid):
                obj = None
            template = templates.get(cid) or RenderChild(id=cid, template="")
            try:
                readiness = evaluate_ready(template, obj)
            except RenderError as e:
                return render_failure(c.blueprint, [e])
            if readiness.ready != record.ready:
                self.store.upsert_child(
                    record.model_copy(update={"ready": readiness.ready, "updated_at": ctx.now()})
                )
            if readiness.ready:
                ready.append(key)
            else:
                reason = "missing" if obj is None else Redactor.of(obj).text(readiness.reason)
                waiting.append(f"{key} ({reason})")
                on.append(record_wait_key(record))
        if gone and recreated is None:
            due = _recreate_due(c, ctx.now())
            if due is None:
                return self._recreate(ctx, gone)
            pause = recreate_spacing(c.recreations).total_seconds()
            waiting.append(f"gone again after {c.recreations} re-apply(s) in this operation "
                           f"(something deletes it): re-applied after a pause of {pause:g}s")
            return Wait("children not ready: " + "; ".join(waiting), due,
                        context=c.model_copy(update={"ready": tuple(ready)}),
                        on=tuple(sorted(set(on))))
        context = c.model_copy(update={"ready": tuple(ready)})
        again = f"re-created {', '.join(recreated)}; " if recreated else ""
        if waiting:
            return Wait(again + "children not ready: " + "; ".join(waiting), self.recheck,
                        context=context, on=tuple(sorted(set(on))))
        return Done(output=ChildrenReady(ready=tuple(ready), recreated=recreated or ()),
                    context=context)

    def _recreate(self, ctx: StepContext[ProvisionContext],
                  gone: Sequence[str]) -> Outcome[ChildrenReady]:
        """Run the apply pass for the ``gone`` children, then check readiness again."""
        c = ctx.context
        counted = c.model_copy(update={"recreations": c.recreations + 1,
                                       "recreated_at": ctx.now().isoformat()})
        applied = ApplyChildren(self.kube, self.store, blueprints=self.blueprints,
                                recheck=self.recheck).execute(replace(ctx, context=counted),
                                                              NoInput())
        if isinstance(applied, Done):
            assert isinstance(applied.context, ProvisionContext)
            output = applied.output
            again = tuple(k for k in output.applied if k in gone) if output is not None else ()
            return self._check(replace(ctx, context=applied.context), recreated=again)
        if isinstance(applied, Wait):
            return Wait(f"re-applying {', '.join(gone)} (gone): {applied.reason}",
                        applied.recheck_after, context=applied.context, on=applied.on)
        return applied


def recreate_spacing(recreations: int) -> timedelta:
    """How long after its ``recreations``-th re-apply ``wait_ready`` may re-apply again: 1 s,
    doubling, at most 5 minutes (none before the first)."""
    if recreations <= 0:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(recreations - 1, 16)), timedelta(minutes=5))


def _recreate_due(c: ProvisionContext, now: datetime) -> timedelta | None:
    """How long until ``wait_ready`` may re-apply gone children (None: now)."""
    if not c.recreations or not c.recreated_at:
        return None
    remaining = datetime.fromisoformat(c.recreated_at) + recreate_spacing(c.recreations) - now
    return remaining if remaining > timedelta(0) else None


class NothingStale(StepOutput):
    """``prune`` found no stale child: the retired certificates it deleted."""

    pruned: tuple[str, ...] = ()
    retired_certificates: tuple[str, ...]


class ChildrenPruned(StepOutput):
    """``prune``: the child keys deleted, and those left alone because they are labelled with
    another Gateway's uid."""

    pruned: tuple[str, ...]
    not_ours: tuple[str, ...]


class Prune(_ProvisionStep, Step[NoInput, NothingStale | ChildrenPruned]):
    """``prune``: delete inventory children this pass did not render (removed templates,
    templates that rendered empty, superseded objects, and the route children of routes no
    longer attached), cluster-scoped ones too, in delete order; each leaves the inventory once
    it is gone."""

    input_model = NoInput

    def execute(self, ctx: StepContext[ProvisionContext],
                input: NoInput) -> Outcome[NothingStale | ChildrenPruned]:
        c = ctx.context
        wanted = set(c.wanted)
        retired = [r for r in self.store.list_certificates(gateway_uid=c.gateway_uid)
                   if r.state == RETIRED and not r.attached]
        if retired:
            outcome = self._delete_retired(c, retired)
            if outcome is not None:
                return outcome
        # Certificates leave through a rotation or a removed listener (above), never as stale
        # children.
        stale = [r for cid, r in gateway_children(self.store, c.gateway_uid).items()
                 if cid not in wanted and not is_certificate_child(cid)]
        stale += [r for rk, records in route_children(self.store, c.gateway_uid).items()
                  for cid, r in records.items() if cid not in c.route_wanted.get(rk, ())]
        if not stale:
            return Done(output=NothingStale(
                retired_certificates=tuple(r.object_name for r in retired)))
        try:
            raw = self.blueprints.get(c.blueprint)
            blueprint = Blueprint.from_dict(raw) if raw is not None else None
        except (KubeError, RenderError):
            blueprint = None  # ordering falls back to the inventory
        progress = delete_in_waves(self.kube, self.store, gateway_uid=c.gateway_uid,
                                   records=stale, blueprint=blueprint)
        if not isinstance(progress, DeletionProgress):
            return progress
        context = c.model_copy(
            update={"pruned": tuple(dict.fromkeys((*c.pruned, *progress.gone)))}
        )
        if progress.remaining:
            remaining = set(progress.remaining)
            return Wait("pruning: waiting for " + ", ".join(progress.remaining)
                        + " to be deleted", self.recheck, context=context,
                        on=tuple(sorted(record_wait_key(r) for r in stale
                                        if record_key(r) in remaining)))
        return Done(output=ChildrenPruned(pruned=progress.gone, not_ours=progress.foreign),
                    context=context)


    def _delete_retired(self, c: ProvisionContext,
                        retired: Sequence[CertificateRecord]) -> NotDone | None:
        """Delete the certificates of removed listeners once no child mentions them."""
        live: list[Obj] = []
        try:
            for r in gateway_children(self.store, c.gateway_uid).values():
                if not is_certificate_child(r.child_id) and (obj := observe(self.kube, r)):
                    live.append(obj)
        except KubeError as e:
            return outcome_for(e, doing="reading the children")
        waiting: list[str] = []
        for record in retired:
            if any(references(obj, record) for obj in live):
                waiting.append(f"certificate {record.object_name} is still attached")
                continue
            gone = delete_certificate_object(self.kube, self.store, gateway_uid=c.gateway_uid,
                                             record=record)
            if not isinstance(gone, bool):
                return gone
            if not gone:
                waiting.append(f"certificate {record.object_name} is being deleted")
        if waiting:
            return Wait("pruning: " + "; ".join(waiting), self.recheck)
        return None


def _said(error: KubeError, body: Mapping[str, Any]) -> str:
    """What the API server said about ``body``; for a Secret, without the values it quotes."""
    return rejection(error, body) if body.get("kind") == "Secret" else str(error)
