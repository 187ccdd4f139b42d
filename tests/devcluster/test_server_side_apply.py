"""Spec section "application/apply-patch+yaml": server-side apply and managedFields."""

from __future__ import annotations

import pytest
from dc_support import body_of
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError

GW = "gateway.networking.k8s.io"


def _gw(name: str, cls: str = "c", **extra: object) -> dict:
    spec = {"gatewayClassName": cls, "listeners": [{"name": "a", "port": 80, "protocol": "HTTP"}]}
    spec.update(extra)
    return {"apiVersion": f"{GW}/v1", "kind": "Gateway", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def gateways(dynamic_client: DynamicClient):  # type: ignore[no-untyped-def]
    return dynamic_client.resources.get(api_version=f"{GW}/v1", kind="Gateway")


def test_field_manager_is_required(gateways, namespace) -> None:
    with pytest.raises(DynamicApiError) as ei:
        gateways.server_side_apply(namespace=namespace, body=_gw("g"))
    assert ei.value.status == 422
    assert body_of(ei.value)["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
        "apply patch"
    )


def test_apply_creates_then_tracks_ownership(gateways, namespace) -> None:
    created = gateways.server_side_apply(namespace=namespace, body=_gw("g"), field_manager="me")
    assert created.metadata.generation == 1
    mf = created.to_dict()["metadata"]["managedFields"]
    assert [(m["manager"], m["operation"]) for m in mf] == [("me", "Apply")]
    assert mf[0]["fieldsType"] == "FieldsV1"
    assert mf[0]["apiVersion"] == f"{GW}/v1"
    assert "f:gatewayClassName" in mf[0]["fieldsV1"]["f:spec"]
    assert 'k:{"name":"a"}' in mf[0]["fieldsV1"]["f:spec"]["f:listeners"]
    again = gateways.server_side_apply(namespace=namespace, body=_gw("g"), field_manager="me")
    assert again.metadata.resourceVersion == created.metadata.resourceVersion


def test_conflict_with_another_manager_and_force(gateways, namespace) -> None:
    gateways.server_side_apply(namespace=namespace, body=_gw("g"), field_manager="mgr")
    with pytest.raises(DynamicApiError) as ei:
        gateways.server_side_apply(
            namespace=namespace, body=_gw("g", cls="other"), field_manager="intruder"
        )
    assert ei.value.status == 409
    body = body_of(ei.value)
    assert body["reason"] == "Conflict"
    # an Apply owner is named without its apiVersion (as the real server does)
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "mgr": .spec.gatewayClassName'
    )
    assert body["details"]["causes"] == [
        {
            "type": "FieldManagerConflict",
            "message": 'conflict with "mgr"',
            "field": ".spec.gatewayClassName",
        }
    ]
    forced = gateways.server_side_apply(
        namespace=namespace,
        body=_gw("g", cls="other"),
        field_manager="intruder",
        force_conflicts=True,
    )
    assert forced.spec.gatewayClassName == "other"
    owners = {m["manager"]: m for m in forced.to_dict()["metadata"]["managedFields"]}
    assert "f:gatewayClassName" in owners["intruder"]["fieldsV1"]["f:spec"]
    assert "f:gatewayClassName" not in owners["mgr"]["fieldsV1"].get("f:spec", {})


def test_conflict_with_an_update_manager_names_its_api_version(
    api_client, gateways, namespace
) -> None:
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(
        GW, "v1", namespace, "gateways", _gw("g"), field_manager="editor"
    )
    with pytest.raises(DynamicApiError) as ei:
        gateways.server_side_apply(
            namespace=namespace,
            field_manager="applier",
            body=_gw("g", cls="x", listeners=[{"name": "a", "port": 81, "protocol": "HTTP"}]),
        )
    body = body_of(ei.value)
    assert ei.value.status == 409
    assert body["message"].startswith(
        f'Apply failed with 2 conflicts: conflicts with "editor" using {GW}/v1:\n- '
    )
    fields = sorted(c["field"] for c in body["details"]["causes"])
    assert fields == [".spec.gatewayClassName", '.spec.listeners[name="a"].port']


def test_same_value_is_co_ownership_not_conflict(gateways, namespace) -> None:
    gateways.server_side_apply(namespace=namespace, body=_gw("g"), field_manager="one")
    out = gateways.server_side_apply(namespace=namespace, body=_gw("g"), field_manager="two")
    managers = {m["manager"] for m in out.metadata.managedFields}
    assert managers == {"one", "two"}


def test_fields_no_longer_applied_are_removed(gateways, namespace) -> None:
    gateways.server_side_apply(
        namespace=namespace,
        field_manager="me",
        body=_gw("g", addresses=[{"type": "IPAddress", "value": "10.0.0.1"}]),
    )
    out = gateways.server_side_apply(namespace=namespace, body=_gw("g"), field_manager="me")
    assert not out.spec.get("addresses")


def test_update_operations_are_recorded(api_client, gateways, namespace) -> None:
    gateways.server_side_apply(namespace=namespace, body=_gw("g"), field_manager="me")
    co = client.CustomObjectsApi(api_client)
    out = co.patch_namespaced_custom_object(
        GW, "v1", namespace, "gateways", "g", {"metadata": {"labels": {"x": "y"}}}
    )
    ops = {(m["manager"], m["operation"]) for m in out["metadata"]["managedFields"]}
    assert ("OpenAPI-Generator", "Update") in ops
    out = co.patch_namespaced_custom_object(
        GW,
        "v1",
        namespace,
        "gateways",
        "g",
        {"metadata": {"labels": {"z": "y"}}},
        field_manager="labeller",
    )
    assert ("labeller", "Update") in {
        (m["manager"], m["operation"]) for m in out["metadata"]["managedFields"]
    }


def test_status_apply_records_subresource(gateways, namespace) -> None:
    gateways.server_side_apply(namespace=namespace, body=_gw("g"), field_manager="me")
    out = gateways.status.server_side_apply(
        namespace=namespace,
        field_manager="ctrl",
        body={
            "apiVersion": f"{GW}/v1",
            "kind": "Gateway",
            "metadata": {"name": "g"},
            "status": {"addresses": [{"type": "IPAddress", "value": "127.0.0.1"}]},
        },
    )
    assert out.status.addresses[0]["value"] == "127.0.0.1"
    assert out.spec.gatewayClassName == "c"
    entry = next(m for m in out.metadata.managedFields if m["manager"] == "ctrl")
    assert entry["subresource"] == "status" and entry["operation"] == "Apply"


def test_force_on_non_apply_patch_is_422(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    with pytest.raises(client.ApiException) as ei:
        core.patch_namespaced_config_map("a", namespace, {"data": {"a": "b"}}, force=True)
    assert ei.value.status == 422
    assert (
        "force: Forbidden: may not be specified for non-apply patch" in body_of(ei.value)["message"]
    )


def test_apply_to_builtin(dynamic_client: DynamicClient, namespace) -> None:
    cms = dynamic_client.resources.get(api_version="v1", kind="ConfigMap")
    out = cms.server_side_apply(
        namespace=namespace,
        field_manager="me",
        body={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"a": "1"},
        },
    )
    assert out.data.a == "1"
    assert out.to_dict()["metadata"]["managedFields"][0]["fieldsV1"]["f:data"] == {"f:a": {}}
