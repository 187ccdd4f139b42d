"""How the provision and teardown steps answer API errors, on a FakeKube: a read or an apply
that gets 409 or 500 retries after the error's delay and a 410 fails — the outcome
``bifrost.steps.kube_outcomes.outcome_for`` maps each error to — with the inventory keeping what
a retry needs; deleting children that are already gone (404) is progress, not an error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from step_bench import GATEWAY_API, NAMESPACE, StepBench
from support.fake_kube import conflict, gone, server_error

from bifrost.engine import Done, Fail, Retry, Wait
from bifrost.kube import Invalid, KubeError, NotFound
from bifrost.steps.kube_outcomes import outcome_for

ERRORS = {
    "409": conflict(),
    "500": server_error(delay=3.0),
    "410": gone(),
}


@pytest.mark.parametrize("code", list(ERRORS))
def test_reading_the_gateway_answers_what_outcome_for_maps_the_error_to(
    bench: StepBench, code: str
) -> None:
    error = ERRORS[code]
    bench.kube.fail_next("get", kind="Gateway", error=error)
    outcome = bench.apply_children()
    assert outcome == outcome_for(error, doing=f"reading Gateway {NAMESPACE}/edge")
    assert bench.children() == {}


@pytest.mark.parametrize(("code", "expected"), [
    ("409", Retry), ("500", Retry), ("410", Fail),
])
def test_applying_a_child_answers_as_outcome_for_would(
    bench: StepBench, code: str, expected: type
) -> None:
    error: KubeError = ERRORS[code]
    bench.kube.fail_next("apply", kind="ConfigMap", name="edge-first", error=error)
    outcome = bench.apply_children()
    mapped = outcome_for(error, doing="applying")
    assert type(outcome) is type(mapped) is expected
    if isinstance(outcome, Retry):
        assert isinstance(mapped, Retry) and outcome.backoff == mapped.backoff
    else:
        assert isinstance(outcome, Fail)
        assert "child 'first'" in outcome.reason and str(error) in outcome.reason
    assert bench.config_map("first") is None and bench.config_map("second") is None
    # written ahead: a retry (or a crash) finds the child it was applying, not yet applied
    [record] = bench.children().values()
    assert (record.child_id, record.uid, record.applied_hash) == ("first", None, None)


def test_a_retried_apply_finishes_what_the_conflict_interrupted(bench: StepBench) -> None:
    bench.kube.fail_next("apply", kind="ConfigMap", error=conflict())
    assert isinstance(bench.apply_children(), Retry)
    outcome = bench.apply_children()
    assert isinstance(outcome, Done)
    records = bench.children()
    assert set(records) == {"first", "second"}
    for child_id, record in records.items():
        live = bench.config_map(child_id)
        assert live is not None and record.uid == live["metadata"]["uid"]
        assert record.applied_hash is not None


def test_an_invalid_child_fails_the_step_with_the_servers_words(bench: StepBench) -> None:
    bench.kube.fail_next("apply", kind="ConfigMap", name="edge-first", error=Invalid(
        "data.k: Invalid value", status=422, reason="Invalid", kind="ConfigMap"))
    outcome = bench.apply_children()
    assert isinstance(outcome, Fail) and "rejected by the API server" in outcome.reason
    assert "data.k: Invalid value" in outcome.reason


def _provisioned(bench: StepBench) -> None:
    assert isinstance(bench.apply_children(), Done)
    assert set(bench.children()) == {"first", "second"}


def test_deleting_children_of_which_one_is_already_gone(bench: StepBench) -> None:
    _provisioned(bench)
    bench.kube.delete("v1", "ConfigMap", "edge-first", NAMESPACE)  # gone behind bifrost's back
    bench.kube.calls.clear()
    outcome = bench.delete_children()
    assert isinstance(outcome, Done)
    assert bench.children() == {}
    assert bench.config_map("second") is None
    deleted = [c.name for c in bench.kube.calls_of("delete", "ConfigMap")]
    assert deleted == ["edge-second"]  # the gone one was not deleted again


def test_a_delete_that_meets_a_server_error_retries_and_keeps_the_inventory(
    bench: StepBench,
) -> None:
    _provisioned(bench)
    error = server_error(delay=2.0)
    bench.kube.fail_next("delete", kind="ConfigMap", error=error)
    outcome = bench.delete_children()
    assert isinstance(outcome, Retry) and outcome.backoff == timedelta(seconds=2)
    assert set(bench.children()) == {"first", "second"}  # nothing forgotten
    assert bench.config_map("first") is not None and bench.config_map("second") is not None
    assert isinstance(bench.delete_children(), Done)
    assert bench.children() == {}
    assert bench.config_map("first") is None and bench.config_map("second") is None


@pytest.mark.parametrize("error", [
    conflict(),
    NotFound("gone", status=404, reason="NotFound"),
    Invalid("test failed", status=422, reason="Invalid"),
])
def test_removing_the_finalizer_retries_soon_on_any_api_error(
    bench: StepBench, error: KubeError
) -> None:
    bench.kube.fail_next("patch", kind="Gateway", error=error)
    outcome = bench.remove_finalizer()
    assert isinstance(outcome, Retry) and outcome.backoff == timedelta(seconds=0.1)
    assert bench.kube.get(GATEWAY_API, "Gateway", "edge", NAMESPACE) is not None
    assert isinstance(bench.remove_finalizer(), Done)
    gateway = bench.kube.get(GATEWAY_API, "Gateway", "edge", NAMESPACE)
    assert gateway is not None and "finalizers" not in gateway["metadata"]


def test_waiting_is_not_an_error(bench: StepBench) -> None:
    """A child held by a finalizer is waited for, not retried."""
    _provisioned(bench)
    bench.kube.patch("v1", "ConfigMap", "edge-second", NAMESPACE,
                     {"metadata": {"finalizers": ["example.com/hold"]}})
    outcome = bench.delete_children()
    assert isinstance(outcome, Wait)
    assert set(bench.children()) == {"second"}
