"""How the observer reacts to API errors (injected into the FakeKube, or real ones from a stale
cache): a 409 on the finalizer or a status write is answered with a requeue and nothing is lost
or done twice; a 500 propagates (the controller requeues the key with backoff) and leaves the
store consistent, so the next observation finishes the job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from intake_bench import GATEWAY_API, NAMESPACE, Intake, gateway
from support.fake_kube import conflict, server_error

from bifrost.api.objects import meta
from bifrost.controller.informers import FINALIZER, class_key, gateway_key
from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.engine import Runner
from bifrost.kube import NotFound, ServerError
from bifrost.machines.provision import provision_spec
from bifrost.machines.registry import MachineRegistry
from bifrost.machines.teardown import teardown_spec
from bifrost.records import NewOperation
from bifrost.store.errors import RecordNotFound


def _conditions(intake: Intake) -> dict[str, str]:
    status = (intake.gateway() or {}).get("status") or {}
    return {c["type"]: c["status"] for c in status.get("conditions") or []}


def test_a_conflict_on_the_finalizer_write_requeues_before_anything_is_recorded(
    intake: Intake,
) -> None:
    intake.kube.fail_next("patch", kind="Gateway", error=conflict("Gateway", "edge", NAMESPACE))
    result = intake.observe()
    assert result.requeue_after == 1.0
    assert "finalizers" not in meta(intake.gateway())
    with pytest.raises(RecordNotFound):
        intake.store.get_gateway(intake.uid())
    assert intake.operations() == []
    intake.sync()
    intake.observe()  # the requeued observation
    assert meta(intake.gateway())["finalizers"] == [FINALIZER]
    assert [op.machine for op in intake.operations()] == ["provision"]


def test_a_stale_cached_gateway_meets_a_real_conflict_and_keeps_the_other_write(
    intake: Intake,
) -> None:
    intake.kube.patch(GATEWAY_API, "Gateway", "edge", NAMESPACE,
                      {"metadata": {"labels": {"team": "a"}}})  # not yet seen by the cache
    result = intake.observe()
    assert result.requeue_after == 1.0
    assert intake.operations() == []
    intake.sync()
    intake.observe()
    live = meta(intake.gateway())
    assert live["finalizers"] == [FINALIZER] and live["labels"] == {"team": "a"}
    assert len(intake.operations()) == 1


def test_a_conflict_on_the_status_write_requeues_and_provisions_once(intake: Intake) -> None:
    intake.kube.fail_next("patch_status", kind="Gateway", error=conflict("Gateway", "edge"))
    result = intake.observe()
    assert result.requeue_after == 1.0
    assert meta(intake.gateway())["finalizers"] == [FINALIZER]
    assert [op.machine for op in intake.operations()] == ["provision"]
    assert _conditions(intake) == {}
    intake.sync()
    intake.observe()
    assert _conditions(intake)["Accepted"] == "True"
    assert len(intake.operations()) == 1


def test_a_server_error_on_the_finalizer_write_leaves_the_store_untouched(
    intake: Intake,
) -> None:
    intake.kube.fail_next("patch", kind="Gateway", error=server_error("Gateway", "edge"))
    with pytest.raises(ServerError):
        intake.observe()
    with pytest.raises(RecordNotFound):
        intake.store.get_gateway(intake.uid())
    assert intake.operations() == []
    intake.sync()
    intake.observe()
    assert meta(intake.gateway())["finalizers"] == [FINALIZER]
    assert len(intake.operations()) == 1


def test_a_server_error_on_the_status_write_does_not_provision_twice(intake: Intake) -> None:
    intake.kube.fail_next("patch_status", kind="Gateway", error=server_error("Gateway", "edge"))
    with pytest.raises(ServerError):
        intake.observe()
    assert intake.store.get_gateway(intake.uid()).name == "edge"
    assert len(intake.operations()) == 1
    intake.sync()
    intake.observe()
    assert _conditions(intake)["Accepted"] == "True"
    assert len(intake.operations()) == 1


def test_the_controller_requeues_a_key_whose_observation_failed(intake: Intake) -> None:
    controller = Controller(
        intake.kube, intake.store, clock=intake.clock,
        registry=MachineRegistry([provision_spec(), teardown_spec()]),
        options=ControllerOptions(identity="test", lease_namespace="bifrost-system",
                                  controller_namespace="bifrost-system",
                                  runner_lease=timedelta(seconds=10)),
    )
    for api_version, kind in ((GATEWAY_API, "GatewayClass"), (GATEWAY_API, "Gateway"),
                              ("gateway.bifrost.dev/v1alpha1", "GatewayClassBlueprint")):
        for item in intake.kube.list(api_version, kind)[0]:
            controller.cache.apply(kind, "ADDED", item)
    key = gateway_key(NAMESPACE, "edge")
    intake.kube.fail_next("patch", kind="Gateway", error=server_error("Gateway", "edge",
                                                                       delay=7.0))
    controller.process(key)
    assert key in controller.queue.pending() and controller.queue.failures(key) == 1
    assert len(controller.queue) == 0  # not before the server's 7 s
    assert controller.stats["errors"] == 1
    assert intake.operations() == []


def _torn_down(intake: Intake, name: str) -> None:
    """A succeeded teardown of Gateway ``name`` in the store (its empty inventory is then
    trusted: the finalizer goes without another teardown)."""
    uid = intake.uid(name)
    intake.store.upsert_gateway(uid=uid, namespace=NAMESPACE, name=name, now=intake.clock.now())
    intake.store.create_operation(NewOperation(
        gateway_uid=uid, namespace=NAMESPACE, name=name, machine="teardown",
        machine_version=teardown_spec().version, state="done",
        context={"namespace": NAMESPACE, "gateway": name, "gateway_uid": uid},
    ), now=intake.clock.now(), actor="test")
    Runner(intake.store, MachineRegistry([teardown_spec()]), {}, clock=intake.clock,
           owner="test").run_until_idle()


def test_a_conflict_on_the_finalizer_removal_keeps_the_deleted_gateway_for_a_retry(
    intake: Intake,
) -> None:
    intake.kube.create(gateway("bare", finalizers=[FINALIZER]))
    intake.kube.delete(GATEWAY_API, "Gateway", "bare", NAMESPACE)
    intake.sync()
    _torn_down(intake, "bare")
    intake.kube.fail_next("patch", kind="Gateway", name="bare", error=conflict())
    result = intake.observe("bare")
    assert result.requeue_after == 1.0
    assert meta(intake.gateway("bare"))["finalizers"] == [FINALIZER]
    intake.observe("bare")
    assert intake.gateway("bare") is None


def test_a_gateway_that_vanished_before_its_finalizer_removal_is_done_with(
    intake: Intake,
) -> None:
    intake.kube.create(gateway("bare", finalizers=[FINALIZER]))
    intake.kube.delete(GATEWAY_API, "Gateway", "bare", NAMESPACE)
    intake.sync()
    _torn_down(intake, "bare")
    intake.kube.fail_next("patch", kind="Gateway", name="bare",
                          error=NotFound("gone", status=404, reason="NotFound"))
    result = intake.observe("bare")
    assert result.requeue_after is None and result.actions == ()


def test_a_conflict_on_the_class_status_write_requeues_the_class(intake: Intake) -> None:
    # the class is in use: its first observation adds the gateway-exists finalizer (and writes
    # no status: the watch brings the class back, and the status is written then)
    assert intake.observer.observe(class_key("bifrost")).actions == ("class-finalizer-added",)
    intake.sync()
    intake.kube.fail_next("patch_status", kind="GatewayClass", error=conflict())
    result = intake.observer.observe(class_key("bifrost"))
    assert result.requeue_after == 1.0
    assert "status" not in (intake.kube.get(GATEWAY_API, "GatewayClass", "bifrost") or {})
    intake.observer.observe(class_key("bifrost"))
    written = intake.kube.get(GATEWAY_API, "GatewayClass", "bifrost") or {}
    assert {c["type"]: c["status"] for c in written["status"]["conditions"]}["Accepted"] == "True"
