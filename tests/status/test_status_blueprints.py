"""Blueprint status (``bifrost.status.blueprints``): the static checks — schema and graph (as
``resolve_class`` makes them), template syntax (and unknown filters, tests and inputs), CEL
syntax, a certificate template's ``renewBefore``, unknown ``children.<id>`` references,
dependency cycles, the TLS templates and expressions — each naming the child and the field, and
the ``Accepted``/``Valid`` conditions written from them."""

from __future__ import annotations

from typing import Any

import pytest
from status_builders import LATER, NOW

from bifrost.api.conditions import BlueprintReason
from bifrost.status import status_changed
from bifrost.status.blueprints import BlueprintProblem, blueprint_problems, blueprint_status

OK = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ gateway.metadata.name }}'}\n"
CERT = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\n"


def bp(generation: int = 1, **spec: Any) -> dict[str, Any]:
    spec.setdefault("children", [{"id": "config", "template": OK}])
    return {
        "apiVersion": "gateway.bifrost.dev/v1alpha1",
        "kind": "GatewayClassBlueprint",
        "metadata": {"name": "edge", "generation": generation},
        "spec": spec,
    }


def child(id_: str, template: str = OK, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "template": template, **extra}


@pytest.mark.parametrize(
    ("spec", "reasons", "says"),
    [
        # valid: plain, with dependencies (explicit and inferred), route children, TLS, CEL
        ({}, [], []),
        ({"children": [child("lb"), child("dns", "x: {{ children.lb.status }}"),
                       child("hpa", dependsOn=["lb"], readyWhen="object.status.ready == true")],
          "routeChildren": [child("shadow", "x: {{ children.lb.x }}")],
          "addresses": "[]",
          "tls": {"certificateTemplate": CERT, "readyWhen": "object.status.ready",
                  "verify": {"mode": "expression", "expression": "true"}}}, [], []),
        # schema and graph, as resolve_class sees them
        ({"children": [child("lb"), {"id": "dns"}]}, [BlueprintReason.INVALID],
         ['GatewayClassBlueprint "edge": spec.children[1].template: required']),
        ({"children": [child("lb", dependsOn=["db"])]}, [BlueprintReason.UNKNOWN_DEPENDENCY],
         ["'lb' dependsOn unknown child id(s) db"]),
        ({"children": [child("a", dependsOn=["b"]), child("b", dependsOn=["a"])]},
         [BlueprintReason.DEPENDENCY_CYCLE], ["dependsOn cycle: a -> b -> a"]),
        # template syntax and sandbox
        ({"children": [child("lb", "x: {{ values.size "), child("dns")]},
         [BlueprintReason.INVALID_TEMPLATE],
         ["child 'lb' (spec.children[lb].template, line 1): template syntax error"]),
        ({"children": [child("lb", "{% include 'secrets.yaml' %}")]},
         [BlueprintReason.INVALID_TEMPLATE], ["'include' is not allowed"]),
        ({"routeChildren": [child("shadow", "{% for x in %}")]},
         [BlueprintReason.INVALID_TEMPLATE],
         ["child 'shadow' (spec.routeChildren[shadow].template"]),
        # CEL syntax
        ({"children": [child("lb", readyWhen="object.status.ready ==")]},
         [BlueprintReason.INVALID_EXPRESSION],
         ["child 'lb' (spec.children[lb].readyWhen, line 1): invalid CEL expression at column"]),
        ({"addresses": "[children.lb.x"}, [BlueprintReason.INVALID_EXPRESSION],
         ["spec.addresses, line 1: invalid CEL expression"]),
        ({"tls": {"certificateTemplate": "{{ oops", "readyWhen": "(",
                  "secretName": "object.spec.", "verify": {"mode": "expression",
                                                           "expression": "1 +"}}},
         [BlueprintReason.INVALID_TEMPLATE] + [BlueprintReason.INVALID_EXPRESSION] * 3,
         ["spec.tls.certificateTemplate, line 1: template syntax error",
          "spec.tls.readyWhen", "spec.tls.secretName", "spec.tls.verify.expression"]),
        # references and cycles only the templates reveal
        ({"children": [child("dns", "x: {{ children.lb.status }}")]},
         [BlueprintReason.UNKNOWN_DEPENDENCY],
         ["the template reads children.lb, but there is no child with that id"]),
        ({"children": [child("lb", "x: {{ children.lb.status }}")]},
         [BlueprintReason.DEPENDENCY_CYCLE], ["a child cannot depend on itself"]),
        ({"children": [child("a", "x: {{ children.b.x }}"), child("b", dependsOn=["a"])]},
         [BlueprintReason.DEPENDENCY_CYCLE], ["dependency cycle: a → b → a"]),
        # a gateway child cannot read a route child; a route child can read a gateway child
        ({"children": [child("lb", "x: {{ children.shadow }}")],
          "routeChildren": [child("shadow")]}, [BlueprintReason.UNKNOWN_DEPENDENCY],
         ["children.shadow"]),
        # what Jinja defers to a render (an unknown filter in a branch, an unknown test) or
        # never sees (an input the template does not have) is found too
        ({"children": [child("lb", "{% if values.on %}x: {{ values.a | shout }}{% endif %}")]},
         [BlueprintReason.INVALID_TEMPLATE],
         ["child 'lb' (spec.children[lb].template, line 1): no filter named 'shout'"]),
        ({"routeChildren": [child("shadow", "{% if route is fancy %}x: 1{% endif %}")]},
         [BlueprintReason.INVALID_TEMPLATE], ["no test named 'fancy'"]),
        ({"children": [child("lb", "x: {{ route.metadata.name }}")]},
         [BlueprintReason.INVALID_TEMPLATE], ["'route' is not an input of this template"]),
        # a certificate template that would let cert-manager renew before bifrost rotates
        ({"tls": {"certificateTemplate": CERT + "spec: {renewBefore: 1000h}\n"}},
         [BlueprintReason.INVALID_TEMPLATE],
         ["spec.tls.certificateTemplate sets renewBefore: 1000h, so cert-manager would renew"]),
        # several problems: all reported, the first one's reason
        ({"children": [child("lb", "{{ x "), child("dns", readyWhen="!")]},
         [BlueprintReason.INVALID_TEMPLATE, BlueprintReason.INVALID_EXPRESSION],
         ["spec.children[lb].template", "spec.children[dns].readyWhen"]),
    ],
)
def test_blueprint_problems(
    spec: dict[str, Any], reasons: list[BlueprintReason], says: list[str]
) -> None:
    problems = blueprint_problems(bp(**spec))
    assert [p.reason for p in problems] == reasons, problems
    for text, problem in zip(says, problems, strict=False):
        assert text in problem.message


def _conds(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_status_valid_and_used() -> None:
    status = blueprint_status(bp(), problems=[], classes=["edge", "edge-internal", "edge"],
                              now=NOW)
    conds = _conds(status)
    assert conds["Accepted"] == ("True", "Accepted",
                                 'used by GatewayClasses "edge", "edge-internal"')
    assert conds["Valid"][:2] == ("True", "Valid")
    assert status["observedGeneration"] == 1
    assert [c["type"] for c in status["conditions"]] == ["Accepted", "Valid"]


def test_status_valid_but_not_referenced() -> None:
    conds = _conds(blueprint_status(bp(), problems=[], classes=[], now=NOW))
    assert conds["Accepted"][:2] == ("False", "NotReferenced")
    assert conds["Valid"][:2] == ("True", "Valid")


def test_status_invalid_names_every_problem_and_recovers() -> None:
    broken = bp(children=[child("lb", "{{ x ")])
    problems = blueprint_problems(broken)
    status = blueprint_status(broken, problems=problems, classes=["edge"], now=NOW)
    conds = _conds(status)
    assert conds["Accepted"][:2] == ("False", "InvalidTemplate")
    assert conds["Valid"] == conds["Accepted"]
    assert "child 'lb' (spec.children[lb].template, line 1)" in conds["Accepted"][2]
    written = {**broken, "status": status}
    # same verdict later: nothing to write
    assert not status_changed(status, blueprint_status(written, problems=problems,
                                                       classes=["edge"], now=LATER))
    # fixed (a new generation): True, new transition time, new observedGeneration
    fixed = {**bp(generation=2), "status": status}
    healed = blueprint_status(fixed, problems=blueprint_problems(fixed), classes=["edge"],
                              now=LATER)
    assert _conds(healed)["Accepted"][:2] == ("True", "Accepted")
    assert healed["observedGeneration"] == 2
    assert all(c["lastTransitionTime"] == "2026-01-01T13:00:00Z" for c in healed["conditions"])
    assert all(c["observedGeneration"] == 2 for c in healed["conditions"])


def test_long_messages_are_cut_to_the_condition_limit() -> None:
    many = [BlueprintProblem(BlueprintReason.INVALID_TEMPLATE, "x" * 1000)] * 40
    conds = _conds(blueprint_status(bp(), problems=many, classes=[], now=NOW))
    assert len(conds["Valid"][2]) == 32768
