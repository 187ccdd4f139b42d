"""Fixtures for the fencing tests: a devcluster of their own with bifrost's CRDs and the
simulated issuer, load balancer and TLS data plane (what a rotation needs), handed out with its
request log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fencing_kit import Cluster
from support.peers_cluster import peers_cluster


@pytest.fixture(scope="session")
def fencing_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=11) as running:
        yield Cluster(running.kubeconfig, running.cluster)
