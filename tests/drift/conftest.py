"""Fixtures for the drift tests: a devcluster with the simulated issuer, load balancer and TLS
data plane (the recovery scene's, see tests/recovery/recovery_kit.py), a namespace and a SQLite
store per test, and bifrost's Controller in-process on them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from recovery.recovery_kit import REPO, Scene
from support.devcluster import crd_paths

from bifrost.cli.dev import LB_KIND
from bifrost.kube import KubeClient
from devcluster.peers import IssuerOptions, Peers
from devcluster.server import DevCluster


@pytest.fixture(scope="module")
def drift_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = DevCluster(crd_paths=[*crd_paths(), REPO / "deploy" / "crds"], bookmark_interval=0.5)
    cluster.start()
    peers: Peers | None = None
    try:
        group, version, kind, plural = LB_KIND
        cluster.register_permissive(group=group, version=version, kind=kind, plural=plural,
                                    namespaced=False)
        kubeconfig = cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        peers = Peers(kubeconfig, issuer_options=IssuerOptions(
            seed=5, issuer_names=frozenset({"devcluster-ca"}))).start()
        with KubeClient.from_kubeconfig(kubeconfig) as kube:
            kube.apply({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "bifrost-system"}})
        cluster.kubeconfig_path = kubeconfig  # type: ignore[attr-defined]
        yield cluster
    finally:
        if peers is not None:
            peers.stop()
        cluster.stop()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"


@pytest.fixture
def scene(drift_cluster: DevCluster, tmp_path: Path) -> Iterator[Scene]:
    kube = KubeClient.from_kubeconfig(drift_cluster.kubeconfig_path)  # type: ignore[attr-defined]
    namespace = f"dr-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    scene = Scene(kube, namespace, tmp_path / "bifrost.db")
    scene.open_new_store()
    try:
        yield scene
    finally:
        scene.close()
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
