"""Metrics read from the store at scrape time: certificate expiry and renewal times, and the
operations that are not finished (or failed) by machine and status.

Read at scrape time (two or three queries), so every replica reports the same figures and they
cannot drift from the source of truth; a stand-by replica serves them too. A store that cannot
be reached leaves these series out of the scrape (``/readyz`` says why), it never fails the
scrape.

The certificate gauges are the only per-Gateway series bifrost exports (one per attached
certificate); the operation gauges are by machine and status only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bifrost.clock import Clock
from bifrost.records import OperationStatus
from bifrost.store.errors import StoreError
from bifrost.store.interface import OperationStore

__all__ = ["CertificateCollector", "OperationCollector"]

#: The statuses the operation gauges count (finished ones, except failed, are history).
COUNTED = (OperationStatus.PENDING, OperationStatus.RUNNING, OperationStatus.WAITING,
           OperationStatus.PAUSED, OperationStatus.FAILED)
#: Statuses whose age counts for "stuck" (an operator's pause is not stuck).
IN_FLIGHT = frozenset({OperationStatus.PENDING, OperationStatus.RUNNING, OperationStatus.WAITING})
#: At most this many operations are read per scrape (failed ones stay until retention).
SCRAPE_LIMIT = 10_000


class CertificateCollector(Collector):
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


class OperationCollector(Collector):
    """``bifrost_engine_operations{machine,status}`` and the age of the oldest operation in
    flight per machine (``bifrost_engine_operation_oldest_age_seconds``, for the stuck alert)."""

    def __init__(self, store: OperationStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily(
            "bifrost_engine_operations",
            "Operations in the store that are pending, running, waiting, paused or failed, by "
            "machine and status", labels=["machine", "status"])
        oldest = GaugeMetricFamily(
            "bifrost_engine_operation_oldest_age_seconds",
            "Age of the oldest pending, running or waiting operation, by machine",
            labels=["machine"])
        try:
            operations = self.store.list_operations(statuses=list(COUNTED), limit=SCRAPE_LIMIT)
        except StoreError:
            return
        now = self.clock.now()
        counts = Counter((o.machine, o.status.value) for o in operations)
        ages: dict[str, float] = {}
        for o in operations:
            if o.status in IN_FLIGHT:
                age = max(0.0, (now - o.created_at).total_seconds())
                ages[o.machine] = max(ages.get(o.machine, 0.0), age)
        for (machine, status), count in sorted(counts.items()):
            by_status.add_metric([machine, status], count)
        for machine, age in sorted(ages.items()):
            oldest.add_metric([machine], age)
        yield by_status
        yield oldest
