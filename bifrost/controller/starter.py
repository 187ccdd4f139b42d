"""The controller's side of :mod:`bifrost.triggers`: it gathers from the informers' cache and
the store what the triggers decide on, and starts provision, rotation and teardown for the
Gateways it observes (and rotations for the renewal scheduler).

A machine the registry does not know is skipped and logged once (the controller runs without
it until it is registered). Every start goes through the trigger's one start function; what
happens when the lane is busy is decided here (look again after :data:`ACTIVE_RECHECK_SECONDS`
or :data:`BLOCKED_RECHECK_SECONDS`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from bifrost.api.blueprint import BlueprintTLS
from bifrost.api.objects import Obj, meta
from bifrost.certificates.rules import leaf_fingerprint, managed_listeners, source_secret_ref
from bifrost.clock import Clock
from bifrost.controller.classes import ClassResolution
from bifrost.controller.informers import Cache
from bifrost.controller.inputs import GatewayInputs
from bifrost.controller.ledger import InputLedger
from bifrost.machines.provision import PROVISION_MACHINE
from bifrost.machines.registry import MachineRegistry, UnknownMachine
from bifrost.machines.rotation import ROTATION_MACHINE
from bifrost.machines.spec import MachineSpec
from bifrost.machines.teardown import TEARDOWN_MACHINE
from bifrost.records import CertificateRecord, OperationRecord
from bifrost.store.errors import OperationConflict, RecordNotFound
from bifrost.store.interface import OperationStore
from bifrost.triggers import certificate_repair, provision, rotation, teardown
from bifrost.triggers.context import gateway_candidate, operation_context

__all__ = ["ACTIVE_RECHECK_SECONDS", "BLOCKED_RECHECK_SECONDS", "OperationStarter"]

log = logging.getLogger(__name__)

#: How often a Gateway with an operation in flight is re-observed (operation end is not an event).
ACTIVE_RECHECK_SECONDS = 2.0
#: How long to wait before looking again when a lane is busy or teardown cannot start.
BLOCKED_RECHECK_SECONDS = 5.0


class OperationStarter:
    """Starts the operations the triggers call for (see the module docstring)."""

    def __init__(
        self,
        *,
        cache: Cache,
        store: OperationStore,
        registry: MachineRegistry,
        clock: Clock,
        actor: str,
        inputs: GatewayInputs,
        ledger: InputLedger,
    ) -> None:
        self.cache = cache
        self.store = store
        self.registry = registry
        self.clock = clock
        self.actor = actor
        self.inputs = inputs
        self.ledger = ledger
        self._warned: set[str] = set()

    def machine(self, name: str) -> MachineSpec | None:
        """The registered machine ``name`` (its latest version), else ``None`` (logged once).
        The rotation machine counts only if its context can be built for a certificate
        (:func:`bifrost.triggers.rotation.rotation_machine`)."""
        spec: MachineSpec | None = None
        if name == ROTATION_MACHINE:
            spec = rotation.rotation_machine(self.registry)
        else:
            with contextlib.suppress(UnknownMachine):
                spec = self.registry.latest(name)
        if spec is None and name not in self._warned:
            self._warned.add(name)
            log.warning("machine %r is not registered: not starting it (yet)", name)
        return spec

    def _live_gateway(self, namespace: str, name: str) -> Obj | None:
        return self.cache.get("Gateway", namespace, name)

    # ---- provision ------------------------------------------------------------------------

    def provision(
        self, gateway: Obj, uid: str, resolution: ClassResolution, values: Mapping[str, Any],
        *, repair: bool = False,
    ) -> tuple[bool, float | None]:
        """Start a provision when the Gateway's input hash is not the one recorded — or, with
        ``repair``, in any case (children drifted); returns whether one was started and when to
        look again (``None``: no need)."""
        routes = self.inputs.attached_routes(gateway, resolution)
        current = self.inputs.input_hash(gateway, resolution, values, routes)
        if not repair and not provision.needs_provision(self.ledger.recorded(uid), current):
            return False, None
        spec = self.machine(PROVISION_MACHINE)
        if spec is None:
            return False, None
        context = operation_context(
            spec, gateway_candidate(gateway, uid, resolution.blueprint_name, values, routes))
        m = meta(gateway)
        try:
            start = provision.start_provision(
                self.store, spec, gateway_uid=uid, namespace=str(m["namespace"]),
                name=str(m["name"]), context=context, clock=self.clock, actor=self.actor)
        except OperationConflict as exc:  # LaneBusy included
            log.info("gateway %s/%s: %s", m["namespace"], m["name"], exc)
            return False, BLOCKED_RECHECK_SECONDS
        if not start.current:
            # A provision with older inputs is still running: start ours once it ends.
            return False, ACTIVE_RECHECK_SECONDS
        self.ledger.record(uid, current)
        return start.started, None

    # ---- rotation -------------------------------------------------------------------------

    def rotate_on_change(
        self, gateway: Obj, uid: str, tls: BlueprintTLS
    ) -> OperationRecord | None:
        """A rotation for the first managed listener whose attached certificates it changed
        under (:func:`bifrost.triggers.rotation.listener_change`); ``None`` when none is needed,
        one failed for this Gateway within
        :data:`~bifrost.triggers.rotation.ROTATION_RETRY_AFTER`, or it cannot start now."""
        spec = self.machine(ROTATION_MACHINE)
        if spec is None:
            return None
        try:
            records = self.store.list_certificates(gateway_uid=uid)
        except RecordNotFound:
            return None
        for listener in managed_listeners(gateway):
            attached = [r for r in records if r.listener == str(listener["name"]) and r.attached]
            if len(attached) > 1:  # outside a rotation: detach the extras (certificate_repair)
                with contextlib.suppress(OperationConflict):
                    repair = certificate_repair.start_repair(
                        self.store, spec, attached, clock=self.clock, actor=self.actor,
                        live_gateway=self._live_gateway)
                    if repair is not None:
                        return repair
            reason = rotation.listener_change(
                listener, attached, source=tls.source,
                served_fingerprint=partial(self._served_fingerprint, gateway, listener),
            )
            if reason is None:
                continue
            recent = self.store.list_operations(gateway_uid=uid, limit=20)
            if rotation.recently_failed(recent, now=self.clock.now()):
                return None
            try:
                return rotation.start_rotation(
                    self.store, spec, rotation.certificate_to_replace(attached), reason=reason,
                    clock=self.clock, actor=self.actor, live_gateway=self._live_gateway,
                ).operation
            except OperationConflict:  # LaneBusy included
                return None
        return None

    def _served_fingerprint(self, gateway: Obj, listener: Obj) -> str | None:
        """The fingerprint of the certificate in the Secret ``listener`` names (read only when
        asked: the cache reads a Secret's data from the API)."""
        return leaf_fingerprint(self.cache.get("Secret", *source_secret_ref(gateway, listener)))

    def renew(self, certificate: CertificateRecord, *, reason: str) -> bool:
        """Start a rotation of ``certificate`` for the renewal scheduler (its ``on_due``). True
        when there is nothing more to do now (one runs for it, or its Gateway is gone or being
        deleted); False to be asked again later (the lane is busy, the listener has extra attached
        certificates to be repaired first, or no rotation machine)."""
        spec = self.machine(ROTATION_MACHINE)
        if spec is None:
            return False
        try:
            start = rotation.start_rotation(
                self.store, spec, certificate, reason=reason, clock=self.clock,
                actor=self.actor, live_gateway=self._live_gateway)
        except OperationConflict as exc:  # LaneBusy included
            log.info("gateway uid %s: renewal of %s waits: %s", certificate.gateway_uid,
                     certificate.object_name, exc)
            return False
        if start.later is not None:
            log.info("gateway uid %s: renewal of %s waits: the gateway %s",
                     certificate.gateway_uid, certificate.object_name, start.later)
            return False
        if start.operation is not None and not start.already_running:
            op = start.operation
            log.info("gateway %s/%s: rotation %s of %s (%s)", op.namespace, op.name, op.id,
                     certificate.object_name, reason)
        return True

    # ---- teardown -------------------------------------------------------------------------

    def teardown(
        self, gateway: Obj, uid: str, resolution: ClassResolution | None,
        active: Sequence[OperationRecord],
    ) -> teardown.TeardownStart | None:
        """Start the teardown of a Gateway being deleted (``None``: no teardown machine)."""
        spec = self.machine(TEARDOWN_MACHINE)
        if spec is None:
            return None
        context = operation_context(
            spec, gateway_candidate(gateway, uid,
                                    resolution.blueprint_name if resolution else "", {}))
        m = meta(gateway)
        return teardown.start_teardown(
            self.store, spec, gateway_uid=uid, namespace=str(m["namespace"]),
            name=str(m["name"]), context=context, active=active, clock=self.clock,
            actor=self.actor)
