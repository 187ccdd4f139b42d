"""Policy precedence (DESIGN §2): defaults least → most specific, overrides most general wins."""

from __future__ import annotations

from typing import Any

import pytest

from bifrost.render import deep_merge, explain_values, merge_values
from bifrost.render.merge import PRECEDENCE

LEVELS = (
    "blueprint_defaults",
    "class_defaults",
    "namespace_defaults",
    "gateway_defaults",
    "gateway_overrides",
    "namespace_overrides",
    "class_overrides",
    "blueprint_overrides",
)

# (case, {level: values}, expected merged values)
PRECEDENCE_TABLE: list[tuple[str, dict[str, dict[str, Any]], dict[str, Any]]] = [
    ("nothing set", {}, {}),
    (
        "blueprint default alone",
        {"blueprint_defaults": {"scheme": "internal"}},
        {"scheme": "internal"},
    ),
    (
        "class default beats blueprint default",
        {
            "blueprint_defaults": {"scheme": "internal"},
            "class_defaults": {"scheme": "internet-facing"},
        },
        {"scheme": "internet-facing"},
    ),
    (
        "namespace default beats class default",
        {"class_defaults": {"scheme": "a"}, "namespace_defaults": {"scheme": "b"}},
        {"scheme": "b"},
    ),
    (
        "gateway default beats namespace default",
        {"namespace_defaults": {"scheme": "b"}, "gateway_defaults": {"scheme": "c"}},
        {"scheme": "c"},
    ),
    (
        "most specific default wins over all defaults",
        {
            "blueprint_defaults": {"x": 1},
            "class_defaults": {"x": 2},
            "namespace_defaults": {"x": 3},
            "gateway_defaults": {"x": 4},
        },
        {"x": 4},
    ),
    (
        "any override beats every default",
        {"gateway_defaults": {"x": "default"}, "gateway_overrides": {"x": "override"}},
        {"x": "override"},
    ),
    (
        "namespace override beats gateway override",
        {"gateway_overrides": {"x": "gw"}, "namespace_overrides": {"x": "ns"}},
        {"x": "ns"},
    ),
    (
        "class override beats namespace override",
        {"namespace_overrides": {"x": "ns"}, "class_overrides": {"x": "class"}},
        {"x": "class"},
    ),
    (
        "blueprint override beats class override",
        {"class_overrides": {"x": "class"}, "blueprint_overrides": {"x": "bp"}},
        {"x": "bp"},
    ),
    (
        "most general override wins over every level",
        {level: {"x": level} for level in LEVELS},
        {"x": "blueprint_overrides"},
    ),
    (
        "nested maps deep-merge across levels",
        {
            "blueprint_defaults": {"lb": {"scheme": "internal", "idleTimeout": 60}},
            "namespace_defaults": {"lb": {"idleTimeout": 120, "logs": {"enabled": True}}},
            "gateway_defaults": {"lb": {"logs": {"bucket": "b1"}}},
        },
        {
            "lb": {
                "scheme": "internal",
                "idleTimeout": 120,
                "logs": {"enabled": True, "bucket": "b1"},
            }
        },
    ),
    (
        "nested override replaces only its leaf",
        {
            "gateway_defaults": {"waf": {"enabled": False, "arn": "arn:gw"}},
            "class_overrides": {"waf": {"enabled": True}},
        },
        {"waf": {"enabled": True, "arn": "arn:gw"}},
    ),
    (
        "lists replace, never append",
        {
            "blueprint_defaults": {"cidrs": ["10.0.0.0/8", "192.168.0.0/16"]},
            "gateway_defaults": {"cidrs": ["172.16.0.0/12"]},
        },
        {"cidrs": ["172.16.0.0/12"]},
    ),
    (
        "an empty list from a more specific default removes entries",
        {"class_defaults": {"cidrs": ["10.0.0.0/8"]}, "gateway_defaults": {"cidrs": []}},
        {"cidrs": []},
    ),
    (
        "override list replaces the gateway's list",
        {
            "gateway_defaults": {"cidrs": ["0.0.0.0/0"]},
            "class_overrides": {"cidrs": ["10.0.0.0/8"]},
        },
        {"cidrs": ["10.0.0.0/8"]},
    ),
    (
        "a map replaces a scalar",
        {"blueprint_defaults": {"tls": "off"}, "gateway_defaults": {"tls": {"mode": "strict"}}},
        {"tls": {"mode": "strict"}},
    ),
    (
        "a scalar replaces a map",
        {"blueprint_defaults": {"tls": {"mode": "strict"}}, "namespace_overrides": {"tls": "off"}},
        {"tls": "off"},
    ),
    (
        "null is a value that replaces",
        {"blueprint_defaults": {"arn": "x"}, "gateway_defaults": {"arn": None}},
        {"arn": None},
    ),
    (
        "disjoint keys from all levels are kept",
        {level: {level: True} for level in LEVELS},
        {level: True for level in LEVELS},
    ),
    (
        "gateway default under class override, nested",
        {
            "blueprint_defaults": {"acl": {"allow": ["a"], "deny": ["b"]}},
            "gateway_defaults": {"acl": {"allow": ["gw"]}},
            "gateway_overrides": {"acl": {"deny": ["gw-deny"]}},
            "class_overrides": {"acl": {"deny": ["class-deny"]}},
        },
        {"acl": {"allow": ["gw"], "deny": ["class-deny"]}},
    ),
]


@pytest.mark.parametrize(
    ("levels", "expected"),
    [pytest.param(levels, expected, id=case) for case, levels, expected in PRECEDENCE_TABLE],
)
def test_policy_precedence(levels: dict[str, dict[str, Any]], expected: dict[str, Any]) -> None:
    assert merge_values(**levels) == expected


def test_precedence_order_is_defaults_specific_last_then_overrides_general_last() -> None:
    assert PRECEDENCE == (
        "blueprint.defaults",
        "class.defaults",
        "namespace.defaults",
        "gateway.defaults",
        "gateway.overrides",
        "namespace.overrides",
        "class.overrides",
        "blueprint.overrides",
    )


def test_explain_names_the_level_that_set_each_leaf() -> None:
    merged = explain_values(
        blueprint_defaults={"lb": {"scheme": "internal", "idle": 60}, "cidrs": ["a"]},
        gateway_defaults={"lb": {"idle": 120}, "cidrs": ["b"]},
        class_overrides={"lb": {"scheme": "internet-facing"}},
        namespace_defaults={"tags": {}},
    )
    assert merged.explain("lb.scheme") == "class.overrides"
    assert merged.explain("lb.idle") == "gateway.defaults"
    assert merged.explain(("cidrs",)) == "gateway.defaults"
    assert merged.explain("tags") == "namespace.defaults"
    assert merged.explain("nope") is None


def test_explain_forgets_leaves_under_a_replaced_map() -> None:
    merged = explain_values(
        blueprint_defaults={"tls": {"mode": "strict", "min": "1.2"}},
        class_overrides={"tls": "off"},
    )
    assert merged.values == {"tls": "off"}
    assert dict(merged.provenance) == {("tls",): "class.overrides"}


def test_empty_map_does_not_claim_a_non_empty_map() -> None:
    merged = explain_values(blueprint_defaults={"a": {"b": 1}}, gateway_defaults={"a": {}})
    assert merged.values == {"a": {"b": 1}}
    assert merged.explain("a.b") == "blueprint.defaults"


def test_deep_merge_does_not_modify_or_alias_its_inputs() -> None:
    base = {"a": {"b": [1, 2]}, "c": 1}
    top = {"a": {"d": {"e": 1}}}
    merged = deep_merge(base, top)
    merged["a"]["b"].append(3)
    merged["a"]["d"]["e"] = 2
    assert base == {"a": {"b": [1, 2]}, "c": 1}
    assert top == {"a": {"d": {"e": 1}}}
