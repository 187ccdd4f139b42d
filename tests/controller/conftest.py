"""Fixtures for the controller tests: a devcluster with the Gateway API and bifrost CRDs, a
client on it, a migrated SQLite store, and ``bifrost run`` processes started on demand.

The controller runs as a real subprocess (``python -m bifrost.cli.run``) against the
devcluster's kubeconfig, exactly as it would against a real cluster, so it can be SIGKILLed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from controller_kit import BIFROST_CRDS, REPO, SYSTEM_NAMESPACE, ControllerProcess, free_port
from fixtures.devcluster import crd_paths

from bifrost.devcluster.server import DevCluster
from bifrost.kube.client import KubeClient
from bifrost.store import migrate


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevCluster]:
    dc = DevCluster(crd_paths=[*crd_paths(), BIFROST_CRDS], bookmark_interval=0.5)
    dc.start()
    try:
        yield dc
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"


@pytest.fixture(scope="module")
def kubeconfig(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cluster.write_kubeconfig(tmp_path_factory.mktemp("controller-kube") / "config")


@pytest.fixture(scope="module")
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(kubeconfig)
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}})
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(kube: KubeClient) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{(tmp_path / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def start_controller(
    kubeconfig: Path, db_url: str, tmp_path: Path
) -> Iterator[Callable[..., ControllerProcess]]:
    started: list[ControllerProcess] = []

    def start(identity: str = "ctl-a", *, lease_duration: float = 15.0) -> ControllerProcess:
        port = free_port()
        log_path = tmp_path / f"{identity}.log"
        env = {
            **os.environ,
            "POD_NAMESPACE": SYSTEM_NAMESPACE,
            "BIFROST_MIGRATE_ON_START": "false",
        }
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bifrost.cli.run",
                    "--kubeconfig",
                    str(kubeconfig),
                    "--database-url",
                    db_url,
                    "--health-port",
                    str(port),
                    "--identity",
                    identity,
                    "--lease-duration",
                    str(lease_duration),
                    "--log-level",
                    "DEBUG",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )
        handle = ControllerProcess(identity, proc, port, log_path)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        if handle.proc.poll() is None:
            handle.proc.send_signal(signal.SIGTERM)
    for handle in started:
        try:
            handle.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                handle.proc.kill()
            handle.proc.wait()
