"""A repeated Event counts up, as client-go's event correlator does: the same reason and message
about the same object from the same component is one Event whose ``count`` grows and whose
``lastTimestamp`` moves, so a probe failing every second is not an Event a second."""

from __future__ import annotations

from devcluster.controllers.runtime import EVENTS, Writer
from devcluster.server import DevCluster


def test_the_same_event_again_counts_up_and_another_message_is_another_event() -> None:
    cluster = DevCluster(workloads=False)
    try:
        writer = Writer(cluster.api, "kubelet")
        cluster.api.store.commit(("", "namespaces"), "ADDED",
                                 {"metadata": {"name": "ns", "uid": "ns-uid"}}, None)
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "ns", "uid": "pod-1"}}
        for _ in range(3):
            writer.event(pod, "Unhealthy", "Liveness probe failed: 500", "kubelet", "Warning")
        writer.event(pod, "Unhealthy", "Readiness probe failed: 503", "kubelet", "Warning")
        _, events = cluster.api.store.list_objects(EVENTS)
        by_message = {e["message"]: e for e in events}
        assert sorted(by_message) == ["Liveness probe failed: 500", "Readiness probe failed: 503"]
        assert by_message["Liveness probe failed: 500"]["count"] == 3
        assert by_message["Readiness probe failed: 503"]["count"] == 1

        # deleted meanwhile (events expire): the next repeat writes a new one
        repeated = by_message["Liveness probe failed: 500"]
        cluster.api.store.commit(EVENTS, "DELETED", repeated, repeated)
        writer.event(pod, "Unhealthy", "Liveness probe failed: 500", "kubelet", "Warning")
        _, events = cluster.api.store.list_objects(EVENTS)
        counts = sorted((e["message"], e["count"]) for e in events)
        assert counts == [("Liveness probe failed: 500", 1), ("Readiness probe failed: 503", 1)]
    finally:
        cluster.stop()
