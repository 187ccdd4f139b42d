"""EventRecorder against the devcluster: valid events.k8s.io/v1 Events, folded into series."""

from __future__ import annotations

from datetime import timedelta

from support.builders import gateway

from bifrost.clock import ManualClock
from bifrost.kube.client import KubeClient
from bifrost.kube.events import REPORTING_CONTROLLER, EventRecorder, ObjectRef, truncate_note
from devcluster.faults import FaultInjector
from devcluster.server import DevCluster

EV = "events.k8s.io/v1"


def events_in(kube: KubeClient, namespace: str) -> list[dict]:
    items, _ = kube.list(EV, "Event", namespace)
    return items


def test_an_event_regarding_a_gateway_has_every_required_field(
    kube: KubeClient, namespace: str
) -> None:
    gw = kube.create(gateway(namespace, "gw", "bifrost"))
    recorder = EventRecorder(kube, reporting_instance="bifrost-0", clock=ManualClock())
    name = recorder.record(
        gw, reason="Programmed", action="Reconcile", note="listeners ready", type="Normal"
    )
    assert name is not None
    [event] = events_in(kube, namespace)
    assert event["metadata"]["name"] == name
    assert event["regarding"] == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "name": "gw",
        "namespace": namespace,
        "uid": gw["metadata"]["uid"],
        "resourceVersion": gw["metadata"]["resourceVersion"],
    }
    assert event["reportingController"] == REPORTING_CONTROLLER
    assert event["reportingInstance"] == "bifrost-0"
    assert (event["reason"], event["action"], event["type"]) == (
        "Programmed",
        "Reconcile",
        "Normal",
    )
    assert event["note"] == "listeners ready"
    assert event["eventTime"] == "2026-01-01T00:00:00.000000Z"
    assert "series" not in event or event["series"] is None


def test_a_hot_loop_makes_one_event_with_a_series_not_a_flood(
    kube: KubeClient, namespace: str, cluster: DevCluster
) -> None:
    gw = kube.create(gateway(namespace, "gw", "bifrost"))
    clock = ManualClock()
    recorder = EventRecorder(
        kube,
        reporting_instance="bifrost-0",
        clock=clock,
        series_flush_interval=timedelta(seconds=30),
    )
    cluster.request_log.reset()
    names = {
        recorder.record(gw, reason="Invalid", action="Reconcile", note="bad", type="Warning")
        for _ in range(50)
    }
    assert len(names) == 1
    # One create, one patch that turns the event into a series; the other 48 only counted.
    assert cluster.request_log.count(writes_only=True, resources=["events"]) == 2
    [event] = events_in(kube, namespace)
    assert event["series"]["count"] == 2

    clock.advance(timedelta(seconds=31))
    recorder.record(gw, reason="Invalid", action="Reconcile", note="bad", type="Warning")
    [event] = events_in(kube, namespace)
    assert event["series"]["count"] == 51
    assert event["series"]["lastObservedTime"] == "2026-01-01T00:00:31.000000Z"

    recorder.record(gw, reason="Invalid", action="Reconcile", note="bad", type="Warning")
    recorder.flush()
    [event] = events_in(kube, namespace)
    assert event["series"]["count"] == 52


def test_different_events_and_stale_series_make_new_events(
    kube: KubeClient, namespace: str
) -> None:
    gw = kube.create(gateway(namespace, "gw", "bifrost"))
    clock = ManualClock()
    recorder = EventRecorder(kube, reporting_instance="bifrost-0", clock=clock)
    first = recorder.record(gw, reason="Accepted", action="Reconcile")
    other = recorder.record(gw, reason="Programmed", action="Reconcile")
    assert first != other
    clock.advance(timedelta(minutes=7))  # beyond the 6-minute series window
    again = recorder.record(gw, reason="Accepted", action="Reconcile")
    assert again not in (first, other)
    assert len(events_in(kube, namespace)) == 3


def test_notes_are_cut_to_one_kib(kube: KubeClient, namespace: str) -> None:
    recorder = EventRecorder(kube, reporting_instance="bifrost-0")
    ref = ObjectRef("v1", "ConfigMap", "cm", namespace)
    assert recorder.record(ref, reason="Long", action="Test", note="é" * 2000) is not None
    [event] = events_in(kube, namespace)
    assert len(event["note"].encode()) <= 1024
    assert event["note"] == "é" * 512
    assert truncate_note("abc", 2) == "ab" and truncate_note("é", 1) == ""


def test_events_about_cluster_scoped_objects_go_to_default(kube: KubeClient) -> None:
    recorder = EventRecorder(kube, reporting_instance="bifrost-0")
    ref = ObjectRef("gateway.networking.k8s.io/v1", "GatewayClass", "bifrost-events-test")
    name = recorder.record(ref, reason="Accepted", action="Reconcile")
    assert name is not None
    event = kube.get(EV, "Event", name, "default")
    assert event is not None and "namespace" not in event["regarding"]


def test_a_failed_post_is_swallowed_and_retried_on_the_next_occurrence(
    kube: KubeClient, namespace: str, faults: FaultInjector
) -> None:
    faults.add_rule(verbs=["create"], resources=["events"], error_rate=1.0, status=500, times=1)
    recorder = EventRecorder(kube, reporting_instance="bifrost-0")
    ref = ObjectRef("v1", "ConfigMap", "cm", namespace)
    assert recorder.record(ref, reason="R", action="A") is None
    assert events_in(kube, namespace) == []
    assert recorder.record(ref, reason="R", action="A") is not None
    assert len(events_in(kube, namespace)) == 1


def test_a_series_whose_event_expired_starts_a_new_event(kube: KubeClient, namespace: str) -> None:
    recorder = EventRecorder(kube, reporting_instance="bifrost-0", clock=ManualClock())
    ref = ObjectRef("v1", "ConfigMap", "cm", namespace)
    first = recorder.record(ref, reason="R", action="A")
    assert first is not None
    kube.delete(EV, "Event", first, namespace)  # as the server's event TTL would
    second = recorder.record(ref, reason="R", action="A")
    assert second is not None and second != first
    assert [e["metadata"]["name"] for e in events_in(kube, namespace)] == [second]
