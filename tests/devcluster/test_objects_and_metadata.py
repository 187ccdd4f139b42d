"""Spec section "Objects and metadata": create, resourceVersion, namespaces, optimistic
concurrency, no-op writes, generation and the status subresource — via the official client."""

from __future__ import annotations

import re
import uuid

import pytest
from dc_support import body_of
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from support.waiting import wait_for

from devcluster import DevCluster

GW = "gateway.networking.k8s.io"


def _gateway(name: str, **spec: object) -> dict:
    s = {
        "gatewayClassName": "example",
        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
    }
    s.update(spec)
    return {"apiVersion": f"{GW}/v1", "kind": "Gateway", "metadata": {"name": name}, "spec": s}


def test_create_sets_server_metadata(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    cm = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "a"}, "data": {"k": "v"}}
    )
    meta = cm.metadata
    assert re.fullmatch(r"[0-9a-f-]{36}", meta.uid)
    assert meta.resource_version.isdigit()
    assert meta.namespace == namespace
    assert meta.managed_fields and meta.managed_fields[0].manager == "OpenAPI-Generator"
    assert meta.managed_fields[0].operation == "Update"
    co = client.CustomObjectsApi(api_client)
    gw = co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", _gateway("g"))
    assert gw["metadata"]["generation"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", gw["metadata"]["creationTimestamp"])
    assert gw["metadata"]["managedFields"][0]["fieldsType"] == "FieldsV1"


def test_namespace_in_body_must_match_url(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "a", "namespace": "default"}}
        )
    assert ei.value.status == 400
    assert body_of(ei.value)["reason"] == "BadRequest"


def test_generate_name_gets_five_random_characters(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    names = {
        core.create_namespaced_config_map(
            namespace, {"metadata": {"generateName": "p-"}}
        ).metadata.name
        for _ in range(3)
    }
    assert len(names) == 3
    assert all(re.fullmatch(r"p-[a-z0-9]{5}", n) for n in names)


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "a" * 254])
def test_invalid_names_are_rejected_with_422(api_client, namespace, name) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    assert ei.value.status == 422
    body = body_of(ei.value)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_custom_resource_needs_kind_but_typed_bodies_do_not(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    body = _gateway("nokind")
    del body["kind"]
    with pytest.raises(client.ApiException) as ei:
        co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", body)
    assert ei.value.status == 400
    assert body_of(ei.value)["message"].startswith("Object 'Kind' is missing")
    # a typed body without apiVersion/kind is fine
    core = client.CoreV1Api(api_client)
    sec = core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})
    )
    assert sec.metadata.name == "s"


def test_one_global_resource_version_counter(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    coord = client.CoordinationV1Api(api_client)
    a = int(
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "a"}}
        ).metadata.resource_version
    )
    b = int(
        coord.create_namespaced_lease(
            namespace, {"metadata": {"name": "l"}}
        ).metadata.resource_version
    )
    c = int(
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": "s"}}
        ).metadata.resource_version
    )
    assert a < b < c
    listing = core.list_namespaced_config_map(namespace)
    assert int(listing.metadata.resource_version) >= c


# ------------------------------------------------------------------------------ namespaces


def test_system_namespaces_and_name_label(api_client) -> None:
    core = client.CoreV1Api(api_client)
    names = {n.metadata.name: n for n in core.list_namespace().items}
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert names[ns].metadata.labels["kubernetes.io/metadata.name"] == ns
        assert names[ns].status.phase == "Active"
    selected = core.list_namespace(label_selector="kubernetes.io/metadata.name=kube-system")
    assert [n.metadata.name for n in selected.items] == ["kube-system"]


def test_create_in_missing_namespace_is_404(api_client) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_config_map("nope-nope", {"metadata": {"name": "a"}})
    assert ei.value.status == 404
    assert body_of(ei.value)["message"] == 'namespaces "nope-nope" not found'


def test_namespace_deletion_terminates_then_removes_contents(api_client) -> None:
    core = client.CoreV1Api(api_client)
    ns = f"del-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}})
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    core.delete_namespace(ns)
    assert core.read_namespace(ns).status.phase == "Terminating"
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "late"}})
    assert ei.value.status == 403
    # the namespace controller deletes the contents one by one ("a", then "held" marked
    # deleting): wait for the end state itself, not for the count that "a" alone brings down
    wait_for(
        lambda: [
            (cm.metadata.name, cm.metadata.deletion_timestamp is not None)
            for cm in core.list_namespaced_config_map(ns).items
        ]
        == [("held", True)],
        what="only 'held' left, being deleted",
    )
    assert core.read_namespace(ns).status.phase == "Terminating"
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})

    def gone() -> bool:
        try:
            core.read_namespace(ns)
        except client.ApiException as e:
            return e.status == 404
        return False

    wait_for(gone)


# ------------------------------------------------------------------ optimistic concurrency


def test_stale_put_is_409_with_the_real_message(api_client, namespace) -> None:
    coord = client.CoordinationV1Api(api_client)
    lease = coord.create_namespaced_lease(namespace, {"metadata": {"name": "x"}})
    lease.spec = client.V1LeaseSpec(holder_identity="a")
    coord.replace_namespaced_lease("x", namespace, lease)
    with pytest.raises(client.ApiException) as ei:
        coord.replace_namespaced_lease("x", namespace, lease)
    assert ei.value.status == 409
    assert body_of(ei.value)["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "x": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert body_of(ei.value)["reason"] == "Conflict"


def test_put_without_resource_version(api_client, namespace) -> None:
    coord = client.CoordinationV1Api(api_client)
    coord.create_namespaced_lease(namespace, {"metadata": {"name": "x"}})
    with pytest.raises(client.ApiException) as ei:
        coord.replace_namespaced_lease(
            "x", namespace, {"metadata": {"name": "x"}, "spec": {"holderIdentity": "me"}}
        )
    assert ei.value.status == 422
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", _gateway("g"))
    with pytest.raises(client.ApiException) as ei:
        co.replace_namespaced_custom_object(GW, "v1", namespace, "gateways", "g", _gateway("g"))
    assert ei.value.status == 422
    # ConfigMaps allow unconditional updates
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    out = core.replace_namespaced_config_map(
        "c", namespace, {"metadata": {"name": "c"}, "data": {"k": "v"}}
    )
    assert out.data == {"k": "v"}


def test_put_that_renames_is_400(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    cm.metadata.name = "b"
    with pytest.raises(client.ApiException) as ei:
        core.replace_namespaced_config_map("a", namespace, cm)
    assert ei.value.status == 400


def test_patch_with_resource_version_is_a_precondition(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    rv = cm.metadata.resource_version
    core.patch_namespaced_config_map(
        "a", namespace, {"metadata": {"resourceVersion": rv}, "data": {"x": "1"}}
    )
    with pytest.raises(client.ApiException) as ei:
        core.patch_namespaced_config_map(
            "a", namespace, {"metadata": {"resourceVersion": rv}, "data": {"x": "2"}}
        )
    assert ei.value.status == 409


def test_no_op_writes_keep_resource_version(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    cm = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "a"}, "data": {"k": "v"}}
    )
    rv = cm.metadata.resource_version
    assert (
        core.patch_namespaced_config_map(
            "a", namespace, {"data": {"k": "v"}}
        ).metadata.resource_version
        == rv
    )
    assert core.replace_namespaced_config_map("a", namespace, cm).metadata.resource_version == rv
    assert (
        core.patch_namespaced_config_map(
            "a", namespace, {"data": {"k": "w"}}
        ).metadata.resource_version
        != rv
    )


# ------------------------------------------------------------- generation and /status


def test_generation_counts_spec_changes_only(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", _gateway("g"))
    g = co.patch_namespaced_custom_object(
        GW, "v1", namespace, "gateways", "g", {"metadata": {"labels": {"a": "b"}}}
    )
    assert g["metadata"]["generation"] == 1
    g = co.patch_namespaced_custom_object(
        GW, "v1", namespace, "gateways", "g", {"spec": {"gatewayClassName": "other"}}
    )
    assert g["metadata"]["generation"] == 2
    g = co.patch_namespaced_custom_object_status(
        GW,
        "v1",
        namespace,
        "gateways",
        "g",
        {"status": {"addresses": [{"type": "IPAddress", "value": "10.0.0.1"}]}},
    )
    assert g["metadata"]["generation"] == 2
    # deletionTimestamp set for the first time bumps generation once
    co.patch_namespaced_custom_object(
        GW, "v1", namespace, "gateways", "g", {"metadata": {"finalizers": ["example.com/f"]}}
    )
    d = co.delete_namespaced_custom_object(GW, "v1", namespace, "gateways", "g")
    assert d["metadata"]["generation"] == 3
    d2 = co.delete_namespaced_custom_object(GW, "v1", namespace, "gateways", "g")
    assert d2["metadata"]["generation"] == 3


def test_status_subresource_split(api_client, namespace) -> None:
    co = client.CustomObjectsApi(api_client)
    body = _gateway("g")
    body["status"] = {"addresses": [{"type": "IPAddress", "value": "1.1.1.1"}]}
    g = co.create_namespaced_custom_object(GW, "v1", namespace, "gateways", body)
    assert "addresses" not in g["status"]  # dropped on create (the CRD's default remains)
    s = co.patch_namespaced_custom_object_status(
        GW,
        "v1",
        namespace,
        "gateways",
        "g",
        {
            "metadata": {"labels": {"x": "y"}},
            "spec": {"gatewayClassName": "zzz"},
            "status": {"addresses": [{"type": "IPAddress", "value": "2.2.2.2"}]},
        },
    )
    assert s["status"]["addresses"] == [{"type": "IPAddress", "value": "2.2.2.2"}]
    assert s["spec"]["gatewayClassName"] == "example"
    assert "labels" not in s["metadata"]
    m = co.patch_namespaced_custom_object(
        GW, "v1", namespace, "gateways", "g", {"status": {"addresses": []}}
    )
    assert m["status"]["addresses"] == [{"type": "IPAddress", "value": "2.2.2.2"}]
    # PUT to /status
    s["status"]["addresses"] = [{"type": "IPAddress", "value": "3.3.3.3"}]
    s2 = co.replace_namespaced_custom_object_status(
        GW, "v1", namespace, "gateways", "g", m | {"status": s["status"]}
    )
    assert s2["status"]["addresses"][0]["value"] == "3.3.3.3"
    assert s2["metadata"]["generation"] == 1


def test_builtin_status_subresource(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    svc = core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}},
        },
    )
    assert not (svc.status and svc.status.load_balancer and svc.status.load_balancer.ingress)
    out = core.patch_namespaced_service_status(
        "s", namespace, {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}
    )
    assert out.status.load_balancer.ingress[0].ip == "127.0.0.1"
    again = core.patch_namespaced_service(
        "s", namespace, {"metadata": {"labels": {"a": "b"}}, "status": {"loadBalancer": {}}}
    )
    assert again.status.load_balancer.ingress[0].ip == "127.0.0.1"


def test_events_on_watch_skip_no_ops(
    devcluster: DevCluster, dynamic_client: DynamicClient, namespace
) -> None:
    cms = dynamic_client.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(namespace=namespace, body={"metadata": {"name": "a"}, "data": {"k": "v"}})
    rv = devcluster.store.resource_version
    cms.patch(namespace=namespace, name="a", body={"data": {"k": "v"}})
    assert devcluster.store.resource_version == rv


def test_secret_string_data_and_service_defaults(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    sec = core.create_namespaced_secret(
        namespace, {"metadata": {"name": "s"}, "stringData": {"user": "admin"}}
    )
    assert sec.data == {"user": "YWRtaW4="} and sec.string_data is None
    assert sec.type == "Opaque"
    svc = core.create_namespaced_service(
        namespace, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert svc.spec.type == "ClusterIP"
    assert svc.spec.cluster_ip.startswith("10.96.")
    assert svc.spec.ports[0].protocol == "TCP" and svc.spec.ports[0].target_port == 80
    again = core.replace_namespaced_service(
        "web", namespace, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 81}]}}
    )
    assert again.spec.cluster_ip == svc.spec.cluster_ip  # allocated values are kept


def test_concurrent_read_modify_write_loses_no_update(devcluster: DevCluster, namespace) -> None:
    """Eight clients increment one counter with GET + PUT(resourceVersion), retrying on 409:
    optimistic concurrency must make every successful PUT count exactly once."""
    import threading

    cfg = client.Configuration()
    cfg.host = devcluster.url
    cfg.api_key = {"authorization": f"Bearer {devcluster.admin_token}"}
    setup = client.CoreV1Api(client.ApiClient(cfg))
    setup.create_namespaced_config_map(namespace, {"metadata": {"name": "n"}, "data": {"v": "0"}})
    conflicts = []

    def worker() -> None:
        core = client.CoreV1Api(client.ApiClient(cfg))
        for _ in range(15):
            while True:
                cm = core.read_namespaced_config_map("n", namespace)
                cm.data["v"] = str(int(cm.data["v"]) + 1)
                try:
                    core.replace_namespaced_config_map("n", namespace, cm)
                    break
                except client.ApiException as e:
                    assert e.status == 409
                    conflicts.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert setup.read_namespaced_config_map("n", namespace).data["v"] == str(8 * 15)
