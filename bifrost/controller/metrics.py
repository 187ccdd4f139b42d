"""Prometheus metrics: certificate expiry and renewal times from the store, operation outcomes
as this process saw them.

Certificates are read from the store at scrape time (one query), so every replica reports the
same expiries, and the figures cannot drift from the source of truth; a stand-by replica serves
them too. Operation outcomes are counters of this process (Prometheus sums them across replicas).
``/metrics`` is served beside ``/healthz`` and ``/readyz``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bifrost.store.errors import StoreError
from bifrost.store.interface import OperationStore

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _CertificateCollector(Collector):
    def __init__(self, store: OperationStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["namespace", "gateway", "listener", "certificate"]
        not_after = GaugeMetricFamily(
            "bifrost_certificate_not_after_timestamp_seconds",
            "notAfter of each attached certificate bifrost manages (Unix time)", labels=labels)
        renewal = GaugeMetricFamily(
            "bifrost_certificate_renewal_timestamp_seconds",
            "When each attached certificate is scheduled to be renewed (Unix time)",
            labels=labels)
        try:
            gateways = {g.uid: g for g in self.store.list_gateways()}
            certificates = self.store.list_certificates()
        except StoreError:
            return  # the scrape shows no certificate series; /readyz says why
        for cert in certificates:
            gw = gateways.get(cert.gateway_uid)
            if not cert.attached or gw is None:
                continue
            values = [gw.namespace, gw.name, cert.listener, cert.object_name]
            if cert.not_after is not None:
                not_after.add_metric(values, cert.not_after.timestamp())
            if cert.renewal_at is not None:
                renewal.add_metric(values, cert.renewal_at.timestamp())
        yield not_after
        yield renewal


class Metrics:
    """The controller's metrics registry."""

    def __init__(self, store: OperationStore) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_CertificateCollector(store))
        self.operations = Counter(
            "bifrost_operations_total", "Operations that ended, by machine and result",
            ["machine", "result"], registry=self.registry)
        self.rotations = Counter(
            "bifrost_certificate_rotations_total",
            "Certificate rotations that ended, by result (succeeded, failed)", ["result"],
            registry=self.registry)

        self.drift_repairs = Counter(
            "bifrost_drift_repairs_total",
            "Children changed or deleted outside bifrost whose repair started, by kind",
            ["kind"], registry=self.registry)

    def drift_repaired(self, kind: str) -> None:
        self.drift_repairs.labels(kind).inc()

    def operation_ended(self, machine: str, result: str) -> None:
        self.operations.labels(machine, result).inc()
        if machine == "rotate_certificate":
            self.rotations.labels(result).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
