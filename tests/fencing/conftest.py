"""Fixtures for the fencing tests: a devcluster of their own with bifrost's CRDs and the
simulated issuer, load balancer and TLS data plane (what a rotation needs), handed out with its
request log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fencing_kit import Cluster
from rotation.rotation_kit import REPO
from support.devcluster import crd_paths

from bifrost.cli.dev import LB_KIND
from bifrost.kube import KubeClient
from devcluster.peers import IssuerOptions, Peers
from devcluster.server import DevCluster


@pytest.fixture(scope="session")
def fencing_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = DevCluster(crd_paths=[*crd_paths(), REPO / "deploy" / "crds"], bookmark_interval=0.5)
    cluster.start()
    peers: Peers | None = None
    try:
        group, version, kind, plural = LB_KIND
        cluster.register_permissive(group=group, version=version, kind=kind, plural=plural,
                                    namespaced=False)
        kubeconfig = cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        peers = Peers(kubeconfig, issuer_options=IssuerOptions(
            seed=11, issuer_names=frozenset({"devcluster-ca"}))).start()
        with KubeClient.from_kubeconfig(kubeconfig) as kube:
            kube.apply({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "bifrost-system"}})
        yield Cluster(kubeconfig, cluster)
    finally:
        if peers is not None:
            peers.stop()
        cluster.stop()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"
