"""CEL rules translated to Python (``validation_rules.python_rules``): a translated rule may only
say ``True`` where the ``cel`` package says ``true`` for the same view, so the validator's fast
path can skip ``cel`` for values that pass. Checked against ``cel`` itself, rule by rule, on
random views of every node of the shipped CRDs that carries rules, and on the edge cases where
Python and CEL differ (types, sizes, overflow, error absorption, map order)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import cel
import pytest
import yaml

from devcluster.validation_rules import fields as cel_fields
from devcluster.validation_rules import library as cel_library
from devcluster.validation_rules.python_rules import Unsure, translate, translate_raw
from devcluster.validation_rules.source import route_matches
from devcluster.validation_rules.values import Shape, Shapes, to_cel

CRDS = Path(__file__).resolve().parents[3] / "devcluster" / "crds"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Schema = dict[str, Any]


def cel_result(rule: str, view: Any) -> Any:
    """What the ``cel`` package says (``"error"`` when it raises), as the validator runs it."""
    ctx = cel_library.new_context()
    ctx.add_variable("self", view)
    try:
        return cel.compile(route_matches(rule)).execute(ctx)
    except Exception:  # noqa: BLE001 - any runtime error is an error
        return "error"


def python_result(rule: str, view: Any) -> Any:
    fn = translate(rule)
    assert fn is not None, rule
    try:
        return fn(view)
    except Exception:  # noqa: BLE001 - Unsure, or a missing key or a wrong type
        return "unsure"


# ------------------------------------------------------------------------- the shipped CRDs


def rule_nodes() -> list[tuple[bool, Schema, Shape | None, list[str]]]:
    """Every schema node of the shipped CRDs with rules: (whether it is a resource root,
    schema, view shape, rules)."""
    out: list[tuple[bool, Schema, Shape | None, list[str]]] = []
    shapes = Shapes()

    def walk(s: Any, root: bool, file: str) -> None:
        if not isinstance(s, dict):
            return
        rules = [r["rule"] for r in s.get("x-kubernetes-validations") or () if r.get("rule")]
        if rules:
            seen = cel_fields.observed(rules, s)
            shape = (
                shapes.of(s, resource_root=root)
                if seen is None
                else shapes.of(s, resource_root=root, keep=seen.names, counted=seen.counted)
            )
            out.append((root, s, shape, rules))
        for sub in (s.get("properties") or {}).values():
            walk(
                sub, isinstance(sub, dict) and bool(sub.get("x-kubernetes-embedded-resource")), file
            )
        for key in ("items", "additionalProperties"):
            walk(s.get(key), False, file)

    for path in sorted(CRDS.glob("*/*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            for version in (doc or {}).get("spec", {}).get("versions") or ():
                walk(version["schema"]["openAPIV3Schema"], True, path.name)
    return out


STRINGS = [
    "", "a", "/", "/a", "a//b", "/./", "/../x", "%2f", "#", "/a/..", "/.", "*", "*.example.com",
    "Example.com", "é", "a-b.c", "x" * 70, "0", "Service", "Gateway", "HTTP", "HTTPS", "TLS",
    "TCP", "UDP", "Terminate", "Passthrough", "PathPrefix", "Exact", "RegularExpression",
    "ReplaceFullPath", "ReplacePrefixMatch", "CORS", "RequestHeaderModifier", "RequestRedirect",
    "URLRewrite", "1s", "10ms", "IPAddress", "Hostname", "https", "gateway.networking.k8s.io",
    "a/b",
]  # fmt: skip


def generate(s: Any, rnd: random.Random, depth: int = 0) -> Any:
    """A random value for schema ``s``: enum values, edge strings and ints, missing fields,
    duplicate list items."""
    if not isinstance(s, dict) or depth > 7:
        return rnd.choice(STRINGS)
    if s.get("x-kubernetes-int-or-string"):
        return rnd.choice([rnd.choice(STRINGS), rnd.randint(-2, 100)])
    if "enum" in s and rnd.random() < 0.7:
        return rnd.choice(s["enum"])
    t = s.get("type")
    if t == "string":
        return rnd.choice(STRINGS)
    if t == "integer":
        return rnd.choice([0, 1, 2, 80, 443, -1, 65535, 1000, 2**62])
    if t == "number":
        return rnd.choice([0, 1, 0.5, 2])
    if t == "boolean":
        return rnd.random() < 0.5
    if t == "array" or "items" in s:
        items = [generate(s.get("items"), rnd, depth + 1) for _ in range(rnd.choice([0, 1, 2, 3]))]
        if items and rnd.random() < 0.3:
            items.append(items[0])
        return items
    required = s.get("required") or ()
    props = s.get("properties") or {}
    if props:
        return {
            k: generate(v, rnd, depth + 1)
            for k, v in props.items()
            if rnd.random() < (0.8 if k in required else 0.45)
        }
    if isinstance(s.get("additionalProperties"), dict):
        keys = ["a", "b/c", "x.io/y", "-bad"]
        return {rnd.choice(keys): generate(s["additionalProperties"], rnd, depth + 1) for _ in "ab"}
    return {}


def test_translated_shipped_rules_never_say_true_where_cel_does_not() -> None:
    rnd = random.Random(12)
    outcomes: Counter[tuple[str, str]] = Counter()
    rules = untranslated = 0
    wrong: list[tuple[str, Any, Any, Any]] = []
    for _root, s, shape, node_rules in rule_nodes():
        views = [to_cel(generate(s, rnd), shape) for _ in range(40)]
        for rule in node_rules:
            rules += 1
            if translate(rule) is None:
                untranslated += 1
                continue
            for view in views:
                py, c = python_result(rule, view), cel_result(rule, view)
                outcomes[(str(py), str(c))] += 1
                if (py is True and c is not True) or (py is False and c is not False):
                    wrong.append((rule, view, py, c))
    assert wrong == []
    assert rules > 200 and untranslated < 20  # the fast path covers nearly every shipped rule
    # and it is sure of most values CEL accepts
    assert outcomes[("True", "True")] > 10 * outcomes[("unsure", "True")]


# ------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize(
    ("rule", "view"),
    [
        ("size(self) == 2", "é"),  # the cel package counts UTF-8 bytes
        ("self.size() < 2", "é"),
        ("self.x == 1", {"x": True}),  # a bool is not an int
        ("self.x != 1", {"x": 1.0}),
        ("self.x in [1, 2]", {"x": True}),
        ("self + 1 > 0", 2**63 - 1),  # int64 overflow
        ("self - 1 < 0", -(2**63)),
        ("-self > 0", -(2**63)),
        ("has(self.a) || self.b", {"b": True}),  # an error that CEL may absorb
        ("self.a || true", {}),
        ("self.all(x, x.a) ", [{"a": True}, {}]),
        ("self.filter(k, true)[0] == 'a'", {"b": 1, "a": 2}),  # a map's keys have no order
        ("self.map(k, k).size() == 2", {"b": 1, "a": 2}),
        ("self[3] == 1", [1]),
        ("self['k'] == 1", {"j": 1}),
        ("self < 1.5", 1),
        ("self.x", {"x": 1}),
        ("self.startsWith(1)", "a"),
        ("self.matches('(')", "a"),
        ("self > 0.0", float("nan")),
    ],
)
def test_edge_cases_are_never_true_where_cel_is_not(rule: str, view: Any) -> None:
    py = python_result(rule, view) if translate(rule) is not None else "untranslated"
    assert py is not True or cel_result(rule, view) is True, (py, cel_result(rule, view))


@pytest.mark.parametrize(
    ("rule", "view"),
    [
        ("self.type in ['Exact','PathPrefix'] ? self.value.startsWith('/') : true",
         {"type": "PathPrefix", "value": "/a"}),
        ("self.all(l1, self.exists_one(l2, l1.name == l2.name))", [{"name": "a"}, {"name": "b"}]),
        ("self.filter(f, f.type == 'CORS').size() <= 1", [{"type": "CORS"}, {"type": "X"}]),
        ("(self.size() > 0 ? self[0].m.size() : 0) + (self.size() > 1 ? 1 : 0) <= 16",
         [{"m": [None, None]}]),
        ("!(has(self.cors) && self.type != 'CORS')", {"type": "X"}),
        ('self.value.matches(r"""^(\\*\\.)?[a-z0-9]+$""")', {"value": "*.abc"}),
        ("self.all(k, k.startsWith('a')) && !self.exists(k, k == 'b')", {"a1": 1, "a2": 2}),
        ("self.__namespace__ == 'n' && size(self.x) == 3 && -1 < 0x10",
         {"__namespace__": "n", "x": "abc"}),
        ("'''a\\nb''' == \"a\\nb\" && r'a\\' == 'a\\\\' // a comment", None),
        ("[1, 2, ].size() == 2 && null == null && self.a + 'b' == 'ab'", {"a": "a"}),
        ("self.x.size() == 0 ? true : self.x[0] >= 'a'", {"x": []}),
    ],
)  # fmt: skip
def test_the_subset_is_proven_true_like_cel(rule: str, view: Any) -> None:
    assert cel_result(rule, view) is True
    assert python_result(rule, view) is True


def test_a_false_rule_is_false_or_unsure_never_true() -> None:
    view = {"type": "PathPrefix", "value": "a//b"}
    rule = "(self.type in ['Exact','PathPrefix']) ? !self.value.contains('//') : true"
    assert cel_result(rule, view) is False
    assert python_result(rule, view) is False


@pytest.mark.parametrize(
    "rule",
    [
        "self == oldSelf",  # transition rules
        "duration(self) > duration('1s')",
        "self.x == 1.5",  # doubles
        "self == 1u",
        "self == b'a'",
        "self == {'a': 1}",
        "sets.contains(self, ['a'])",
        "format.dns1123Label().validate(self).hasValue()",
        "isURL(self)",
        "self.split('/').size() == 2",
        "self == '\\x41'",  # escapes beyond the common ones
        "self * 2 > 1",
        "self.map(x, x, x).size() > 0",
        "has(self)",
        "self.x.y(",  # not CEL at all
    ],
)
def test_rules_outside_the_subset_are_not_translated(rule: str) -> None:
    assert translate(rule) is None


def test_several_rules_translate_to_one_conjunction() -> None:
    both = translate("self.a == 1", "self.b.startsWith('x')")
    assert both is not None
    assert both({"a": 1, "b": "xy"}) is True
    assert both({"a": 2, "b": "xy"}) is False
    with pytest.raises(Unsure):
        both({"a": 1, "b": 3})
    with pytest.raises(KeyError):
        both({"b": "x"})
    assert translate("self.a == 1", "oldSelf == self") is None


# ------------------------------------------------------------------------- stored values


def test_translated_shipped_nodes_on_stored_values_never_say_true_where_cel_does_not() -> None:
    """``translate_raw`` reads the stored JSON, not the view: True must still mean that CEL
    says true for every rule of the node on its view."""
    rnd = random.Random(21)
    translated = proven = 0
    wrong: list[tuple[list[str], Any]] = []
    for root, s, shape, node_rules in rule_nodes():
        fn = translate_raw(tuple(node_rules), s, root)
        if fn is None:
            continue
        translated += 1
        for _ in range(40):
            value = generate(s, rnd)
            try:
                py = fn(value)
            except Exception:  # noqa: BLE001 - not sure
                continue
            view = to_cel(value, shape)
            passes = all(cel_result(rule, view) is True for rule in node_rules)
            proven += py is True
            if py is True and not passes:
                wrong.append((node_rules, value))
    assert wrong == []
    assert translated > 70 and proven > 1000


OBJECT: Schema = {
    "type": "object",
    "properties": {
        "namespace": {"type": "string"},
        "my-port": {"type": "integer"},
        "weight": {"type": "number"},
        "timeout": {"type": "string", "format": "duration"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "ref": {"type": "object", "properties": {"name": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "weights": {"type": "array", "items": {"type": "number"}},
        "inner": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {}},
        "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("self.__namespace__ == 'n'", {"namespace": "n"}),  # escaped names: their JSON name
        ("self.my__dash__port == 80", {"my-port": 80}),
        ("self.labels.all(k, k.startsWith('a')) && self.labels['a-b'] == 'x'",
         {"labels": {"a-b": "x"}}),
        ("has(self.labels.x) && !has(self.ref.name) && size(self.labels) == 1",
         {"labels": {"x": "y"}, "ref": {}}),
        ("self.tags.exists(t, t == 'a') && 'a' in self.tags && self.tags[0] == 'a'",
         {"tags": ["a"]}),
    ],
)  # fmt: skip
def test_stored_values_are_read_through_the_schema(rule: str, value: Any) -> None:
    fn = translate_raw((rule,), OBJECT, False)
    assert fn is not None
    assert fn(value) is True
    shape = Shapes().of(OBJECT)
    assert cel_result(rule, to_cel(value, shape)) is True


@pytest.mark.parametrize(
    ("rule", "resource_root"),
    [
        ("self.weight > 0.5", False),  # CEL sees a double
        ("self.weights.all(w, w > 0)", False),
        ("1 in self.weights", False),
        ("self.timeout != ''", False),  # CEL sees a duration
        ("has(self.inner.x)", False),  # an embedded resource shows only part of its metadata
        ("self.metadata.name == 'x'", True),  # so does the root
        ("size(self.ref) == 0", False),  # an object's view may hide properties
        ("self.ref.all(k, k == 'name')", False),
        ("self.nosuch == 1", False),  # not in the schema
        ("self.labels.filter(k, true).size() == 0 && self == oldSelf", False),
    ],
)
def test_stored_values_are_not_read_where_cel_sees_them_otherwise(
    rule: str, resource_root: bool
) -> None:
    assert translate_raw((rule,), OBJECT, resource_root) is None


def test_the_root_metadata_is_left_to_the_view_but_other_root_fields_are_read() -> None:
    assert translate_raw(("self.metadata.name == 'x'",), OBJECT, False) is not None
    fn = translate_raw(("self.__namespace__ == 'n'",), OBJECT, True)
    assert fn is not None and fn({"namespace": "n", "metadata": {"name": "x"}}) is True
