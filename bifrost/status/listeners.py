"""Per-listener status of a Gateway: what the spec asks, judged listener by listener.

The Gateway API asks a controller to say, for every listener, whether it is accepted (protocol
supported, not conflicting with a sibling), whether its references resolve (route kinds,
certificate Secrets, ReferenceGrants), whether it is programmed in the data plane, which route
kinds it supports and how many routes are attached. The reference Go controller never wrote any
of this; here it is computed by pure functions in two stages:

1. :func:`evaluate_listeners` judges the spec (plus the Secrets and ReferenceGrants it refers to)
   into :class:`ListenerVerdict` values — no clock, no previous status. Route attachment
   (:mod:`bifrost.status.routes`) uses :func:`route_kinds` from here, so the kinds a listener
   advertises and the kinds it accepts cannot disagree.
2. :func:`listener_statuses` turns verdicts, the children's readiness and the attached-route
   counts into the ``status.listeners`` entries, merging conditions into the previous ones so
   ``lastTransitionTime`` only moves when a status flips.

Conflicts follow the "Distinct Listeners" rules of the Listener docs: listeners on one port with
different protocols conflict (bifrost cannot serve HTTP and HTTPS on the same port — they are not
*compatible*), listeners with the same port, protocol and hostname conflict. All conflicting
listeners are rejected; none is picked as the winner. Listeners with an unsupported protocol are
rejected on their own and take no part in conflict detection (the spec's rule for TCP listeners
of an implementation that does not support TCP).
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bifrost.api.conditions import (
    Condition,
    ListenerConditionType,
    ListenerReason,
    condition,
)
from bifrost.status._util import (
    GATEWAY_GROUP,
    Obj,
    generation,
    get_list,
    get_map,
    merge_conditions,
    namespace,
)
from bifrost.status.referencegrants import permitted

__all__ = [
    "CERTIFICATE_FROM_BLUEPRINT",
    "CERTIFICATE_OPTION",
    "HTTP_ROUTE",
    "SUPPORTED_PROTOCOLS",
    "ListenerVerdict",
    "Readiness",
    "check_tls_secret",
    "evaluate_listeners",
    "listener_statuses",
    "route_kinds",
]

#: The one route kind bifrost serves, as a (group, kind) pair.
HTTP_ROUTE = (GATEWAY_GROUP, "HTTPRoute")

#: Listener protocols bifrost implements and the route kinds each one carries.
SUPPORTED_PROTOCOLS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "HTTP": (HTTP_ROUTE,),
    "HTTPS": (HTTP_ROUTE,),
}

SECRET_TYPE_TLS = "kubernetes.io/tls"

#: A domain-prefixed ``tls.options`` key by which an HTTPS listener says that its certificate comes
#: from the GatewayClass's blueprint (e.g. an ACM certificate on a cloud load balancer, see
#: ``examples/cloud-edge``) rather than from a Secret: the Gateway API lets ``options`` stand in for
#: ``certificateRefs`` in Terminate mode. Only with this value and no certificateRefs.
CERTIFICATE_OPTION = "gateway.bifrost.dev/certificate"
CERTIFICATE_FROM_BLUEPRINT = "blueprint"


@dataclass(frozen=True)
class Readiness:
    """What the caller knows about the data plane: are the children ready (programmed)?

    ``reason`` (a CamelCase condition reason, e.g. ``Pending`` or ``Invalid``; empty means
    ``Pending``) and ``message`` are reported on ``Programmed`` while ``programmed`` is False.
    """

    programmed: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class ListenerVerdict:
    """The spec judgement of one listener, before time and previous status come in."""

    name: str
    port: int
    protocol: str
    hostname: str | None
    accepted: bool
    accepted_reason: str
    accepted_message: str
    conflicted: bool
    conflicted_reason: str
    conflicted_message: str
    resolved_refs: bool
    resolved_reason: str
    resolved_message: str
    supported_kinds: tuple[tuple[str, str], ...]
    #: Certificate refs that passed every check, as (namespace, name).
    valid_certificates: tuple[tuple[str, str], ...] = field(default=())
    #: HTTPS without certificateRefs whose certificate the blueprint provides (CERTIFICATE_OPTION).
    blueprint_certificate: bool = False

    @property
    def usable(self) -> bool:
        """Can the data plane serve this listener at all?

        Accepted, not conflicted, at least one route kind, and (HTTPS) at least one valid
        certificate. A listener with some invalid refs may still be usable (partially valid).
        """
        if not (self.accepted and not self.conflicted and self.supported_kinds):
            return False
        return (
            self.protocol != "HTTPS"
            or bool(self.valid_certificates)
            or self.blueprint_certificate
        )

    @property
    def valid(self) -> bool:
        """Fully valid: usable and every reference resolved (the Gateway's ListenersNotValid)."""
        return self.usable and self.resolved_refs


def route_kinds(listener: Obj) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``(supported, invalid)`` route kinds of a listener spec, as (group, kind) pairs.

    Unspecified/empty ``allowedRoutes.kinds`` means the protocol's default kinds. A specified
    kind is supported only if the protocol carries it; duplicates are collapsed.
    """
    protocol_kinds = SUPPORTED_PROTOCOLS.get(str(listener.get("protocol", "")), ())
    specified = get_list(listener, "allowedRoutes", "kinds")
    if not specified:
        return protocol_kinds, ()
    supported: list[tuple[str, str]] = []
    invalid: list[tuple[str, str]] = []
    for item in specified:
        if not isinstance(item, Mapping):
            continue
        group = item.get("group")
        gk = (GATEWAY_GROUP if group is None else str(group), str(item.get("kind", "")))
        bucket = supported if gk in protocol_kinds else invalid
        if gk not in bucket:
            bucket.append(gk)
    return tuple(supported), tuple(invalid)


def check_tls_secret(secret: Obj) -> str | None:
    """Why ``secret`` cannot serve as a listener certificate, or ``None`` when it can.

    It must be of type ``kubernetes.io/tls`` and carry ``tls.crt`` (one or more PEM
    certificates) and ``tls.key`` (a PEM private key) whose public key matches the leaf.
    """
    secret_type = secret.get("type")
    if secret_type != SECRET_TYPE_TLS:
        return f"type is {secret_type!r}, not {SECRET_TYPE_TLS!r}"
    data = get_map(secret, "data")
    raw: dict[str, bytes] = {}
    for key in ("tls.crt", "tls.key"):
        value = data.get(key)
        if not value:
            return f"has no {key}"
        try:
            raw[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            return f"{key} is not valid base64"
    try:
        certs = x509.load_pem_x509_certificates(raw["tls.crt"])
    except ValueError:
        return "tls.crt is not a PEM certificate"
    try:
        key_obj = serialization.load_pem_private_key(raw["tls.key"], password=None)
    except (ValueError, TypeError):
        return "tls.key is not an unencrypted PEM private key"
    except Exception:  # cryptography raises UnsupportedAlgorithm for exotic keys
        return "tls.key holds an unsupported private key"
    spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if certs[0].public_key().public_bytes(*spki) != key_obj.public_key().public_bytes(*spki):
        return "tls.key does not match the certificate in tls.crt"
    return None


def _certificate_refs(
    gateway: Obj,
    listener: Obj,
    *,
    secrets: Mapping[tuple[str, str], Obj],
    grants: Iterable[Obj],
) -> tuple[bool, str, str, tuple[tuple[str, str], ...]]:
    """ResolvedRefs for an HTTPS listener's certificateRefs: (ok, reason, message, valid refs)."""
    gw_ns = namespace(gateway)
    refs = get_list(listener, "tls", "certificateRefs")
    mode = get_map(listener, "tls").get("mode") or "Terminate"
    if mode != "Terminate":
        return True, ListenerReason.RESOLVED_REFS, "", ()
    if not refs and _blueprint_certificate(listener):
        return True, ListenerReason.RESOLVED_REFS, "", ()
    if not refs:
        return False, ListenerReason.INVALID_CERTIFICATE_REF, "no tls.certificateRefs", ()
    grants = list(grants)
    problems: list[tuple[str, str]] = []
    valid: list[tuple[str, str]] = []
    for i, ref in enumerate(refs):
        if not isinstance(ref, Mapping):
            continue
        group = str(ref.get("group") or "")
        kind = str(ref.get("kind") or "Secret")
        ref_ns = str(ref.get("namespace") or gw_ns)
        ref_name = str(ref.get("name", ""))
        where = f"certificateRefs[{i}] {kind} {ref_ns}/{ref_name}"
        if not permitted(
            from_group=GATEWAY_GROUP,
            from_kind="Gateway",
            from_namespace=gw_ns,
            to_group=group,
            to_kind=kind,
            to_namespace=ref_ns,
            to_name=ref_name,
            grants=grants,
        ):
            problems.append(
                (
                    ListenerReason.REF_NOT_PERMITTED,
                    f"{where}: no ReferenceGrant in namespace {ref_ns} allows it",
                )
            )
            continue
        if (group, kind) != ("", "Secret"):
            problems.append(
                (
                    ListenerReason.INVALID_CERTIFICATE_REF,
                    f"{where}: unsupported kind (group {group!r}); only core Secrets",
                )
            )
            continue
        secret = secrets.get((ref_ns, ref_name))
        if secret is None:
            problems.append((ListenerReason.INVALID_CERTIFICATE_REF, f"{where}: not found"))
            continue
        why = check_tls_secret(secret)
        if why is not None:
            problems.append((ListenerReason.INVALID_CERTIFICATE_REF, f"{where}: {why}"))
            continue
        valid.append((ref_ns, ref_name))
    if not problems:
        return True, ListenerReason.RESOLVED_REFS, "", tuple(valid)
    return False, problems[0][0], "; ".join(m for _, m in problems), tuple(valid)


def _blueprint_certificate(listener: Obj) -> bool:
    """No certificateRefs, and ``tls.options`` says the blueprint provides the certificate."""
    options = get_map(listener, "tls", "options")
    return not get_list(listener, "tls", "certificateRefs") and (
        options.get(CERTIFICATE_OPTION) == CERTIFICATE_FROM_BLUEPRINT
    )


def _conflicts(listeners: Sequence[Obj]) -> dict[int, tuple[str, str]]:
    """Index → (reason, message) for every conflicting listener (see module docstring)."""
    by_port: dict[int, list[int]] = defaultdict(list)
    for i, spec in enumerate(listeners):
        if str(spec.get("protocol", "")) in SUPPORTED_PROTOCOLS:
            by_port[int(spec.get("port", 0))].append(i)
    out: dict[int, tuple[str, str]] = {}
    for port, idxs in by_port.items():
        protocols = {str(listeners[i].get("protocol")) for i in idxs}
        if len(protocols) > 1:
            names = ", ".join(str(listeners[i].get("name")) for i in idxs)
            for i in idxs:
                out[i] = (
                    ListenerReason.PROTOCOL_CONFLICT,
                    f"port {port} is used with protocols {', '.join(sorted(protocols))} "
                    f"by listeners {names}",
                )
            continue
        by_host: dict[str, list[int]] = defaultdict(list)
        for i in idxs:
            by_host[str(listeners[i].get("hostname") or "").lower()].append(i)
        for host, same in by_host.items():
            if len(same) > 1:
                names = ", ".join(str(listeners[i].get("name")) for i in same)
                for i in same:
                    out[i] = (
                        ListenerReason.HOSTNAME_CONFLICT,
                        f"listeners {names} share port {port}, protocol "
                        f"{listeners[i].get('protocol')} and hostname {host or '(any)'!r}",
                    )
    return out


def evaluate_listeners(
    gateway: Obj,
    *,
    secrets: Mapping[tuple[str, str], Obj],
    grants: Iterable[Obj],
) -> tuple[ListenerVerdict, ...]:
    """Judge every listener of ``gateway.spec.listeners``, in spec order.

    ``secrets`` maps (namespace, name) to the Secrets the certificateRefs may name (missing key
    = not found); ``grants`` are the ReferenceGrants of the cluster (or of the namespaces the
    refs point at).
    """
    grants = list(grants)
    specs = [item for item in get_list(gateway, "spec", "listeners") if isinstance(item, Mapping)]
    conflicts = _conflicts(specs)
    out: list[ListenerVerdict] = []
    for i, spec in enumerate(specs):
        protocol = str(spec.get("protocol", ""))
        supported, invalid = route_kinds(spec)
        if protocol in SUPPORTED_PROTOCOLS:
            accepted, acc_reason, acc_msg = True, str(ListenerReason.ACCEPTED), ""
        else:
            accepted = False
            acc_reason = ListenerReason.UNSUPPORTED_PROTOCOL
            acc_msg = (
                f"protocol {protocol!r} is not supported; "
                f"supported: {', '.join(sorted(SUPPORTED_PROTOCOLS))}"
            )
        conflicted = i in conflicts
        conf_reason, conf_msg = conflicts.get(i, (ListenerReason.NO_CONFLICTS, ""))
        if conflicted:
            # The spec: all indistinct listeners must not be accepted; none wins.
            accepted, acc_reason, acc_msg = False, conf_reason, conf_msg

        resolved, res_reason, res_msg = True, str(ListenerReason.RESOLVED_REFS), ""
        valid_certs: tuple[tuple[str, str], ...] = ()
        if invalid:
            resolved = False
            res_reason = ListenerReason.INVALID_ROUTE_KINDS
            res_msg = "unsupported route kinds for protocol {}: {}".format(
                protocol, ", ".join(f"{g}/{k}" if g else k for g, k in invalid)
            )
        if protocol == "HTTPS":
            ok, reason, msg, valid_certs = _certificate_refs(
                gateway, spec, secrets=secrets, grants=grants
            )
            if not ok:
                if resolved:
                    resolved, res_reason, res_msg = False, reason, msg
                else:
                    res_msg = f"{res_msg}; {msg}"
        hostname = spec.get("hostname")
        out.append(
            ListenerVerdict(
                name=str(spec.get("name", "")),
                port=int(spec.get("port", 0)),
                protocol=protocol,
                hostname=str(hostname) if hostname else None,
                accepted=accepted,
                accepted_reason=str(acc_reason),
                accepted_message=acc_msg,
                conflicted=conflicted,
                conflicted_reason=str(conf_reason),
                conflicted_message=conf_msg,
                resolved_refs=resolved,
                resolved_reason=str(res_reason),
                resolved_message=res_msg,
                supported_kinds=supported,
                valid_certificates=valid_certs,
                blueprint_certificate=protocol == "HTTPS" and _blueprint_certificate(spec),
            )
        )
    return tuple(out)


def _unusable_reason(verdict: ListenerVerdict) -> str:
    if not verdict.accepted:
        return f"listener is not accepted ({verdict.accepted_reason})"
    if not verdict.supported_kinds:
        return "listener supports no route kind"
    return "listener has no valid certificate"


def _listener_conditions(
    verdict: ListenerVerdict,
    *,
    readiness: Readiness,
    gen: int | None,
    now: datetime,
) -> list[Condition]:
    def cond(type_: str, status: bool, reason: str, message: str) -> Condition:
        return condition(type_, status, reason=reason, message=message, generation=gen, now=now)

    if not verdict.usable:
        programmed = cond(
            ListenerConditionType.PROGRAMMED,
            False,
            ListenerReason.INVALID,
            _unusable_reason(verdict),
        )
    elif not readiness.programmed:
        programmed = cond(
            ListenerConditionType.PROGRAMMED,
            False,
            readiness.reason or ListenerReason.PENDING,
            readiness.message,
        )
    else:
        programmed = cond(
            ListenerConditionType.PROGRAMMED, True, ListenerReason.PROGRAMMED, readiness.message
        )
    return [
        cond(
            ListenerConditionType.ACCEPTED,
            verdict.accepted,
            verdict.accepted_reason,
            verdict.accepted_message,
        ),
        programmed,
        cond(
            ListenerConditionType.RESOLVED_REFS,
            verdict.resolved_refs,
            verdict.resolved_reason,
            verdict.resolved_message,
        ),
        cond(
            ListenerConditionType.CONFLICTED,
            verdict.conflicted,
            verdict.conflicted_reason,
            verdict.conflicted_message,
        ),
    ]


def listener_statuses(
    gateway: Obj,
    verdicts: Sequence[ListenerVerdict],
    *,
    attached_routes: Mapping[str, int],
    readiness: Readiness,
    now: datetime,
) -> list[dict[str, Any]]:
    """``status.listeners``: one entry per listener in spec order, merged into the old entries.

    Entries of listeners no longer in the spec are dropped. ``attached_routes`` comes from
    :func:`bifrost.status.routes.attached_routes` (missing name = 0).
    """
    gen = generation(gateway)
    old_by_name = {
        str(item.get("name")): item
        for item in get_list(gateway, "status", "listeners")
        if isinstance(item, Mapping)
    }
    out: list[dict[str, Any]] = []
    for verdict in verdicts:
        old = old_by_name.get(verdict.name, {})
        conds = _listener_conditions(verdict, readiness=readiness, gen=gen, now=now)
        out.append(
            {
                "name": verdict.name,
                "supportedKinds": [{"group": g, "kind": k} for g, k in verdict.supported_kinds],
                "attachedRoutes": int(attached_routes.get(verdict.name, 0)),
                "conditions": merge_conditions(old.get("conditions"), conds),
            }
        )
    return out
