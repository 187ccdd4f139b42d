"""Fixtures of the step API-error tests: ``bench``, a :class:`~step_bench.StepBench` on a
FakeKube and a migrated SQLite store (see ``step_bench``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from step_bench import GATEWAY_API, NAMESPACE, NOW, StepBench, blueprint
from support.fake_kube import FakeKube

from bifrost.clock import ManualClock
from bifrost.machines.teardown import GATEWAY_FINALIZER
from bifrost.store import migrate, open_store


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[StepBench]:
    url = f"sqlite:///{(tmp_path / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    clock = ManualClock(NOW)
    kube = FakeKube(clock=clock, namespaces=(NAMESPACE,))
    kube.create(blueprint())
    gateway = kube.create({
        "apiVersion": GATEWAY_API, "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": NAMESPACE, "finalizers": [GATEWAY_FINALIZER]},
        "spec": {"gatewayClassName": "bifrost",
                 "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    })
    store.upsert_gateway(uid=gateway["metadata"]["uid"], namespace=NAMESPACE, name="edge",
                         now=NOW, gateway_class="bifrost")
    kube.calls.clear()
    yield StepBench(kube, store, clock, gateway)
    store.close()
