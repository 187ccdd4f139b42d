"""Spec sections "Transport" and "Discovery", with raw HTTP and the official client."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
import uuid

import pytest
from dc_support import admin_headers, body_of
from kubernetes import client, watch
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from support.waiting import wait_for

from devcluster import DevCluster


class _AdminConnection(http.client.HTTPConnection):
    """A connection whose requests carry the admin's bearer token."""

    def __init__(self, cluster: DevCluster) -> None:
        u = urllib.parse.urlsplit(cluster.url)
        super().__init__(u.hostname, u.port, timeout=10)
        self.admin = admin_headers(cluster)

    def request(self, method, url, body=None, headers=None, **kw):  # type: ignore[no-untyped-def,override]
        super().request(method, url, body, {**self.admin, **(headers or {})}, **kw)


def _conn(cluster: DevCluster) -> http.client.HTTPConnection:
    return _AdminConnection(cluster)


def test_keep_alive_content_length_and_exact_content_type(devcluster: DevCluster) -> None:
    conn = _conn(devcluster)
    conn.request("GET", "/version")
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    conn.request("GET", "/api/v1/namespaces/default")
    second = conn.getresponse()
    body = json.loads(second.read())
    assert conn.sock is sock, "the connection was not kept alive"
    for r in (first, second):
        assert r.status == 200
        assert r.getheader("Content-Type") == "application/json"
        assert r.getheader("Content-Length") is not None
    assert body["metadata"]["name"] == "default"
    conn.close()


def test_error_bodies_are_json_status_with_exact_content_type(devcluster: DevCluster) -> None:
    conn = _conn(devcluster)
    conn.request("GET", "/api/v1/namespaces/default/configmaps/does-not-exist")
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 404
    assert r.getheader("Content-Type") == "application/json"
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "does-not-exist" not found',
        "reason": "NotFound",
        "details": {"name": "does-not-exist", "group": "", "kind": "configmaps"},
        "code": 404,
    }


def test_unknown_path_is_plain_404_page_not_found(devcluster: DevCluster) -> None:
    conn = _conn(devcluster)
    for path in ("/nope", "/apis/nothing.example.com/v1/things", "/api/v2/pods"):
        conn.request("GET", path)
        r = conn.getresponse()
        assert r.status == 404
        assert r.read() == b"404 page not found\n"
        assert r.getheader("Content-Type", "").startswith("text/plain")


def test_unknown_resource_in_known_group_version_is_not_found_status(
    devcluster: DevCluster,
) -> None:
    conn = _conn(devcluster)
    conn.request("GET", "/apis/gateway.networking.k8s.io/v1/namespaces/default/widgets")
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 404
    assert body["kind"] == "Status" and body["reason"] == "NotFound"


def test_watch_tolerates_client_hang_up(devcluster: DevCluster, api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, namespace, resource_version="0"):
        assert ev["type"] == "ADDED"
        break
    w.stop()
    # the server notices the hang-up and unregisters the watcher; it keeps serving
    store = devcluster.store
    wait_for(lambda: not any(x.namespace == namespace for x in store._watchers), timeout=5)
    assert core.read_namespace(namespace).metadata.name == namespace


def test_watch_hang_up_without_events(devcluster: DevCluster, api_client, namespace) -> None:
    u = urllib.parse.urlsplit(devcluster.url)
    s = socket.create_connection((u.hostname, u.port))
    s.sendall(
        f"GET /api/v1/namespaces/{namespace}/secrets?watch=true HTTP/1.1\r\n"
        f"Host: x\r\nAuthorization: Bearer {devcluster.admin_token}\r\n\r\n".encode()
    )
    head = s.recv(4096)
    assert b"200 OK" in head and b"chunked" in head.lower()
    wait_for(lambda: any(x.namespace == namespace for x in devcluster.store._watchers))
    s.shutdown(socket.SHUT_RDWR)
    s.close()
    wait_for(lambda: not any(x.namespace == namespace for x in devcluster.store._watchers))


# ------------------------------------------------------------------------------- discovery


def _get(cluster: DevCluster, path: str) -> dict:
    conn = _conn(cluster)
    conn.request("GET", path)
    r = conn.getresponse()
    assert r.status == 200, path
    return json.loads(r.read())


def test_version_api_and_apis_documents(devcluster: DevCluster) -> None:
    assert _get(devcluster, "/version")["gitVersion"].startswith("v1.")
    api = _get(devcluster, "/api")
    port = urllib.parse.urlsplit(devcluster.url).port
    assert api == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}
        ],
    }
    apis = _get(devcluster, "/apis")
    assert apis["kind"] == "APIGroupList" and apis["apiVersion"] == "v1"
    groups = {g["name"]: g for g in apis["groups"]}
    for g in (
        "coordination.k8s.io",
        "events.k8s.io",
        "discovery.k8s.io",
        "apiextensions.k8s.io",
        "gateway.networking.k8s.io",
        "cert-manager.io",
    ):
        assert g in groups, g
    for g in groups.values():
        assert g["preferredVersion"] in g["versions"]  # dict-equal, as the client compares
    gw = groups["gateway.networking.k8s.io"]
    assert gw["preferredVersion"] == {
        "groupVersion": "gateway.networking.k8s.io/v1",
        "version": "v1",
    }
    assert {"groupVersion": "gateway.networking.k8s.io/v1beta1", "version": "v1beta1"} in gw[
        "versions"
    ]


def test_resource_lists_with_subresources(devcluster: DevCluster) -> None:
    core = _get(devcluster, "/api/v1")
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    names = {r["name"]: r for r in core["resources"]}
    for n in (
        "namespaces",
        "namespaces/status",
        "configmaps",
        "secrets",
        "services",
        "services/status",
        "events",
        "pods",
        "endpoints",
    ):
        assert n in names, n
    assert names["configmaps"]["verbs"] == [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    assert names["services/status"] == {
        "name": "services/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Service",
        "verbs": ["get", "patch", "update"],
    }
    assert names["namespaces"]["namespaced"] is False
    gw = {r["name"]: r for r in _get(devcluster, "/apis/gateway.networking.k8s.io/v1")["resources"]}
    assert gw["gateways"]["shortNames"] == ["gtw"]
    assert gw["gateways"]["categories"] == ["gateway-api"]
    assert gw["gateways"]["singularName"] == "gateway"
    assert gw["gateways/status"]["namespaced"] is True
    assert gw["gatewayclasses"]["namespaced"] is False
    for gv, res in (
        ("coordination.k8s.io/v1", "leases"),
        ("events.k8s.io/v1", "events"),
        ("discovery.k8s.io/v1", "endpointslices"),
        ("apiextensions.k8s.io/v1", "customresourcedefinitions"),
    ):
        assert res in {r["name"] for r in _get(devcluster, f"/apis/{gv}")["resources"]}


def test_dynamic_client_discovers_a_crd_installed_after_it_started(
    devcluster: DevCluster, dynamic_client: DynamicClient, namespace: str
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    with pytest.raises(ResourceNotFoundError):
        dynamic_client.resources.get(api_version=f"{group}/v1", kind="Widget")
    devcluster.register_permissive(group=group, version="v1", kind="Widget", plural="widgets")
    widgets = dynamic_client.resources.get(api_version=f"{group}/v1", kind="Widget")
    obj = widgets.create(
        namespace=namespace,
        body={
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"anything": {"goes": [1, 2]}},
        },
    )
    assert obj.spec.anything["goes"] == [1, 2]
    # the status subresource URL is namespaced
    widgets.status.patch(
        namespace=namespace,
        name="w",
        body={"status": {"ok": True}},
        content_type="application/merge-patch+json",
    )
    assert widgets.get(namespace=namespace, name="w").status.ok is True


def test_typed_client_sees_unknown_kind_as_not_found(api_client) -> None:
    api = client.CustomObjectsApi(api_client)
    with pytest.raises(client.ApiException) as ei:
        api.list_namespaced_custom_object("gateway.networking.k8s.io", "v1", "default", "widgets")
    assert ei.value.status == 404
    assert body_of(ei.value)["reason"] == "NotFound"
