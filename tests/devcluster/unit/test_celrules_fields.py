"""Which fields a node's rules can observe (``validation_rules.fields``): the view handed to CEL
leaves the others out, which is only sound when no rule can see an object whole."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster import validation_rules as celrules
from devcluster.schema import StructuralSchema
from devcluster.validation_rules.fields import observed_fields

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
