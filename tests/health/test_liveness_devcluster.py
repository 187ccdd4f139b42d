"""``/healthz`` fails when a runner thread dies or hangs, and says which check failed.

The controller runs in-process against the devcluster with a one-step machine; an operation of
it is created in the store, a runner claims it and runs the step, which either raises an
exception no loop catches (the runner's thread ends) or blocks (the runner stops beating).
``stall_after`` is 2 s so that the test is quick; the probes are read over HTTP."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from support.inprocess import SYSTEM_NAMESPACE, cluster, kube, kubeconfig, sqlite_store
from support.waiting import wait_for

from bifrost.controller.health import HealthOptions, HealthServer
from bifrost.controller.informers import Cache
from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.engine import Done, Step, StepContext, StepOutcome
from bifrost.kube import KubeClient
from bifrost.machines.registry import MachineRegistry
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import NewOperation, OperationStatus
from bifrost.store import SqlStore
from bifrost.store.interface import OperationStore

__all__ = ["cluster", "kube", "kubeconfig"]


class Killed(BaseException):
    """Not an ``Exception``: nothing in the runner's loops catches it, so the thread ends."""


class Context(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: str


class Misbehave:
    """``kill``: raise :class:`Killed` (once: the operation's lease expires and another runner
    runs the step again); ``hang``: block until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def run(self, ctx: StepContext[Any], input: dict[str, Any] | None) -> StepOutcome:
        if ctx.context.mode == "kill" and not self.entered.is_set():
            self.entered.set()
            raise Killed
        self.entered.set()
        if ctx.context.mode == "kill":
            return Done()
        self.release.wait(30)
        return Done()


SPEC = MachineSpec(
    name="misbehave", version=1, initial="run", context_model=Context,
    states=(StateSpec(name="run", steps=(StepSpec(name="misbehave"),), on_done="done"),
            StateSpec(name="done", terminal=OperationStatus.SUCCEEDED)),
)


def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with sqlite_store(tmp_path) as opened:
        yield opened


@pytest.fixture
def running(kube: KubeClient, store: SqlStore) -> Iterator[tuple[Controller, Misbehave, int]]:
    step = Misbehave()

    def steps(_kube: KubeClient, _store: OperationStore, _cache: Cache) -> Mapping[str, Step]:
        return {"misbehave": step}

    name = f"live-{uuid.uuid4().hex[:6]}"
    controller = Controller(kube, store, registry=MachineRegistry([SPEC]), steps_factory=steps,
                            options=ControllerOptions(
        identity=name, lease_name=name, lease_namespace=SYSTEM_NAMESPACE,
        controller_namespace=SYSTEM_NAMESPACE, lease_duration=3.0, renew_deadline=2.0,
        retry_period=0.3, workers=1, engine_workers=2, runner_idle=timedelta(seconds=0.05),
        health=HealthOptions(stall_after=timedelta(seconds=2))))
    server = HealthServer(controller, "127.0.0.1", 0, metrics=False)
    server.start()
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: controller.is_leader and controller.ready(), timeout=15,
                 what="the controller leading and synced")
        yield controller, step, server.port
    finally:
        step.release.set()
        stop.set()
        thread.join(20)
        server.stop()
        assert not thread.is_alive(), "the controller thread did not stop"


def start(store: SqlStore, mode: str) -> None:
    store.create_operation(NewOperation(
        gateway_uid=str(uuid.uuid4()), namespace="default", name=f"gw-{mode}",
        machine="misbehave", machine_version=1, state="run", context={"mode": mode},
    ), now=store.database_time(), actor="test")


def test_healthz_is_ok_while_the_runners_and_workers_beat(
        running: tuple[Controller, Misbehave, int]) -> None:
    controller, _, port = running
    wait_for(lambda: controller.heartbeats.check(timedelta(seconds=2))["tracked"] == 3,
             what="1 worker and 2 runners tracked")
    code, body = probe(port, "/healthz")
    assert (code, body["ok"], body["failed"]) == (200, True, [])
    assert body["checks"]["threads"]["tracked"] == 3
    assert body["checks"]["elector"]["ok"] is True


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_killed_runner_thread_fails_healthz(
        running: tuple[Controller, Misbehave, int], store: SqlStore) -> None:
    _, step, port = running
    start(store, "kill")
    assert step.entered.wait(15), "no runner ran the step"
    code, body = wait_for(lambda: (got := probe(port, "/healthz"))[0] == 503 and got,
                          what="/healthz failing", timeout=10)
    assert body["failed"] == ["threads"]
    assert body["checks"]["threads"]["dead"] in (["engine-0"], ["engine-1"])
    assert probe(port, "/readyz")[0] == 200  # still ready: it is liveness that failed


def test_a_hung_runner_fails_healthz_after_stall_after_and_recovers(
        running: tuple[Controller, Misbehave, int], store: SqlStore) -> None:
    _, step, port = running
    start(store, "hang")
    assert step.entered.wait(15), "no runner ran the step"
    assert probe(port, "/healthz")[0] == 200  # not yet: it has 2 s
    code, body = wait_for(lambda: (got := probe(port, "/healthz"))[0] == 503 and got,
                          what="/healthz failing", timeout=10)
    assert body["failed"] == ["threads"]
    assert body["checks"]["threads"]["stalled"] in (["engine-0"], ["engine-1"])
    assert body["checks"]["threads"]["dead"] == []
    step.release.set()
    wait_for(lambda: probe(port, "/healthz")[0] == 200, what="/healthz back", timeout=10)


def test_a_stopped_elector_fails_healthz(running: tuple[Controller, Misbehave, int]) -> None:
    controller, _, port = running
    controller.elector.stop(release=False)  # its loop ends as if its thread had died
    code, body = probe(port, "/healthz")
    assert (code, body["failed"]) == (503, ["elector"])
