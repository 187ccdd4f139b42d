"""Spec section "Lists": selectors, pagination, 410 for too-old Exact lists, list kinds."""

from __future__ import annotations

import json

import pytest
from dc_support import body_of
from kubernetes import client

from devcluster import DevCluster

GW = "gateway.networking.k8s.io"


@pytest.fixture
def labelled(api_client, namespace) -> str:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api_client)
    for name, labels in (
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "db", "tier": "back"}),
        ("c", {"app": "web"}),
        ("d", {}),
    ):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})
    return namespace


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "c"]),
        ("app==web", ["a", "c"]),
        ("app!=web", ["b", "d"]),
        ("app in (web,db)", ["a", "b", "c"]),
        ("app notin (web)", ["b", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app=web,tier=front", ["a"]),
        ("app in (web), !tier", ["c"]),
    ],
)
def test_label_selectors(api_client, labelled, selector, expected) -> None:
    core = client.CoreV1Api(api_client)
    items = core.list_namespaced_config_map(labelled, label_selector=selector).items
    assert [i.metadata.name for i in items] == expected


def test_bad_label_selector_is_400(api_client, labelled) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(client.ApiException) as ei:
        core.list_namespaced_config_map(labelled, label_selector="app in (")
    assert ei.value.status == 400


def test_field_selectors(api_client, labelled) -> None:
    core = client.CoreV1Api(api_client)
    by_name = core.list_namespaced_config_map(labelled, field_selector="metadata.name=b")
    assert [i.metadata.name for i in by_name.items] == ["b"]
    not_b = core.list_namespaced_config_map(labelled, field_selector="metadata.name!=b")
    assert [i.metadata.name for i in not_b.items] == ["a", "c", "d"]
    everywhere = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={labelled}"
    )
    assert len(everywhere.items) == 4


def test_pagination_with_limit_and_continue(api_client, labelled) -> None:
    core = client.CoreV1Api(api_client)
    page1 = core.list_namespaced_config_map(labelled, limit=3)
    assert [i.metadata.name for i in page1.items] == ["a", "b", "c"]
    assert page1.metadata._continue
    assert page1.metadata.remaining_item_count == 1
    page2 = core.list_namespaced_config_map(labelled, limit=3, _continue=page1.metadata._continue)
    assert [i.metadata.name for i in page2.items] == ["d"]
    assert not page2.metadata._continue


def test_exact_list_of_a_compacted_version_is_410(
    devcluster: DevCluster, api_client, labelled
) -> None:
    core = client.CoreV1Api(api_client)
    old = core.list_namespaced_config_map(labelled).metadata.resource_version
    core.create_namespaced_config_map(labelled, {"metadata": {"name": "e"}})
    devcluster.compact()
    with pytest.raises(client.ApiException) as ei:
        core.list_namespaced_config_map(
            labelled, resource_version=old, resource_version_match="Exact"
        )
    assert ei.value.status == 410
    assert body_of(ei.value)["reason"] == "Expired"


def test_list_kinds_and_item_type_meta(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    resp = core.list_namespaced_config_map(namespace, _preload_content=False)
    raw = json.loads(resp.data)
    assert raw["kind"] == "ConfigMapList" and raw["apiVersion"] == "v1"
    assert "kind" not in raw["items"][0] and "apiVersion" not in raw["items"][0]
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(
        GW,
        "v1",
        namespace,
        "gateways",
        {
            "apiVersion": f"{GW}/v1",
            "kind": "Gateway",
            "metadata": {"name": "g"},
            "spec": {
                "gatewayClassName": "c",
                "listeners": [{"name": "h", "port": 80, "protocol": "HTTP"}],
            },
        },
    )
    gl = co.list_namespaced_custom_object(GW, "v1", namespace, "gateways")
    assert gl["kind"] == "GatewayList"
    assert gl["items"][0]["kind"] == "Gateway"
    assert gl["items"][0]["apiVersion"] == f"{GW}/v1"
    # cluster-wide list of a namespaced kind
    allgw = co.list_cluster_custom_object(GW, "v1", "gateways")
    assert any(i["metadata"]["namespace"] == namespace for i in allgw["items"])


def test_delete_collection_with_selector(api_client, labelled) -> None:
    core = client.CoreV1Api(api_client)
    core.delete_collection_namespaced_config_map(labelled, label_selector="app=web")
    left = core.list_namespaced_config_map(labelled).items
    assert [i.metadata.name for i in left] == ["b", "d"]


def test_exact_list_and_continue_serve_the_snapshot(api_client, labelled) -> None:
    core = client.CoreV1Api(api_client)
    page1 = core.list_namespaced_config_map(labelled, limit=2)
    rv = page1.metadata.resource_version
    core.delete_namespaced_config_map("c", labelled)
    core.patch_namespaced_config_map("d", labelled, {"data": {"late": "1"}})
    core.create_namespaced_config_map(labelled, {"metadata": {"name": "e"}})
    # the rest of a paginated list is consistent with its first page
    page2 = core.list_namespaced_config_map(labelled, limit=10, _continue=page1.metadata._continue)
    assert [i.metadata.name for i in page2.items] == ["c", "d"]
    assert page2.items[1].data is None
    exact = core.list_namespaced_config_map(
        labelled, resource_version=rv, resource_version_match="Exact"
    )
    assert [i.metadata.name for i in exact.items] == ["a", "b", "c", "d"]
    assert exact.metadata.resource_version == rv
    now = core.list_namespaced_config_map(labelled)
    assert [i.metadata.name for i in now.items] == ["a", "b", "d", "e"]
