"""GatewayClass status: is the class usable (its blueprint valid) and what does it support?

A GatewayClass handled by bifrost points at a GatewayClassBlueprint through ``parametersRef``.
If the blueprint is missing or invalid, the Gateway API asks for ``Accepted=False`` with reason
``InvalidParameters`` and a message a platform engineer can act on; the caller resolves the
blueprint and passes what went wrong as a string. ``supportedFeatures`` is the list the
implementation claims, sorted by name as the CRD requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bifrost.api.conditions import GatewayClassConditionType, GatewayClassReason, condition
from bifrost.status._util import Obj, generation, get_map, merge_conditions

__all__ = ["gatewayclass_status"]


def gatewayclass_status(
    gatewayclass: Obj,
    *,
    error: str | None,
    supported_features: Iterable[str],
    now: datetime,
) -> dict[str, Any]:
    """The ``status`` to write on ``gatewayclass``.

    ``error`` is ``None`` when the parameters (blueprint) resolved and validated, else a message
    naming the problem, e.g. ``GatewayClassBlueprint "edge" not found``.
    """
    if error is None:
        new = condition(
            GatewayClassConditionType.ACCEPTED,
            True,
            reason=GatewayClassReason.ACCEPTED,
            message="",
            generation=generation(gatewayclass),
            now=now,
        )
    else:
        new = condition(
            GatewayClassConditionType.ACCEPTED,
            False,
            reason=GatewayClassReason.INVALID_PARAMETERS,
            message=error,
            generation=generation(gatewayclass),
            now=now,
        )
    status: dict[str, Any] = dict(get_map(gatewayclass, "status"))
    status["conditions"] = merge_conditions(status.get("conditions"), [new])
    status["supportedFeatures"] = [{"name": f} for f in sorted(set(supported_features))]
    return status
