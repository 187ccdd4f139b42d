"""The values schema validator (``bifrost.api.values_schema``), pure: which schemas compile and
which are refused with the keyword's path; what complete values and partial levels break, named
by field path and rule and never quoting the value; tenant keys; patterns in linear time."""

from __future__ import annotations

from typing import Any

import pytest

from bifrost.api.values_schema import (
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES,
    SchemaError,
    compile_schema,
    declares_path,
    join_path,
    tenant_key_violations,
    validate,
    validate_level,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["replicas"],
    "properties": {
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMaximum": True},
        "childClass": {"type": "string", "pattern": "^[a-z0-9-]+$", "maxLength": 20},
        "size": {"type": "string", "enum": ["small", "large"]},
        "debug": {"type": "boolean"},
        "note": {"type": "string", "nullable": True},
        "hosts": {"type": "array", "maxItems": 2, "items": {"type": "string", "minLength": 1}},
        "resources": {
            "type": "object",
            "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}},
            "additionalProperties": False,
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
                   "maxProperties": 2},
        "free": {},
    },
}
S = compile_schema(SCHEMA)


# ---------------------------------------------------------------- compiling


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "string"}, "spec.values.schema.type: the values are a map"),
        ({"type": "object", "format": "int32"}, "unknown keyword 'format'"),
        ({"type": "object", "$ref": "#/x"}, "unknown keyword '$ref'"),
        ({"type": "object", "properties": {"a": {"type": "int"}}},
         "spec.values.schema.properties.a.type: must be one of"),
        ({"type": "object", "properties": {"a": {"type": "string", "maximum": 3}}},
         "properties.a.maximum: only applies to type integer or number, not string"),
        ({"type": "object", "properties": {"a": {"maxLength": 3}}},
         "properties.a.maxLength: only applies to type string — declare the type"),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(a"}}},
         "properties.a.pattern: not an RE2 pattern"),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=a)b"}}},
         "lookaround are not supported"),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": r"(a)\1"}}},
         "not an RE2 pattern"),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "a" * 1025}}},
         "longer than 1024 characters"),
        ({"type": "object", "properties": {"a": {"type": "integer", "minimum": 5,
                                                 "maximum": 1}}},
         "the lower bound is above the upper bound"),
        ({"type": "object", "properties": {"a": {"type": "integer", "minimum": "1"}}},
         "properties.a.minimum: must be a number"),
        ({"type": "object", "properties": {"a": {"type": "string", "maxLength": -1}}},
         "must be a whole number ≥ 0"),
        ({"type": "object", "properties": {"a": {"enum": []}}}, "enum: must be a list of 1 to"),
        ({"type": "object", "required": "a"}, "required: must be a list of key names"),
        ({"type": "object", "additionalProperties": "yes"}, "must be a schema"),
        ({"type": "object", "nullable": "no"}, "nullable: must be true or false"),
        ({"type": "object", "properties": {"a b": {"type": "bogus"}}},
         'spec.values.schema.properties["a b"].type'),
    ],
)
def test_bad_schemas_are_refused_naming_the_keyword(schema: dict[str, Any], says: str) -> None:
    with pytest.raises(SchemaError) as caught:
        compile_schema(schema)
    assert says in str(caught.value)


def test_schema_size_and_depth_are_bounded() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH):
        deep = {"type": "object", "properties": {"x": deep}}
    with pytest.raises(SchemaError, match="nested deeper than"):
        compile_schema(deep)
    wide = {"type": "object",
            "properties": {f"k{i}": {"type": "string"} for i in range(MAX_SCHEMA_NODES)}}
    with pytest.raises(SchemaError, match="more than 512 nodes"):
        compile_schema(wide)
    # just inside the bounds compiles
    compile_schema({"type": "object", "properties": {
        f"k{i}": {"type": "string"} for i in range(MAX_SCHEMA_NODES - 1)}})


# ---------------------------------------------------------------- complete values


GOOD = {"replicas": 3, "ratio": 0.5, "childClass": "edge-1", "size": "small", "debug": False,
        "note": None, "hosts": ["a"], "resources": {"cpu": "1"}, "labels": {"a": "b"},
        "free": {"anything": [1, {"goes": True}]}}


@pytest.mark.parametrize(
    ("change", "path", "rule"),
    [
        ({"replicas": 11}, "values.replicas", "must be an integer ≥ 1 and ≤ 10"),
        ({"replicas": 0}, "values.replicas", "must be an integer ≥ 1 and ≤ 10"),
        ({"replicas": "3"}, "values.replicas", "must be an integer, not a string"),
        ({"replicas": 3.5}, "values.replicas", "must be an integer, not a number"),
        ({"replicas": True}, "values.replicas", "must be an integer, not a boolean"),
        ({"replicas": None}, "values.replicas", "must be an integer, not null"),
        ({"ratio": 1}, "values.ratio", "must be a number ≥ 0 and < 1"),
        ({"ratio": "0.5"}, "values.ratio", "must be a number, not a string"),
        ({"childClass": "Edge"}, "values.childClass", "must match the pattern ^[a-z0-9-]+$"),
        ({"childClass": "a" * 21}, "values.childClass", "must have at most 20 characters"),
        ({"size": "medium"}, "values.size", 'must be one of "small", "large"'),
        ({"debug": "yes"}, "values.debug", "must be a boolean, not a string"),
        ({"hosts": ["a", "b", "c"]}, "values.hosts", "must have at most 2 items"),
        ({"hosts": ["a", ""]}, "values.hosts[1]", "must have at least 1 characters"),
        ({"hosts": "a"}, "values.hosts", "must be a list, not a string"),
        ({"resources": {"gpu": "1"}}, "values.resources.gpu",
         "is not a key the blueprint declares (declared: cpu, memory)"),
        ({"resources": "big"}, "values.resources", "must be a map, not a string"),
        ({"labels": {"a": 1}}, "values.labels.a", "must be a string, not an integer"),
        ({"labels": {"a": "1", "b": "2", "c": "3"}}, "values.labels", "must have at most 2 keys"),
        ({"extra": 1}, "values.extra", "is not a key the blueprint declares"),
    ],
)
def test_complete_values_name_path_and_rule(change: dict[str, Any], path: str,
                                            rule: str) -> None:
    assert validate(S, GOOD, "values") == []
    broken = validate(S, {**GOOD, **change}, "values")
    assert len(broken) == 1, broken
    assert broken[0].path == path
    assert broken[0].rule.startswith(rule)


def test_required_keys_are_checked_in_complete_values_only() -> None:
    assert [str(v) for v in validate(S, {}, "values")] == ["values.replicas: is required"]
    assert validate_level(S, {}, "spec.default") == []


def test_a_level_is_partial_but_what_it_replaces_is_checked_whole() -> None:
    # a map deep-merges: keys are checked one by one, required/maxProperties wait for the merge
    assert validate_level(S, {"resources": {"memory": "1Gi"}}, "spec.default") == []
    assert validate_level(S, {"labels": {"x": "1", "y": "2", "z": "3"}}, "spec.default") == []
    # lists and scalars replace: checked completely
    assert [str(v) for v in validate_level(S, {"hosts": ["a", "b", "c"]}, "spec.override")] == [
        "spec.override.hosts: must have at most 2 items"]
    assert [str(v) for v in validate_level(S, {"resources": {"gpu": 1}}, "spec.default")] == [
        "spec.default.resources.gpu: is not a key the blueprint declares (declared: cpu, memory)"]


HOSTILE = [
    '3"\nkind: Secret\nmetadata:\n  namespace: kube-system',
    "x\n---\nkind: Secret",
    "&a [*a, *a]",
    "!!python/object:os.system",
    "<< : *base",
    "a\u2028b\x85c\x00",
    "secret-token-" + "s" * 5000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_messages_never_quote_the_value(value: str) -> None:
    for broken in (
        validate(S, {**GOOD, "replicas": value, "childClass": value, "size": value}, "values"),
        validate_level(S, {"hosts": [value, value, value], "debug": value}, "spec.default"),
    ):
        assert broken
        for v in broken:
            assert value not in str(v) and value[:8] not in str(v)


def test_keys_in_paths_are_printed_only_when_plain() -> None:
    assert join_path("values", "replicas") == "values.replicas"
    assert join_path("values", "app.kubernetes.io/name") == 'values["app.kubernetes.io/name"]'
    assert join_path("values", 'x"\nkind: Secret') == "values[?]"
    assert join_path("values", "k" * 64) == "values[?]"
    [v] = validate(S, {**GOOD, 'evil"\n': 1}, "values")
    assert v.path == "values[?]" and "evil" not in str(v)


def test_patterns_run_in_linear_time() -> None:
    # (a+)+$ backtracks exponentially in Python's re; RE2 answers at once (pytest-timeout guards)
    schema = compile_schema({"type": "object", "properties": {
        "name": {"type": "string", "pattern": "^(a+)+$"}}})
    value = "a" * 50_000 + "!"
    [v] = validate(schema, {"name": value}, "values")
    assert v.rule == "must match the pattern ^(a+)+$"
    assert validate(schema, {"name": "a" * 50_000}, "values") == []


def test_enum_follows_json_equality() -> None:
    schema = compile_schema({"type": "object", "properties": {"n": {"enum": [1, "two", None]}}})
    assert validate(schema, {"n": 1.0}, "v") == []
    assert validate(schema, {"n": None}, "v") == []
    assert validate(schema, {"n": True}, "v")  # true is not 1
    assert validate(schema, {"n": "1"}, "v")


def test_violations_are_bounded() -> None:
    schema = compile_schema({"type": "object", "additionalProperties": False})
    assert len(validate(schema, {f"k{i}": i for i in range(1000)}, "v")) == 20


# ---------------------------------------------------------------- tenant keys


@pytest.mark.parametrize(
    ("keys", "level", "refused"),
    [
        (["replicas"], {"replicas": 3}, []),
        (["replicas"], {"replicas": 3, "childClass": "x"}, ["spec.default.childClass"]),
        ([], {"replicas": 3}, ["spec.default.replicas"]),
        (["resources"], {"resources": {"cpu": "1", "memory": "1Gi"}}, []),
        (["resources.cpu"], {"resources": {"cpu": "1", "memory": "1Gi"}},
         ["spec.default.resources.memory"]),
        (["resources.cpu"], {"resources": {}}, ["spec.default.resources"]),
        (["replicas"], {}, []),
    ],
)
def test_tenant_keys_cover_their_subtree(keys: list[str], level: dict[str, Any],
                                         refused: list[str]) -> None:
    broken = tenant_key_violations(keys, level, "spec.default")
    assert [v.path for v in broken] == refused
    for v in broken:
        assert "spec.values.tenantKeys" in v.rule


def test_declares_path_knows_which_keys_the_schema_can_admit() -> None:
    assert declares_path(S, "replicas")
    assert declares_path(S, "resources.cpu")
    assert not declares_path(S, "resources.gpu")
    assert not declares_path(S, "nope")
    assert declares_path(S, "labels.anything")  # additionalProperties: schema
    assert declares_path(S, "free.deep.key")  # untyped: anything below
    assert not declares_path(S, "replicas.sub")  # below a scalar
