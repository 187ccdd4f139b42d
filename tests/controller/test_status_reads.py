"""The status writer reads only the children the blueprint's ``addresses`` expression names."""

from __future__ import annotations

import pytest

from bifrost.controller.status_writer import referenced_children


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        ("children.child.status.addresses", {"child"}),
        ("[{'type': 'Hostname', 'value': children['load-balancer'].status.atProvider.dnsName}]",
         {"load-balancer"}),
        ('children.a.status.x + children["b"].status.y', {"a", "b"}),
        ("gateway.status.addresses", set()),
        # a macro over the map or a computed key reads every child
        ('children.exists(k, k == "x")', None),
        ("children[gateway.metadata.name]", None),
        ("size(children) > 0 ? children.a.x : []", None),
    ],
)
def test_referenced_children(expression: str, ids: set[str] | None) -> None:
    got = referenced_children(expression)
    assert (None if got is None else set(got)) == ids
