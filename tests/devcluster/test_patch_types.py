"""Spec section "Patch types": the Content-Type header selects merge, JSON or strategic merge."""

from __future__ import annotations

import pytest
from dc_support import body_of
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError

GW = "gateway.networking.k8s.io"


def _gw(name: str) -> dict:
    return {
        "apiVersion": f"{GW}/v1",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {
            "gatewayClassName": "c",
            "listeners": [
                {"name": "a", "port": 80, "protocol": "HTTP"},
                {"name": "b", "port": 81, "protocol": "HTTP"},
            ],
        },
    }


def test_merge_patch_is_the_custom_objects_default(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", _gw("g"))
    out = co.patch_namespaced_custom_object(
        GW,
        "v1",
        namespace,
        "gateways",
        "g",
        {
            "metadata": {"labels": {"x": "1"}},
            "spec": {"listeners": [{"name": "only", "port": 90, "protocol": "HTTP"}]},
        },
    )
    assert [li["name"] for li in out["spec"]["listeners"]] == ["only"]  # lists replaced
    out = co.patch_namespaced_custom_object(
        GW, "v1", namespace, "gateways", "g", {"metadata": {"labels": {"x": None}}}
    )
    assert "x" not in (out["metadata"].get("labels") or {})


def test_json_patch_and_failed_test_op(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}, "data": {"k": "v"}})
    out = core.patch_namespaced_config_map(
        "a",
        namespace,
        [
            {"op": "test", "path": "/data/k", "value": "v"},
            {"op": "replace", "path": "/data/k", "value": "w"},
            {"op": "add", "path": "/data/n", "value": "1"},
        ],
    )
    assert out.data == {"k": "w", "n": "1"}
    with pytest.raises(client.ApiException) as ei:
        core.patch_namespaced_config_map(
            "a",
            namespace,
            [
                {"op": "test", "path": "/data/k", "value": "nope"},
                {"op": "remove", "path": "/data/k"},
            ],
        )
    assert ei.value.status == 422
    assert core.read_namespaced_config_map("a", namespace).data["k"] == "w"


def test_typed_dict_patch_becomes_strategic_merge(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
                "schedulerName": "none",  # never scheduled: no kubelet writes its status
            },
        },
    )
    out = core.patch_namespaced_pod(
        "p", namespace, {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}
    )
    assert {c.name: c.image for c in out.spec.containers} == {"a": "a:1", "b": "b:2"}
    st = core.patch_namespaced_pod_status(
        "p",
        namespace,
        {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "Initialized", "status": "True"},
                ]
            }
        },
    )
    st = core.patch_namespaced_pod_status(
        "p", namespace, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    )
    assert {c.type: c.status for c in st.status.conditions} == {
        "Ready": "True",
        "Initialized": "True",
    }


def test_strategic_merge_finalizers_set_and_directives(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "a", "finalizers": ["x/a"]}, "data": {"k": "v", "j": "w"}}
    )
    out = core.patch_namespaced_config_map("a", namespace, {"metadata": {"finalizers": ["x/b"]}})
    assert sorted(out.metadata.finalizers) == ["x/a", "x/b"]
    out = core.patch_namespaced_config_map(
        "a", namespace, {"data": {"$patch": "replace", "only": "1"}}
    )
    assert out.data == {"only": "1"}
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"finalizers": None}})


def test_strategic_merge_on_custom_resources_is_415(
    api_client, dynamic_client: DynamicClient, namespace
) -> None:
    gws = dynamic_client.resources.get(api_version=f"{GW}/v1", kind="Gateway")
    gws.create(namespace=namespace, body=_gw("g"))
    with pytest.raises(DynamicApiError) as ei:
        gws.patch(namespace=namespace, name="g", body={"metadata": {"labels": {"a": "b"}}})
    assert ei.value.status == 415
    body = body_of(ei.value)
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    # summary() only decodes the Status when Content-Type is exactly application/json
    assert ei.value.summary() == body["message"]
    ok = gws.patch(
        namespace=namespace,
        name="g",
        body={"metadata": {"labels": {"a": "b"}}},
        content_type="application/merge-patch+json",
    )
    assert ok.metadata.labels["a"] == "b"
