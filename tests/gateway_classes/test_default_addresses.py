"""Without ``spec.addresses``: the addresses of the first child that reports any, in
``status.addresses`` or ``status.loadBalancer.ingress``; none when no child does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bifrost.render.default_addresses import default_addresses, reported_addresses
from bifrost.render.expressions import Address


def _status(**status: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "status": status}


def test_reported_addresses_in_both_shapes() -> None:
    assert reported_addresses(_status(addresses=[{"value": "10.0.0.1"},
                                                 {"type": "Hostname", "value": "a.example"}])) \
        == (Address("IPAddress", "10.0.0.1"), Address("Hostname", "a.example"))
    assert reported_addresses(_status(loadBalancer={"ingress": [
        {"ip": "192.0.2.1"}, {"hostname": "lb.example"}, {}, "junk"]})) \
        == (Address("IPAddress", "192.0.2.1"), Address("Hostname", "lb.example"))
    assert reported_addresses(_status(loadBalancer={})) == ()
    assert reported_addresses(_status(addresses=[{"value": ""}])) == ()
    assert reported_addresses({"metadata": {}}) == ()
    assert reported_addresses(None) == ()


def test_the_first_child_reporting_wins_and_later_ones_are_not_read() -> None:
    read: list[str] = []

    def children() -> Iterator[dict[str, Any] | None]:
        for name, live in (("config", {"data": {}}), ("missing", None),
                           ("lb", _status(loadBalancer={"ingress": [{"ip": "192.0.2.7"}]})),
                           ("child", _status(addresses=[{"value": "10.1.1.1"}]))):
            read.append(name)
            yield live

    assert default_addresses(children()) == (Address("IPAddress", "192.0.2.7"),)
    assert read == ["config", "missing", "lb"]
    assert default_addresses([{"data": {}}, None]) == ()
