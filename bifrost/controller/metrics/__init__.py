"""The controller's Prometheus metrics: one :class:`Metrics` per process, on its own
``CollectorRegistry`` (so tests can run several controllers in one process), served at
``/metrics`` on the metrics port (see :mod:`bifrost.controller.health`).

One module per source of figures:

- :mod:`~bifrost.controller.metrics.store` — read from the store at scrape time: certificate
  expiry and renewal times, operations by machine and status, the oldest operation in flight;
- :mod:`~bifrost.controller.metrics.engine` — what the engine's runners report (steps, claims,
  lost leases, journal rows, certificate verification results);
- :mod:`~bifrost.controller.metrics.runtime` — the controller-runtime set: work queue,
  reconciles, leader election, informer caches and watches, API client requests.

Besides those: the process, platform and garbage-collector collectors of ``prometheus_client``
(``process_*``, ``python_*``), and three counters of this process — operations and rotations
that ended, drift repairs. Counters are per process (Prometheus sums them across replicas).
docs/metrics.md lists every family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bifrost.clock import Clock, SystemClock
from bifrost.controller.metrics.engine import EngineMetrics
from bifrost.controller.metrics.runtime import (
    InformerCollector,
    KubeMetrics,
    QueueMetrics,
    ReconcileMetrics,
    Sizes,
    WatchStats,
)
from bifrost.controller.metrics.store import CertificateCollector, OperationCollector
from bifrost.machines.rotation import ROTATION_MACHINE
from bifrost.store.interface import OperationStore

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The controller's metrics registry and the observers that feed it."""

    def __init__(self, store: OperationStore, clock: Clock | None = None) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(CertificateCollector(store))
        self.registry.register(OperationCollector(store, clock or SystemClock()))
        self.engine = EngineMetrics(self.registry)
        self.reconcile = ReconcileMetrics(self.registry)
        self.kube = KubeMetrics(self.registry)
        self.operations = Counter(
            "bifrost_operations_total", "Operations that ended, by machine and result",
            ["machine", "result"], registry=self.registry)
        self.rotations = Counter(
            "bifrost_certificate_rotations_total",
            "Certificate rotations that ended, by result (succeeded, failed, cancelled)",
            ["result"], registry=self.registry)
        self.drift_repairs = Counter(
            "bifrost_drift_repairs_total",
            "Children changed or deleted outside bifrost whose repair started, by kind",
            ["kind"], registry=self.registry)

    def queue(self, name: str, depth: Callable[[], int]) -> QueueMetrics:
        """The ``workqueue_*`` observer of the queue ``name`` (``depth`` read at scrape)."""
        return QueueMetrics(self.registry, name, depth)

    def watch(self, *, lease: str, leading: Callable[[], bool],
              informers: Mapping[str, tuple[Sizes, WatchStats]]) -> None:
        """Report leadership of ``lease`` and the informers' caches and watches."""
        self.registry.register(InformerCollector(lease=lease, leading=leading,
                                                 informers=informers))

    def drift_repaired(self, kind: str) -> None:
        self.drift_repairs.labels(kind).inc()

    def operation_ended(self, machine: str, result: str) -> None:
        self.operations.labels(machine, result).inc()
        if machine == ROTATION_MACHINE:
            self.rotations.labels(result).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
