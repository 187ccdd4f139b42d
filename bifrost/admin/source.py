"""Where ``bifrost-admin``'s documents come from: the store (:class:`LocalAdmin`) or the
controller's admin API (:class:`bifrost.admin.remote.RemoteAdmin`), behind one Protocol.

Why one Protocol with two implementations: the commands of ``bifrost-admin`` do not care which
path answers, and the admin API serves exactly what the direct path computes — the server calls
:class:`LocalAdmin` itself, so ``bifrost-admin -o json gateways`` prints the same document
whether it read the database or asked the controller. Every method returns one
:mod:`bifrost.admin.views` document; every expected failure is an
:class:`~bifrost.admin.errors.AdminError`.

``actor``: the journal's "who". On the direct path it is the operator's ``--actor`` (default
``$USER@hostname``); on the server path the server records the user the cluster authenticated,
and a remote ``actor`` is refused.
"""

from __future__ import annotations

from typing import Protocol

from bifrost.admin import actions, queries
from bifrost.admin.errors import AdminError, BadInput
from bifrost.admin.views import (
    ActionResult,
    GatewayDetail,
    GatewayList,
    GatewayRef,
    Graph,
    History,
    OperationProgress,
    Schedule,
)
from bifrost.clock import Clock
from bifrost.machines.registry import MachineRegistry
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore

#: The operator actions that take an operation (``renew`` is separate: it starts one).
ENGINE_VERBS = ("pause", "resume", "cancel", "retry")


class AdminSource(Protocol):
    """What the ``bifrost-admin`` commands read and do."""

    def gateways(
        self, *, namespace: str | None, gateway_class: str | None, state: str | None
    ) -> GatewayList: ...

    def show(self, gateway: str, *, journal: int) -> GatewayDetail: ...

    def history(self, gateway: str, *, limit: int) -> History: ...

    def schedule(self, *, limit: int) -> Schedule: ...

    def graph(
        self, machine: str, *, gateway: str | None, version: int | None
    ) -> tuple[Graph, str | None]: ...

    def operation(self, operation_id: int) -> OperationProgress: ...

    def act(
        self,
        verb: str,
        target: str,
        *,
        operation: int | None,
        reason: str,
        compensate: bool,
        actor: str | None,
    ) -> ActionResult: ...

    def renew(self, gateway: str, *, listener: str | None, actor: str | None) -> ActionResult: ...


class LocalAdmin:
    """The documents computed from the store (the direct path, and the admin API's server)."""

    def __init__(
        self, store: OperationStore, *, clock: Clock, registry: MachineRegistry, actor: str
    ) -> None:
        self.store = store
        self.clock = clock
        self.registry = registry
        self.actor = actor

    def gateways(
        self, *, namespace: str | None, gateway_class: str | None, state: str | None
    ) -> GatewayList:
        return queries.gateway_list(
            self.store,
            now=self.clock.now(),
            namespace=namespace,
            gateway_class=gateway_class,
            lifecycle_state=state,
            registry=self.registry,
        )

    def show(self, gateway: str, *, journal: int) -> GatewayDetail:
        if journal < 1:
            raise BadInput(f"--journal must be at least 1, got {journal}")
        return queries.gateway_detail(
            self.store, gateway, now=self.clock.now(), journal_limit=journal,
            registry=self.registry,
        )

    def history(self, gateway: str, *, limit: int) -> History:
        queries.parse_ref(gateway)
        if limit < 1:
            raise BadInput(f"--limit must be at least 1, got {limit}")
        return queries.history(
            self.store, gateway, now=self.clock.now(), limit=limit, registry=self.registry
        )

    def schedule(self, *, limit: int) -> Schedule:
        if limit < 1:
            raise BadInput(f"--limit must be at least 1, got {limit}")
        return queries.schedule(self.store, now=self.clock.now(), limit=limit)

    def graph(
        self, machine: str, *, gateway: str | None, version: int | None
    ) -> tuple[Graph, str | None]:
        now = self.clock.now()
        if gateway is None:
            return queries.graph(None, self.registry, machine, now=now, version=version)
        queries.parse_ref(gateway)
        queries.machine_spec(self.registry, machine, version)
        return queries.graph(
            self.store, self.registry, machine, now=now, gateway_name=gateway, version=version
        )

    def operation(self, operation_id: int) -> OperationProgress:
        try:
            op = self.store.get_operation(operation_id)
        except RecordNotFound:
            raise AdminError(f"operation {operation_id} does not exist") from None
        now = self.clock.now()
        return OperationProgress(
            generated_at=now,
            gateway=GatewayRef(uid=op.gateway_uid, namespace=op.namespace, name=op.name),
            operation=queries.summarize(op, now=now, registry=self.registry),
        )

    def act(
        self,
        verb: str,
        target: str,
        *,
        operation: int | None,
        reason: str,
        compensate: bool,
        actor: str | None,
    ) -> ActionResult:
        if verb not in ENGINE_VERBS:
            raise BadInput(f"unknown action {verb!r} (one of {', '.join(ENGINE_VERBS)}, renew)")
        if not target.isdigit():
            queries.parse_ref(target)
        return actions.engine_action(
            self.store,
            target,
            verb,
            clock=self.clock,
            actor=actor or self.actor,
            operation_id=operation,
            reason=reason,
            registry=self.registry,
            compensate=compensate,
        )

    def renew(self, gateway: str, *, listener: str | None, actor: str | None) -> ActionResult:
        queries.parse_ref(gateway)
        return actions.renew(
            self.store,
            gateway,
            clock=self.clock,
            actor=actor or self.actor,
            registry=self.registry,
            listener=listener,
        )
