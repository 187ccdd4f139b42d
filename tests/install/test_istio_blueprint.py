"""``examples/istio-cert-manager``, the README's blueprint for a real cluster, validated without
one: it parses as bifrost's models (templates and CEL compile, the dependency graph holds, the
defaults obey the values schema), and a dry render for its Gateway gives the Istio Gateway with
the managed certificate's Secret on the HTTPS listener and the HTTPRoute re-parented to it.
(tests/install/test_install_manifest.py applies it to a devcluster after the install; the
deploy/ tests check its aggregated RBAC covers its child kinds.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bifrost.api import GatewayClassBlueprint
from bifrost.api.errors import parse_resource
from bifrost.render import Blueprint, render_gateway, render_route_children
from bifrost.render.expressions import check_addresses, check_ready_when
from bifrost.render.ordering import dependency_graph
from bifrost.render.templates import compile_child

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "istio-cert-manager"


def documents() -> list[dict[str, Any]]:
    return [d for p in sorted(EXAMPLE.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
            if d]


def one(kind: str) -> dict[str, Any]:
    (found,) = [d for d in documents() if d["kind"] == kind]
    return found


def test_the_blueprint_parses_and_compiles() -> None:
    doc = one("GatewayClassBlueprint")
    model = parse_resource(GatewayClassBlueprint, doc)
    bp = Blueprint.from_dict(doc)
    for child in (*bp.children, *bp.route_children):
        compile_child(child)
        check_ready_when(child)
    check_addresses(bp.addresses)
    dependency_graph((*bp.children, *bp.route_children))
    assert [c.id for c in model.spec.children] == ["istio"]
    assert [c.id for c in model.spec.route_children] == ["route"]
    # the class points at it, the Gateway at the class, the issuer exists in the example
    assert one("GatewayClass")["spec"]["parametersRef"]["name"] == doc["metadata"]["name"]
    assert one("Gateway")["spec"]["gatewayClassName"] == one("GatewayClass")["metadata"]["name"]
    issuers = {d["metadata"]["name"] for d in documents() if d["kind"] == "ClusterIssuer"}
    assert doc["spec"]["defaults"]["issuer"] in issuers


def test_a_dry_render_makes_the_istio_gateway_and_the_reparented_route() -> None:
    bp, gateway, route = one("GatewayClassBlueprint"), one("Gateway"), one("HTTPRoute")
    values = bp["spec"]["defaults"]
    certificates = [{"listener": "https", "name": "edge-https-1", "secretName": "edge-https-1",
                     "hostnames": ["shop.example.com"]}]
    result = render_gateway(bp, gateway=gateway, values=values, live_children={},
                            certificates=certificates)
    assert result.ok and result.complete, [str(e) for e in result.errors]
    (child,) = result.children
    spec = child.object["spec"]
    assert spec["gatewayClassName"] == "istio"
    listeners = {item["name"]: item for item in spec["listeners"]}
    assert listeners["https"]["tls"] == {"mode": "Terminate",
                                         "certificateRefs": [{"name": "edge-https-1"}]}
    assert listeners["https"]["hostname"] == "shop.example.com"
    assert listeners["http"]["protocol"] == "HTTP" and "tls" not in listeners["http"]

    routed = render_route_children(bp, gateway=gateway, route=route, values=values,
                                   live_children={"istio": child.object})
    assert routed.ok, [str(e) for e in routed.errors]
    (copy,) = routed.children
    assert copy.object["spec"]["parentRefs"] == [{"name": child.object["metadata"]["name"]}]
    assert copy.object["spec"]["hostnames"] == route["spec"]["hostnames"]
    assert copy.object["spec"]["rules"] == route["spec"]["rules"]
