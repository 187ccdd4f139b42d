"""Example objects parse through the models; invalid ones fail with messages naming the fix."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from api_examples import CLASS_WIDE_CONFIG, EDGE_BLUEPRINT, GATEWAY_CONFIG, MESH_BLUEPRINT
from pydantic import ValidationError

from bifrost.api import (
    GatewayClassBlueprint,
    GatewayClassConfig,
    GatewayConfig,
    InvalidResourceError,
    VerifyMode,
    Weekday,
    format_validation_error,
    parse_resource,
)
from bifrost.api.blueprint import parse_duration


def test_edge_blueprint_parses() -> None:
    bp = parse_resource(GatewayClassBlueprint, EDGE_BLUEPRINT)
    assert bp.metadata.name == "edge"
    assert [c.id for c in bp.spec.children] == ["load-balancer", "listener", "dns"]
    assert bp.spec.children[1].depends_on == ("load-balancer",)
    assert bp.spec.children[0].ready_when is not None
    assert bp.spec.children[2].delete_order == 2
    assert bp.spec.route_children[0].id == "shadow-route"
    assert bp.spec.defaults["accessLogs"] == {"enabled": True, "bucket": "edge-logs"}
    tls = bp.spec.tls
    assert tls is not None and tls.verify is not None and tls.renew_before is not None
    assert tls.verify.mode is VerifyMode.TLS_PROBE and tls.verify.timeout_seconds == 30
    assert tls.drain_seconds == 300
    assert tls.renew_before.before(timedelta(days=47)) == timedelta(days=47) * 0.33
    window = tls.maintenance_windows[0]
    assert window.days == (Weekday.TUE, Weekday.WED, Weekday.THU)
    assert (window.start, window.end, window.timezone) == ("22:00", "04:00", "Europe/Berlin")
    assert bp.status.conditions == ()


def test_round_trip_is_lossless() -> None:
    bp = parse_resource(GatewayClassBlueprint, EDGE_BLUEPRINT)
    again = GatewayClassBlueprint.model_validate(bp.to_api())
    assert again == bp
    api = bp.to_api()
    assert api["spec"]["routeChildren"][0]["id"] == "shadow-route"  # camelCase on the wire
    assert "readyWhen" in api["spec"]["children"][0]


def test_minimal_blueprint_and_defaults() -> None:
    bp = parse_resource(GatewayClassBlueprint, MESH_BLUEPRINT)
    assert bp.spec.tls is None and bp.spec.addresses is None and bp.spec.route_children == ()
    assert bp.spec.defaults == {} and bp.spec.children[1].delete_order is None
    verify = GatewayClassBlueprint.model_validate(
        {"spec": {"children": [], "tls": {"certificateTemplate": "x", "verify": {}}}}
    ).spec.tls
    assert verify is not None and verify.verify is not None
    assert (verify.verify.mode, verify.verify.timeout_seconds) == (VerifyMode.TLS_PROBE, 60)


def test_models_are_frozen_and_accept_python_names() -> None:
    bp = GatewayClassBlueprint.model_validate(
        {"spec": {"children": [{"id": "a", "template": "t", "depends_on": ()}]}}
    )
    with pytest.raises(ValidationError):
        bp.spec.children[0].id = "b"  # type: ignore[misc]


def test_policies_parse() -> None:
    gcc = parse_resource(GatewayClassConfig, CLASS_WIDE_CONFIG)
    assert gcc.spec.target_ref.kind == "GatewayClass"
    assert gcc.spec.default == {"waf": {"enabled": True, "ruleSet": "baseline"}}
    assert gcc.spec.override == {"allowedCidrs": ["10.0.0.0/8"]}
    assert gcc.placement_error() is None
    gc = parse_resource(GatewayConfig, GATEWAY_CONFIG)
    assert (gc.spec.target_ref.group, gc.spec.target_ref.name) == (
        "gateway.networking.k8s.io",
        "shop",
    )
    assert gc.placement_error() is None


def test_policy_placement_rules() -> None:
    elsewhere = copy.deepcopy(CLASS_WIDE_CONFIG)
    elsewhere["metadata"]["namespace"] = "team-a"
    msg = parse_resource(GatewayClassConfig, elsewhere).placement_error()
    assert msg is not None and "'bifrost-system'" in msg and "move it there" in msg
    ns_policy = copy.deepcopy(GATEWAY_CONFIG)
    ns_policy["spec"]["targetRef"] = {"group": "", "kind": "Namespace", "name": "other"}
    msg = parse_resource(GatewayConfig, ns_policy).placement_error()
    assert msg is not None and "namespace it targets" in msg
    ns_policy["spec"]["targetRef"]["name"] = "shop"
    assert parse_resource(GatewayConfig, ns_policy).placement_error() is None


def _blueprint_error(mutate: Any) -> str:
    obj = copy.deepcopy(EDGE_BLUEPRINT)
    mutate(obj["spec"])
    with pytest.raises(InvalidResourceError) as info:
        parse_resource(GatewayClassBlueprint, obj)
    return str(info.value)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda s: s["children"][1].pop("id"),
            'GatewayClassBlueprint "edge": spec.children[1].id: required'
            " — give every child a stable id",
        ),
        (
            lambda s: s["children"][0].update(id="Load_Balancer"),
            "spec.children[0].id: does not match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
            " — use a DNS label",
        ),
        (
            lambda s: s["children"][2].pop("template"),
            "spec.children[2].template: required — add the child's template",
        ),
        (
            lambda s: s["children"][1].update(dependsOn=["load-balancer", "nope"]),
            "dependsOn unknown child id(s) nope",
        ),
        (
            lambda s: s["children"][0].update(dependsOn=["dns"]),
            "dependsOn cycle: dns -> load-balancer -> dns",
        ),
        (
            lambda s: s["routeChildren"][0].update(id="dns"),
            "duplicate child id(s) dns across children and routeChildren",
        ),
        (
            lambda s: s["tls"]["renewBefore"].update(duration="720h"),
            "spec.tls.renewBefore: set exactly one of duration or percentage",
        ),
        (
            lambda s: s["tls"]["maintenanceWindows"][0].update(days=["Tuesday"]),
            "spec.tls.maintenanceWindows[0].days[0]: is not one of",
        ),
        (
            lambda s: s["tls"]["maintenanceWindows"][0].update(start="10pm"),
            "spec.tls.maintenanceWindows[0].start: does not match",
        ),
        (
            lambda s: s["tls"]["maintenanceWindows"][0].update(timezone="Mars/Olympus"),
            "unknown IANA time zone 'Mars/Olympus' — use an IANA time zone name",
        ),
        (
            lambda s: s["tls"]["verify"].update(mode="expression"),
            "spec.tls.verify: mode expression needs an expression",
        ),
        (
            lambda s: s["tls"].update(drainSeconds=-1),
            "spec.tls.drainSeconds: input should be greater than or equal to 0",
        ),
        (lambda s: s.update(childen=[]), "spec.childen: unknown field — remove it or fix"),
    ],
)
def test_blueprint_errors_name_object_field_and_fix(mutate: Any, expected: str) -> None:
    message = _blueprint_error(mutate)
    assert expected in message, message
    assert all(line.startswith('GatewayClassBlueprint "edge": ') for line in message.splitlines())


def test_policy_errors() -> None:
    bad = copy.deepcopy(GATEWAY_CONFIG)
    bad["spec"]["targetRef"] = {"group": "", "kind": "Gateway", "name": "shop"}
    with pytest.raises(InvalidResourceError) as info:
        parse_resource(GatewayConfig, bad)
    assert str(info.value).startswith('GatewayConfig "shop/shop-gateway": spec.targetRef: ')
    assert 'kind Gateway is in group "gateway.networking.k8s.io"' in str(info.value)
    bad["spec"]["targetRef"] = {"group": "", "kind": "Service", "name": "x"}
    with pytest.raises(InvalidResourceError) as info:
        parse_resource(GatewayConfig, bad)
    assert "spec.targetRef.kind: is not one of 'Gateway' or 'Namespace'" in str(
        info.value
    )
    assert "Service" not in str(info.value)  # the rule, never the input (it may be anything)
    del bad["spec"]["targetRef"]
    with pytest.raises(InvalidResourceError) as info:
        parse_resource(GatewayConfig, bad)
    assert "spec.targetRef: required — say which object the values apply to" in str(info.value)


def test_format_validation_error_directly() -> None:
    with pytest.raises(ValidationError) as info:
        GatewayClassBlueprint.model_validate({"spec": {"children": [{"template": "x"}]}})
    assert format_validation_error("GatewayClassBlueprint", "edge", info.value) == (
        'GatewayClassBlueprint "edge": spec.children[0].id: required — give every child a stable id'
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("720h", 720 * 3600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("250ms", 0.25)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("30 days")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s["children"][0].update(dependsOn=["dns"]), "DependencyCycle"),
        (lambda s: s["children"][1].update(dependsOn=["nope"]), "UnknownDependency"),
        (lambda s: s["routeChildren"][0].update(id="dns"), "Invalid"),
        (lambda s: s["children"][0].pop("id"), "Invalid"),
    ],
)
def test_invalid_resource_error_carries_the_status_reason(mutate: Any, reason: str) -> None:
    obj = copy.deepcopy(EDGE_BLUEPRINT)
    mutate(obj["spec"])
    with pytest.raises(InvalidResourceError) as info:
        parse_resource(GatewayClassBlueprint, obj)
    assert info.value.reason == reason
    assert (info.value.kind, info.value.name) == ("GatewayClassBlueprint", "edge")
