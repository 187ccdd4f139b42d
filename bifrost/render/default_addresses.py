"""A Gateway's addresses when its blueprint has no ``spec.addresses`` expression.

``spec.addresses`` (a CEL expression over the live children, ``bifrost.render.expressions``) says
exactly where a Gateway's addresses come from. Without it bifrost does not leave the Gateway at
``Programmed=False/AddressNotAssigned`` forever: it takes the addresses of the **first child, in
``spec.children`` order, that reports any** in one of the two shapes Kubernetes objects report
them in —

- ``status.addresses``: a list of ``{type, value}`` (a child Gateway, many cloud load balancers);
- ``status.loadBalancer.ingress``: a list of ``{ip}`` / ``{hostname}`` (a Service of type
  LoadBalancer, an Ingress) — ``ip`` becomes ``IPAddress``, ``hostname`` ``Hostname``.

Only the first such child counts (a Service in front of a child Gateway must not add its
addresses to the Gateway's); certificate children never do. No child reporting any — a blueprint
whose children report addresses somewhere else (a CRD's ``status.atProvider.dnsName``) — means
no address: the Gateway's ``AddressNotAssigned`` message then says to set ``spec.addresses``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bifrost.render.expressions import DEFAULT_ADDRESS_TYPE, Address

__all__ = ["HOSTNAME", "default_addresses", "reported_addresses"]

HOSTNAME = "Hostname"


def reported_addresses(live: Mapping[str, Any] | None) -> tuple[Address, ...]:
    """The addresses ``live`` (a child object) reports in its status, in either shape."""
    status = live.get("status") if live is not None else None
    if not isinstance(status, Mapping):
        return ()
    out: list[Address] = []
    for item in status.get("addresses") or []:
        if isinstance(item, Mapping) and isinstance(item.get("value"), str) and item["value"]:
            out.append(Address(str(item.get("type") or DEFAULT_ADDRESS_TYPE), item["value"]))
    if out:
        return tuple(out)
    balancer = status.get("loadBalancer")
    ingress = balancer.get("ingress") if isinstance(balancer, Mapping) else None
    for item in ingress if isinstance(ingress, list) else []:
        if not isinstance(item, Mapping):
            continue
        if isinstance(item.get("ip"), str) and item["ip"]:
            out.append(Address(DEFAULT_ADDRESS_TYPE, item["ip"]))
        elif isinstance(item.get("hostname"), str) and item["hostname"]:
            out.append(Address(HOSTNAME, item["hostname"]))
    return tuple(out)


def default_addresses(children: Iterable[Mapping[str, Any] | None]) -> tuple[Address, ...]:
    """The addresses of the first of ``children`` (live objects in ``spec.children`` order,
    ``None`` for one not there) that reports any; ``()`` when none does. Reads lazily: children
    after the first one that reports are not consumed."""
    for live in children:
        found = reported_addresses(live)
        if found:
            return found
    return ()
