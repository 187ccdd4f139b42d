"""Fixtures for the rotation tests: a devcluster of their own with bifrost's CRDs, the simulated
issuer (it issues only for ``devcluster-ca``, so a certificate naming another issuer is never
issued), load balancer and TLS data plane; per test a namespace, a SQLite store and a running
bifrost controller (``env``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rotation_kit import Env, running_controller
from support.peers_cluster import peers_cluster, scenario


@pytest.fixture(scope="session")
def rotation_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=7) as running:
        yield running.kubeconfig


@pytest.fixture
def env(rotation_cluster: Path, tmp_path: Path) -> Iterator[Env]:
    with scenario(rotation_cluster, tmp_path, prefix="r") as s, running_controller(
            s.kube, s.store, identity=f"ctl-{s.namespace}") as controller:
        yield Env(s.kube, s.store, s.namespace, controller)
