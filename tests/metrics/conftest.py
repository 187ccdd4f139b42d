"""Fixtures for the metrics tests: a devcluster of their own with the simulated issuer, load
balancer and TLS data plane (tests/support/peers_cluster.py), and per test a namespace, a SQLite
store and a running in-process bifrost controller (``env``, as in tests/rotation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rotation.rotation_kit import Env, running_controller
from support.peers_cluster import peers_cluster, scenario


@pytest.fixture(scope="session")
def metrics_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=11) as running:
        yield running.kubeconfig


@pytest.fixture
def env(metrics_cluster: Path, tmp_path: Path) -> Iterator[Env]:
    with scenario(metrics_cluster, tmp_path, prefix="m") as s, running_controller(
            s.kube, s.store, identity=f"ctl-{s.namespace}") as controller:
        yield Env(s.kube, s.store, s.namespace, controller)
