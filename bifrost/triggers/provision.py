"""When a Gateway is provisioned, and the one way a provision starts.

A provision starts when the Gateway's *input hash* — everything its children are rendered from:
the Gateway's generation, the blueprint's name and generation, the merged values (policies
included), the resourceVersions of the Secrets it references and, when the blueprint has
``routeChildren``, the attached HTTPRoutes with their generations — differs from the hash the
last started provision recorded (:func:`needs_provision`). The controller gathers the inputs
from its cache (``bifrost.controller.inputs``), remembers the recorded hash
(``bifrost.controller.ledger``) and never provisions values that break the blueprint's
``spec.values``; this module only hashes and starts.

:func:`start_provision` is the one function that starts it. Like
:func:`bifrost.engine.start_operation` it returns the provision already running in the lane
instead of starting a second one, and raises :class:`~bifrost.engine.LaneBusy` (another machine
holds the lane) or :class:`~bifrost.store.errors.OperationConflict` (the lane kept changing):
the caller looks again later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from bifrost.api.objects import Obj, generation, meta, namespaced_name
from bifrost.clock import Clock
from bifrost.engine import start_operation
from bifrost.machines.spec import MachineSpec
from bifrost.records import OperationRecord
from bifrost.store.interface import OperationStore

__all__ = ["ProvisionStart", "input_hash", "needs_provision", "start_provision"]


def input_hash(
    gateway: Obj,
    *,
    blueprint_name: str | None,
    blueprint_generation: int | None,
    values: Mapping[str, Any],
    secrets: Sequence[tuple[str, str, str]],
    routes: Sequence[Obj] = (),
) -> str:
    """The hash of what a provision of ``gateway`` depends on. ``secrets`` are the referenced
    Secrets as ``(namespace, name, resourceVersion)`` sorted by namespace and name (an empty
    version for one that does not exist); ``routes`` the attached HTTPRoutes in order. A route's
    status, labels or annotations do not count, its generation does."""
    payload: dict[str, Any] = {
        "uid": meta(gateway).get("uid"),
        "generation": generation(gateway),
        "blueprint": [blueprint_name, blueprint_generation],
        "values": values,
        "secrets": [list(s) for s in secrets],
    }
    if routes:  # absent rather than empty: hashes of route-less Gateways stay as they were
        payload["routes"] = [[namespaced_name(r), generation(r)] for r in routes]
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def needs_provision(recorded: str | None, current: str) -> bool:
    """Whether a Gateway whose last started provision recorded ``recorded`` (``None``: never
    provisioned) must be provisioned for inputs hashing to ``current``."""
    return recorded != current


@dataclass(frozen=True)
class ProvisionStart:
    """What :func:`start_provision` found or did."""

    #: The provision now active in the Gateway's lane (just started, or already running).
    operation: OperationRecord
    #: Whether this call created it.
    started: bool
    #: Whether it runs with the context asked for; ``False`` when a provision with older
    #: inputs is still running (start again once it ended).
    current: bool


def start_provision(
    store: OperationStore,
    machine: MachineSpec,
    *,
    gateway_uid: str,
    namespace: str,
    name: str,
    context: BaseModel,
    clock: Clock,
    actor: str,
) -> ProvisionStart:
    """Start a provision of the Gateway with ``context`` (see the module docstring for what
    is raised when the lane is not free)."""
    before = store.active_operation(gateway_uid, machine.lane)
    op = start_operation(store, machine, gateway_uid=gateway_uid, namespace=namespace,
                         name=name, context=context, clock=clock, actor=actor)
    wanted = context.model_dump(mode="json")
    have = {k: v for k, v in (op.context or {}).items() if k in wanted}
    current = {k: wanted[k] for k in have} == have and set(have) == set(wanted)
    return ProvisionStart(op, started=before is None or before.id != op.id, current=current)
