"""A devcluster whose local kubelet runs ``probe-app:*`` Pods (tests/local_pods/app.py) as
processes (restart back-off 0.2 s doubling to 1 s, unless a module overrides
``local_pod_options``), a kubernetes client on it as the admin, and
a fresh namespace with a ``default`` ServiceAccount per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config  # type: ignore[import-untyped]
from local_pods_kit import IMAGE, processes_mentioning

from devcluster.localpods import LocalPodOptions
from devcluster.server import DevCluster


@pytest.fixture(scope="module")
def pods_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-pods")


@pytest.fixture(scope="module")
def local_pod_options(pods_root: Path) -> LocalPodOptions:
    """The local kubelet's options; a test module may override this fixture."""
    return LocalPodOptions(images=(IMAGE,), root=pods_root, backoff_base=0.2, backoff_cap=1.0)


@pytest.fixture(scope="module")
def cluster(local_pod_options: LocalPodOptions, pods_root: Path) -> Iterator[DevCluster]:
    dc = DevCluster(local_pods=local_pod_options, bookmark_interval=0.5)
    dc.start()
    try:
        yield dc
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"
    assert processes_mentioning(str(pods_root)) == [], "local pods' processes survived stop()"


@pytest.fixture(scope="module")
def api_client(cluster: DevCluster, pods_root: Path) -> client.ApiClient:
    kubeconfig = cluster.write_kubeconfig(pods_root / "kubeconfig")
    return config.new_client_from_config(str(kubeconfig))


@pytest.fixture(scope="module")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture()
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = f"lp-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    if not any(
        sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items
    ):
        core.create_namespaced_service_account(name, {"metadata": {"name": "default"}})
    yield name
    core.delete_namespace(name)
