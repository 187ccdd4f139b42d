"""Spec section "Watch": resume, initial events, 410, selectors, bookmarks, timeouts, and the
official client's own reconnect/410 behaviour."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest
from kubernetes import client, watch
from support.waiting import wait_for

from devcluster import DevCluster


def _raw_watch(cluster: DevCluster, path: str) -> list[dict]:
    req = urllib.request.Request(
        cluster.url + path, headers={"Authorization": f"Bearer {cluster.admin_token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["Transfer-Encoding"] == "chunked"
        return [json.loads(line) for line in r.read().splitlines() if line.strip()]


def test_resource_version_zero_sends_current_state_then_live(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    w = watch.Watch()
    seen = []
    for ev in w.stream(
        core.list_namespaced_config_map, namespace, resource_version="0", timeout_seconds=5
    ):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 1:
            core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "a"), ("ADDED", "b")]


def test_resume_from_resource_version_sends_only_later_events(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.patch_namespaced_config_map("a", namespace, {"data": {"x": "1"}})
    core.delete_namespaced_config_map("a", namespace)
    w = watch.Watch()
    seen = []
    for ev in w.stream(
        core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=2
    ):
        seen.append(ev["type"])
        if len(seen) == 2:
            w.stop()
    assert seen == ["MODIFIED", "DELETED"]


def test_too_old_resource_version_gives_410_error_event(
    devcluster: DevCluster, api_client, namespace
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    devcluster.compact()
    events = _raw_watch(
        devcluster, f"/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion={rv}"
    )
    assert len(events) == 1
    ev = events[0]
    assert ev["type"] == "ERROR"
    assert ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
    assert ev["object"]["message"].startswith(f"too old resource version: {rv} (")
    # the typed Watch retries once with the same version, then raises ApiException(410)
    with pytest.raises(client.ApiException) as ei:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=rv
        ):
            pass
    assert ei.value.status == 410


def test_selector_transitions_become_added_and_deleted(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"app": "x"}}})
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "v"}})
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"app": None}}})
    seen = []
    w = watch.Watch()
    for ev in w.stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=rv,
        label_selector="app=x",
        timeout_seconds=2,
    ):
        seen.append(ev["type"])
        if len(seen) == 3:
            w.stop()
    assert seen == ["ADDED", "MODIFIED", "DELETED"]


def test_field_selector_on_name_via_dynamic_client(dynamic_client, namespace) -> None:
    cms = dynamic_client.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(namespace=namespace, body={"metadata": {"name": "a"}})
    cms.create(namespace=namespace, body={"metadata": {"name": "b"}})
    seen = []
    for ev in cms.watch(namespace=namespace, name="b", timeout=1):
        seen.append(ev["object"].metadata.name)
    assert seen == ["b"]  # DynamicClient.watch never reconnects: the stream just ends


def test_bookmarks_and_timeout(devcluster: DevCluster, namespace) -> None:
    events = _raw_watch(
        devcluster,
        f"/api/v1/namespaces/{namespace}/configmaps?watch=true"
        "&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=0",
    )
    assert events, "expected a bookmark before closing on timeout"
    assert all(e["type"] == "BOOKMARK" for e in events)
    bm = events[-1]["object"]
    assert bm["kind"] == "ConfigMap" and bm["apiVersion"] == "v1"
    assert int(bm["metadata"]["resourceVersion"]) >= 1


def test_send_initial_events_ends_with_annotated_bookmark(
    devcluster: DevCluster, api_client, namespace
) -> None:
    core = client.CoreV1Api(api_client)
    for n in ("a", "b"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": n}})
    events = _raw_watch(
        devcluster,
        f"/api/v1/namespaces/{namespace}/configmaps?watch=true"
        "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=1",
    )
    assert [e["type"] for e in events[:3]] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_typed_watch_reconnects_after_drop_with_last_resource_version(
    devcluster: DevCluster, api_client, namespace
) -> None:
    core = client.CoreV1Api(api_client)
    seen: list[str] = []
    done = threading.Event()
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(core.list_namespaced_config_map, namespace):
            seen.append(ev["object"].metadata.name)
            if len(seen) == 3:
                w.stop()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    wait_for(lambda: any(x.namespace == namespace for x in devcluster.store._watchers))
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "one"}})
    wait_for(lambda: seen == ["one"])
    devcluster.drop_watches()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "two"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "three"}})
    assert done.wait(10)
    assert seen == ["one", "two", "three"]  # nothing lost, nothing repeated


def test_watch_of_all_namespaces_and_cluster_scoped(
    devcluster: DevCluster, api_client, namespace
) -> None:
    core = client.CoreV1Api(api_client)
    rv = core.list_namespace().metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    events = _raw_watch(
        devcluster, f"/api/v1/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    )
    # other tests' namespaces may still be terminating (their objects produce DELETED events on
    # this cluster-wide watch): look at our object only
    ours = [e for e in events if e["object"]["metadata"]["namespace"] == namespace]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in ours] == [("ADDED", "x")]
