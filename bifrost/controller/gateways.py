"""A Gateway's own bookkeeping: bifrost's finalizer on it, its record in the store, and its
deletion — let go of the finalizer once nothing of it is left, else start (or wait for) its
teardown (:mod:`bifrost.triggers.teardown`) — and, once it is gone or no longer bifrost's,
bifrost's entries for it in the HTTPRoutes' ``status.parents``
(:mod:`bifrost.controller.route_parents`).

Writes only what changed: the finalizer only when missing, the store record only when its
fields (namespace, name, class, generation) differ from what this process last recorded.

It also holds the Gateway's :class:`~bifrost.controller.lifecycle.LifecycleKeeper`
(``lifecycle``): the deletion path writes ``deleting`` and, as the finalizer goes, ``deleted``;
the observer feeds it the rest.
"""

from __future__ import annotations

from bifrost.api.objects import Obj, generation, meta
from bifrost.clock import Clock
from bifrost.controller.announcements import Announcer
from bifrost.controller.classes import resolve_class
from bifrost.controller.gateway_view import latest_operation
from bifrost.controller.informers import FINALIZER, GATEWAY_API_VERSION, Cache, gateway_class_name
from bifrost.controller.lifecycle import LifecycleKeeper
from bifrost.controller.observation import Observation
from bifrost.controller.route_parents import forget_gateway
from bifrost.controller.starter import (
    ACTIVE_RECHECK_SECONDS,
    BLOCKED_RECHECK_SECONDS,
    OperationStarter,
)
from bifrost.kube import Conflict, NotFound
from bifrost.kube.ports import Kube
from bifrost.records import OperationRecord
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore
from bifrost.triggers import teardown

__all__ = ["GatewayKeeper"]


class GatewayKeeper:
    """Finalizer, store record and deletion of the Gateways bifrost is responsible for."""

    def __init__(
        self,
        *,
        cache: Cache,
        kube: Kube,
        store: OperationStore,
        clock: Clock,
        starter: OperationStarter,
        announcer: Announcer,
    ) -> None:
        self.cache = cache
        self.kube = kube
        self.store = store
        self.clock = clock
        self.starter = starter
        self.announcer = announcer
        self.lifecycle = LifecycleKeeper(store=store, clock=clock, announcer=announcer)
        self._recorded: dict[str, tuple[str, str, str | None, int | None]] = {}

    def new_term(self) -> None:
        """A leadership term begins: another replica may have written the records meanwhile,
        so each is read again once."""
        self._recorded.clear()
        self.lifecycle.new_term()

    def gone(self, namespace: str, name: str) -> Observation:
        """No Gateway ``namespace/name`` is in the cache: the ones bifrost tore down are
        ``deleted`` (see :meth:`LifecycleKeeper.gone`), and bifrost's entries for it leave the
        routes' ``status.parents`` (:func:`~bifrost.controller.route_parents.forget_gateway`)."""
        gone = self.lifecycle.gone(namespace, name)
        actions: tuple[str, ...] = ("lifecycle-deleted",) if gone.wrote else ()
        forgot = self.not_ours(namespace, name)
        actions += forgot.actions
        if gone.teardown_running:
            return Observation(actions, requeue_after=ACTIVE_RECHECK_SECONDS)
        return Observation(actions, requeue_after=forgot.requeue_after)

    def not_ours(self, namespace: str, name: str) -> Observation:
        """The Gateway ``namespace/name`` is gone or no longer bifrost's: remove bifrost's
        entries for it from the routes' ``status.parents`` (a stale route copy: look again)."""
        result = forget_gateway(self.cache, self.kube, namespace, name,
                                controller_name=self.cache.controller_name)
        actions = ("route-parents-removed",) if result.written else ()
        return Observation(actions, requeue_after=1.0 if result.conflicts else None)

    # ---- finalizer ------------------------------------------------------------------------

    def add_finalizer(self, gateway: Obj) -> Obj | None:
        """Guard the Gateway with bifrost's finalizer; returns the Gateway as written, or
        ``None`` when it was already there. Raises :class:`~bifrost.kube.Conflict` when the
        copy is stale."""
        finalizers = list(meta(gateway).get("finalizers") or [])
        if FINALIZER in finalizers:
            return None
        return self._set_finalizers(gateway, [*finalizers, FINALIZER])

    def _set_finalizers(self, gateway: Obj, finalizers: list[str]) -> Obj:
        m = meta(gateway)
        return self.kube.patch(
            GATEWAY_API_VERSION, "Gateway", str(m["name"]), str(m["namespace"]),
            {"metadata": {"finalizers": finalizers,
                          "resourceVersion": str(m.get("resourceVersion") or "")}},
        )

    # ---- the store record -----------------------------------------------------------------

    def record(self, gateway: Obj, uid: str) -> bool:
        """Record the Gateway in the store when its fields changed; returns whether it wrote."""
        m = meta(gateway)
        wanted = (
            str(m.get("namespace")), str(m.get("name")),
            gateway_class_name(gateway) or None, generation(gateway),
        )
        if self._recorded.get(uid) == wanted:
            return False
        try:
            record = self.store.get_gateway(uid)
            have = (record.namespace, record.name, record.gateway_class, record.generation)
            self.lifecycle.remember(record)
        except RecordNotFound:
            have = None
        if have != wanted:
            record = self.store.upsert_gateway(
                uid=uid, namespace=wanted[0], name=wanted[1], now=self.clock.now(),
                gateway_class=wanted[2], generation=wanted[3],
            )
            self.lifecycle.remember(record)
        self._recorded[uid] = wanted
        return have != wanted

    # ---- deletion -------------------------------------------------------------------------

    def deleting(self, gateway: Obj, uid: str) -> Observation:
        """A Gateway with a ``deletionTimestamp``: remove the finalizer once nothing of it is
        left, else start its teardown (cancelling what else runs in its lane) or wait for it."""
        m = meta(gateway)
        if FINALIZER not in (m.get("finalizers") or []):
            return Observation()
        try:
            children = self.store.list_children(uid)
        except RecordNotFound:
            children = []
        operations = self.store.list_operations(gateway_uid=uid, limit=100)
        active = [o for o in operations if o.status.active]
        if teardown.nothing_left(children, active, operations):
            self.announcer.announce(gateway, uid, self._latest_operation(uid))
            self.lifecycle.finished(gateway, uid)
            rest = [f for f in m.get("finalizers") or [] if f != FINALIZER]
            try:
                self._set_finalizers(gateway, rest)
            except NotFound:
                return Observation()
            except Conflict:
                return Observation(("finalizer-conflict",), requeue_after=1.0)
            return Observation(("finalizer-removed",))
        resolution = None
        gateway_class = self.cache.get("GatewayClass", "", gateway_class_name(gateway))
        if gateway_class is not None:
            resolution = resolve_class(self.cache, gateway_class)
        self.record(gateway, uid)
        start = self.starter.teardown(gateway, uid, resolution, active)
        if start is None:  # no teardown machine
            return Observation(requeue_after=BLOCKED_RECHECK_SECONDS * 6)
        actions = tuple(f"cancelled-{machine}" for machine in start.cancelled)
        latest = self._latest_operation(uid)
        self.lifecycle.observe(gateway, uid, latest, children=children)
        if start.operation is None:
            wait = ACTIVE_RECHECK_SECONDS if start.look_again_soon else BLOCKED_RECHECK_SECONDS
            return Observation(actions, requeue_after=wait)
        if not start.started:  # it runs already
            return Observation(actions, requeue_after=ACTIVE_RECHECK_SECONDS)
        self.announcer.announce(gateway, uid, latest)
        return Observation((*actions, "teardown-started"), requeue_after=ACTIVE_RECHECK_SECONDS)

    def _latest_operation(self, uid: str) -> OperationRecord | None:
        return latest_operation(self.store.list_operations(gateway_uid=uid, limit=100))
