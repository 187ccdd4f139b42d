"""render_gateway / render_route_children: one pass in dependency order, per-child outcomes."""

from __future__ import annotations

from typing import Any

import yaml

from bifrost.render import BLUEPRINT, Pending, render_gateway, render_route_children

BLUEPRINT_YAML = """
apiVersion: gateway.bifrost.dev/v1alpha1
kind: GatewayClassBlueprint
metadata: {name: aws-edge}
spec:
  defaults: {scheme: internal}
  children:
    - id: dns
      template: |
        apiVersion: route53.aws.upbound.io/v1beta1
        kind: Record
        metadata: {name: "{{ gateway.metadata.name }}-dns"}
        spec:
          forProvider:
            name: "{{ values.hostname }}"
            records: ["{{ children.lb.status.atProvider.dnsName }}"]
      deleteOrder: 10
    - id: lb
      template: |
        apiVersion: elbv2.aws.upbound.io/v1beta1
        kind: LB
        metadata: {name: "{{ gateway.metadata.name }}-lb"}
        spec: {forProvider: {scheme: "{{ values.scheme }}"}}
      readyWhen: 'object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")'
    - id: listener
      dependsOn: [lb, cert]
      template: |
        apiVersion: elbv2.aws.upbound.io/v1beta1
        kind: LBListener
        metadata: {name: "{{ gateway.metadata.name }}-https"}
        spec: {forProvider: {loadBalancerArn: "{{ children.lb.status.atProvider.arn }}"}}
    - id: cert
      template: |
        apiVersion: cert-manager.io/v1
        kind: Certificate
        metadata: {name: "{{ gateway.metadata.name }}-tls"}
        spec: {dnsNames: ["{{ values.hostname }}"]}
  routeChildren:
    - id: shadow-route
      template: |
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: "{{ route.metadata.name }}-shadow", namespace: istio-system}
        spec:
          parentRefs: [{name: "{{ children.child-gw.metadata.name if false else 'x' }}"}]
  addresses: "[{'type': 'Hostname', 'value': children.lb.status.atProvider.dnsName}]"
"""

GATEWAY = {"metadata": {"name": "edge", "namespace": "apps"}}
VALUES = {"scheme": "internet-facing", "hostname": "shop.example.com"}
LB_LIVE = {"status": {"atProvider": {"dnsName": "edge.elb", "arn": "arn:lb"}}}


def blueprint() -> dict[str, Any]:
    loaded = yaml.safe_load(BLUEPRINT_YAML)
    loaded["spec"]["routeChildren"][0]["template"] = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        "metadata: {name: '{{ route.metadata.name }}-shadow'}\n"
        "spec: {parentRefs: [{name: '{{ children.lb.metadata.name }}'}]}\n"
    )
    assert isinstance(loaded, dict)
    return loaded


def test_first_pass_renders_what_it_can_and_reports_pending() -> None:
    result = render_gateway(blueprint(), gateway=GATEWAY, values=VALUES, live_children={})
    assert result.ok and not result.complete
    assert result.order == ("lb", "dns", "cert", "listener")
    assert [c.id for c in result.children] == ["lb", "cert"]
    assert result.children[0].object["spec"] == {"forProvider": {"scheme": "internet-facing"}}
    assert result.pending == (
        Pending("dns", waiting_for=("lb",)),
        Pending("listener", waiting_for=("lb", "cert")),
    )


def test_pending_names_only_dependencies_without_live_state() -> None:
    result = render_gateway(
        blueprint(), gateway=GATEWAY, values=VALUES, live_children={"lb": None, "cert": {"a": 1}}
    )
    assert Pending("listener", ("lb",)) in result.pending


def test_second_pass_with_live_state_renders_everything_in_dependency_order() -> None:
    result = render_gateway(
        blueprint(),
        gateway=GATEWAY,
        values=VALUES,
        live_children={"lb": LB_LIVE, "cert": {"status": {}}},
    )
    assert result.complete
    assert [c.id for c in result.children] == ["lb", "dns", "cert", "listener"]
    dns = result.children[1]
    assert dns.depends_on == ("lb",)
    assert dns.object["spec"]["forProvider"]["records"] == ["edge.elb"]
    assert result.children[3].object["spec"]["forProvider"]["loadBalancerArn"] == "arn:lb"
    assert result.delete_order == ("dns", "listener", "cert", "lb")


def test_one_bad_child_does_not_hide_the_others() -> None:
    bp = blueprint()
    bp["spec"]["children"][2]["template"] += "  extra: {{ values.nope }}\n"
    bp["spec"]["children"][3]["readyWhen"] = "object.status.("
    result = render_gateway(
        bp, gateway=GATEWAY, values=VALUES, live_children={"lb": LB_LIVE, "cert": {}}
    )
    assert [c.id for c in result.children] == ["lb", "dns"]
    assert [(e.child_id, e.source) for e in result.errors] == [
        ("cert", "spec.children[cert].readyWhen"),
        ("listener", "spec.children[listener].template"),
    ]
    assert result.errors[1].line == 5


def test_a_cycle_is_an_error_for_its_members_only() -> None:
    bp = blueprint()
    bp["spec"]["children"][1]["dependsOn"] = ["dns"]  # lb → dns → lb
    result = render_gateway(bp, gateway=GATEWAY, values=VALUES, live_children={})
    assert sorted(e.child_id for e in result.errors) == ["dns", "lb"]
    assert all("dependency cycle: dns → lb → dns" in e.message for e in result.errors)
    assert [c.id for c in result.children] == ["cert"]
    assert result.pending == (Pending("listener", ("lb", "cert")),)


def test_unknown_dependency_is_reported_on_that_child() -> None:
    bp = blueprint()
    bp["spec"]["children"][3]["dependsOn"] = ["vault"]
    result = render_gateway(bp, gateway=GATEWAY, values=VALUES, live_children={})
    assert [(e.child_id, e.source) for e in result.errors] == [
        ("cert", "spec.children[cert].dependsOn")
    ]
    assert "vault" in result.errors[0].message


def test_invalid_addresses_expression_is_a_blueprint_error() -> None:
    bp = blueprint()
    bp["spec"]["addresses"] = "children.("
    result = render_gateway(bp, gateway=GATEWAY, values=VALUES, live_children={})
    assert [(e.child_id, e.source) for e in result.errors] == [(BLUEPRINT, "spec.addresses")]
    assert [c.id for c in result.children] == ["lb", "cert"]


def test_invalid_blueprint_shape_is_reported_not_raised() -> None:
    for spec, source in [
        ({"children": [{"id": "Bad_Id", "template": "x"}]}, "spec.children[0].id"),
        (
            {"children": [{"id": "a", "template": "x"}, {"id": "a", "template": "x"}]},
            "spec.children[1].id",
        ),
        ({"children": [{"id": "a"}]}, "spec.children[a].template"),
        ({"children": [{"id": "a", "template": ""}]}, "spec.children[a].template"),
        (
            {"children": [{"id": "a", "template": "x", "deleteOrder": "1"}]},
            "spec.children[a].deleteOrder",
        ),
        (
            {"children": [{"id": "a", "template": "x", "deleteOrder": True}]},
            "spec.children[a].deleteOrder",
        ),
        ({"defaults": []}, "spec.defaults"),
    ]:
        result = render_gateway({"spec": spec}, gateway=GATEWAY, values={}, live_children={})
        assert [e.source for e in result.errors] == [source]


def test_a_child_that_renders_empty_is_skipped() -> None:
    bp = blueprint()
    bp["spec"]["children"][3]["template"] = (
        "{% if values.tls | default(false) %}"
        + bp["spec"]["children"][3]["template"]
        + "{% endif %}"
    )
    result = render_gateway(bp, gateway=GATEWAY, values=VALUES, live_children={"lb": LB_LIVE})
    assert result.skipped == ("cert",)
    assert result.pending == (Pending("listener", ("cert",)),)


def test_route_children_see_the_route_and_the_gateways_children() -> None:
    route = {"metadata": {"name": "shop", "namespace": "apps"}}
    waiting = render_route_children(blueprint(), gateway=GATEWAY, route=route, values=VALUES)
    assert waiting.pending == (Pending("shadow-route", ("lb",)),)
    live_lb = {"metadata": {"name": "edge-lb"}}
    result = render_route_children(
        blueprint(), gateway=GATEWAY, route=route, values=VALUES, live_children={"lb": live_lb}
    )
    assert result.complete
    (shadow,) = result.children
    assert shadow.id == "shadow-route"
    assert shadow.object["metadata"]["name"] == "shop-shadow"
    assert shadow.object["spec"]["parentRefs"] == [{"name": "edge-lb"}]


def test_route_children_may_depend_on_siblings() -> None:
    bp = blueprint()
    bp["spec"]["routeChildren"].insert(
        0,
        {
            "id": "route-policy",
            "dependsOn": ["route-cert"],
            "template": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p}\n",
        },
    )
    bp["spec"]["routeChildren"].append(
        {"id": "route-cert", "template": "apiVersion: v1\nkind: Secret\nmetadata: {name: c}\n"}
    )
    route = {"metadata": {"name": "shop"}}
    result = render_route_children(bp, gateway=GATEWAY, route=route, values=VALUES)
    assert result.order == ("shadow-route", "route-cert", "route-policy")
    assert [c.id for c in result.children] == ["route-cert"]
    assert set(result.pending) == {
        Pending("shadow-route", ("lb",)),
        Pending("route-policy", ("route-cert",)),
    }
    assert result.delete_order == ("route-policy", "route-cert", "shadow-route")


def test_ids_must_be_unique_across_children_and_route_children() -> None:
    bp = blueprint()
    bp["spec"]["routeChildren"][0]["id"] = "lb"
    result = render_gateway(bp, gateway=GATEWAY, values=VALUES, live_children={})
    assert [(e.child_id, e.source) for e in result.errors] == [("lb", "spec.routeChildren[lb].id")]


def test_rendering_is_deterministic() -> None:
    live = {"lb": LB_LIVE, "cert": {}}
    first = render_gateway(blueprint(), gateway=GATEWAY, values=VALUES, live_children=live)
    second = render_gateway(blueprint(), gateway=GATEWAY, values=VALUES, live_children=live)
    assert first == second
