"""Engine metrics: what the runners tell their :class:`~bifrost.engine.runner.RunnerObserver`
(step durations by machine, step and outcome; claim latency; lost leases; journal rows), and
the certificate verification results read off the rotation's ``verify_served`` step.

The engine itself imports no metrics library; this observer is the bridge. Labels are bounded
by the machine catalog (machines, steps, outcomes), never an operation or a Gateway.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from bifrost.engine.runner import RunnerObserver, StepReport
from bifrost.machines.rotation import VERIFY_SERVED

__all__ = ["EngineMetrics"]

_VERIFY_RESULTS = {"done": "verified", "wait": "not_served_yet", "fail": "failed",
                   "retry": "error", "error": "error"}

#: Steps wait on the API server, the database and peers: from milliseconds to minutes.
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class EngineMetrics(RunnerObserver):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.steps = Histogram(
            "bifrost_engine_step_duration_seconds",
            "How long step attempts ran, by machine, step and outcome (done, wait, retry, fail, "
            "error)", ["machine", "step", "outcome"], buckets=STEP_BUCKETS, registry=registry)
        self.claims = Histogram(
            "bifrost_engine_claim_duration_seconds",
            "How long the runners' claim of due operations took (one database round trip)",
            buckets=CLAIM_BUCKETS, registry=registry)
        self.claimed = Counter(
            "bifrost_engine_claimed_operations_total", "Operations the runners claimed",
            registry=registry)
        self.lease_losses = Counter(
            "bifrost_engine_lease_losses_total",
            "Operations whose lease another runner or an operator took over mid-work",
            registry=registry)
        self.journal = Counter(
            "bifrost_engine_journal_rows_total",
            "Journal rows the runners committed, by outcome (a repeated wait the store merges "
            "into the previous row counts too)", ["outcome"], registry=registry)
        self.verifications = Counter(
            "bifrost_certificate_verifications_total",
            "Checks that a new certificate is served (the rotation's verify_served step), by "
            "result: verified, not_served_yet, failed, error", ["result"], registry=registry)

    def on_step(self, report: StepReport) -> None:
        self.steps.labels(report.machine, report.step, report.outcome).observe(report.seconds)
        if report.step == VERIFY_SERVED:
            self.verifications.labels(_VERIFY_RESULTS.get(report.outcome, "error")).inc()

    def on_claim(self, seconds: float, claimed: int) -> None:
        self.claims.observe(seconds)
        if claimed:
            self.claimed.inc(claimed)

    def on_lease_lost(self) -> None:
        self.lease_losses.inc()

    def on_journal(self, outcome: str) -> None:
        self.journal.labels(outcome).inc()
