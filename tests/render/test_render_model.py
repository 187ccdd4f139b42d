"""The renderer's view of a blueprint (``bifrost.render.model``): built from the API model, so
every check on a blueprint is the API model's, reported as one ``RenderError`` naming the child
and the field; the ``dependsOn`` checks stay with the renderer's ordering (per child)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from bifrost.api.blueprint import GatewayClassBlueprint, parse_blueprint_spec
from bifrost.render import BLUEPRINT, RenderError, render_gateway
from bifrost.render.confinement import AllowRule, Confinement
from bifrost.render.model import Blueprint, RenderChild
from bifrost.sandbox import codec

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ gateway.metadata.name }}'}\n"


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "children": [
            {"id": "lb", "template": CM, "readyWhen": "object.ok", "deleteOrder": 5},
            {"id": "dns", "template": CM, "dependsOn": ["lb"]},
        ],
        "routeChildren": [{"id": "shadow", "template": CM}],
        **extra,
    }


def test_the_view_is_built_from_the_api_model() -> None:
    raw = spec(addresses="[]", confinement={"allow": [{"group": "", "kind": "ServiceAccount"}]},
               defaults={"a": 1})
    view = Blueprint.from_dict({"spec": raw})
    assert view == Blueprint.from_api(parse_blueprint_spec(raw))
    assert view == Blueprint.from_api(
        GatewayClassBlueprint.model_validate({"metadata": {"name": "b"}, "spec": raw}).spec
    )
    assert view.children == (
        RenderChild("lb", CM, (), "object.ok", 5, "children"),
        RenderChild("dns", CM, ("lb",), None, None, "children"),
    )
    assert view.route_children == (RenderChild("shadow", CM, list_name="routeChildren"),)
    assert view.addresses == "[]"
    assert view.confinement == Confinement((AllowRule("", "ServiceAccount"),))


@pytest.mark.parametrize(
    ("extra", "child", "source", "says"),
    [
        # checks the renderer's own parser did not make before: the API model's
        ({"confinement": {"allow": [{"kind": "ServiceAccount"}]}}, BLUEPRINT,
         "spec.confinement.allow[0].group", "group is required"),
        ({"tls": {"readyWhen": "true"}}, BLUEPRINT, "spec.tls.certificateTemplate",
         "certificateTemplate is required"),
        ({"colour": "blue"}, BLUEPRINT, "spec.colour", "unknown field colour"),
        ({"values": {"tenantKeys": [], "schema": {
            "type": "object", "properties": {"replicas": {"type": "integer"}}}},
          "defaults": {"replicas": "3"}},
         BLUEPRINT, "spec", "defaults.replicas: must be an integer, not a string"),
        ({"routeChildren": [{"id": "shadow", "template": ""}]}, "shadow",
         "spec.routeChildren[shadow].template", "template must be a non-empty string"),
        # and the ones it made, in the same places
        ({"routeChildren": [{"id": "lb", "template": CM}]}, "lb", "spec.routeChildren[lb].id",
         "duplicate child id(s) lb across children and routeChildren"),
        ({"addresses": 7}, BLUEPRINT, "spec.addresses", "addresses must be an expression string"),
        ({"confinement": {"allow": [{"group": "", "kind": "X", "clusterScoped": "yes"}]}},
         BLUEPRINT, "spec.confinement.allow[0].clusterScoped",
         "clusterScoped must be true or false"),
    ],
)
def test_a_blueprint_the_api_model_refuses_is_one_render_error(
    extra: dict[str, Any], child: str, source: str, says: str
) -> None:
    with pytest.raises(RenderError) as info:
        Blueprint.from_dict({"spec": spec(**extra)})
    assert (info.value.child_id, info.value.source) == (child, source)
    assert says in info.value.message
    result = render_gateway({"spec": spec(**extra)}, gateway={}, values={}, live_children={})
    assert result.errors == (info.value,)


def test_dependencies_are_left_to_the_ordering_per_child() -> None:
    raw = spec()
    raw["children"][0]["dependsOn"] = ["dns"]  # lb → dns → lb: the API model refuses it whole
    with pytest.raises(ValueError, match="dependsOn cycle"):
        parse_blueprint_spec(raw)
    view = Blueprint.from_dict(raw)
    assert [c.depends_on for c in view.children] == [("dns",), ("lb",)]


def test_a_changed_blueprint_is_parsed_again() -> None:
    raw = spec()
    first = Blueprint.from_dict(raw)
    assert Blueprint.from_dict(spec()) == first
    raw["children"][1]["id"] = "Bad_Id"
    with pytest.raises(RenderError) as info:
        Blueprint.from_dict(raw)
    assert info.value.source == "spec.children[1].id"
    raw["children"][1]["id"] = "record"
    assert [c.id for c in Blueprint.from_dict(raw).children] == ["lb", "record"]


def test_the_view_travels_to_a_sandbox_worker_and_back() -> None:
    view = Blueprint.from_dict(spec(confinement={"allow": [
        {"group": "", "kind": "ConfigMap", "namespaces": ["shared"]}]}))
    assert codec.loads(codec.dumps(view)) == view


def test_a_sandbox_worker_starts_without_the_api_models() -> None:
    """Workers import the renderer and get the view built (``bifrost.sandbox`` parses in the
    controller): pydantic and the API models would double their start-up time."""
    probe = ("import sys, bifrost.sandbox.worker; "
             "print(sorted(m for m in ('pydantic', 'bifrost.api.blueprint') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
