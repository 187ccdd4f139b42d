"""Fixtures for the controller tests: a devcluster with the Gateway API and bifrost CRDs, a
client on it, a migrated SQLite store, and ``bifrost run`` processes started on demand.

The controller runs as a real subprocess (``python -m bifrost.cli.run``) against the
devcluster's kubeconfig, exactly as it would against a real cluster, so it can be SIGKILLed.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from controller_kit import free_port
from support import inprocess
from support.controller_process import ControllerProcess

from bifrost.store import migrate

# the devcluster (Gateway API, cert-manager and bifrost CRDs), its kubeconfig, a client and a
# fresh namespace per test: the same fixtures as the in-process scenarios
cluster = inprocess.cluster
kubeconfig = inprocess.kubeconfig
kube = inprocess.kube
namespace = inprocess.namespace


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
        handle = ControllerProcess(
            kubeconfig,
            db_url,
            tmp_path,
            identity,
            lease_duration=lease_duration,
            health_port=free_port(),
            log_level="DEBUG",
        ).start()
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
