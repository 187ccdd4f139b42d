"""Printed values are inserted as data: they never become YAML syntax (issue: tenant safety)."""

from __future__ import annotations

from typing import Any

import pytest

from bifrost.render import RenderError
from bifrost.render.model import RenderChild
from bifrost.render.templates import render_child

HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"


def render(template: str, **values: Any) -> dict[str, Any] | None:
    return render_child(RenderChild(id="c", template=template), {"values": values})


def error(template: str, **values: Any) -> RenderError:
    with pytest.raises(RenderError) as info:
        render(template, **values)
    return info.value


INJECTIONS = [
    '3"\nkind: Secret\nmetadata:\n  name: injected\n  namespace: kube-system\nx: "',
    "3'\nkind: Secret\nmetadata: {name: injected, namespace: kube-system}\nx: '",
    "3\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: injected, namespace: kube-system}\n",
    "3\n...\n---\nkind: Secret\n",
    "{kind: Secret}",
    "[a, b]",
    "&a x",
    "*a",
    "!!python/object:os.system x",
    "<<: {kind: Secret}",
    "3\u2028kind: Secret",
    "3\x85kind: Secret",
    "a\x00b",
    "0x10",
    "yes",
    "1e3",
    "~",
    "null",
    "2026-01-01",
    "  leading and trailing  ",
    "# not a comment",
    "key: value",
]


@pytest.mark.parametrize("value", INJECTIONS, ids=range(len(INJECTIONS)))
@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ('  replicas: "{{ values.v }}"\n', lambda v: v),
        ("  replicas: '{{ values.v }}'\n", lambda v: v),
        ("  replicas: {{ values.v }}\n", lambda v: v),
        ("  replicas: x-{{ values.v }}-y\n", lambda v: f"x-{v}-y"),
        ('  replicas: {"a": "{{ values.v }}"}\n', lambda v: {"a": v}),
        ("  replicas: |\n    {{ values.v }}\n", lambda v: v + "\n"),
        ("  replicas: [{{ values.v }}]\n", lambda v: [v]),
    ],
    ids=["double-quoted", "single-quoted", "plain", "inside", "flow-map", "block", "flow-seq"],
)
def test_a_value_lands_verbatim_and_changes_nothing_else(
    value: str, position: str, expected: Any
) -> None:
    obj = render(HEAD + "data:\n" + position, v=value)
    assert obj is not None
    assert obj["kind"] == "ConfigMap"
    assert obj["metadata"] == {"name": "cm"}
    assert set(obj) == {"apiVersion", "kind", "metadata", "data"}
    assert obj["data"] == {"replicas": expected(value)}


@pytest.mark.parametrize(
    ("printed", "value", "expected"),
    [
        ("{{ values.v }}", 3, 3),
        ("{{ values.v }}", 1.5, 1.5),
        ("{{ values.v }}", True, True),
        ("{{ values.v }}", "0x10", "0x10"),
        ("{{ values.v }}", "123", "123"),
        ('"{{ values.v }}"', 3, "3"),
        ("{{ values.v | to_json }}", ["a", {"b": 1}], ["a", {"b": 1}]),
        ("'{{ values.v | to_json }}'", ["a"], '["a"]'),
        ("{{ values.v | to_json }}", False, False),
        ("{{ values.v | to_yaml | indent(4) }}", {"k": [1, 2]}, {"k": [1, 2]}),
        ("{{ values.v | int }}", "7", 7),
        ("port-{{ values.v }}", 80, "port-80"),
    ],
)
def test_whole_plain_values_keep_their_type(printed: str, value: Any, expected: Any) -> None:
    obj = render(HEAD + f"spec:\n  x: {printed}\n", v=value)
    assert obj is not None and obj["spec"] == {"x": expected}


def test_author_literals_still_resolve_as_yaml() -> None:
    obj = render(HEAD + "spec: {port: 80, enabled: true, ratio: 0.5, name: edge}\n")
    assert obj is not None and obj["spec"] == {"port": 80, "enabled": True, "ratio": 0.5,
                                               "name": "edge"}


def test_block_scalar_values_lose_only_the_block_indentation() -> None:
    script = "line one\n  indented\nline three"
    obj = render(HEAD + "data:\n  a: |\n    {{ values.s | indent(4) }}\n"
                 "  b: |\n    {{ values.s }}\n", s=script)
    assert obj is not None
    assert obj["data"] == {"a": script + "\n", "b": script + "\n"}


def test_indent_keeps_nested_yaml_in_a_block_scalar_right() -> None:
    obj = render(HEAD + "data:\n  c.yaml: |\n    server:\n      labels:\n"
                 "        {{ values.m | to_yaml | indent(8) }}\n", m={"a": 1, "b": 2})
    assert obj is not None
    assert obj["data"] == {"c.yaml": "server:\n  labels:\n    a: 1\n    b: 2\n"}


def test_block_scalar_with_to_yaml_and_indent() -> None:
    obj = render(HEAD + "data:\n  c.yaml: |\n    {{ values.m | to_yaml | indent(4) }}\n",
                 m={"b": 1, "a": [1, 2]})
    assert obj is not None and obj["data"] == {"c.yaml": "b: 1\na:\n- 1\n- 2\n"}


def test_a_value_as_key_cannot_override_an_author_key() -> None:
    err = error(HEAD.replace("  name: cm\n", "  {{ values.k }}: x\n  name: cm\n"), k="name")
    assert "duplicate key" in err.message


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        (HEAD + "data: {a: 1, a: 2}\n", "duplicate key 'a'"),
        (HEAD + "data:\n  a: &x 1\n  b: *x\n", "anchors"),
        (HEAD + "data:\n  a: !!str 1\n", "explicit YAML tags"),
        (HEAD + "data:\n  a: !custom 1\n", "explicit YAML tags"),
        (HEAD + "data:\n  <<: {a: 1}\n", "merge keys"),
    ],
)
def test_strict_yaml_refuses_what_the_author_should_not_rely_on(
    template: str, fragment: str
) -> None:
    assert fragment in error(template).message


@pytest.mark.parametrize(
    ("template", "word"),
    [
        ("{% macro m() %}x{% endmacro %}" + HEAD, "macro"),
        ("{% set x %}{{ values.v }}{% endset %}" + HEAD, "block set"),
        ("{% filter upper %}" + HEAD + "{% endfilter %}", "filter block"),
    ],
)
def test_blocks_that_capture_printed_text_are_refused(template: str, word: str) -> None:
    assert f"'{word}' is not allowed" in error(template, v="x").message


def test_error_messages_never_quote_a_value() -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----"
    cases = [
        HEAD + "data:\n  k: {{ values.s }}: x\n",  # the author's YAML is broken on that line
        HEAD + "data:\n  k: {{ values.s + 1 }}\n",  # a TypeError with the value around
        HEAD + "data:\n  k: {{ values.s.encode('ascii', 'strict') }}\n",
        HEAD + "data:\n  {{ values.s }}: 1\n  {{ values.s }}: 2\n",
    ]
    for template in cases:
        err = error(template, s=secret + "é")
        assert "MIIsecret" not in str(err) and "PRIVATE" not in str(err), str(err)


def test_undefined_value_given_to_to_json_names_the_variable() -> None:
    err = error(HEAD + "data:\n  k: {{ values.missing | to_json }}\n")
    assert "missing" in err.message and "JSON serializable" not in err.message


def test_computed_names_in_undefined_and_missing_field_messages_are_masked() -> None:
    from bifrost.render import evaluate_expression, evaluate_ready
    from bifrost.render.expressions import NotAvailable

    err = error(HEAD + "data:\n  k: {{ values[values.s] }}\n", s="MIIsecretkey")
    assert "MIIsecretkey" not in str(err) and "undefined value" in err.message
    err = error(HEAD + "data:\n  k: {{ values.nope }}\n", s="x")
    assert "'nope'" in err.message  # a name the template spells is shown
    child = RenderChild(id="c", template="x", ready_when="object.data[object.data.k] == 'x'")
    ready = evaluate_ready(child, {"data": {"k": "MIIsecretkey"}})
    assert not ready.ready and "MIIsecretkey" not in ready.reason
    with pytest.raises(NotAvailable) as info:
        evaluate_expression("object.data[object.data.k]", {"object": {"data": {"k": "MIIs3"}}},
                            field="spec.tls.readyWhen")
    assert "MIIs3" not in info.value.reason
    ready = evaluate_ready(RenderChild(id="c", template="x", ready_when="object.status.ok"),
                           {"status": {}})
    assert "'ok'" in ready.reason
