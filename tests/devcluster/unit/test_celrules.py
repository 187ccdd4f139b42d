"""CRD validation rules (``validation_rules``): where rules run, what ``self``/``oldSelf`` are,
the error shapes of a v1.31 API server, ratcheting and the cost budget."""

from __future__ import annotations

import copy
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.schema import FieldError, StructuralSchema
from devcluster.validation_rules import validator as celrules

CRDS = Path(__file__).resolve().parents[3] / "devcluster" / "crds"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def shipped(file: str, version: str = "v1") -> StructuralSchema:
    doc = yaml.load((CRDS / file).read_text(), Loader=_LOADER)
    for v in doc["spec"]["versions"]:
        if v["name"] == version:
            return StructuralSchema(v["schema"]["openAPIV3Schema"])
    raise LookupError(version)


def gateways() -> StructuralSchema:
    return shipped("gateway-api/gateway.networking.k8s.io_gateways.yaml")


def schema(spec_properties: dict[str, Any], **root: Any) -> StructuralSchema:
    """A root schema whose ``spec`` has ``spec_properties`` (and ``root`` at the root)."""
    return StructuralSchema(
        {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {"type": "object", "properties": spec_properties},
            },
            **root,
        }
    )


def obj(spec: dict[str, Any], name: str = "x") -> dict[str, Any]:
    return {"apiVersion": "t.io/v1", "kind": "T", "metadata": {"name": name}, "spec": spec}


def rule(text: str, **extra: Any) -> dict[str, Any]:
    return {"rule": text, **extra}


def strings(errors: list[FieldError]) -> list[str]:
    return [str(e) for e in errors]


def gateway(listeners: list[dict[str, Any]]) -> dict[str, Any]:
    s = gateways()
    body = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "g", "namespace": "n"},
        "spec": {"gatewayClassName": "c", "listeners": listeners},
    }
    return s.apply_defaults(body)


# ------------------------------------------------------------------------- the real Gateway CRD


def test_a_valid_gateway_breaks_no_rule() -> None:
    g = gateway(
        [
            {"name": "http", "port": 80, "protocol": "HTTP"},
            {
                "name": "https",
                "port": 443,
                "protocol": "HTTPS",
                "hostname": "a.example.com",
                "tls": {"certificateRefs": [{"name": "cert"}]},
            },
        ]
    )
    assert celrules.check(gateways(), g, None) == []


def test_gateway_listener_rules_report_the_crd_message_at_the_list() -> None:
    g = gateway(
        [
            {"name": "a", "port": 80, "protocol": "HTTP", "tls": {"options": {"k": "v"}}},
            {"name": "a", "port": 443, "protocol": "HTTPS", "tls": {"mode": "Passthrough"}},
        ]
    )
    assert strings(celrules.check(gateways(), g, None)) == [
        'spec.listeners: Invalid value: "array": tls must not be specified for protocols '
        "['HTTP', 'TCP', 'UDP']",
        'spec.listeners: Invalid value: "array": tls mode must be Terminate for protocol HTTPS',
        'spec.listeners: Invalid value: "array": Listener name must be unique within the Gateway',
    ]


def test_a_rule_that_cannot_evaluate_is_an_invalid_value_naming_the_error() -> None:
    # certificateRefs is empty and options absent: the right side of || has no such key
    g = gateway([{"name": "a", "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": []}}])
    [err] = celrules.check(gateways(), g, None)
    assert err == FieldError(
        "FieldValueInvalid",
        'Invalid value: "object": no such key: options evaluating rule: certificateRefs or '
        "options must be specified when mode is Terminate",
        "spec.listeners[0].tls",
    )


def test_an_https_listener_without_tls_passes_the_v1_6_1_rules() -> None:
    # the field's description says tls is required for HTTPS, but no rule of v1.6.1 says so
    g = gateway([{"name": "a", "port": 443, "protocol": "HTTPS"}])
    assert celrules.check(gateways(), g, None) == []


def test_gatewayclass_controller_name_is_immutable_only_on_update() -> None:
    s = shipped("gateway-api/gateway.networking.k8s.io_gatewayclasses.yaml")
    old = {"apiVersion": "x", "kind": "GatewayClass", "metadata": {"name": "c"},
           "spec": {"controllerName": "example.com/a"}}  # fmt: skip
    new = copy.deepcopy(old)
    new["spec"]["controllerName"] = "example.com/b"
    assert celrules.check(s, new, None) == []
    assert strings(celrules.check(s, new, old)) == [
        'spec.controllerName: Invalid value: "string": Value is immutable'
    ]
    assert celrules.check(s, old, copy.deepcopy(old)) == []


def test_issuer_venafi_needs_exactly_one_backend() -> None:
    s = shipped("cert-manager/cert-manager.io_issuers.yaml")
    issuer = {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "i"},
              "spec": {"venafi": {"zone": "z"}}}  # fmt: skip
    assert strings(celrules.check(s, issuer, None)) == [
        'spec.venafi: Invalid value: "object": exactly one of tpp, cloud, or ngts must be '
        "configured"
    ]


# ------------------------------------------------------------------------- where rules run


def test_rules_run_on_the_root_items_map_values_and_allof_branches() -> None:
    s = schema(
        {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"n": {"type": "integer"}},
                    "x-kubernetes-validations": [rule("self.n > 0", message="positive")],
                },
            },
            "limits": {
                "type": "object",
                "additionalProperties": {
                    "type": "integer",
                    "x-kubernetes-validations": [rule("self < 10", message="small")],
                },
            },
            "word": {
                "type": "string",
                "allOf": [{"x-kubernetes-validations": [rule("self != 'no'", message="not no")]}],
            },
        },
        **{"x-kubernetes-validations": [rule("self.metadata.name != 'bad'", message="root")]},
    )
    o = obj({"items": [{"n": 1}, {"n": 0}], "limits": {"cpu": 20}, "word": "no"}, name="bad")
    assert strings(celrules.check(s, o, None)) == [
        '<nil>: Invalid value: "object": root',
        'spec.items[1]: Invalid value: "object": positive',
        'spec.limits[cpu]: Invalid value: "integer": small',
        'spec.word: Invalid value: "string": not no',
    ]


def test_absent_and_null_values_are_not_evaluated() -> None:
    s = schema(
        {
            "opt": {
                "type": "string",
                "nullable": True,
                "x-kubernetes-validations": [rule("self == 'x'")],
            }
        }
    )
    assert celrules.check(s, obj({}), None) == []
    assert celrules.check(s, obj({"opt": None}), None) == []
    assert strings(celrules.check(s, obj({"opt": "y"}), None)) == [
        "spec.opt: Invalid value: \"string\": failed rule: self == 'x'"
    ]


def test_a_schema_without_rules_does_nothing() -> None:
    s = schema({"a": {"type": "string"}})
    assert not celrules.has_rules(s)
    assert celrules.check(s, obj({"a": "x"}), None) == []


# ------------------------------------------------------------------------- what self sees


def test_self_sees_escaped_names_doubles_durations_and_only_name_of_root_metadata() -> None:
    s = schema(
        {
            "namespace": {"type": "string"},
            "a-b": {"type": "string"},
            "ratio": {"type": "number"},
            "timeout": {"type": "string", "format": "duration"},
        },
        **{
            "x-kubernetes-validations": [
                rule("self.spec.__namespace__ == 'ns'", message="escaped keyword"),
                rule("self.spec.a__dash__b == 'v'", message="escaped dash"),
                rule("type(self.spec.ratio) == double", message="double"),
                rule("self.spec.timeout > duration('1m')", message="duration"),
                rule("!has(self.metadata.labels) && self.metadata.name == 'x'", message="meta"),
            ]
        },
    )
    o = obj({"namespace": "ns", "a-b": "v", "ratio": 1, "timeout": "90s"})
    o["metadata"]["labels"] = {"a": "b"}
    assert celrules.check(s, o, None) == []


# ------------------------------------------------------------------------- error shapes


def test_reason_field_path_and_message_expression_shape_the_error() -> None:
    s = schema(
        {
            "a": {
                "type": "object",
                "properties": {"b": {"type": "string"}, "c": {"type": "string"}},
                "x-kubernetes-validations": [
                    rule(
                        "self.b == 'ok'",
                        message="b is bad",
                        reason="FieldValueForbidden",
                        fieldPath=".b",
                    ),  # fmt: skip
                    rule("self.b == 'ok'", message="needed", reason="FieldValueRequired"),
                    rule("self.b == 'ok'", reason="FieldValueDuplicate"),
                    rule("self.b == 'ok'", messageExpression="'b is ' + self.b"),
                    rule("self.b == 'ok'", message="fallback", messageExpression="self.nope"),
                    rule("self.b == 'ok'", message="fallback2", messageExpression="'  '"),
                    rule("self.b == 'ok'", message="fallback3", messageExpression="'a\\nb'"),
                    rule("self.b == 'ok'", message="  trimmed  "),
                ],
            }
        }
    )
    got = celrules.check(s, obj({"a": {"b": "no", "c": "x"}}), None)
    assert [(e.reason, e.field, e.message) for e in got] == [
        ("FieldValueForbidden", "spec.a.b", "Forbidden: b is bad"),
        ("FieldValueRequired", "spec.a", "Required value: needed"),
        ("FieldValueDuplicate", "spec.a", 'Duplicate value: "object"'),
        ("FieldValueInvalid", "spec.a", 'Invalid value: "object": b is no'),
        ("FieldValueInvalid", "spec.a", 'Invalid value: "object": fallback'),
        ("FieldValueInvalid", "spec.a", 'Invalid value: "object": fallback2'),
        ("FieldValueInvalid", "spec.a", 'Invalid value: "object": fallback3'),
        ("FieldValueInvalid", "spec.a", 'Invalid value: "object": trimmed'),
    ]


def test_field_path_into_a_map_uses_a_key_subscript() -> None:
    s = schema(
        {
            "m": {
                "type": "object",
                "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                },
                "x-kubernetes-validations": [
                    rule("!has(self.labels.x)", message="no x", fieldPath=".labels['x']")
                ],
            }
        }
    )
    [err] = celrules.check(s, obj({"m": {"labels": {"x": "1"}}}), None)
    assert err.field == "spec.m.labels[x]"


def test_runtime_errors_are_invalid_values_never_exceptions() -> None:
    s = schema(
        {
            "a": {
                "type": "object",
                "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
                "x-kubernetes-validations": [
                    rule("self.missing == 1", message="m1"),
                    rule("self.n / 0 == 1"),
                    rule("self.s + 1 == 2", message="m3"),
                    rule("self.s.substring(10) == ''", message="m4"),
                    rule("[1][5] == 1", message="m5"),
                    rule("undefinedFn(self)", message="m6"),
                    rule("self.n +", message="m7"),
                ],
            }
        }
    )
    got = strings(celrules.check(s, obj({"a": {"n": 1, "s": "x"}}), None))
    assert got[0] == 'spec.a: Invalid value: "object": no such key: missing evaluating rule: m1'
    assert got[1] == (
        'spec.a: Invalid value: "object": division by zero evaluating rule: self.n / 0 == 1'
    )
    assert got[2] == (
        "spec.a: Invalid value: \"object\": 'no such overload': call arguments did not match a "
        "supported operator, function or macro signature for rule: m3"
    )
    assert got[3].startswith('spec.a: Invalid value: "object": substring: ')
    assert got[3].endswith(" evaluating rule: m4")
    assert got[4].startswith('spec.a: Invalid value: "object": index ')
    assert got[5] == (
        'spec.a: Invalid value: "object": rule compile error: compilation failed: ERROR: '
        "<input>: undeclared reference to 'undefinedFn' (in container '')"
    )
    assert got[6].startswith(
        'spec.a: Invalid value: "object": rule compile error: compilation failed: ERROR: <input>:1:'
    )
    assert len(got) == 7


def test_structural_errors_that_block_rules_give_one_notice_instead() -> None:
    s = schema({"a": {"type": "string", "x-kubernetes-validations": [rule("self == 'x'")]}})
    o = obj({"a": "y"})
    notice = FieldError(
        "FieldValueInvalid",
        'Invalid value: "null": some validation rules were not checked because the object was '
        "invalid; correct the existing errors to complete validation",
        "<nil>",
    )
    required = FieldError("FieldValueRequired", "Required value", "spec.b")
    invalid = FieldError("FieldValueInvalid", 'Invalid value: "y": bad', "spec.a")
    assert celrules.rule_errors(s, o, None, [required]) == [notice]
    assert strings(celrules.rule_errors(s, o, None, [invalid])) == [
        "spec.a: Invalid value: \"string\": failed rule: self == 'x'"
    ]
    assert celrules.rule_errors(schema({}), o, None, [required]) == []


# ------------------------------------------------------------------------- updates


def _immutable_schema() -> StructuralSchema:
    return schema(
        {
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    "x-kubernetes-validations": [
                        rule(
                            "self.port == oldSelf.port",
                            messageExpression="'port of ' + self.name + ' was ' + "
                            "string(oldSelf.port)",
                        )
                    ],
                },
            },
            "tags": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"v": {"type": "string"}},
                    "x-kubernetes-validations": [rule("self.v == oldSelf.v", message="tag")],
                },
            },
        }
    )


def test_map_list_items_correlate_by_key_and_atomic_items_do_not() -> None:
    s = _immutable_schema()
    old = obj({"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}], "tags": [{"v": "x"}]})
    # reordered and one changed; a new item has no old value; atomic items never correlate
    new = obj(
        {
            "ports": [{"name": "c", "port": 9}, {"name": "b", "port": 3}, {"name": "a", "port": 1}],
            "tags": [{"v": "y"}],
        }
    )
    assert strings(celrules.check(s, new, old)) == [
        'spec.ports[1]: Invalid value: "object": port of b was 2'
    ]
    assert celrules.check(s, new, None) == []


def test_optional_old_self_runs_on_create_with_none() -> None:
    s = schema(
        {
            "v": {
                "type": "string",
                "x-kubernetes-validations": [
                    rule(
                        "!oldSelf.hasValue() || oldSelf.value() == self",
                        message="set once",
                        optionalOldSelf=True,
                    ),
                    rule(
                        "oldSelf.hasValue() || self == 'first'",
                        optionalOldSelf=True,
                        message="first value",
                    ),  # fmt: skip
                ],
            }
        }
    )
    assert strings(celrules.check(s, obj({"v": "other"}), None)) == [
        'spec.v: Invalid value: "string": first value'
    ]
    assert celrules.check(s, obj({"v": "first"}), None) == []
    assert strings(celrules.check(s, obj({"v": "second"}), obj({"v": "first"}))) == [
        'spec.v: Invalid value: "string": set once'
    ]


def test_unchanged_values_are_ratcheted_changed_ones_are_not() -> None:
    s = schema(
        {
            "a": {"type": "string", "x-kubernetes-validations": [rule("self.size() < 3")]},
            "b": {"type": "string", "x-kubernetes-validations": [rule("self.size() < 3")]},
        }
    )
    old = obj({"a": "long", "b": "ok"})
    assert strings(celrules.check(s, obj({"a": "long", "b": "also long"}), old)) == [
        'spec.b: Invalid value: "string": failed rule: self.size() < 3'
    ]
    assert len(celrules.check(s, obj({"a": "long", "b": "ok"}), None)) == 1


# ------------------------------------------------------------------------- budget


def _list_schema(text: str, items: dict[str, Any] | None = None, **extra: Any) -> StructuralSchema:
    return schema(
        {
            "xs": {
                "type": "array",
                "items": items or {"type": "integer"},
                "x-kubernetes-validations": [rule(text, message="hostile")],
                **extra,
            }
        }
    )


def test_a_rule_too_costly_for_the_value_is_refused_without_running() -> None:
    s = _list_schema("self.all(a, self.all(b, self.all(c, a + b + c >= 0)))")
    start = time.monotonic()
    got = strings(celrules.check(s, obj({"xs": list(range(2000))}), None))
    assert time.monotonic() - start < 1.0
    assert got == [
        "spec.xs: Invalid value: \"array\": 'operation cancelled: actual cost limit exceeded': no "
        "further validation rules will be run due to call cost exceeds limit for rule: hostile"
    ]
    # the same rule on a small list runs
    assert celrules.check(s, obj({"xs": [1, 2, 3]}), None) == []


def test_a_declared_bound_is_the_cost_without_looking_at_the_value() -> None:
    s = _list_schema("self.all(a, self.all(b, a + b >= 0))", maxItems=5000)
    # bounded by maxItems 5000: 1 + 2 * 5001**2 is over the per-call limit whatever the value
    assert len(celrules.check(s, obj({"xs": [1]}), None)) == 1


def _per_item_schema() -> StructuralSchema:
    return schema(
        {
            "xs": {
                "type": "array",
                "items": {"type": "integer", "x-kubernetes-validations": [rule("self >= 0")]},
            }
        }
    )


_OUT_OF_BUDGET = (
    'Invalid value: "integer": validation failed due to running out of cost budget, no further '
    "validation rules will be run"
)


def test_many_items_with_rules_run_out_of_evaluations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celrules, "MAX_EVALUATIONS", 50)
    got = celrules.check(_per_item_schema(), obj({"xs": [-1] + [1] * 99}), None)
    # the first item's own error, then the walk stops at the 51st evaluation
    assert strings(got) == [
        'spec.xs[0]: Invalid value: "integer": failed rule: self >= 0',
        f"spec.xs[50]: {_OUT_OF_BUDGET}",
    ]


def test_evaluation_stops_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celrules, "DEADLINE_SECONDS", -1.0)
    got = celrules.check(_per_item_schema(), obj({"xs": [1, 2, 3]}), None)
    assert strings(got) == [f"spec.xs[0]: {_OUT_OF_BUDGET}"]


def test_the_object_budget_counts_the_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celrules, "RUNTIME_BUDGET", 10)
    got = celrules.check(_per_item_schema(), obj({"xs": [1] * 20}), None)
    assert strings(got) == [f"spec.xs[10]: {_OUT_OF_BUDGET}"]


@pytest.mark.parametrize("length", [10, 100_000])
def test_regex_rules_are_linear_on_crafted_strings(length: int) -> None:
    s = schema(
        {
            "s": {
                "type": "string",
                "x-kubernetes-validations": [rule("self.matches('^(a+)+$')", message="re")],
            }
        }
    )
    start = time.monotonic()
    got = celrules.check(s, obj({"s": "a" * length + "!"}), None)
    assert time.monotonic() - start < 1.0
    assert strings(got) == ['spec.s: Invalid value: "string": re']


def test_a_schema_that_contains_itself_is_walked_once() -> None:
    # built-in kinds' schemas come from model classes and may be recursive (JSONSchemaProps)
    recursive: dict[str, Any] = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "x-kubernetes-validations": [rule("!has(self.n) || self.n > 0", message="positive")],
    }
    recursive["properties"]["child"] = recursive
    s = StructuralSchema(recursive)
    assert strings(celrules.check(s, {"n": 0, "child": {"n": 1}}, None)) == [
        '<nil>: Invalid value: "object": positive'
    ]


def test_remembered_outcomes_are_placed_at_the_current_path() -> None:
    s = schema(
        {
            "xs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"n": {"type": "integer"}},
                    "x-kubernetes-validations": [
                        rule("self.n > 0", messageExpression="'n is ' + string(self.n)")
                    ],
                },
            }
        }
    )
    items = [{"n": 0}, {"n": 1}, {"n": 0}, {"n": -1}]
    for _ in range(2):  # the second round is answered from the node's memory
        assert strings(celrules.check(s, obj({"xs": items}), None)) == [
            'spec.xs[0]: Invalid value: "object": n is 0',
            'spec.xs[2]: Invalid value: "object": n is 0',
            'spec.xs[3]: Invalid value: "object": n is -1',
        ]
