"""How the observer takes a Gateway in and lets it go, on a FakeKube: a Gateway of an accepted
bifrost class gets the finalizer, a store record and one provision operation, and a converged one
is left alone; a Gateway being deleted starts teardown, and one with nothing left loses the
finalizer and goes."""

from __future__ import annotations

from intake_bench import GATEWAY_API, NAMESPACE, Intake, gateway

from bifrost.api.objects import meta
from bifrost.controller.informers import FINALIZER
from bifrost.records import OperationStatus


def test_a_gateway_of_an_accepted_class_is_guarded_recorded_and_provisioned(
    intake: Intake,
) -> None:
    result = intake.observe()
    live = intake.gateway()
    assert meta(live)["finalizers"] == [FINALIZER]
    record = intake.store.get_gateway(intake.uid())
    assert (record.namespace, record.name, record.gateway_class) == (NAMESPACE, "edge", "bifrost")
    [op] = intake.operations()
    assert (op.machine, op.status) == ("provision", OperationStatus.PENDING)
    assert op.context["blueprint"] == "edge-bp" and op.context["gateway_uid"] == intake.uid()
    conditions = {c["type"]: c for c in (live or {})["status"]["conditions"]}
    assert conditions["Accepted"]["status"] == "True"
    assert result.requeue_after is not None  # an operation in flight is looked at again


def test_a_converged_gateway_costs_no_writes(intake: Intake) -> None:
    intake.observe()
    intake.sync()
    intake.kube.calls.clear()
    intake.observe()
    writes = [c for c in intake.kube.calls if c.verb not in ("get", "list")]
    assert writes == []
    assert len(intake.operations()) == 1


def test_a_gateway_of_another_controller_is_not_touched(intake: Intake) -> None:
    intake.kube.create({"apiVersion": GATEWAY_API, "kind": "GatewayClass",
                        "metadata": {"name": "theirs"},
                        "spec": {"controllerName": "example.com/other"}})
    intake.kube.create(gateway("foreign", class_name="theirs"))
    intake.sync()
    intake.observe("foreign")
    assert "finalizers" not in meta(intake.gateway("foreign"))
    assert intake.operations("foreign") == []
    assert intake.kube.calls_of("patch") == [] and intake.kube.calls_of("patch_status") == []


def test_a_deleted_gateway_starts_teardown_instead_of_its_provision(intake: Intake) -> None:
    intake.observe()
    intake.kube.delete(GATEWAY_API, "Gateway", "edge", NAMESPACE)
    intake.sync()
    assert meta(intake.gateway())["deletionTimestamp"]  # held by the finalizer
    intake.observe()
    provision, teardown = intake.operations()
    assert provision.machine == "provision" and provision.status is OperationStatus.CANCELLED
    assert teardown.machine == "teardown" and teardown.status.active
    assert teardown.context["gateway_uid"] == intake.uid()
    assert meta(intake.gateway())["finalizers"] == [FINALIZER]  # teardown removes it


def test_a_deleted_gateway_the_store_knows_nothing_of_gets_a_teardown_first(
    intake: Intake,
) -> None:
    # an empty inventory and no teardown in the store may be a lost database: a teardown looks
    # in the cluster for what the Gateway owns before the finalizer goes
    intake.kube.create(gateway("bare", finalizers=[FINALIZER]))
    intake.kube.delete(GATEWAY_API, "Gateway", "bare", NAMESPACE)
    intake.sync()
    uid = intake.uid("bare")
    intake.observe("bare")
    assert meta(intake.gateway("bare"))["finalizers"] == [FINALIZER]
    (op,) = intake.store.list_operations(gateway_uid=uid)
    assert op.machine == "teardown" and op.status.active
