"""The Gateway API status writer: Gateway, listener and HTTPRoute status from ``bifrost.status``.

:class:`GatewayApiStatusWriter` implements :class:`~bifrost.controller.observe.StatusWriter`.
For one observed Gateway it computes, from the informer cache only (no API lists):

- the Gateway's full ``status`` with :func:`bifrost.status.gateway_status` — listeners judged
  against the cached Secrets and ReferenceGrants, ``attachedRoutes`` from the cached routes whose
  parentRefs name the Gateway, readiness from the operation and the children inventory, and
  addresses from the blueprint's ``addresses`` expression over the live children (else from the
  first child reporting ``status.addresses``/``status.loadBalancer.ingress``) — plus the
  ``gateway.bifrost.dev/Operation`` condition;
- ``status.parents`` of every HTTPRoute that names the Gateway in its parentRefs *or* still
  carries an entry of ours for it (so a removed parentRef's stale entry is dropped), with
  :func:`bifrost.status.route_status`.

Each object is written through ``/status`` only when :func:`bifrost.status.status_changed` says
its status changed, so a resync of a converged fleet makes no API writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bifrost.api.conditions import (
    OPERATION_CONDITION,
    GatewayConditionType,
    GatewayReason,
    condition,
    parse_conditions,
)
from bifrost.api.objects import Obj, meta
from bifrost.certificates.rules import is_certificate_child
from bifrost.clock import Clock
from bifrost.controller.acceptance import Acceptance, judge_gateway, judged_gateway
from bifrost.controller.gateway_view import VALUES_CONDITION, GatewayView
from bifrost.controller.informers import (
    CONTROLLER_NAME,
    GATEWAY_API_VERSION,
    Cache,
    CachedNamespaceLabels,
    gateway_secrets,
    route_parents,
)
from bifrost.controller.route_parents import route_render_errors
from bifrost.kube import Conflict, NotFound
from bifrost.kube.forbidden import is_forbidden_text
from bifrost.kube.ports import Kube
from bifrost.machines.provision import PROVISION_MACHINE
from bifrost.machines.rotation import ROTATION_MACHINE
from bifrost.records import ChildRecord, OperationRecord, OperationStatus
from bifrost.render.default_addresses import default_addresses
from bifrost.render.errors import RenderError
from bifrost.sandbox import evaluate_addresses
from bifrost.status import Readiness, attached_routes, gateway_status, route_status
from bifrost.status import status_changed as _status_changed
from bifrost.status._util import merge_conditions
from bifrost.triggers.forbidden_retry import FORBIDDEN_RETRY_CAP, FORBIDDEN_RETRY_FIRST

__all__ = [
    "CachedServices",
    "GatewayApiStatusWriter",
    "gateway_readiness",
]

log = logging.getLogger(__name__)


#: Reads the live object of an inventory child (``None`` when it does not exist).
LiveReader = Callable[[ChildRecord], Mapping[str, Any] | None]

#: How long an operation must have been on its current step before the Gateway's status shows
#: progress details (see :func:`settling`).
SETTLE = timedelta(seconds=2)


def _status(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    status = (obj or {}).get("status")
    return status if isinstance(status, Mapping) else {}


def _describe_op(op: OperationRecord) -> str:
    return f"operation {op.id} ({op.machine}) in state {op.state}" + (
        f", step {op.step}" if op.step else ""
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} s"


def gateway_readiness(
    operation: OperationRecord | None, children: Sequence[ChildRecord]
) -> Readiness:
    """Programmed only when the last provision succeeded and every child is ready."""
    if operation is None:
        return Readiness(False, GatewayReason.PENDING, "waiting for the provision operation")
    if operation.status.active:
        return Readiness(False, GatewayReason.PENDING, _describe_op(operation))
    if operation.status is not OperationStatus.SUCCEEDED:
        failed = f"{_describe_op(operation)} {operation.status.value}: " \
            f"{operation.last_error or 'no detail'}"
        if operation.status is OperationStatus.FAILED and is_forbidden_text(
                operation.last_error or ""):
            # Not the Gateway's fault, and tried again by itself once the permission is there
            # (bifrost.triggers.forbidden_retry): Pending, with the permission to grant.
            retried = f" (tried again every {_span(FORBIDDEN_RETRY_FIRST)} doubling to " \
                f"{_span(FORBIDDEN_RETRY_CAP)})"
            return Readiness(False, GatewayReason.PENDING,
                             failed[:1024 - len(retried)] + retried)
        return Readiness(False, GatewayReason.INVALID, failed[:1024])
    if operation.machine != PROVISION_MACHINE:
        return Readiness(False, GatewayReason.PENDING, f"last {_describe_op(operation)}")
    # Certificate objects are not children that serve traffic: their readiness is the
    # certificate steps' business (issued before attached).
    waiting = sorted(c.child_id for c in children
                     if not c.ready and not is_certificate_child(c.child_id))
    if waiting:
        return Readiness(
            False,
            GatewayReason.PENDING,
            f"{_describe_op(operation)} succeeded; children not ready: {', '.join(waiting)}",
        )
    return Readiness(True, "", "")


_CHILD_REFERENCE = re.compile(
    r"""children\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^']*)'|"([^"]*)")\s*\])""")


def referenced_children(expression: str) -> frozenset[str] | None:
    """The child ids an ``addresses`` expression reads (``children.x``, ``children['x']``), or
    ``None`` when it reads ``children`` some other way (a macro such as
    ``children.exists(…)``, a computed key): then every child is read."""
    ids: set[str] = set()
    matches = list(_CHILD_REFERENCE.finditer(expression))
    for match in matches:
        if match.group(1) is not None and expression[match.end():].lstrip().startswith("("):
            return None  # children.exists(...), children.all(...): reads them all
        ids.add(next(g for g in match.groups() if g is not None))
    if len(re.findall(r"\bchildren\b", expression)) != len(matches):
        return None
    return frozenset(ids)


def restoring(view: GatewayView) -> bool:
    """The active operation restores what a Gateway Programmed for its current generation was
    programmed with — a drift repair, or the first provision the store knows of (an empty or
    lost database: the cluster still serves what an earlier bifrost made). Its status then
    stays as it is (the data plane keeps serving; listeners whose certificates the store does
    not know yet are not reported invalid) except for the Operation condition, which says what
    is in flight. Any other provision (new inputs) is reported as usual."""
    op = view.operation
    if op is None or not op.status.active or op.machine != PROVISION_MACHINE:
        return False
    if view.repairing is None and view.provisioned_before:
        return False
    generation = meta(view.gateway).get("generation")
    return any(
        isinstance(c, Mapping) and c.get("type") == "Programmed" and c.get("status") == "True"
        and isinstance(generation, int) and c.get("observedGeneration") == generation
        for c in _status(view.gateway).get("conditions") or [])


def _readiness_operation(view: GatewayView) -> OperationRecord | None:
    """The operation Programmed is judged on: a rotation neither starts nor ends serving (the
    listener always has a certificate), so while one runs or after it ended, the last
    provision decides."""
    op = view.operation
    if op is not None and op.machine == ROTATION_MACHINE and view.provision is not None:
        return view.provision
    return op


def _acceptance(view: GatewayView) -> Acceptance | None:
    """The observer's judgement, else (a bare view) the class's problem alone."""
    if view.acceptance is not None:
        return view.acceptance
    res = view.resolution
    if res is None or res.error is None:
        return None
    return judge_gateway(class_name=str(meta(res.gateway_class).get("name")), class_exists=True,
                         class_error=res.error, parameters_error=None, verdicts=())


def _not_accepted(acceptance: Acceptance, *, kept: bool) -> str:
    """Programmed's message on a Gateway bifrost does not accept (it is not provisioned)."""
    return f"the Gateway is not accepted ({acceptance.reason}): " + (
        "its last provisioned children are kept, unchanged, until it is accepted again or "
        "deleted" if kept else "no children are created until it is accepted")


def _readiness(view: GatewayView, acceptance: Acceptance | None) -> Readiness:
    """The children's readiness; for a Gateway never provisioned that is rejected for its class
    or parameters, why no provision will come (its listeners would otherwise say they wait for
    one)."""
    if acceptance is not None and acceptance.rejected_before_listeners \
            and not view.provisioned_before:
        return Readiness(False, GatewayReason.INVALID,
                         f"not provisioned: {acceptance.message}"[:32768])
    return gateway_readiness(_readiness_operation(view), view.children)


def _condition_keys(status: Mapping[str, Any]) -> set[tuple[Any, ...]]:
    """What a condition change that matters is made of: (listener or "", type, status, reason,
    observedGeneration) of the Gateway's and every listener's conditions."""
    out: set[tuple[Any, ...]] = set()
    scopes: list[tuple[str, Any]] = [("", status.get("conditions"))]
    for listener in status.get("listeners") or []:
        if isinstance(listener, Mapping):
            scopes.append((str(listener.get("name")), listener.get("conditions")))
    for scope, conditions in scopes:
        for c in conditions or []:
            if isinstance(c, Mapping):
                out.add((scope, c.get("type"), c.get("status"), c.get("reason"),
                         c.get("observedGeneration")))
    return out


def settling(operation: OperationRecord | None, now: datetime) -> bool:
    """Whether the operation is in a burst of steps: running, on a step it began less than
    :data:`SETTLE` ago. The engine runs steps back to back within one claim, and every child
    they apply wakes the Gateway's observer, so status details taken during a burst (the
    operation's state and step in messages, addresses of children just created) are stale
    within milliseconds; writing each costs an API write and tells a reader nothing lasting."""
    return (
        operation is not None
        and operation.status is OperationStatus.RUNNING
        and now - operation.updated_at < SETTLE
    )


def worth_writing(old: Mapping[str, Any], new: Mapping[str, Any], *, settling: bool) -> bool:
    """Whether to write ``new`` over ``old``: any visible change, except that while the
    operation is :func:`settling` only a condition's status, reason or observedGeneration
    changing (or a condition appearing/going) counts. The rest is written at the burst's end
    (the operation finishes or waits, both observed) or once a step has run for
    :data:`SETTLE` (the observer re-checks an active operation every couple of seconds), so
    ``Pending`` → ``Programmed`` is always written and details lag by a few seconds at most."""
    if not _status_changed(old, new):
        return False
    return not settling or _condition_keys(old) != _condition_keys(new)


class GatewayApiStatusWriter:
    """Gateway, listener and HTTPRoute status per the Gateway API (see the module docstring).

    The children inventory comes with the view (:attr:`GatewayView.children`); live children
    are read with ``live`` (default: a GET per child, only when addresses are derived).
    """

    def __init__(
        self,
        kube: Kube,
        clock: Clock,
        *,
        controller_name: str = CONTROLLER_NAME,
        live: LiveReader | None = None,
    ) -> None:
        self.kube = kube
        self.clock = clock
        self.controller_name = controller_name
        self._live: LiveReader = live or self._read_live

    # ---- reads ---------------------------------------------------------------------------

    def _read_live(self, child: ChildRecord) -> Mapping[str, Any] | None:
        try:
            return self.kube.get(child.api_version, child.kind, child.name, child.namespace)
        except NotFound:
            return None

    def _cached_or_live(self, view: GatewayView, child: ChildRecord) -> Mapping[str, Any] | None:
        """A child Gateway from the informer cache (every Gateway is watched); other kinds
        with a GET."""
        if (child.api_version, child.kind) == (GATEWAY_API_VERSION, "Gateway"):
            return view.cache.get("Gateway", child.namespace or "", child.name)
        return self._live(child)

    def addresses(self, view: GatewayView, children: Sequence[ChildRecord]) -> list[Obj]:
        """From the blueprint's ``addresses`` expression over the live children if it has one,
        else :func:`bifrost.render.default_addresses.default_addresses`."""
        gateway_children = [c for c in children if c.route_key is None]
        blueprint = view.resolution.blueprint if view.resolution is not None else None
        expression = blueprint.spec.addresses if blueprint is not None else None
        if expression:
            wanted = referenced_children(expression)
            live = {
                c.child_id: self._cached_or_live(view, c)
                for c in gateway_children
                if not is_certificate_child(c.child_id)
                and (wanted is None or c.child_id in wanted)
            }
            try:
                result = evaluate_addresses(expression, children=live, gateway=view.gateway)
            except RenderError as exc:
                log.warning("gateway addresses: %s", exc)
                return []
            return [{"type": a.type, "value": a.value} for a in result.addresses]
        # no expression: the first child (spec.children order) reporting addresses
        order = {c.id: i for i, c in enumerate(blueprint.spec.children)} if blueprint else {}
        ranked = sorted((c for c in gateway_children if not is_certificate_child(c.child_id)),
                        key=lambda c: order.get(c.child_id, len(order)))
        found = default_addresses(self._live(c) for c in ranked)
        return [{"type": a.type, "value": a.value} for a in found]

    # ---- Gateway -------------------------------------------------------------------------

    def desired(self, view: GatewayView) -> dict[str, Any]:
        """The Gateway's complete status (Gateway API conditions + the Operation condition)."""
        gateway, cache, now = view.gateway, view.cache, self.clock.now()
        gns, gname = str(meta(gateway).get("namespace")), str(meta(gateway).get("name"))
        gen = meta(gateway).get("generation")
        gen = gen if isinstance(gen, int) else None
        children = view.children
        labels = CachedNamespaceLabels(cache)
        res = view.resolution
        tls = res.blueprint.spec.tls if res is not None and res.blueprint is not None else None
        gateway = dict(judged_gateway(gateway, view.certificates, tls))
        acceptance = _acceptance(view)
        secrets = {
            ref: secret
            for ref in gateway_secrets(gateway)
            if (secret := cache.get("Secret", *ref)) is not None
        }
        routes = cache.routes_for_gateway(gns, gname)
        status = gateway_status(
            gateway,
            secrets=secrets,
            grants=cache.objects("ReferenceGrant"),
            attached_routes=attached_routes(gateway, routes, namespace_labels=labels),
            readiness=_readiness(view, acceptance),
            addresses=self.addresses(view, children),
            now=now,
        )
        extra = []
        if acceptance is not None and not acceptance.accepted:
            if acceptance.rejected_before_listeners:
                extra.append(condition(
                    GatewayConditionType.ACCEPTED, False, reason=acceptance.reason,
                    message=acceptance.message[:32768], generation=gen, now=now))
            extra.append(condition(
                GatewayConditionType.PROGRAMMED, False, reason=GatewayReason.INVALID,
                message=_not_accepted(acceptance, kept=view.provisioned_before),
                generation=gen, now=now))
        op = view.operation
        old_types = {
            c.get("type") for c in status.get("conditions") or [] if isinstance(c, Mapping)
        }
        if view.values_held is not None:
            # the merged values break the blueprint's spec.values: not provisioned (no values)
            extra.append(condition(VALUES_CONDITION, False, reason="InvalidValues",
                                   message=view.values_held[:32768], generation=gen, now=now))
        elif VALUES_CONDITION in old_types:
            extra.append(condition(VALUES_CONDITION, True, reason="Valid",
                                   message="the values obey the blueprint's spec.values",
                                   generation=gen, now=now))
        if op is not None and op.status is OperationStatus.PAUSED:
            extra.append(condition(
                OPERATION_CONDITION, True, reason="Paused",
                message=f"{op.machine} operation {op.id} is paused in state {op.state}"
                + (f", step {op.step}" if op.step else "")
                + f": {view.paused or 'paused by an operator'} — bifrost-admin resume "
                f"{gns}/{gname} (or cancel) to go on"[:32768],
                generation=gen, now=now))
        elif op is not None and op.status.active:
            repairing = view.repairing
            extra.append(
                condition(
                    OPERATION_CONDITION,
                    True,
                    reason="RepairingDrift" if repairing else "InProgress",
                    message=(f"repairing children changed outside bifrost ({repairing}): "
                             if repairing else "")
                    + f"{op.machine} operation {op.id}: state {op.state}"
                    + (f", step {op.step}" if op.step else ""),
                    generation=gen,
                    now=now,
                )
            )
        elif op is not None and op.status is OperationStatus.FAILED:
            # e.g. a rotation that rolled back: the Gateway still serves (the old certificate
            # stayed attached), and this condition says why the operation did not finish.
            extra.append(
                condition(
                    OPERATION_CONDITION,
                    False,
                    reason="Failed",
                    message=f"{op.machine} operation {op.id} failed in state {op.state}: "
                    f"{op.last_error or 'no detail'}"[:32768],
                    generation=gen,
                    now=now,
                )
            )
        elif OPERATION_CONDITION in old_types:
            extra.append(
                condition(
                    OPERATION_CONDITION,
                    False,
                    reason="Idle",
                    message="no operation in flight",
                    generation=gen,
                    now=now,
                )
            )
        if extra:
            status["conditions"] = merge_conditions(status.get("conditions"), extra)
        return status

    def write_status(self, view: GatewayView) -> bool:
        old = _status(view.gateway)
        new = self.desired(view)
        held = restoring(view)
        if held:
            operation = [c for c in parse_conditions(new.get("conditions"))
                         if c.type == OPERATION_CONDITION]
            new = {**old, "conditions": merge_conditions(old.get("conditions"), operation)}
        wrote = False
        if worth_writing(old, new, settling=settling(view.operation, self.clock.now())):
            m = meta(view.gateway)
            patch = dict(new)
            for key in old:
                if key not in patch:
                    patch[key] = None  # merge patch: remove what we no longer report
            self.kube.patch_status(
                GATEWAY_API_VERSION,
                "Gateway",
                str(m.get("name")),
                str(m.get("namespace")),
                patch,
                resource_version=str(m.get("resourceVersion") or "") or None,
            )
            wrote = True
        if not held and self.write_routes(view):
            wrote = True
        return wrote

    # ---- HTTPRoutes ----------------------------------------------------------------------

    def write_routes(self, view: GatewayView) -> bool:
        """``status.parents`` of the routes related to the Gateway; whether any was written.

        A route that names several of our Gateways gets all its entries computed at once (the
        same result whichever Gateway is observed), so concurrent observers agree.
        """
        cache, now = view.cache, self.clock.now()
        gns, gname = str(meta(view.gateway).get("namespace")), str(meta(view.gateway).get("name"))
        labels = CachedNamespaceLabels(cache)
        services = CachedServices(cache)
        grants = cache.objects("ReferenceGrant")
        wrote = False
        for route in cache.routes_for_gateway(gns, gname):
            gateways: dict[tuple[str, str], Obj] = {}
            for key in route_parents(route):
                gw = cache.get("Gateway", *key)
                if gw is not None and cache.responsible_for(gw):
                    gateways[key] = gw
            new = route_status(
                route,
                gateways=gateways,
                namespace_labels=labels,
                services=services,
                grants=grants,
                now=now,
                controller_name=self.controller_name,
                render_errors=route_render_errors(view, route),
            )
            old = _status(route)
            if not _status_changed(old, new):
                continue
            m = meta(route)
            try:
                self.kube.patch_status(
                    GATEWAY_API_VERSION,
                    "HTTPRoute",
                    str(m.get("name")),
                    str(m.get("namespace")),
                    {"parents": new.get("parents") or []},
                    resource_version=str(m.get("resourceVersion") or "") or None,
                )
            except (Conflict, NotFound) as exc:
                # Stale copy: the watch brings the new one and enqueues the Gateway again.
                log.info("route %s/%s status: %s", m.get("namespace"), m.get("name"), exc)
                continue
            wrote = True
        return wrote


class CachedServices(Collection[tuple[str, str]]):
    """(namespace, name) of the cached Services; membership is a cache lookup."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def __contains__(self, item: object) -> bool:
        if not (isinstance(item, tuple) and len(item) == 2):
            return False
        return self._cache.get("Service", str(item[0]), str(item[1])) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(
            [
                (str(meta(s).get("namespace")), str(meta(s).get("name")))
                for s in self._cache.objects("Service")
            ]
        )

    def __len__(self) -> int:
        return len(self._cache.objects("Service"))
