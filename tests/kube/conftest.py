"""Fixtures for bifrost.kube: a real devcluster over HTTP, a KubeClient on its kubeconfig.

One devcluster (with the real Gateway API CRDs) serves the whole module set; every test gets its
own namespace, and the fault rules and request log are reset around each test so tests stay
independent.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.builders import namespace_object

from bifrost.kube.client import KubeClient
from devcluster.faults import FaultInjector
from devcluster.server import DevCluster

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GATEWAY_CRDS = SHARED / "gateway-api" / "v1.6.1"

_counter = itertools.count()


@pytest.fixture(scope="session")
def faults() -> FaultInjector:
    return FaultInjector(seed=1234)


@pytest.fixture(scope="session")
def cluster(faults: FaultInjector) -> Iterator[DevCluster]:
    crds = sorted(GATEWAY_CRDS.glob("gateway.networking.k8s.io_*.yaml"))
    assert crds, f"Gateway API CRDs not found under {GATEWAY_CRDS}"
    devcluster = DevCluster(crd_paths=crds, faults=faults)
    devcluster.start()
    try:
        yield devcluster
    finally:
        devcluster.stop()


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    if "cluster" not in request.fixturenames:
        yield
        return
    injector: FaultInjector = request.getfixturevalue("faults")
    devcluster: DevCluster = request.getfixturevalue("cluster")
    injector.clear()
    devcluster.request_log.reset()
    yield
    injector.clear()


@pytest.fixture(scope="session")
def kubeconfig(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kube") / "kubeconfig"
    cluster.write_kubeconfig(path)
    return path


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(kube: KubeClient, request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().replace("_", "-"))
    name = f"t{next(_counter)}-{base}"[:50].rstrip("-")
    kube.create(namespace_object(name))
    return name
