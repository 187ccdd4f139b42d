"""The steps' reads come from the watch caches once they are synced, and a step reads its own
writes back even before the watch delivered them; unsynced kinds go to the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support.peers_cluster import PeersCluster
from support.waiting import wait_for

from bifrost.controller.cached_reads import CachedReads
from bifrost.controller.children import ChildInformers
from bifrost.controller.informers import Cache
from bifrost.kube import KubeClient
from bifrost.steps.ownership import GATEWAY_UID_LABEL


@pytest.fixture
def setup(drift_cluster: PeersCluster) -> Iterator[tuple[KubeClient, ChildInformers, str,
                                                       list[tuple[str, str]]]]:
    kube = KubeClient.from_kubeconfig(drift_cluster.kubeconfig)
    namespace = f"cr-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    changes: list[tuple[str, str]] = []
    children = ChildInformers(kube, Cache(), lambda uid, key: changes.append((uid, key)))
    try:
        yield kube, children, namespace, changes
    finally:
        children.stop()
        kube.delete("v1", "Namespace", namespace)
        kube.close()


def config_map(namespace: str, name: str, value: str, uid: str = "g1") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {GATEWAY_UID_LABEL: uid}},
            "data": {"v": value}}


def test_reads_come_from_the_cache_and_see_their_own_writes(
        setup: tuple[KubeClient, ChildInformers, str, list[tuple[str, str]]],
        drift_cluster: PeersCluster) -> None:
    kube, children, namespace, changes = setup
    reads = CachedReads(kube, children)
    # not watched yet: straight to the API
    assert reads.get("v1", "ConfigMap", "a", namespace) is None
    assert reads.stats == {"cached": 0, "api": 1}

    kube.apply(config_map(namespace, "unlabelled", "x") | {"metadata": {
        "name": "unlabelled", "namespace": namespace}})  # someone else's, no bifrost label
    children.ensure({("v1", "ConfigMap")})
    wait_for(lambda: children.synced("v1", "ConfigMap"), timeout=10, what="the watch synced")

    written = reads.apply(config_map(namespace, "a", "1"))
    # read back at once: the write, whether or not the watch has delivered it yet
    got = reads.get("v1", "ConfigMap", "a", namespace)
    assert got is not None and got["metadata"]["resourceVersion"] == \
        written["metadata"]["resourceVersion"]
    got["data"]["v"] = "changed by the reader"  # a copy: the cache is not touched
    wait_for(lambda: ("g1", f"ConfigMap/{namespace}/a") in changes, timeout=10,
             what="the child's event reported with its gateway uid and wait key")

    # someone else's change, once the watch delivered it, is what the cache answers
    kube.apply(config_map(namespace, "a", "2"), field_manager="other")
    wait_for(lambda: (reads.get("v1", "ConfigMap", "a", namespace) or {}).get("data")
             == {"v": "2"}, timeout=10, what="the cache caught up")
    # an object without bifrost's label is not cached with its data (the watch of children
    # is label-selected), but the existence watch knows it is there: it is read from the API,
    # never mistaken for a missing one (a child must not take it over)
    api_before = reads.stats["api"]
    unlabelled = reads.get("v1", "ConfigMap", "unlabelled", namespace)
    assert unlabelled is not None and unlabelled["data"] == {"v": "x"}
    assert reads.stats["api"] == api_before + 1
    # a name nothing has is answered "none" from the caches
    assert reads.get("v1", "ConfigMap", "nothing", namespace) is None
    assert reads.stats["api"] == api_before + 1

    gets_before = drift_cluster.cluster.request_log.count(verbs={"get"}, resources={"configmaps"})
    for _ in range(20):
        reads.get("v1", "ConfigMap", "a", namespace)
    assert drift_cluster.cluster.request_log.count(verbs={"get"}, resources={"configmaps"}) == \
        gets_before
    assert reads.stats["api"] == api_before + 1

    # a kind no child has any more is not watched
    children.ensure(set())
    assert children.kinds() == set()
    assert not children.synced("v1", "ConfigMap")
