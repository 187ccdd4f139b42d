"""Fixtures of the intake tests: ``intake``, the observer under test on a FakeKube holding a
bifrost GatewayClass, its blueprint and Gateway ``shop/edge`` (see ``intake_bench``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from intake_bench import NAMESPACE, NOW, Intake, blueprint, gateway, gateway_class
from support.fake_kube import FakeKube

from bifrost.clock import ManualClock
from bifrost.controller.informers import Cache
from bifrost.controller.observe import Observer
from bifrost.controller.status_writer import GatewayApiStatusWriter
from bifrost.machines.provision import provision_spec
from bifrost.machines.registry import MachineRegistry
from bifrost.machines.teardown import teardown_spec
from bifrost.store import SqlStore, migrate, open_store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{(tmp_path / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    yield store
    store.close()


@pytest.fixture
def intake(sqlite_store: SqlStore) -> Intake:
    clock = ManualClock(NOW)
    kube = FakeKube(clock=clock, namespaces=("default", NAMESPACE, "bifrost-system"))
    kube.create(gateway_class())
    kube.create(blueprint())
    kube.create(gateway())
    cache = Cache()
    observer = Observer(
        cache=cache, kube=kube, store=sqlite_store,
        registry=MachineRegistry([provision_spec(), teardown_spec()]), clock=clock,
        actor="test", status_writer=GatewayApiStatusWriter(kube, clock),
        controller_namespace="bifrost-system",
    )
    bench = Intake(kube, cache, sqlite_store, observer, clock)
    bench.sync()
    kube.calls.clear()
    return bench
