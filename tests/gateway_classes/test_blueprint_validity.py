"""A blueprint is valid only if every template and expression compiles to the sandbox — unknown
filters, tests and inputs included, wherever Jinja would defer them to a render — and a class
whose blueprint is not valid resolves to ``InvalidParameters`` with one line naming the
blueprint, the field and the fix. The verdict is computed once per blueprint generation."""

from __future__ import annotations

from typing import Any

import pytest
from support.builders import blueprint, gateway_class

from bifrost.api.conditions import BlueprintReason
from bifrost.controller.classes import resolve_class
from bifrost.controller.informers import Cache
from bifrost.render.compile_check import (
    CERTIFICATE_INPUTS,
    CHILD_INPUTS,
    ROUTE_CHILD_INPUTS,
    unknown_names,
)
from bifrost.status.blueprints import BlueprintVerdicts, blueprint_problems, class_message

OK = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ gateway.metadata.name }}'}\n"


@pytest.mark.parametrize(
    ("source", "inputs", "says"),
    [
        # unknown filter where Jinja only fails when the branch renders
        ("{% if values.on %}\na: {{ values.x | shout }}\n{% endif %}", CHILD_INPUTS,
         ["no filter named 'shout'"]),
        ("{% if values.x is shiny %}a: 1{% endif %}", CHILD_INPUTS, ["no test named 'shiny'"]),
        ("a: {{ valuez.size }}", CHILD_INPUTS,
         ["'valuez' is not an input of this template: it sees only certificates, children, "
          "gateway, values"]),
        # route is an input of route children only, listener of the certificate template only
        ("a: {{ route.metadata.name }}", CHILD_INPUTS, ["'route' is not an input"]),
        ("a: {{ listener.name }}", ROUTE_CHILD_INPUTS, ["'listener' is not an input"]),
        # valid: sandbox filters, globals, loop variables, a set inside a branch
        ("{% for p in values.ports %}{% set q = p %}a: {{ q | to_json }}"
         "{{ loop.index }}{{ range(3) | list | length }}{% endfor %}{{ dict(a=1) | to_json }}",
         CHILD_INPUTS, []),
        ("{% if values.on %}{% set base = gateway.metadata.name | dns_label %}"
         "a: {{ base }}{% endif %}", CHILD_INPUTS, []),
        ("a: {{ route.metadata.name }}", ROUTE_CHILD_INPUTS, []),
        ("a: {{ certificate.name }}{{ listener.name }}{{ source.data }}", CERTIFICATE_INPUTS, []),
    ],
)
def test_unknown_names(source: str, inputs: frozenset[str], says: list[str]) -> None:
    errors = unknown_names(source, child_id="c", field="spec.children[c].template",
                           inputs=inputs)
    assert [e.source for e in errors] == ["spec.children[c].template"] * len(says)
    for text, error in zip(says, errors, strict=True):
        assert text in error.message


def _bp(name: str = "edge-bp", generation: int = 1, **spec: Any) -> dict[str, Any]:
    children = spec.pop("children", [{"id": "config", "template": OK}])
    raw = blueprint(name, children, **spec)
    raw["metadata"].update(uid=f"uid-{name}", generation=generation,
                           resourceVersion=str(generation))
    return raw


def test_blueprint_problems_name_the_child_field_and_line() -> None:
    raw = _bp(children=[{"id": "config", "template": OK},
                        {"id": "waf", "template": "{% if values.on %}\nx: {{ values.a | nope }}\n"
                                                  "{% endif %}"}],
              routeChildren=[{"id": "shadow", "template": "x: {{ gatway.metadata.name }}"}],
              tls={"certificateTemplate": "apiVersion: v1\nkind: X\nmetadata: {name: a}\n"
                                          "spec: {b: {{ cert.name }}}\n"})
    problems = blueprint_problems(raw)
    assert [p.reason for p in problems] == [BlueprintReason.INVALID_TEMPLATE] * 3
    assert "child 'waf' (spec.children[waf].template, line 2): no filter named 'nope'" in \
        problems[0].message
    assert "child 'shadow' (spec.routeChildren[shadow].template, line 1): 'gatway'" in \
        problems[1].message
    assert "spec.tls.certificateTemplate, line 4: 'cert' is not an input" in problems[2].message


def test_class_message_is_one_line_naming_blueprint_field_and_fix() -> None:
    raw = _bp(children=[{"id": "a", "template": "x: {{ values.a | nope }}\n"},
                        {"id": "b", "template": "{{ oops"}])
    problems = blueprint_problems(raw)
    message = class_message("edge-bp", problems)
    assert "\n" not in message
    assert message.startswith('GatewayClassBlueprint "edge-bp" is not valid: child \'a\' '
                              "(spec.children[a].template, line 1)")
    assert "(and 1 more problem(s))" in message
    assert "fix the blueprint" in message
    assert "kubectl describe gatewayclassblueprint edge-bp" in message


def test_verdicts_are_computed_once_per_generation() -> None:
    verdicts = BlueprintVerdicts()
    raw = _bp(generation=1)
    assert verdicts.problems(raw) == ()
    status_written = {**raw, "metadata": {**raw["metadata"], "resourceVersion": "99"}}
    for _ in range(50):  # a fleet of Gateways, a status write: no compile
        assert verdicts.problems(status_written) == ()
    assert verdicts.compiles == 1
    broken = _bp(generation=2, children=[{"id": "config", "template": "{{ oops"}])
    assert [p.reason for p in verdicts.problems(broken)] == [BlueprintReason.INVALID_TEMPLATE]
    assert verdicts.compiles == 2


def test_a_reused_key_with_another_spec_is_checked_again() -> None:
    verdicts = BlueprintVerdicts()
    assert verdicts.problems(_bp(generation=1)) == ()
    other = _bp(generation=1, children=[{"id": "config", "template": "{{ oops"}])
    assert [p.reason for p in verdicts.problems(other)] == [BlueprintReason.INVALID_TEMPLATE]
    assert verdicts.compiles == 2


def test_verdicts_keep_a_bounded_number_of_versions() -> None:
    verdicts = BlueprintVerdicts(size=2)
    for generation in (1, 2, 3):
        verdicts.problems(_bp(generation=generation))
    verdicts.problems(_bp(generation=1))  # evicted: checked again
    assert verdicts.compiles == 4


def test_a_class_with_a_blueprint_that_does_not_compile_is_not_accepted() -> None:
    cache = Cache()
    cache.apply("GatewayClass", "ADDED", gateway_class("edge", "edge-bp"))
    cache.apply("GatewayClassBlueprint", "ADDED", _bp(children=[
        {"id": "config", "template": "{% if values.on %}x: {{ values.a | nope }}{% endif %}"}]))
    gateway_class_obj = cache.get("GatewayClass", "", "edge")
    assert gateway_class_obj is not None
    resolution = resolve_class(cache, gateway_class_obj)
    assert not resolution.accepted and resolution.blueprint is None
    assert resolution.blueprint_name == "edge-bp"
    assert resolution.error is not None
    assert resolution.error.startswith('GatewayClassBlueprint "edge-bp" is not valid: ')
    assert "spec.children[config].template" in resolution.error

    cache.apply("GatewayClassBlueprint", "MODIFIED", _bp(generation=2))
    fixed = resolve_class(cache, gateway_class_obj)
    assert fixed.accepted and fixed.blueprint is not None
