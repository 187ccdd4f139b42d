"""Gateway status: ``Accepted``, ``Programmed``, listeners and addresses, written only on change.

The Gateway's own conditions summarise its listeners and its children:

- ``Accepted``: ``True/Accepted`` when every listener is valid. When some are not, the reason is
  ``ListenersNotValid`` (the spec requires it whenever a listener is conflicted, and its Go
  docs allow it with either status); the status is ``True`` while at least one listener is
  usable — the spec's *partial acceptance*: only the distinct, valid listeners are served, none
  of the conflicting ones — and ``False`` when none is (a Gateway without a usable listener
  "must be rejected from processing as a whole"). ``accept_partial=False`` rejects the Gateway
  as soon as one listener is invalid.
- ``Programmed``: ``False/Invalid`` when the Gateway is not accepted, the caller's reason
  (default ``Pending``) while the children are not ready, ``False/AddressNotAssigned`` when
  they are but no address has been assigned, else ``True/Programmed``.

Conditions carry ``observedGeneration == metadata.generation`` and are merged into the existing
ones (conditions of other types — e.g. bifrost's ``gateway.bifrost.dev/Operation`` — are kept,
``lastTransitionTime`` is kept while a status is unchanged), so :func:`status_changed` can tell
the caller that nothing needs writing — the steady state must cause zero API writes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bifrost.api.conditions import GatewayConditionType, GatewayReason, condition
from bifrost.status._util import Obj, generation, get_map, merge_conditions
from bifrost.status.listeners import (
    ListenerVerdict,
    Readiness,
    evaluate_listeners,
    listener_statuses,
)

__all__ = [
    "gateway_conditions",
    "gateway_status",
    "listeners_not_valid_message",
    "normalize_addresses",
    "status_changed",
]


def _listener_problem(verdict: ListenerVerdict) -> str:
    """What is wrong with one invalid listener, in the terms its own conditions use."""
    if not verdict.accepted:
        return f"Accepted=False ({verdict.accepted_reason})"
    if not verdict.resolved_refs:
        return f"Accepted=True, ResolvedRefs=False ({verdict.resolved_reason})"
    if not verdict.supported_kinds:
        return "Accepted=True, supports no route kind"
    return "Accepted=True, has no valid certificate"


def listeners_not_valid_message(
    verdicts: Sequence[ListenerVerdict], *, accepted: bool
) -> str:
    """The ``ListenersNotValid`` message. It agrees with the listeners' own conditions: an
    invalid listener is named with the ``Accepted``/``ResolvedRefs`` its entry reports (a
    listener can be ``Accepted=True`` and still not servable, e.g. without a valid
    certificate), and the listeners that are served are called *served*, not "accepted"."""
    invalid = [v for v in verdicts if not v.valid]
    usable = [v for v in verdicts if v.usable]
    details = "; ".join(f"{v.name}: {_listener_problem(v)}" for v in invalid)
    served = [v.name for v in usable]
    if accepted:
        tail = f"served listeners: {', '.join(served)}"
    elif served:
        tail = (f"listeners that could be served: {', '.join(served)}, but the Gateway is "
                "not accepted while any listener is invalid")
    else:
        tail = "no listener can be served, so the Gateway is not accepted"
    return f"invalid listeners: {details}; {tail}"


def normalize_addresses(addresses: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """``status.addresses`` entries with ``type`` filled in (IPAddress/Hostname), deduplicated."""
    out: list[dict[str, str]] = []
    for item in addresses:
        value = str(item.get("value") or "")
        if not value:
            continue
        kind = item.get("type")
        if not kind:
            try:
                ipaddress.ip_address(value)
                kind = "IPAddress"
            except ValueError:
                kind = "Hostname"
        entry = {"type": str(kind), "value": value}
        if entry not in out:
            out.append(entry)
    return out


def gateway_conditions(
    gateway: Obj,
    verdicts: Sequence[ListenerVerdict],
    *,
    readiness: Readiness,
    addresses: Sequence[Mapping[str, str]],
    now: datetime,
    accept_partial: bool = True,
) -> list[dict[str, Any]]:
    """The Gateway's ``status.conditions`` merged into the existing ones (see module doc)."""
    gen = generation(gateway)
    invalid = [v for v in verdicts if not v.valid]
    usable = [v for v in verdicts if v.usable]
    if not verdicts:
        accepted, acc_reason, acc_msg = False, GatewayReason.INVALID, "the Gateway has no listeners"
    elif not invalid:
        accepted, acc_reason, acc_msg = True, GatewayReason.ACCEPTED, ""
    else:
        accepted = bool(usable) and accept_partial
        acc_reason = GatewayReason.LISTENERS_NOT_VALID
        acc_msg = listeners_not_valid_message(verdicts, accepted=accepted)

    if not accepted:
        prog, prog_reason, prog_msg = False, str(GatewayReason.INVALID), "Gateway not accepted"
    elif not readiness.programmed:
        prog, prog_reason, prog_msg = (
            False,
            readiness.reason or GatewayReason.PENDING,
            readiness.message,
        )
    elif not addresses:
        prog, prog_reason, prog_msg = (
            False,
            str(GatewayReason.ADDRESS_NOT_ASSIGNED),
            "no address has been assigned to the Gateway yet: its GatewayClassBlueprint's "
            "spec.addresses expression gave none or, without spec.addresses, no child reports "
            "status.addresses or status.loadBalancer.ingress — if the children report it "
            "elsewhere, set spec.addresses (CEL over children.<id>, see docs/blueprints.md)",
        )
    else:
        prog, prog_reason, prog_msg = True, str(GatewayReason.PROGRAMMED), readiness.message
    new = [
        condition(
            GatewayConditionType.ACCEPTED,
            accepted,
            reason=acc_reason,
            message=acc_msg,
            generation=gen,
            now=now,
        ),
        condition(
            GatewayConditionType.PROGRAMMED,
            prog,
            reason=prog_reason,
            message=prog_msg,
            generation=gen,
            now=now,
        ),
    ]
    return merge_conditions(get_map(gateway, "status").get("conditions"), new)


def gateway_status(
    gateway: Obj,
    *,
    secrets: Mapping[tuple[str, str], Obj],
    grants: Iterable[Obj],
    attached_routes: Mapping[str, int],
    readiness: Readiness,
    addresses: Iterable[Mapping[str, Any]],
    now: datetime,
    accept_partial: bool = True,
) -> dict[str, Any]:
    """The complete ``status`` to write on ``gateway``.

    ``attached_routes`` is :func:`bifrost.status.routes.attached_routes` for this Gateway;
    ``readiness`` is the children's readiness; ``addresses`` are those derived from the children.
    Fields of the old status this module does not own are carried over.
    """
    verdicts = evaluate_listeners(gateway, secrets=secrets, grants=grants)
    addrs = normalize_addresses(addresses)
    status: dict[str, Any] = dict(get_map(gateway, "status"))
    status["conditions"] = gateway_conditions(
        gateway,
        verdicts,
        readiness=readiness,
        addresses=addrs,
        now=now,
        accept_partial=accept_partial,
    )
    status["listeners"] = listener_statuses(
        gateway, verdicts, attached_routes=attached_routes, readiness=readiness, now=now
    )
    if addrs:
        status["addresses"] = addrs
    else:
        status.pop("addresses", None)
    return status


def _prune(value: Any) -> Any:
    """Drop ``None`` and empty collections so absent and empty compare equal."""
    if isinstance(value, Mapping):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list | tuple):
        return [_prune(v) for v in value]
    return value


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` over ``old`` would change anything an API reader can see.

    Works for any status dict (Gateway, HTTPRoute, GatewayClass). Absent, ``null`` and empty
    lists/maps are treated alike, as the API server does not distinguish them for these fields.
    """
    return bool(_prune(dict(old or {})) != _prune(dict(new)))
