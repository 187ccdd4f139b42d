"""The small pieces under the scrape: the work queue's observer (client-go semantics: a key
waiting is added once; a key added while in work counts once and is queued again after it;
queue and work time on the queue's clock), the API client's request labels (bounded: verb and
resource, never a name or namespace) and the operation gauges read from the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from engine.engine_kit import T0, new_demo
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bifrost.clock import ManualClock
from bifrost.controller.metrics.runtime import QueueMetrics
from bifrost.controller.metrics.store import OperationCollector
from bifrost.controller.queue import WorkQueue
from bifrost.kube.client import request_labels
from bifrost.store import SqlStore, migrate, open_store


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_queue_metrics_follow_client_go() -> None:
    now = [100.0]
    registry = CollectorRegistry()
    queue: WorkQueue[str] = WorkQueue(monotonic=lambda: now[0],
                                      observer=QueueMetrics(registry, "q", lambda: queue.depth()))
    queue.add("a")
    queue.add("a")  # already waiting: not added again
    queue.add("b")
    s = samples(registry)
    assert s[("workqueue_adds_total", (("name", "q"),))] == 2
    assert s[("workqueue_depth", (("name", "q"),))] == 2
    now[0] = 103.0
    key = queue.get(timeout=0)
    assert key == "a"
    queue.add("a")  # in work: marked, counted once
    queue.add("a")
    now[0] = 104.5
    queue.done("a")  # queued again
    queue.add_rate_limited("b")
    s = samples(registry)
    assert s[("workqueue_adds_total", (("name", "q"),))] == 3
    assert s[("workqueue_retries_total", (("name", "q"),))] == 1
    assert s[("workqueue_queue_duration_seconds_count", (("name", "q"),))] == 1
    assert s[("workqueue_queue_duration_seconds_sum", (("name", "q"),))] == 3.0
    assert s[("workqueue_work_duration_seconds_sum", (("name", "q"),))] == 1.5
    assert s[("workqueue_depth", (("name", "q"),))] == 2  # a again, and b


@pytest.mark.parametrize(("method", "path", "watch", "expected"), [
    ("get", "/apis/gateway.networking.k8s.io/v1/namespaces/t1/gateways/edge", False,
     ("get", "gateways")),
    ("get", "/apis/gateway.networking.k8s.io/v1/gateways", False, ("list", "gateways")),
    ("get", "/apis/gateway.networking.k8s.io/v1/namespaces/t1/gateways", True,
     ("watch", "gateways")),
    ("patch", "/apis/gateway.networking.k8s.io/v1/namespaces/t1/gateways/edge/status", False,
     ("patch", "gateways/status")),
    ("post", "/api/v1/namespaces/t1/secrets", False, ("create", "secrets")),
    ("put", "/api/v1/namespaces/t1", False, ("update", "namespaces")),
    ("put", "/api/v1/namespaces/t1/status", False, ("update", "namespaces/status")),
    ("delete", "/api/v1/namespaces/t1/configmaps/c", False, ("delete", "configmaps")),
    ("delete", "/api/v1/namespaces/t1/configmaps", False, ("deletecollection", "configmaps")),
    ("get", "/apis/gateway.networking.k8s.io/v1/gatewayclasses/bifrost", False,
     ("get", "gatewayclasses")),
])
def test_request_labels(method: str, path: str, watch: bool,
                        expected: tuple[str, str]) -> None:
    assert request_labels(method, path, watch=watch) == expected


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{(tmp_path / 'ops.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    yield store
    store.close()


def test_operation_gauges_read_the_store(sqlite_store: SqlStore) -> None:
    clock = ManualClock(T0)
    registry = CollectorRegistry()
    registry.register(OperationCollector(sqlite_store, clock))
    assert not [k for k in samples(registry) if k[0].startswith("bifrost_engine")]
    op = new_demo(sqlite_store, clock, "gw-1")
    new_demo(sqlite_store, clock, "gw-2")
    clock.advance(timedelta(seconds=90))
    s = samples(registry)
    labels = (("machine", op.machine), ("status", "pending"))
    assert s[("bifrost_engine_operations", labels)] == 2
    assert s[("bifrost_engine_operation_oldest_age_seconds", (("machine", op.machine),))] == 90
    sqlite_store.fail_operation(op.id, now=clock.now(), message="test", actor="test")
    s = samples(registry)
    assert s[("bifrost_engine_operations", labels)] == 1
    assert s[("bifrost_engine_operations", (("machine", op.machine), ("status", "failed")))] == 1
