"""Spec section "CRD structural schema" with the real Gateway API CRDs (v1.6.1)."""

from __future__ import annotations

import uuid

import pytest
from dc_support import body_of
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from devcluster import DevCluster

GW = "gateway.networking.k8s.io"


def _gateway(name: str, listeners: list | None = None) -> dict:
    return {
        "apiVersion": f"{GW}/v1",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {
            "gatewayClassName": "example",
            "listeners": listeners
            if listeners is not None
            else [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }


def test_gateway_without_status_gets_the_crd_default_status(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    created = co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", _gateway("g"))
    for obj in (created, co.get_namespaced_custom_object(GW, "v1", namespace, "gateways", "g")):
        conds = {c["type"]: c for c in obj["status"]["conditions"]}
        assert conds["Accepted"]["status"] == "Unknown"
        assert conds["Accepted"]["reason"] == "Pending"
        assert conds["Programmed"]["status"] == "Unknown"
        assert conds["Programmed"]["reason"] == "Pending"
        # nested defaults too
        assert obj["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["from"] == "Same"


def test_listener_without_name_is_422_with_field_path(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    with pytest.raises(client.ApiException) as ei:
        co.create_namespaced_custom_object(
            GW, "v1", namespace, "gateways", _gateway("bad", [{"port": 80, "protocol": "HTTP"}])
        )
    assert ei.value.status == 422
    body = body_of(ei.value)
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('Gateway.gateway.networking.k8s.io "bad" is invalid')
    assert {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.listeners[0].name",
    } in body["details"]["causes"]


@pytest.mark.parametrize(
    ("listener", "field", "reason"),
    [
        (
            {"name": "h", "port": 0, "protocol": "HTTP"},
            "spec.listeners[0].port",
            "FieldValueInvalid",
        ),  # minimum 1
        (
            {"name": "h", "port": 80, "protocol": "HTTP", "hostname": "Not A Host"},
            "spec.listeners[0].hostname",
            "FieldValueInvalid",
        ),  # pattern
        (
            {"name": "h", "port": "eighty", "protocol": "HTTP"},
            "spec.listeners[0].port",
            "FieldValueTypeInvalid",
        ),  # type
    ],
)
def test_schema_validation(api_client, namespace, listener, field, reason) -> None:
    co = client.CustomObjectsApi(api_client)
    with pytest.raises(client.ApiException) as ei:
        co.create_namespaced_custom_object(
            GW, "v1", namespace, "gateways", _gateway(f"x{uuid.uuid4().hex[:6]}", [listener])
        )
    assert ei.value.status == 422
    causes = body_of(ei.value)["details"]["causes"]
    assert any(c["field"] == field and c["reason"] == reason for c in causes), causes


def test_max_items_and_enum(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    many = [{"name": f"l{i}", "port": 1000 + i, "protocol": "HTTP"} for i in range(65)]
    with pytest.raises(client.ApiException) as ei:
        co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", _gateway("m", many))
    assert ei.value.status == 422
    assert any(c["reason"] == "FieldValueTooMany" for c in body_of(ei.value)["details"]["causes"])
    route = {
        "apiVersion": f"{GW}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {"rules": [{"matches": [{"path": {"type": "Sideways", "value": "/"}}]}]},
    }
    with pytest.raises(client.ApiException) as ei:
        co.create_namespaced_custom_object(GW, "v1", namespace, "httproutes", route)
    assert ei.value.status == 422
    assert any(
        c["reason"] == "FieldValueNotSupported" for c in body_of(ei.value)["details"]["causes"]
    )


def test_unknown_fields_are_pruned(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    body = _gateway("p")
    body["spec"]["bogus"] = {"x": 1}
    body["spec"]["listeners"][0]["extra"] = True
    body["topLevel"] = "gone"
    g = co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", body)
    assert "bogus" not in g["spec"] and "extra" not in g["spec"]["listeners"][0]
    assert "topLevel" not in g


def test_served_versions_share_storage(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", _gateway("g"))
    beta = co.get_namespaced_custom_object(GW, "v1beta1", namespace, "gateways", "g")
    assert beta["apiVersion"] == f"{GW}/v1beta1"
    assert beta["spec"]["gatewayClassName"] == "example"
    items = co.list_namespaced_custom_object(GW, "v1beta1", namespace, "gateways")["items"]
    assert [i["apiVersion"] for i in items] == [f"{GW}/v1beta1"]


def test_crd_is_established_and_names_accepted(api_client) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    crd = ext.read_custom_resource_definition(f"gateways.{GW}")
    conds = {c.type: c.status for c in crd.status.conditions}
    assert conds == {"Established": "True", "NamesAccepted": "True"}


def test_crd_created_through_the_api_is_served_and_validates(
    api_client, dynamic_client: DynamicClient, namespace
) -> None:
    group = f"s{uuid.uuid4().hex[:8]}.example.com"
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"things.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"kind": "Thing", "plural": "things", "singular": "thing"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "required": ["size"],
                                        "properties": {
                                            "size": {"type": "integer", "maximum": 10},
                                            "mode": {"type": "string", "default": "fast"},
                                        },
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    things = dynamic_client.resources.get(api_version=f"{group}/v1", kind="Thing")
    t = things.create(
        namespace=namespace,
        body={
            "apiVersion": f"{group}/v1",
            "kind": "Thing",
            "metadata": {"name": "t"},
            "spec": {"size": 3},
        },
    )
    assert t.spec.mode == "fast"
    with pytest.raises(Exception) as ei:
        things.create(
            namespace=namespace,
            body={
                "apiVersion": f"{group}/v1",
                "kind": "Thing",
                "metadata": {"name": "u"},
                "spec": {"size": 11},
            },
        )
    assert ei.value.status == 422  # type: ignore[attr-defined]


def test_devcluster_load_crds_returns_names(devcluster: DevCluster, tmp_path) -> None:
    from support.devcluster import GATEWAY_API_CRDS

    names = devcluster.load_crds(GATEWAY_API_CRDS / "gateway.networking.k8s.io_gateways.yaml")
    assert names == [f"gateways.{GW}"]


def test_field_validation_strict_rejects_and_warn_reports_unknown_fields(
    api_client, namespace
) -> None:
    co = client.CustomObjectsApi(api_client)
    body = _gateway("fv")
    body["spec"]["bogus"] = 1
    with pytest.raises(client.ApiException) as ei:
        co.create_namespaced_custom_object(
            GW, "v1", namespace, "gateways", body, field_validation="Strict"
        )
    assert ei.value.status == 400
    assert body_of(ei.value)["message"] == (
        'Gateway in version "v1" cannot be handled as a Gateway: strict decoding error: '
        'unknown field "spec.bogus"'
    )
    _, status, headers = co.create_namespaced_custom_object_with_http_info(
        GW, "v1", namespace, "gateways", body
    )
    assert status == 201
    assert headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'


def _thing_crd(group: str, default_mode: str | None) -> dict:
    mode: dict = {"type": "string"}
    if default_mode is not None:
        mode["default"] = default_mode
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Thing", "plural": "things", "singular": "thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"mode": mode}}
                            },
                        }
                    },
                }
            ],
        },
    }


def test_new_schema_defaults_show_on_read_and_crd_deletion_removes_objects(
    devcluster: DevCluster, api_client, namespace
) -> None:
    group = f"r{uuid.uuid4().hex[:8]}.example.com"
    devcluster.install_crd(_thing_crd(group, None))
    co = client.CustomObjectsApi(api_client)
    t = co.create_namespaced_custom_object(
        group,
        "v1",
        namespace,
        "things",
        {"apiVersion": f"{group}/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {}},
    )
    assert "mode" not in t["spec"]
    devcluster.install_crd(_thing_crd(group, "slow"))
    again = co.get_namespaced_custom_object(group, "v1", namespace, "things", "t")
    assert again["spec"]["mode"] == "slow"
    assert again["metadata"]["resourceVersion"] == t["metadata"]["resourceVersion"]
    client.ApiextensionsV1Api(api_client).delete_custom_resource_definition(f"things.{group}")
    assert not [k for k, _ in devcluster.store.iter_all() if k == (group, "things")]
    with pytest.raises(client.ApiException) as ei:
        co.get_namespaced_custom_object(group, "v1", namespace, "things", "t")
    assert ei.value.status == 404
