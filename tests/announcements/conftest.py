"""Fixtures of the operation-Event tests: a devcluster with the simulated issuer, load balancer
and TLS data plane (``support.peers_cluster``), and per test a namespace, a SQLite store and a
running bifrost controller."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from events_kit import Running
from support.peers_cluster import peers_cluster

from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.kube import KubeClient
from bifrost.store import migrate, open_store


@pytest.fixture(scope="session")
def events_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=12) as running:
        yield running.kubeconfig


@pytest.fixture
def running(events_cluster: Path, tmp_path: Path) -> Iterator[Running]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(events_cluster)
    namespace = f"ev-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    controller = Controller(kube, store, options=ControllerOptions(
        identity=f"ctl-{namespace}", lease_namespace="bifrost-system", lease_duration=5,
        renew_deadline=4, retry_period=0.5, runner_idle=timedelta(milliseconds=50),
        renewal_poll=timedelta(seconds=0.5), renewal_jitter=0.0))
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield Running(kube, store, namespace, url)
    finally:
        stop.set()
        thread.join(timeout=20)
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
        store.close()
