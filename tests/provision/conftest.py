"""Fixtures for the provision/teardown machines: a devcluster of their own (the shared one has no
cluster-scoped load-balancer kind and no bifrost CRDs) with the simulated peers, and per test a
namespace, a SQLite store and a ``Harness`` (see ``provision_kit``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from provision_kit import GATEWAY_API, REPO, Cluster, Harness
from support.devcluster import crd_paths

from bifrost.cli.dev import LB_KIND
from bifrost.kube import KubeClient
from bifrost.store import migrate, open_store
from devcluster.peers import IssuerOptions, Peers
from devcluster.server import DevCluster


@pytest.fixture(scope="session")
def provision_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = DevCluster(crd_paths=[*crd_paths(), REPO / "deploy" / "crds"], bookmark_interval=0.5)
    cluster.start()
    peers: Peers | None = None
    try:
        group, version, kind, plural = LB_KIND
        cluster.register_permissive(
            group=group, version=version, kind=kind, plural=plural, namespaced=False
        )
        kubeconfig = cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        peers = Peers(kubeconfig, issuer_options=IssuerOptions(seed=1), dataplane=False).start()
        with KubeClient.from_kubeconfig(kubeconfig) as kube:
            kube.apply({
                "apiVersion": GATEWAY_API,
                "kind": "GatewayClass",
                "metadata": {"name": "bifrost"},
                "spec": {"controllerName": "gateway.bifrost.dev/bifrost"},
            })
        yield Cluster(cluster, kubeconfig)
    finally:
        if peers is not None:
            peers.stop()
        cluster.stop()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"


@pytest.fixture
def harness(provision_cluster: Cluster, tmp_path: Path) -> Iterator[Harness]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(provision_cluster.kubeconfig)
    namespace = f"p-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        yield Harness(provision_cluster.devcluster, kube, store, namespace,
                      blueprint=f"bp-{namespace}")
    finally:
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
        store.close()
