"""The controller-runtime metric set, for bifrost: work queue, reconciles, leader election,
informer caches and watches, and the Kubernetes API client's requests.

Names follow what controller-runtime and client-go export (``workqueue_*`` with label ``name``,
``controller_runtime_reconcile_*`` with label ``controller``, ``leader_election_master_status``)
so existing dashboards and alerts fit; bifrost's own additions carry the ``bifrost_`` prefix.
A "controller" is the kind of work key the observer dispatches (Gateway, GatewayClass, each
policy kind, GatewayBlueprint): bounded, never an object's name.

The queue and the API client report through plain callbacks (:class:`QueueMetrics` is a
:class:`~bifrost.controller.queue.QueueObserver`; :meth:`KubeMetrics.request` is a
:data:`~bifrost.kube.client.RequestHook`), so neither imports ``prometheus_client``. Cache sizes,
watch counters and leadership are read at scrape time from callables the controller gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bifrost.controller.queue import QueueObserver

__all__ = ["InformerCollector", "KubeMetrics", "QueueMetrics", "ReconcileMetrics"]

#: client-go's workqueue latency buckets (1 µs … 10 s, decades) plus a minute.
QUEUE_BUCKETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 60.0)
#: controller-runtime's reconcile_time buckets.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
                     0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5,
                     6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60)
REQUEST_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

WatchStats = Callable[[], Mapping[str, Mapping[str, int]]]
Sizes = Callable[[], Mapping[str, int]]


class QueueMetrics(QueueObserver):
    """client-go's ``workqueue_*`` families for one queue (``name``)."""

    def __init__(self, registry: CollectorRegistry, name: str, depth: Callable[[], int]) -> None:
        self.depth = Gauge("workqueue_depth", "Current depth of the work queue", ["name"],
                           registry=registry)
        self.depth.labels(name).set_function(lambda: float(depth()))
        adds = Counter("workqueue_adds_total", "Keys added to the work queue", ["name"],
                       registry=registry)
        retries = Counter("workqueue_retries_total",
                          "Keys re-queued after a failure (rate limited)", ["name"],
                          registry=registry)
        queued = Histogram("workqueue_queue_duration_seconds",
                           "How long a key waited in the queue before a worker took it",
                           ["name"], buckets=QUEUE_BUCKETS, registry=registry)
        work = Histogram("workqueue_work_duration_seconds",
                         "How long a worker held a key", ["name"], buckets=QUEUE_BUCKETS,
                         registry=registry)
        self._adds = adds.labels(name)
        self._retries = retries.labels(name)
        self._queued = queued.labels(name)
        self._work = work.labels(name)

    def added(self) -> None:
        self._adds.inc()

    def retried(self) -> None:
        self._retries.inc()

    def queued_for(self, seconds: float) -> None:
        self._queued.observe(seconds)

    def worked_for(self, seconds: float) -> None:
        self._work.observe(seconds)


class ReconcileMetrics:
    """``controller_runtime_reconcile_total{controller,result}`` (success, error, requeue_after),
    ``..._errors_total{controller}`` and ``..._time_seconds{controller}``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter("controller_runtime_reconcile_total",
                             "Reconciles (observations of one work key) by controller and result",
                             ["controller", "result"], registry=registry)
        self.errors = Counter("controller_runtime_reconcile_errors_total",
                              "Reconciles that failed (the key is retried with backoff)",
                              ["controller"], registry=registry)
        self.time = Histogram("controller_runtime_reconcile_time_seconds",
                              "How long reconciles took, by controller", ["controller"],
                              buckets=RECONCILE_BUCKETS, registry=registry)

    @staticmethod
    def started() -> float:
        """A reconcile begins: the mark :meth:`reconciled` measures from."""
        return time.monotonic()

    def reconciled(self, controller: str, result: str, began: float) -> None:
        """A reconcile that began at ``began`` (:meth:`started`) ended with ``result``."""
        self.total.labels(controller, result).inc()
        if result == "error":
            self.errors.labels(controller).inc()
        self.time.labels(controller).observe(max(0.0, time.monotonic() - began))


class KubeMetrics:
    """The API client's requests: count by verb, resource and code; latency by verb and
    resource. :meth:`request` is the client's ``on_request`` hook."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "bifrost_kube_api_requests_total",
            "Requests to the Kubernetes API server by verb, resource and HTTP status code "
            "(\"error\": no response)", ["verb", "resource", "code"], registry=registry)
        self.latency = Histogram(
            "bifrost_kube_api_request_duration_seconds",
            "Latency of requests to the Kubernetes API server by verb and resource (a watch: "
            "until its stream opened)", ["verb", "resource"], buckets=REQUEST_BUCKETS,
            registry=registry)

    def request(self, verb: str, resource: str, code: str, seconds: float) -> None:
        self.requests.labels(verb, resource, code).inc()
        self.latency.labels(verb, resource).observe(seconds)


class InformerCollector(Collector):
    """Leadership, cache sizes and watch counters, read at scrape time.

    ``informers`` maps an informer set's name (``main``, ``children``) to its cache sizes and
    watch counters; ``leading`` says whether this replica holds the leader Lease ``lease``.
    """

    def __init__(self, *, lease: str, leading: Callable[[], bool],
                 informers: Mapping[str, tuple[Sizes, WatchStats]]) -> None:
        self.lease = lease
        self.leading = leading
        self.informers = dict(informers)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        leader = GaugeMetricFamily(
            "leader_election_master_status",
            "1 while this replica holds the leader Lease (runs the workers and the engine), "
            "else 0", labels=["name"])
        leader.add_metric([self.lease], 1.0 if self.leading() else 0.0)
        yield leader
        sizes = GaugeMetricFamily("bifrost_informer_cache_objects",
                                  "Objects held in the informer caches, by informer and kind",
                                  labels=["informer", "kind"])
        watches = CounterMetricFamily(
            "bifrost_informer_watches", "Watch streams opened, by informer and kind (the first "
            "after each list, and every resume)", labels=["informer", "kind"])
        restarts = CounterMetricFamily(
            "bifrost_informer_watch_restarts",
            "Watches that had to start over, by informer, kind and reason: relist (the "
            "resourceVersion expired, 410) or error (the watch or list failed)",
            labels=["informer", "kind", "reason"])
        for informer, (cache_sizes, stats) in sorted(self.informers.items()):
            for kind, count in sorted(cache_sizes().items()):
                sizes.add_metric([informer, kind], float(count))
            for kind, counters in sorted(stats().items()):
                watches.add_metric([informer, kind], float(counters.get("watches", 0)))
                restarts.add_metric([informer, kind, "relist"],
                                    float(counters.get("relists", 0)))
                restarts.add_metric([informer, kind, "error"], float(counters.get("errors", 0)))
        yield sizes
        yield watches
        yield restarts
