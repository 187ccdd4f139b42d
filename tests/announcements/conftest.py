"""Fixtures of the operation-Event tests: a devcluster with the simulated issuer, load balancer
and TLS data plane (``support.peers_cluster``), and per test a namespace, a SQLite store and a
running bifrost controller."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from events_kit import Running
from support.peers_cluster import peers_cluster, scenario

from bifrost.controller.manager import Controller, ControllerOptions


@pytest.fixture(scope="session")
def events_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=12) as running:
        yield running.kubeconfig


@pytest.fixture
def running(events_cluster: Path, tmp_path: Path) -> Iterator[Running]:
    with scenario(events_cluster, tmp_path, prefix="ev") as s:
        controller = Controller(s.kube, s.store, options=ControllerOptions(
            identity=f"ctl-{s.namespace}", lease_namespace="bifrost-system", lease_duration=5,
            renew_deadline=4, retry_period=0.5, runner_idle=timedelta(milliseconds=50),
            renewal_poll=timedelta(seconds=0.5), renewal_jitter=0.0))
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield Running(s.kube, s.store, s.namespace, s.url)
        finally:
            stop.set()
            thread.join(timeout=20)
