"""readyWhen and addresses: CEL over live objects; missing fields mean "not yet", not a crash."""

from __future__ import annotations

from typing import Any

import pytest

from bifrost.render import (
    BLUEPRINT,
    Address,
    RenderChild,
    RenderError,
    evaluate_addresses,
    evaluate_ready,
)

READY = 'object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")'


def lb(ready_when: str | None = READY) -> RenderChild:
    return RenderChild(id="lb", template="", ready_when=ready_when)


def conditions(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": t, "status": s} for t, s in pairs]}}


@pytest.mark.parametrize(
    ("live", "ready"),
    [
        pytest.param(conditions(("Synced", "True"), ("Ready", "True")), True, id="ready"),
        pytest.param(conditions(("Ready", "False")), False, id="ready-false"),
        pytest.param(conditions(("Synced", "True")), False, id="no-ready-condition"),
        pytest.param(conditions(), False, id="empty-conditions"),
        pytest.param({}, False, id="no-status"),
        pytest.param({"status": {}}, False, id="no-conditions"),
        pytest.param({"status": None}, False, id="null-status"),
        pytest.param({"status": {"conditions": None}}, False, id="null-conditions"),
        pytest.param(None, False, id="not-observed"),
    ],
)
def test_ready_when(live: dict[str, Any] | None, ready: bool) -> None:
    assert evaluate_ready(lb(), live).ready is ready


def test_missing_field_reason_says_what_is_missing() -> None:
    result = evaluate_ready(lb(), {"metadata": {}})
    assert not result.ready
    assert "'status'" in result.reason


def test_no_ready_when_means_ready_once_the_object_exists() -> None:
    assert evaluate_ready(lb(None), {"metadata": {"name": "x"}}).ready
    assert not evaluate_ready(lb(None), None).ready


def test_has_guards_optional_fields() -> None:
    child = lb(
        "has(object.status) && has(object.status.atProvider) && object.status.atProvider.arn != ''"
    )
    assert not evaluate_ready(child, {}).ready
    assert evaluate_ready(child, {"status": {"atProvider": {"arn": "arn:x"}}}).ready


@pytest.mark.parametrize(
    ("expression", "fragment", "line"),
    [
        ("object.status.(", "invalid CEL expression at column", 1),
        ("object.status &&\n  (", "invalid CEL expression at column", 2),
        ("object.status.replicas", "must evaluate to a bool, got int", None),
        ("isReady(object)", "readyWhen failed", None),
        ("obj.status.ready", "readyWhen failed", None),
    ],
)
def test_ready_when_errors_name_child_and_field(
    expression: str, fragment: str, line: int | None
) -> None:
    with pytest.raises(RenderError) as info:
        evaluate_ready(lb(expression), {"status": {"replicas": 2, "ready": True}})
    err = info.value
    assert (err.child_id, err.source, err.line) == ("lb", "spec.children[lb].readyWhen", line)
    assert fragment in err.message


LB_DNS = (
    "has(children.lb.status.atProvider.dnsName)"
    " ? [{'type': 'Hostname', 'value': children.lb.status.atProvider.dnsName}] : []"
)


@pytest.mark.parametrize(
    ("expression", "children", "expected"),
    [
        pytest.param(
            LB_DNS,
            {"lb": {"status": {"atProvider": {"dnsName": "edge.elb.example"}}}},
            (Address("Hostname", "edge.elb.example"),),
            id="hostname-from-child",
        ),
        pytest.param(LB_DNS, {"lb": {"status": {"atProvider": {}}}}, (), id="not-assigned-yet"),
        pytest.param(LB_DNS, {"lb": None}, (), id="child-not-observed"),
        pytest.param(LB_DNS, {}, (), id="child-absent"),
        pytest.param(
            "children.lb.status.loadBalancer.ingress.map(i, {'value': i.ip})",
            {
                "lb": {
                    "status": {
                        "loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}
                    }
                }
            },
            (Address("IPAddress", "10.0.0.1"), Address("IPAddress", "10.0.0.2")),
            id="ip-list-default-type",
        ),
        pytest.param(
            "[{'type': 'Hostname', 'value': children.a.status.host},"
            " {'type': 'Hostname', 'value': children.a.status.host}]",
            {"a": {"status": {"host": "h"}}},
            (Address("Hostname", "h"),),
            id="duplicates-collapse",
        ),
        pytest.param("[{'value': ''}]", {}, (), id="empty-value-is-not-an-address"),
    ],
)
def test_addresses_are_derived_from_children(
    expression: str, children: dict[str, Any], expected: tuple[Address, ...]
) -> None:
    result = evaluate_addresses(expression, children=children)
    assert result.addresses == expected
    assert (result.reason is None) is bool(expected)


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("children.lb.(", "invalid CEL expression"),
        ("'10.0.0.1'", "must evaluate to a list"),
        ("['10.0.0.1']", "addresses[0] must be a map"),
        ("[{'type': 'IPAddress'}]", "addresses[0] must be a map"),
    ],
)
def test_addresses_errors_name_the_field(expression: str, fragment: str) -> None:
    with pytest.raises(RenderError) as info:
        evaluate_addresses(expression, children={"lb": {}})
    assert (info.value.child_id, info.value.source) == (BLUEPRINT, "spec.addresses")
    assert fragment in info.value.message


def test_addresses_may_read_the_gateway() -> None:
    result = evaluate_addresses(
        "gateway.spec.addresses",
        children={},
        gateway={"spec": {"addresses": [{"value": "1.2.3.4"}]}},
    )
    assert result.addresses == (Address("IPAddress", "1.2.3.4"),)


def test_no_addresses_expression() -> None:
    result = evaluate_addresses(None, children={})
    assert result.addresses == () and result.reason
