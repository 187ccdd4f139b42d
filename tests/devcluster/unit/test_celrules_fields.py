"""Which fields a node's rules can observe (``validation_rules.fields``): the view handed to CEL
leaves the others out, which is only sound when no rule can see an object whole."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster import validation_rules as celrules
from devcluster.schema import StructuralSchema
from devcluster.validation_rules.fields import observed, observed_fields
from devcluster.validation_rules.values import Shapes, to_cel

REF: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "extra": {"type": "object", "properties": {"deep": {"type": "string"}}},
    },
}
LISTENERS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "port": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "tls": {
                "type": "object",
                "properties": {"mode": {"type": "string"}, "refs": {"type": "array", "items": REF}},
            },
        },
    },
}


@pytest.mark.parametrize(
    ("rules", "fields"),
    [
        (["self.all(l1, self.exists_one(l2, l1.name == l2.name))"], {"name"}),
        (["self.all(l, !has(l.tls) || l.tls.mode == 'x')"], {"tls", "mode"}),
        (["self.filter(l, l.port == 80).size() <= 1"], {"port"}),
        (["self.all(l, size(l.tls.refs) > 0)"], {"tls", "refs"}),
        (["self.all(l, l.tags.all(t, t.startsWith('a')) && 'x' in l.tags)"], {"tags"}),
        (["self.all(l, l.labels.all(k, k.matches('^a')) && l.labels.size() < 3)"], {"labels"}),
        (
            ["self.all(l, l.tls.refs.all(r, r.__namespace__ == 'n'))"],
            {"tls", "refs", "__namespace__"},
        ),
        (["self[0].name == 'a'"], {"name"}),
        (['self.all(l, l.name == "self == oldSelf")'], {"name"}),
    ],
)
def test_rules_that_only_name_fields_observe_those(rules: list[str], fields: set[str]) -> None:
    assert observed_fields(rules, LISTENERS) == frozenset(fields)


@pytest.mark.parametrize(
    "rule",
    [
        "self.all(l1, self.exists_one(l2, l1 == l2))",  # objects compared
        "self.all(l, l.tls == l.tls)",
        "self.all(l, l.tls.size() > 0)",  # size of an object counts its fields
        "self.all(l, size(l.tls) > 0)",
        "self == oldSelf",
        "self.filter(l, l.port > 0) == self",  # a macro's list used whole
        "self.map(l, l.tls).all(t, t.mode == 'x')",  # a variable over a macro's result
        "self.all(l, l.nosuch == 1)",  # not in the schema
        "self.all(l, string(l.tls) != '')",
        "self[0] in self",
    ],
)
def test_rules_that_may_see_an_object_whole_keep_everything(rule: str) -> None:
    assert observed_fields([rule], LISTENERS) is None


def test_the_trimmed_view_gives_the_same_answers() -> None:
    s = StructuralSchema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "listeners": {
                            **LISTENERS,
                            "x-kubernetes-validations": [
                                {
                                    "rule": "self.all(l, !has(l.tls) || size(l.tls.refs) > 0)",
                                    "message": "refs",
                                },
                                {"rule": "self.all(l, l.port < 1000)", "message": "port"},
                            ],
                        }
                    },
                }
            },
        }
    )
    good = [{"name": "a", "port": 1, "tls": {"refs": [{"name": "r", "extra": {"deep": "x"}}]}}]
    bad = [{"name": "a", "port": 5000, "tls": {"mode": "m", "refs": []}}]
    assert celrules.check(s, {"spec": {"listeners": good}}, None) == []
    assert [e.message for e in celrules.check(s, {"spec": {"listeners": bad}}, None)] == [
        'Invalid value: "array": refs',
        'Invalid value: "array": port',
    ]


@pytest.mark.parametrize(
    ("rules", "counted"),
    [
        (["self.all(l, size(l.tls.refs) > 0)"], {"refs"}),  # tls is looked into
        (["self.all(l, l.tags.size() < 3 && has(l.labels))"], {"tags", "labels"}),
        (["self.all(l, has(l.tls) ? l.tls.mode == 'x' : true)"], set()),
        (["self.all(l, l.tags.size() < 3)", "self.all(l, 'a' in l.tags)"], set()),
        (["self.all(l, size(l.name) < 3)"], set()),  # a string's size needs the string
        (["self.all(l, has(l.port))"], {"port"}),
        (["self[0].tls.refs.size() == 1"], {"refs"}),
    ],
)
def test_fields_whose_size_or_presence_only_is_tested_are_counted(
    rules: list[str], counted: set[str]
) -> None:
    seen = observed(rules, LISTENERS)
    assert seen is not None
    assert seen.counted == frozenset(counted)
    assert seen.counted <= seen.names


def test_counted_fields_are_placeholders_of_the_same_size_and_answers_do_not_change() -> None:
    rules = [
        {"rule": "self.all(l, !has(l.tls) || size(l.tls.refs) > 0)", "message": "refs"},
        {"rule": "self.all(l, !has(l.port) || l.labels.size() <= 1)", "message": "labels"},
    ]
    s = StructuralSchema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"listeners": {**LISTENERS, "x-kubernetes-validations": rules}},
                }
            },
        }
    )
    listeners = s.schema["properties"]["spec"]["properties"]["listeners"]
    seen = observed([r["rule"] for r in rules], listeners)
    assert seen is not None and seen.counted == {"refs", "port", "labels"}
    shape = Shapes().of(listeners, keep=seen.names, counted=seen.counted)
    value = [{"name": "a", "port": 8080, "labels": {"x": "1", "y": "2"}, "tls": {"refs": [REFV]}}]
    assert to_cel(value, shape) == [
        {"port": 0, "labels": {"0": None, "1": None}, "tls": {"refs": [None]}}
    ]
    # differing only inside counted fields: the same view, so the node's memory answers
    other = [
        {"name": "b", "port": 1, "labels": {"p": "q", "r": "s"}, "tls": {"refs": [{"name": "z"}]}}
    ]
    assert to_cel(other, shape) == to_cel(value, shape)
    assert [e.message for e in celrules.check(s, {"spec": {"listeners": value}}, None)] == [
        'Invalid value: "array": labels'
    ]
    fixed = [{**value[0], "labels": {"x": "1"}}, {"name": "c", "tls": {"refs": []}}]
    assert [e.message for e in celrules.check(s, {"spec": {"listeners": fixed}}, None)] == [
        'Invalid value: "array": refs'
    ]


REFV = {"name": "r", "extra": {"deep": "x"}}
