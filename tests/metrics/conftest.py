"""Fixtures for the metrics tests: a devcluster of their own with the simulated issuer, load
balancer and TLS data plane (tests/support/peers_cluster.py), and per test a namespace, a SQLite
store and a running in-process bifrost controller (``env``, as in tests/rotation)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rotation.rotation_kit import Env, running_controller
from support.peers_cluster import peers_cluster

from bifrost.kube import KubeClient
from bifrost.store import migrate, open_store


@pytest.fixture(scope="session")
def metrics_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=11) as running:
        yield running.kubeconfig


@pytest.fixture
def env(metrics_cluster: Path, tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(metrics_cluster)
    namespace = f"m-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        with running_controller(kube, store, identity=f"ctl-{namespace}") as controller:
            yield Env(kube, store, namespace, controller)
    finally:
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
        store.close()
