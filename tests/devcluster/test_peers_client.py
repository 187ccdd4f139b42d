"""The peers' own client (``devcluster.client``) and informer against a private devcluster.

The peers must not share bifrost's Kubernetes client, so theirs is tested here on its own: the
requests the peers make, the errors they react to, and an informer that converges after its watch
was cut off and its resourceVersion compacted away.
"""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.waiting import wait_for

from devcluster.client import Client, ClientError, NotFound, UnknownKind
from devcluster.peers._runtime import Informer, WatchEvent
from devcluster.server import DevCluster

WIDGETS = "example.test/v1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevCluster]:
    dc = DevCluster(crd_paths=[])
    dc.start()
    dc.register_permissive(group="example.test", version="v1", kind="Widget", plural="widgets")
    try:
        yield dc
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"


@pytest.fixture(scope="module")
def kubeconfig(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cluster.write_kubeconfig(tmp_path_factory.mktemp("client") / "kubeconfig")


@pytest.fixture
def client(kubeconfig: Path) -> Iterator[Client]:
    with Client.from_kubeconfig(kubeconfig) as c:
        yield c


@pytest.fixture
def ns(client: Client) -> str:
    name = f"c-{uuid.uuid4().hex[:8]}"
    client.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        field_manager="test",
    )
    return name


@pytest.fixture(autouse=True)
def no_faults(cluster: DevCluster) -> Iterator[None]:
    yield
    cluster.faults.clear()


def configmap(ns: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"namespace": ns, "name": name},
        "data": data,
    }


def delete(cluster: DevCluster, ns: str, name: str) -> None:
    """Delete with the server's own HTTP surface (the peers' client has no delete)."""
    request = urllib.request.Request(
        f"{cluster.url}/api/v1/namespaces/{ns}/configmaps/{name}",
        method="DELETE",
        headers={"Authorization": f"Bearer {cluster.admin_token}"},
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200


def test_apply_get_and_patches_round_trip(client: Client, ns: str) -> None:
    assert client.get("v1", "ConfigMap", "cm", ns) is None
    created = client.apply(configmap(ns, "cm", a="1"), field_manager="test")
    assert created["data"] == {"a": "1"} and created["metadata"]["uid"]
    managers = {m["manager"] for m in created["metadata"]["managedFields"]}
    assert managers == {"test"}

    client.patch("v1", "ConfigMap", "cm", ns, {"data": {"b": "2"}}, field_manager="test")
    client.patch(
        "v1",
        "ConfigMap",
        "cm",
        ns,
        [{"op": "remove", "path": "/data/a"}],
        patch_type="json",
        field_manager="test",
    )
    got = client.get("v1", "ConfigMap", "cm", ns)
    assert got is not None
    assert got["data"] == {"b": "2"}
    assert (got["apiVersion"], got["kind"]) == ("v1", "ConfigMap")


def test_patch_status_writes_only_the_status(client: Client) -> None:
    name = f"w-{uuid.uuid4().hex[:8]}"
    widget = {
        "apiVersion": WIDGETS,
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"size": 1},
    }
    client.apply(widget, field_manager="test")
    patched = client.patch_status(
        WIDGETS, "Widget", name, "default", {"phase": "Ready"}, field_manager="test"
    )
    assert patched["status"] == {"phase": "Ready"}
    got = client.get(WIDGETS, "Widget", name, "default")
    assert got is not None and got["status"] == {"phase": "Ready"} and got["spec"] == {"size": 1}


def test_list_returns_typed_items_in_all_namespaces_and_the_list_version(
    client: Client, ns: str
) -> None:
    client.apply(configmap(ns, "one"), field_manager="test")
    client.apply(configmap("default", f"two-{ns}"), field_manager="test")
    items, rv = client.list("v1", "ConfigMap")
    names = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items}
    assert {(ns, "one"), ("default", f"two-{ns}")} <= names
    assert all((i["apiVersion"], i["kind"]) == ("v1", "ConfigMap") for i in items)
    assert int(rv) >= max(int(i["metadata"]["resourceVersion"]) for i in items)


def test_discovery_finds_a_kind_installed_after_a_miss(
    client: Client, cluster: DevCluster
) -> None:
    with pytest.raises(UnknownKind):
        client.is_namespaced("late.example.test/v1", "Gadget")
    cluster.register_permissive(
        group="late.example.test", version="v1", kind="Gadget", plural="gadgets", namespaced=False
    )
    assert client.is_namespaced("late.example.test/v1", "Gadget") is False
    assert client.is_namespaced("v1", "ConfigMap") is True
    with pytest.raises(UnknownKind):
        client.is_namespaced("v1", "Gadget")


def test_errors_carry_the_status_and_retry_after(
    client: Client, cluster: DevCluster, ns: str
) -> None:
    with pytest.raises(NotFound) as missing:
        client.patch("v1", "ConfigMap", "absent", ns, {"data": {}}, field_manager="test")
    assert missing.value.status == 404 and "absent" in str(missing.value)

    cluster.faults.add_rule(verbs=["get"], resources=["configmaps"], status=429, retry_after=7,
                            error_rate=1.0, times=1)
    with pytest.raises(ClientError) as throttled:
        client.get("v1", "ConfigMap", "absent", ns)
    assert throttled.value.status == 429 and throttled.value.retry_after == 7.0


def test_a_request_without_an_answer_is_a_client_error(tmp_path: Path) -> None:
    dc = DevCluster(crd_paths=[])
    dc.start()
    path = dc.write_kubeconfig(tmp_path / "kubeconfig")
    dc.stop()
    with Client.from_kubeconfig(path) as client, pytest.raises(ClientError) as failed:
        client.is_namespaced("v1", "ConfigMap")
    assert failed.value.status is None


def test_a_watch_stream_yields_events_and_closes_from_another_thread(
    client: Client, ns: str
) -> None:
    _, rv = client.list("v1", "ConfigMap")
    stream = client.watch("v1", "ConfigMap", resource_version=rv, timeout_seconds=60)
    client.apply(configmap(ns, "watched"), field_manager="test")
    seen: list[tuple[str, str]] = []
    ended = threading.Event()

    def read() -> None:
        for raw in stream:
            if raw["type"] != "BOOKMARK":
                seen.append((raw["type"], raw["object"]["metadata"]["name"]))
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    wait_for(lambda: ("ADDED", "watched") in seen, what="the ADDED event")
    stream.close()
    assert ended.wait(2), "closing the stream did not end the iteration"


class Recorder:
    """An informer handler that records (type, name) of every event in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, event: WatchEvent) -> None:
        with self.lock:
            self.events.append((event.type, event.key[1]))

    def since(self, start: int) -> list[tuple[str, str]]:
        with self.lock:
            return self.events[start:]


def test_the_informer_converges_after_its_watch_expired(
    client: Client, cluster: DevCluster, ns: str
) -> None:
    for name in ("gone", "replaced", "changed", "kept"):
        client.apply(configmap(ns, name, v="1"), field_manager="test")
    recorder = Recorder()
    informer = Informer(client, "v1", "ConfigMap", recorder)
    informer.start()
    try:
        wait_for(lambda: informer.synced and informer.get(ns, "kept"), what="first list")
        assert {("ADDED", n) for n in ("gone", "replaced", "changed", "kept")} <= set(
            recorder.since(0)
        )
        start = len(recorder.since(0))

        # Cut the informer off: no watch can open, the open one is dropped.
        rule = cluster.faults.add_rule(verbs=["watch"], resources=["configmaps"], status=503,
                                       error_rate=1.0)
        cluster.drop_watches()
        replaced_uid = informer.get(ns, "replaced")["metadata"]["uid"]  # type: ignore[index]
        # Changes it cannot see while its watch is refused.
        delete(cluster, ns, "gone")
        delete(cluster, ns, "replaced")
        client.apply(configmap(ns, "replaced", v="2"), field_manager="test")
        client.patch("v1", "ConfigMap", "changed", ns, {"data": {"v": "2"}},
                          field_manager="test")
        client.apply(configmap(ns, "new"), field_manager="test")
        cluster.compact()  # the resourceVersion it would resume from is now too old
        cluster.faults.remove_rule(rule)

        wait_for(lambda: informer.get(ns, "new"), timeout=15, what="the relist")
        after = recorder.since(start)
        assert ("DELETED", "gone") in after
        assert after.index(("DELETED", "replaced")) < after.index(("ADDED", "replaced"))
        assert ("MODIFIED", "changed") in after
        assert ("ADDED", "new") in after
        assert not any(name == "kept" for _, name in after)
        assert informer.get(ns, "gone") is None
        replaced = informer.get(ns, "replaced")
        assert replaced is not None and replaced["metadata"]["uid"] != replaced_uid
        assert (informer.get(ns, "changed") or {}).get("data") == {"v": "2"}
    finally:
        informer.stop()


def test_stopping_an_informer_ends_its_open_watch_promptly(client: Client) -> None:
    informer = Informer(client, "v1", "ConfigMap", lambda event: None)
    informer.start()
    wait_for(lambda: informer.synced, what="first list")
    started = time.monotonic()
    informer.stop()
    assert time.monotonic() - started < 2

