"""CRD validation rules (``x-kubernetes-validations``) through the official client and the real
kubectl: the bundled Gateway API CRDs' rules reject what a real API server rejects, with the
same 422 body; transition rules see ``oldSelf``; a hostile rule does not hang the server."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from dc_support import body_of, kubectl, needs_kubectl
from kubernetes import client

GW = "gateway.networking.k8s.io"


def gateway(name: str, listeners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GW}/v1",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {"gatewayClassName": "example", "listeners": listeners},
    }


HTTP_WITH_TLS = {
    "name": "web",
    "port": 80,
    "protocol": "HTTP",
    "tls": {"certificateRefs": [{"name": "cert"}]},
}
HTTPS = {
    "name": "secure",
    "port": 443,
    "protocol": "HTTPS",
    "hostname": "app.example.com",
    "tls": {"certificateRefs": [{"name": "cert"}]},
}
TLS_MESSAGE = "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"


def rejected(call: Any) -> dict[str, Any]:
    with pytest.raises(client.ApiException) as info:
        call()
    assert info.value.status == 422, info.value.body
    return body_of(info.value)


def test_gateway_breaking_a_crd_rule_is_422_naming_the_rule_message(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    body = rejected(
        lambda: co.create_namespaced_custom_object(
            GW, "v1", namespace, "gateways", gateway("bad", [HTTP_WITH_TLS])
        )
    )
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        f'Gateway.gateway.networking.k8s.io "bad" is invalid: spec.listeners: Invalid value: '
        f'"array": {TLS_MESSAGE}'
    )
    assert body["details"] == {
        "name": "bad",
        "group": GW,
        "kind": "Gateway",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": f'Invalid value: "array": {TLS_MESSAGE}',
                "field": "spec.listeners",
            }
        ],
    }
    with pytest.raises(client.ApiException) as info:
        co.get_namespaced_custom_object(GW, "v1", namespace, "gateways", "bad")
    assert info.value.status == 404


def test_valid_gateways_are_accepted(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    plain = {"name": "web", "port": 80, "protocol": "HTTP"}
    created = co.create_namespaced_custom_object(
        GW, "v1", namespace, "gateways", gateway("good", [plain, HTTPS])
    )
    assert created["spec"]["listeners"][1]["tls"]["mode"] == "Terminate"
    # v1.6.1 has no rule requiring tls on an HTTPS listener (its own CEL tests accept it)
    no_tls = {"name": "secure", "port": 443, "protocol": "HTTPS"}
    co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", gateway("bare", [no_tls]))


def test_a_rule_that_cannot_evaluate_is_reported_on_its_node(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    empty_refs = {
        "name": "secure",
        "port": 443,
        "protocol": "HTTPS",
        "tls": {"certificateRefs": []},
    }
    body = rejected(
        lambda: co.create_namespaced_custom_object(
            GW, "v1", namespace, "gateways", gateway("norefs", [empty_refs])
        )
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "object": no such key: options evaluating rule: '
            "certificateRefs or options must be specified when mode is Terminate",
            "field": "spec.listeners[0].tls",
        }
    ]


def test_an_update_that_breaks_a_rule_is_refused_and_the_object_kept(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", gateway("g", [HTTPS]))
    twice = [HTTPS, {**HTTPS, "name": "again"}]
    body = rejected(
        lambda: co.patch_namespaced_custom_object(
            GW, "v1", namespace, "gateways", "g", {"spec": {"listeners": twice}}
        )
    )
    assert [c["message"] for c in body["details"]["causes"]] == [
        'Invalid value: "array": Combination of port, protocol and hostname must be unique for '
        "each listener"
    ]
    kept = co.get_namespaced_custom_object(GW, "v1", namespace, "gateways", "g")
    assert len(kept["spec"]["listeners"]) == 1


def test_status_rules_apply_to_status_updates(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", gateway("s", [HTTPS]))
    bad = {"status": {"addresses": [{"type": "Hostname", "value": "Not_A_Host"}]}}
    body = rejected(
        lambda: co.patch_namespaced_custom_object_status(GW, "v1", namespace, "gateways", "s", bad)
    )
    [cause] = body["details"]["causes"]
    assert cause["field"] == "status.addresses[0]"
    assert cause["message"].startswith(
        'Invalid value: "object": Hostname value must only contain valid characters'
    )
    good = {"status": {"addresses": [{"type": "Hostname", "value": "gw.example.com"}]}}
    co.patch_namespaced_custom_object_status(GW, "v1", namespace, "gateways", "s", good)


def test_httproute_filter_without_its_field_is_rejected(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    route = {
        "apiVersion": f"{GW}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {
            "parentRefs": [{"name": "g"}],
            "rules": [
                {
                    "filters": [{"type": "RequestHeaderModifier"}],
                    "backendRefs": [{"name": "svc", "port": 80}],
                }
            ],
        },
    }
    body = rejected(
        lambda: co.create_namespaced_custom_object(GW, "v1", namespace, "httproutes", route)
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "object": filter.requestHeaderModifier must be specified '
            "for RequestHeaderModifier filter.type",
            "field": "spec.rules[0].filters[0]",
        }
    ]
    # a Service backend without a port breaks the backendRef rule
    route["spec"]["rules"][0] = {"backendRefs": [{"name": "svc"}]}
    body = rejected(
        lambda: co.create_namespaced_custom_object(GW, "v1", namespace, "httproutes", route)
    )
    assert [(c["field"], c["message"]) for c in body["details"]["causes"]] == [
        (
            "spec.rules[0].backendRefs[0]",
            'Invalid value: "object": Must have port for Service reference',
        )
    ]
    route["spec"]["rules"][0] = {"backendRefs": [{"name": "svc", "port": 80}]}
    co.create_namespaced_custom_object(GW, "v1", namespace, "httproutes", route)


def test_gatewayclass_controller_name_transition_rule_sees_old_self(api_client) -> None:
    co = client.CustomObjectsApi(api_client)
    name = f"gc-{uuid.uuid4().hex[:8]}"
    gc = {
        "apiVersion": f"{GW}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": "example.com/one"},
    }
    co.create_cluster_custom_object(GW, "v1", "gatewayclasses", gc)
    try:
        body = rejected(
            lambda: co.patch_cluster_custom_object(
                GW, "v1", "gatewayclasses", name, {"spec": {"controllerName": "example.com/two"}}
            )
        )
        assert body["message"] == (
            f'GatewayClass.gateway.networking.k8s.io "{name}" is invalid: spec.controllerName: '
            'Invalid value: "string": Value is immutable'
        )
        # unchanged controllerName: other updates go through
        co.patch_cluster_custom_object(
            GW, "v1", "gatewayclasses", name, {"spec": {"description": "now described"}}
        )
    finally:
        co.delete_cluster_custom_object(GW, "v1", "gatewayclasses", name)


# ------------------------------------------------------------------------- a CRD of our own


def widget_crd(group: str) -> dict[str, Any]:
    port = {
        "type": "object",
        "required": ["name", "port"],
        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
        "x-kubernetes-validations": [
            {
                "rule": "self.port >= oldSelf.port",
                "messageExpression": "'port ' + self.name + ' may not go down from ' + "
                "string(oldSelf.port)",
            }
        ],
    }
    spec = {
        "type": "object",
        "properties": {
            "mode": {
                "type": "string",
                "x-kubernetes-validations": [
                    {
                        "rule": "self == oldSelf",
                        "messageExpression": "'mode is immutable (was ' + oldSelf + ')'",
                    }
                ],
            },
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": port,
            },
            "items": {"type": "array", "items": {"type": "integer"}},
        },
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.items) || self.items.all(a, self.items.all(b, "
                "self.items.all(c, a + b + c >= 0)))",
                "message": "cubic",
            }
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}},
                }
            ],
        },
    }


@pytest.fixture
def widgets(api_client) -> Any:
    group = f"w{uuid.uuid4().hex[:8]}.example.com"
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(widget_crd(group))
    yield group
    ext.delete_custom_resource_definition(f"widgets.{group}")


def widget(group: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def test_transition_rule_with_message_expression_sees_old_self(
    api_client, namespace, widgets
) -> None:
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(
        widgets, "v1", namespace, "widgets", widget(widgets, {"mode": "fast"})
    )
    body = rejected(
        lambda: co.patch_namespaced_custom_object(
            widgets, "v1", namespace, "widgets", "w", {"spec": {"mode": "slow"}}
        )
    )
    assert body["message"] == (
        f'Widget.{widgets} "w" is invalid: spec.mode: Invalid value: "string": mode is immutable '
        "(was fast)"
    )
    # a full replace that keeps the mode is fine
    current = co.get_namespaced_custom_object(widgets, "v1", namespace, "widgets", "w")
    current["spec"]["ports"] = [{"name": "http", "port": 80}]
    co.replace_namespaced_custom_object(widgets, "v1", namespace, "widgets", "w", current)


def test_map_list_items_are_correlated_by_key(api_client, namespace, widgets) -> None:
    co = client.CustomObjectsApi(api_client)
    ports = [{"name": "a", "port": 10}, {"name": "b", "port": 20}]
    co.create_namespaced_custom_object(
        widgets, "v1", namespace, "widgets", widget(widgets, {"ports": ports})
    )
    # reordered, one new, b lowered: only b (now at index 2) breaks the rule
    moved = [{"name": "c", "port": 1}, {"name": "a", "port": 10}, {"name": "b", "port": 15}]
    body = rejected(
        lambda: co.patch_namespaced_custom_object(
            widgets, "v1", namespace, "widgets", "w", {"spec": {"ports": moved}}
        )
    )
    assert [(c["field"], c["message"]) for c in body["details"]["causes"]] == [
        ("spec.ports[2]", 'Invalid value: "object": port b may not go down from 20')
    ]
    raised = [{"name": "c", "port": 1}, {"name": "a", "port": 11}, {"name": "b", "port": 20}]
    co.patch_namespaced_custom_object(
        widgets, "v1", namespace, "widgets", "w", {"spec": {"ports": raised}}
    )


def test_a_hostile_rule_is_refused_quickly_not_run(api_client, namespace, widgets) -> None:
    co = client.CustomObjectsApi(api_client)
    start = time.monotonic()
    body = rejected(
        lambda: co.create_namespaced_custom_object(
            widgets, "v1", namespace, "widgets", widget(widgets, {"items": list(range(500))})
        )
    )
    assert time.monotonic() - start < 5
    assert [(c["field"], c["message"]) for c in body["details"]["causes"]] == [
        (
            "spec",
            "Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no "
            "further validation rules will be run due to call cost exceeds limit for rule: cubic",
        )
    ]
    # the same rule over a short list is evaluated
    co.create_namespaced_custom_object(
        widgets, "v1", namespace, "widgets", widget(widgets, {"items": [1, 2, 3]})
    )


# ------------------------------------------------------------------------- kubectl


GATEWAY_YAML = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {name}
spec:
  gatewayClassName: example
  listeners:
  - name: web
    port: 80
    protocol: {protocol}
    tls:
      certificateRefs:
      - name: cert
"""


@needs_kubectl
def test_kubectl_apply_shows_the_rule_message_and_applies_a_valid_gateway(
    kubeconfig_path, namespace
) -> None:
    bad = kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=GATEWAY_YAML.format(name="bad", protocol="HTTP"), check=False,
    )
    assert bad.returncode == 1
    assert f'spec.listeners: Invalid value: "array": {TLS_MESSAGE}' in bad.stderr
    assert 'The Gateway "bad" is invalid' in bad.stderr
    good = kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=GATEWAY_YAML.format(name="good", protocol="HTTPS"), check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "gateway.gateway.networking.k8s.io/good created" in good.stdout
    server_side = kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "--server-side",
        "-f",
        "-",
        input=GATEWAY_YAML.format(name="bad-ssa", protocol="TCP"), check=False,
    )
    assert server_side.returncode == 1
    assert f'spec.listeners: Invalid value: "array": {TLS_MESSAGE}' in server_side.stderr


# ------------------------------------------------------------------------- turning rules off


def test_validation_rules_can_be_turned_off_for_comparison() -> None:
    from devcluster import DevCluster

    crds = Path(__file__).resolve().parents[2] / "devcluster" / "crds" / "gateway-api"
    with DevCluster(crd_paths=[crds], authorization="AlwaysAllow", validation_rules=False) as dc:
        cfg = client.Configuration()
        cfg.host = dc.url
        with client.ApiClient(cfg) as api:
            client.CoreV1Api(api).create_namespace({"metadata": {"name": "off"}})
            co = client.CustomObjectsApi(api)
            created = co.create_namespaced_custom_object(
                GW, "v1", "off", "gateways", gateway("unchecked", [HTTP_WITH_TLS])
            )
            assert created["spec"]["listeners"][0]["protocol"] == "HTTP"
            assert created["spec"]["listeners"][0]["tls"]["certificateRefs"][0]["name"] == "cert"
            # structural validation still runs
            with pytest.raises(client.ApiException) as info:
                co.create_namespaced_custom_object(
                    GW,
                    "v1",
                    "off",
                    "gateways",
                    gateway("noport", [{"name": "x", "protocol": "HTTP"}]),
                )
            assert info.value.status == 422
