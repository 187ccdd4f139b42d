"""The context a Gateway operation starts with, from what its starter knows about the Gateway.

A machine's context model declares the fields it takes; the starter offers a fixed set of
candidate fields (:func:`gateway_candidate`) and :func:`operation_context` passes each one the
model declares, so a machine registered with a smaller context (tests, older versions) starts
from the same candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from bifrost.api.objects import Obj, meta, namespaced_name
from bifrost.machines.spec import MachineSpec

__all__ = ["gateway_candidate", "operation_context"]


def gateway_candidate(
    gateway: Obj,
    uid: str,
    blueprint: str | None,
    values: Mapping[str, Any],
    routes: Sequence[Obj] = (),
) -> dict[str, Any]:
    """The candidate context fields of an operation on ``gateway``: ``namespace``, ``gateway``,
    ``gateway_uid``, ``blueprint`` (empty when unknown), ``values`` and ``routes`` — the
    attached HTTPRoutes as ``namespace/name``, in the order given."""
    m = meta(gateway)
    return {
        "namespace": str(m["namespace"]), "gateway": str(m["name"]),
        "gateway_uid": uid, "blueprint": blueprint or "", "values": dict(values),
        "routes": tuple(namespaced_name(r) for r in routes),
    }


def operation_context(spec: MachineSpec, candidate: Mapping[str, Any]) -> BaseModel:
    """The context of a new ``spec`` operation: each candidate field the machine's context model
    declares (see :func:`gateway_candidate`)."""
    fields = spec.context_model.model_fields
    return spec.context_model.model_validate({k: v for k, v in candidate.items() if k in fields})
