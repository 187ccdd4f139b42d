"""Sandboxed child templates: inputs only, strict undefined, one real YAML object, clear errors."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from bifrost.render import RenderChild, RenderError
from bifrost.render.templates import ChildrenView, dns_label, render_child

HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
GATEWAY = {"metadata": {"name": "edge", "namespace": "apps", "uid": "u-1"}}


def render(template: str, **context: Any) -> dict[str, Any] | None:
    context.setdefault("gateway", GATEWAY)
    context.setdefault("values", {})
    context.setdefault("children", ChildrenView())
    return render_child(RenderChild(id="lb", template=template), context)


def render_error(template: str, **context: Any) -> RenderError:
    with pytest.raises(RenderError) as info:
        render(template, **context)
    return info.value


def test_renders_one_object_from_its_inputs() -> None:
    obj = render(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ gateway.metadata.name }}-lb\n"
        "data:\n  scheme: {{ values.scheme }}\n",
        values={"scheme": "internal"},
    )
    assert obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "edge-lb"},
        "data": {"scheme": "internal"},
    }


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("x: {{ ''.__class__.__mro__ }}", id="str-class-mro"),
        pytest.param("x: {{ ''.__class__.__mro__[1].__subclasses__() }}", id="subclasses"),
        pytest.param("x: {{ cycler.__init__.__globals__ }}", id="cycler-globals"),
        pytest.param("x: {{ joiner.__init__.__globals__ }}", id="joiner-globals"),
        pytest.param("x: {{ namespace.__init__.__globals__ }}", id="namespace-globals"),
        pytest.param("x: {{ lipsum.__globals__ }}", id="lipsum-globals"),
        pytest.param("x: {{ lipsum() }}", id="lipsum"),
        pytest.param("x: {{ range.__self__ }}", id="range-self"),
        pytest.param("x: {{ gateway.__class__ }}", id="input-class"),
        pytest.param("x: {{ values.update({'a': 1}) }}", id="mutate-input"),
        pytest.param("x: {{ values.pop('scheme') }}", id="pop-input"),
        pytest.param("x: {{ '{0.__class__}'.format(1) }}", id="format-escape"),
        pytest.param("x: {{ config }}", id="no-config"),
        pytest.param("x: {{ 'a' * 100000000 }}", id="huge-string"),
        pytest.param("x: {{ 10 ** 100000 }}", id="huge-power"),
        pytest.param("x: {% for i in range(10000000) %}{% endfor %}", id="huge-range"),
    ],
)
def test_sandbox_refuses_escapes(template: str) -> None:
    err = render_error(template, values={"scheme": "internal"})
    assert err.child_id == "lb"
    assert err.line == 1
    assert any(
        reason in err.message
        for reason in (
            "refused by the template sandbox", "is undefined", "has no attribute", "over budget"
        )
    ), err.message
    assert err.source == "spec.children[lb].template"


@pytest.mark.parametrize(
    ("template", "word"),
    [
        ("{% include '/etc/passwd' %}", "include"),
        ("{% import 'macros.j2' as m %}", "import"),
        ("{% from 'macros.j2' import x %}", "from … import"),
        ("{% extends 'base.j2' %}", "extends"),
    ],
)
def test_templates_cannot_read_other_files(template: str, word: str) -> None:
    err = render_error(HEAD + template)
    assert f"'{word}' is not allowed" in err.message
    assert err.line == 5


@pytest.mark.parametrize("name", ["random", "pprint", "urlize", "xmlattr", "tojson", "safe"])
def test_filters_outside_the_allow_list_are_absent(name: str) -> None:
    err = render_error(f"x: {{{{ [1] | {name} }}}}")
    assert f"No filter named '{name}'" in err.message


def test_undefined_variable_names_child_and_template_line() -> None:
    err = render_error(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ gateway.metadata.nmae }}\n"
    )
    assert (err.child_id, err.line, err.source) == ("lb", 4, "spec.children[lb].template")
    assert "nmae" in err.message
    assert "child 'lb'" in str(err) and "line 4" in str(err)


def test_undefined_top_level_variable() -> None:
    err = render_error(HEAD + "data:\n  x: {{ secrets.token }}\n")
    assert err.line == 6
    assert "'secrets' is undefined" in err.message


def test_missing_value_can_be_defaulted_but_not_used() -> None:
    obj = render(HEAD + "data:\n  arn: '{{ values.waf.arn | default(\"none\") }}'\n")
    assert obj is not None and obj["data"] == {"arn": "none"}
    err = render_error(HEAD + "data:\n  arn: '{{ values.waf.arn }}'\n")
    assert "'waf'" in err.message and err.line == 6
    err = render_error(HEAD + "{% if values.waf.enabled %}x: 1{% endif %}\n")
    assert err.line == 5


def test_children_not_depended_on_are_not_visible() -> None:
    err = render_error(HEAD + "data:\n  x: {{ children.db.status }}\n", values={})
    assert "children.db is not available" in err.message
    assert "dependsOn" in err.message
    err = render_error(HEAD + "data:\n  x: {{ children[name].status }}\n", values={}, name="db")
    assert "children[…] is not available" in err.message  # a computed id is not echoed
    assert "dependsOn" in err.message


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("values.arn", "printed a null value"),
        ("values.tags", "printed a dict directly"),
        ("values.cidrs", "printed a list directly"),
    ],
)
def test_printing_null_or_structures_is_refused(expression: str, fragment: str) -> None:
    err = render_error(
        HEAD + "data:\n  x: {{ " + expression + " }}\n",
        values={"arn": None, "tags": {"a": "b"}, "cidrs": ["10.0.0.0/8"]},
    )
    assert fragment in err.message
    assert err.line == 6


def test_syntax_error_names_the_line() -> None:
    err = render_error(HEAD + "data:\n  x: {{ values.x \n")
    assert err.message.startswith("template syntax error")
    assert err.line == 6


def test_a_value_cannot_make_yaml_invalid() -> None:
    obj = render(HEAD + "data:\n  url: {{ values.url }}\n", values={"url": "a: b"})
    assert obj is not None and obj["data"] == {"url": "a: b"}


def test_yaml_error_names_the_rendered_line_with_values_masked() -> None:
    err = render_error(HEAD + "data:\n  url: {{ values.url }}: b\n", values={"url": "s3cr3t"})
    assert err.child_id == "lb"
    assert err.line == 6
    assert "not valid YAML" in err.message
    assert "at line 6, column" in err.message
    assert "url: {{…}}: b" in err.message
    assert "s3cr3t" not in err.message


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("- a\n- b\n", "rendered a list, not a Kubernetes object"),
        ("just text\n", "rendered a str"),
        ("kind: ConfigMap\nmetadata: {name: a}\n", "lacks apiVersion"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "lacks kind"),
        ("apiVersion: v1\nkind: ConfigMap\n", "lacks metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ''}\n", "lacks metadata.name"),
        (HEAD + "---\n" + HEAD, "rendered 2 YAML documents"),
        (HEAD + "data: {day: 2026-01-01}\n", "data.day is a date"),
        (HEAD + "data: {1: x}\n", "int key"),
    ],
)
def test_output_must_be_one_kubernetes_object(template: str, fragment: str) -> None:
    assert fragment in render_error(template).message


@pytest.mark.parametrize(
    "template",
    [
        "{% if values.enabled %}" + HEAD + "{% endif %}",
        "# nothing for this gateway\n",
        "---\n",
        "",
    ],
)
def test_empty_output_means_skip_this_child(template: str) -> None:
    assert render(template, values={"enabled": False}) is None


def test_leading_and_trailing_document_markers_are_fine() -> None:
    assert render("---\n" + HEAD + "---\n") == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
    }


def test_safe_filters() -> None:
    obj = render(
        HEAD
        + "data:\n"
        + "  yaml: |\n    {{ values.m | to_yaml | indent(4) }}\n"
        + "  json: '{{ values.m | to_json }}'\n"
        + "  b64: {{ 'hello' | b64encode }}\n"
        + "  sha: {{ 'hello' | sha256 }}\n"
        + "  label: {{ values.long | dns_label }}\n"
        + "  dflt: {{ values.missing | default('d') }}\n"
        + "  list: {{ values.l | to_json }}\n",
        values={"m": {"b": 1, "a": [1, 2]}, "long": "X" * 80, "l": ["x", "y"]},
    )
    assert obj is not None
    data = obj["data"]
    assert data["yaml"] == "b: 1\na:\n- 1\n- 2\n"
    assert data["json"] == '{"a":[1,2],"b":1}'
    assert data["b64"] == base64.b64encode(b"hello").decode()
    assert data["sha"] == hashlib.sha256(b"hello").hexdigest()
    assert len(data["label"]) == 63
    assert data["dflt"] == "d"
    assert data["list"] == ["x", "y"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("edge", "edge"),
        ("Edge_Gateway.apps", "edge-gateway-apps"),
        ("--a--", "a"),
    ],
)
def test_dns_label_normalises_short_names(value: str, expected: str) -> None:
    assert dns_label(value) == expected


def test_dns_label_truncates_with_a_hash_that_keeps_names_distinct() -> None:
    a, b = dns_label("a" * 70 + "1"), dns_label("a" * 70 + "2")
    assert len(a) == len(b) == 63
    assert a != b
    assert a.startswith("a" * 54 + "-")
    assert dns_label("___") == hashlib.sha256(b"___").hexdigest()[:8]


def test_same_inputs_render_the_same_object() -> None:
    template = HEAD + "data: {x: '{{ values | to_json }}'}\n"
    values = {"b": 1, "a": 2}
    assert render(template, values=values) == render(
        template, values=dict(reversed(values.items()))
    )
