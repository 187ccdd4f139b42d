"""Fixtures for the rotation tests: a devcluster of their own with bifrost's CRDs, the simulated
issuer (it issues only for ``devcluster-ca``, so a certificate naming another issuer is never
issued), load balancer and TLS data plane; per test a namespace, a SQLite store and a running
bifrost controller (``env``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rotation_kit import REPO, Env, running_controller
from support.devcluster import crd_paths

from bifrost.cli.dev import LB_KIND
from bifrost.kube import KubeClient
from bifrost.store import migrate, open_store
from devcluster.peers import IssuerOptions, Peers
from devcluster.server import DevCluster


@pytest.fixture(scope="session")
def rotation_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cluster = DevCluster(crd_paths=[*crd_paths(), REPO / "deploy" / "crds"], bookmark_interval=0.5)
    cluster.start()
    peers: Peers | None = None
    try:
        group, version, kind, plural = LB_KIND
        cluster.register_permissive(group=group, version=version, kind=kind, plural=plural,
                                    namespaced=False)
        kubeconfig = cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        peers = Peers(kubeconfig, issuer_options=IssuerOptions(
            seed=7, issuer_names=frozenset({"devcluster-ca"}))).start()
        with KubeClient.from_kubeconfig(kubeconfig) as kube:
            kube.apply({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "bifrost-system"}})
        yield kubeconfig
    finally:
        if peers is not None:
            peers.stop()
        cluster.stop()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"


@pytest.fixture
def env(rotation_cluster: Path, tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(rotation_cluster)
    namespace = f"r-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        with running_controller(kube, store, identity=f"ctl-{namespace}") as controller:
            yield Env(kube, store, namespace, controller)
    finally:
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
        store.close()
