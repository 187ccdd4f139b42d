"""Fixtures for the recovery tests: a devcluster of their own with bifrost's CRDs, the simulated
issuer, load balancer and TLS data plane (as the rotation tests have), and per test a namespace
and the path of a SQLite store that the test deletes, restores and migrates itself."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from recovery_kit import Scene
from support.peers_cluster import peers_cluster

from bifrost.kube import KubeClient


@pytest.fixture(scope="session")
def recovery_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=11) as running:
        yield running.kubeconfig


@pytest.fixture
def scene(recovery_cluster: Path, tmp_path: Path) -> Iterator[Scene]:
    kube = KubeClient.from_kubeconfig(recovery_cluster)
    namespace = f"rc-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    scene = Scene(kube, namespace, tmp_path / "bifrost.db")
    try:
        yield scene
    finally:
        scene.close()
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
