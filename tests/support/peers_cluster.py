"""A devcluster with every CRD bifrost uses and the simulated peers a TLS Gateway needs — the
issuer (it issues only for ``devcluster-ca``, so a certificate naming another issuer is never
issued), the load balancer and the TLS data plane — for the scenario tests (rotation, drift,
recovery, fencing, lifecycle, metrics, announcements). One context manager; each folder's fixture
picks its scope and issuer seed. :func:`scenario` gives each test its store and namespace."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bifrost.cli.dev import LB_KIND
from bifrost.kube import KubeClient
from bifrost.store import SqlStore, migrate, open_store
from devcluster.peers import IssuerOptions, Peers
from devcluster.server import DevCluster
from support.devcluster import crd_paths

REPO = Path(__file__).resolve().parents[2]
SYSTEM_NAMESPACE = "bifrost-system"


@dataclass(frozen=True)
class PeersCluster:
    cluster: DevCluster
    kubeconfig: Path


@contextlib.contextmanager
def peers_cluster(directory: Path, *, seed: int) -> Iterator[PeersCluster]:
    """Start the devcluster and its peers (kubeconfig written into ``directory``), with the
    controller's namespace; stop both after, failing if the devcluster hit an internal error."""
    cluster = DevCluster(crd_paths=[*crd_paths(), REPO / "deploy" / "crds"], bookmark_interval=0.5)
    cluster.start()
    peers: Peers | None = None
    try:
        group, version, kind, plural = LB_KIND
        cluster.register_permissive(group=group, version=version, kind=kind, plural=plural,
                                    namespaced=False)
        kubeconfig = cluster.write_kubeconfig(directory / "config")
        peers = Peers(kubeconfig, issuer_options=IssuerOptions(
            seed=seed, issuer_names=frozenset({"devcluster-ca"}))).start()
        with KubeClient.from_kubeconfig(kubeconfig) as kube:
            kube.apply({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": SYSTEM_NAMESPACE}})
        yield PeersCluster(cluster, kubeconfig)
    finally:
        if peers is not None:
            peers.stop()
        cluster.stop()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"


@dataclass(frozen=True)
class Scenario:
    """One test's share of a peers cluster: a client, a fresh SQLite store and a namespace."""

    kube: KubeClient
    store: SqlStore
    url: str
    namespace: str


@contextlib.contextmanager
def scenario(kubeconfig: Path, directory: Path, *, prefix: str) -> Iterator[Scenario]:
    """A migrated SQLite store in ``directory``, a client of ``kubeconfig`` and a new namespace
    ``<prefix>-<random>``; the namespace is deleted and both are closed after."""
    url = f"sqlite:///{(directory / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(kubeconfig)
    namespace = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        yield Scenario(kube, store, url, namespace)
    finally:
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
        store.close()
