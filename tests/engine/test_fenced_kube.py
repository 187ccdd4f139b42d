"""FencedKube: a step's cluster writes are sent only while its runner still holds the
operation's lease (checked in the database, expiry by the runner's clock) and still leads;
otherwise LeaseLost is raised and nothing reaches the API server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from engine_kit import ScriptedStep, demo_steps, make_runner, new_demo
from support.fake_kube import FakeKube

from bifrost.clock import ManualClock
from bifrost.engine import Done, StepContext
from bifrost.engine.fenced_kube import FencedKube
from bifrost.records import OperationStatus
from bifrost.store import SqlStore
from bifrost.store.errors import LeaseLost

LEASE = timedelta(seconds=10)


def _config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}


def test_a_write_inside_a_step_goes_through_while_the_lease_is_held(
    store: SqlStore, clock: ManualClock
) -> None:
    fake = FakeKube(clock=clock)
    kube = FencedKube(fake, store)

    def write(ctx: StepContext[Any], input: Any) -> Done[dict[str, Any]]:
        kube.apply(_config_map("made"))
        return Done(output={})

    runner = make_runner(store, demo_steps(reserve=ScriptedStep("reserve", write)),
                         clock=clock, lease_for=LEASE)
    new_demo(store, clock)
    runner.run_until_idle()
    assert fake.get("v1", "ConfigMap", "made", "default") is not None


@pytest.mark.parametrize("how", ["taken over", "expired", "term ended"])
def test_a_write_after_the_lease_or_term_is_lost_is_refused_and_not_sent(
    store: SqlStore, clock: ManualClock, how: str
) -> None:
    fake = FakeKube(clock=clock)
    kube = FencedKube(fake, store)
    leading = True
    refused: list[LeaseLost] = []

    def paused_then_write(ctx: StepContext[Any], input: Any) -> Done[dict[str, Any]]:
        nonlocal leading
        # the runner froze here for longer than its lease ...
        if how == "term ended":
            leading = False
        else:
            clock.advance(LEASE + timedelta(seconds=1))
        if how == "taken over":
            taken = store.claim_due(owner="successor", now=clock.now(), lease_for=LEASE)
            assert [o.id for o in taken] == [ctx.operation.id]
        # ... and now sends what it computed before
        try:
            kube.apply(_config_map("stale"))
        except LeaseLost as exc:
            refused.append(exc)
            raise
        return Done(output={})

    runner = make_runner(store, demo_steps(reserve=ScriptedStep("reserve", paused_then_write)),
                         clock=clock, lease_for=LEASE)
    runner.leading = lambda: leading
    op = new_demo(store, clock)
    runner.run_once()  # LeaseLost: the runner drops the work
    assert len(refused) == 1
    assert fake.calls_of("apply") == []
    assert fake.get("v1", "ConfigMap", "stale", "default") is None
    after = store.get_operation(op.id)
    assert after.status is OperationStatus.RUNNING and after.step == "reserve"  # not finished
    expected = "successor" if how == "taken over" else runner.owner
    assert after.lease_owner == expected


def test_every_write_verb_is_fenced(store: SqlStore, clock: ManualClock) -> None:
    fake = FakeKube(clock=clock)
    fake.create(_config_map("existing"))
    kube = FencedKube(fake, store)
    fake.calls.clear()
    attempts: list[str] = []

    def lost_then_every_verb(ctx: StepContext[Any], input: Any) -> Done[dict[str, Any]]:
        clock.advance(LEASE)  # expired exactly now: not held any more
        writes = {
            "create": lambda: kube.create(_config_map("new")),
            "replace": lambda: kube.replace(_config_map("existing")),
            "apply": lambda: kube.apply(_config_map("existing")),
            "patch": lambda: kube.patch("v1", "ConfigMap", "existing", "default", {"data": {}}),
            "delete": lambda: kube.delete("v1", "ConfigMap", "existing", "default"),
            "apply_status": lambda: kube.apply_status(_config_map("existing")),
            "patch_status": lambda: kube.patch_status("v1", "ConfigMap", "existing", "default",
                                                      {}),
        }
        for verb, write in writes.items():
            with pytest.raises(LeaseLost):
                write()
            attempts.append(verb)
        assert kube.get("v1", "ConfigMap", "existing", "default") is not None  # reads pass
        return Done(output={})

    runner = make_runner(store, demo_steps(reserve=ScriptedStep("reserve", lost_then_every_verb)),
                         clock=clock, lease_for=LEASE)
    new_demo(store, clock)
    runner.run_once()
    assert len(attempts) == 7
    assert [c.verb for c in fake.calls] == ["get"]


def test_writes_outside_a_step_are_not_fenced(store: SqlStore, clock: ManualClock) -> None:
    fake = FakeKube(clock=clock)
    FencedKube(fake, store).apply(_config_map("observer-write"))
    assert fake.get("v1", "ConfigMap", "observer-write", "default") is not None


def test_a_step_writing_for_longer_than_its_lease_keeps_its_operation(
    store: SqlStore, clock: ManualClock
) -> None:
    """Each write's check extends a lease running low, so a step that keeps writing (many
    children) finishes; its commit comes after the first lease would have expired."""
    fake = FakeKube(clock=clock)
    kube = FencedKube(fake, store)

    def slow_writes(ctx: StepContext[Any], input: Any) -> Done[dict[str, Any]]:
        for i in range(5):
            clock.advance(timedelta(seconds=4))  # 20 s in all, lease 10 s
            kube.apply(_config_map(f"cm-{i}"))
        return Done(output={})

    runner = make_runner(store, demo_steps(reserve=ScriptedStep("reserve", slow_writes)),
                         clock=clock, lease_for=LEASE)
    op = new_demo(store, clock)
    runner.run_until_idle()
    assert len(fake.calls_of("apply")) == 5
    assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
