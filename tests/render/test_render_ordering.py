"""Dependencies (explicit and inferred from the template AST), apply order and delete order."""

from __future__ import annotations

import pytest

from bifrost.render import (
    RenderChild,
    RenderError,
    delete_order,
    dependency_graph,
    inferred_dependencies,
    topological_order,
)

OBJ = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"


def child(
    cid: str, body: str = "", depends_on: tuple[str, ...] = (), delete: int | None = None
) -> RenderChild:
    return RenderChild(id=cid, template=OBJ + body, depends_on=depends_on, delete_order=delete)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("data: {x: '{{ children.lb.status.dns }}'}", ("lb",)),
        ("data: {x: '{{ children[\"lb\"].status.dns }}'}", ("lb",)),
        ("data: {x: \"{{ children['cert-1'].status }}\"}", ("cert-1",)),
        ("data: {x: '{{ children.get(\"lb\") }}'}", ("lb",)),
        ("{% if children.cert %}data: {x: '{{ children.lb.spec }}'}{% endif %}", ("cert", "lb")),
        ("data: {x: '{{ children.lb.a }}{{ children.lb.b }}'}", ("lb",)),
        ("{% set s = children.dns.status %}data: {x: '{{ s }}'}", ("dns",)),
        ("{% for r in children.lb.status.rules %}{% endfor %}", ("lb",)),
        # Not dependencies: comments, string literals, other names, dynamic keys.
        ("{# children.lb #}data: {x: 'children.lb'}", ()),
        ("data: {x: '{{ \"children.lb\" }}'}", ()),
        ("data: {x: '{{ values.children.lb }}'}", ()),
        ("data: {x: '{{ my_children.lb }}'}", ()),
        ("data: {x: '{{ children[values.name] }}'}", ()),
    ],
)
def test_dependencies_are_inferred_from_the_template_ast(
    body: str, expected: tuple[str, ...]
) -> None:
    assert inferred_dependencies(child("me", body)) == expected


def test_explicit_and_inferred_dependencies_combine() -> None:
    children = [
        child("cert"),
        child("lb"),
        child("dns", "data: {x: '{{ children.lb.status }}'}", depends_on=("cert",)),
    ]
    assert dependency_graph(children) == {"cert": (), "lb": (), "dns": ("cert", "lb")}


@pytest.mark.parametrize(
    ("children", "expected"),
    [
        pytest.param([child("a"), child("b"), child("c")], ["a", "b", "c"], id="independent"),
        pytest.param(
            [child("dns", depends_on=("lb",)), child("lb"), child("cert")],
            ["lb", "dns", "cert"],
            id="dependency-first-then-blueprint-order",
        ),
        pytest.param(
            [
                child("listener", depends_on=("lb", "cert")),
                child("cert"),
                child("lb"),
                child("waf", depends_on=("lb",)),
            ],
            ["cert", "lb", "listener", "waf"],
            id="diamond",
        ),
        pytest.param(
            [child("c", "x: '{{ children.b }}'"), child("b", "x: '{{ children.a }}'"), child("a")],
            ["a", "b", "c"],
            id="inferred-chain",
        ),
    ],
)
def test_topological_order_is_stable(children: list[RenderChild], expected: list[str]) -> None:
    assert topological_order(children) == expected


@pytest.mark.parametrize(
    ("children", "cycle"),
    [
        pytest.param([child("a", depends_on=("a",))], None, id="self-explicit"),
        pytest.param(
            [child("a", depends_on=("b",)), child("b", depends_on=("a",))],
            "a → b → a",
            id="two",
        ),
        pytest.param(
            [
                child("x"),
                child("a", "x: '{{ children.c }}'"),
                child("b", depends_on=("a",)),
                child("c", depends_on=("b",)),
            ],
            "a → c → b → a",
            id="three-with-inferred",
        ),
    ],
)
def test_cycles_are_refused_and_named(children: list[RenderChild], cycle: str | None) -> None:
    with pytest.raises(RenderError) as info:
        topological_order(children)
    if cycle is None:
        assert "cannot depend on itself" in info.value.message
    else:
        assert f"dependency cycle: {cycle}" in info.value.message
        assert info.value.child_id == "a"


@pytest.mark.parametrize(
    ("bad", "source", "fragment"),
    [
        (
            child("dns", depends_on=("nope",)),
            "spec.children[dns].dependsOn",
            "dependsOn names 'nope'",
        ),
        (
            child("dns", "x: '{{ children.nope.status }}'"),
            "spec.children[dns].template",
            "the template reads children.nope",
        ),
        (
            child("dns", "x: '{{ children.dns.status }}'"),
            "spec.children[dns].template",
            "its own live state",
        ),
    ],
)
def test_unknown_or_self_ids_are_refused(bad: RenderChild, source: str, fragment: str) -> None:
    with pytest.raises(RenderError) as info:
        dependency_graph([child("lb"), bad])
    assert (info.value.child_id, info.value.source) == ("dns", source)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("children", "expected"),
    [
        pytest.param(
            [child("cert"), child("lb"), child("listener", depends_on=("lb", "cert"))],
            ["listener", "lb", "cert"],
            id="reverse-dependency-order-by-default",
        ),
        pytest.param(
            [child("cert", delete=1), child("lb", delete=5), child("dns", delete=10)],
            ["dns", "lb", "cert"],
            id="explicit-higher-first",
        ),
        pytest.param(
            [child("cert", delete=-1), child("lb"), child("dns", delete=10), child("hpa")],
            ["dns", "hpa", "lb", "cert"],
            id="unset-counts-as-zero-ties-reverse-dependency",
        ),
        pytest.param(
            [child("lb", delete=10), child("dns", depends_on=("lb",))],
            ["lb", "dns"],
            id="explicit-wins-over-dependencies",
        ),
    ],
)
def test_delete_order(children: list[RenderChild], expected: list[str]) -> None:
    assert delete_order(children) == expected
