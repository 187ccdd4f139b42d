"""A missing value's error names the variable path as the template wrote it, the child and the
fix, in one line — never a serialisation error about Jinja's Undefined type (issue #14, item 8).
"""

from __future__ import annotations

from typing import Any

import pytest

from bifrost.render import RenderChild, RenderError
from bifrost.render.templates import ChildrenView, render_child

HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
GATEWAY = {"metadata": {"name": "edge", "namespace": "apps"}, "spec": {"addresses": []}}
FIX = "| default(...)"


def error(template: str, values: dict[str, Any] | None = None) -> RenderError:
    context = {"gateway": GATEWAY, "values": values or {}, "children": ChildrenView()}
    with pytest.raises(RenderError) as info:
        render_child(RenderChild(id="lb", template=HEAD + template), context)
    return info.value


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("data:\n  a: {{ gateway.spec.addresses[0].value }}\n",
         "gateway.spec.addresses[0].value is undefined"),
        ("data:\n  a: {{ values.tier }}\n", "values.tier is undefined"),
        ("data:\n  a: {{ values.waf.arn }}\n", "values.waf.arn is undefined"),
        ("data:\n  a: {{ values['tier'] }}\n", "values.tier is undefined"),
        ("data:\n  a: {{ values.tier ~ '-x' }}\n", "values.tier is undefined"),
        ("data:\n  a: {{ values.nested.deep.x }}\n", "values.nested.deep.x is undefined"),
        ("{% if values.waf.enabled %}x: 1{% endif %}\n", "values.waf.enabled is undefined"),
    ],
)
def test_the_message_names_the_undefined_path_and_the_fix(template: str, path: str) -> None:
    err = error(template, values={"nested": {"deep": {}}})
    assert path in err.message, err.message
    assert FIX in err.message
    assert (err.child_id, err.line) == ("lb", 4 + template.count("\n"))
    assert "\n" not in str(err) and str(err).startswith("child 'lb' (spec.children[lb].template")


@pytest.mark.parametrize(
    "template",
    [
        "data:\n  a: '{{ {\"k\": values.tier} | to_json }}'\n",
        "data:\n  a: '{{ dict(k=values.tier) | to_json }}'\n",
        "data:\n  a: {{ [values.tier] | to_yaml }}\n",
        "data:\n  a: '{{ [1, {\"k\": [values.tier]}] | to_json }}'\n",
    ],
)
def test_an_undefined_inside_to_json_or_to_yaml_names_the_path(template: str) -> None:
    err = error(template)
    assert "values.tier is undefined" in err.message, err.message
    assert "serializable" not in err.message and "TypeError" not in err.message
    assert "Representer" not in err.message
    assert FIX in err.message


def test_a_computed_key_in_the_path_is_masked() -> None:
    err = error("data:\n  a: {{ values.m[values.k].x }}\n",
                values={"m": {}, "k": "MIIsecretkey"})
    assert "MIIsecretkey" not in str(err)
    assert "values.m[…].x is undefined" in err.message, err.message


def test_defaults_still_work_on_a_traced_path() -> None:
    context = {"gateway": GATEWAY, "values": {}, "children": ChildrenView()}
    obj = render_child(
        RenderChild(id="lb", template=HEAD + "data:\n  a: {{ values.waf.arn | default('none') }}\n"
                    "  b: '{{ gateway.spec.addresses[0].value | default(\"-\") }}'\n"),
        context,
    )
    assert obj is not None and obj["data"] == {"a": "none", "b": "-"}


def test_a_child_that_is_not_a_dependency_keeps_its_own_message() -> None:
    err = error("data:\n  a: {{ children.db.status.ip }}\n")
    assert "children.db is not available" in err.message
