"""Housekeeping: keep the store bounded.

Two rules, applied by the leader every ``housekeeping_interval_seconds`` and by
``bifrost db vacuum`` once:

- a Gateway deleted (its teardown finished, ``gateways.deleted_at`` set by
  :mod:`bifrost.controller.lifecycle`) longer ago than ``deleted_gateway_retention`` is purged
  with everything keyed by it (operations, journal, certificates, children), so
  ``bifrost-admin history`` still tells what happened to a Gateway for the retention, and no
  longer;
- every Gateway's journal keeps only its newest ``journal_cap_per_gateway`` rows
  (``prune_journal``), so a Gateway that waits for hours cannot fill the database.

A pass is a plain function of the store and the clock (:meth:`Housekeeper.run_once`), so tests
drive it with a manual clock; :meth:`Housekeeper.loop` only repeats it until the leadership term
ends. A failing pass is logged and tried again at the next interval: housekeeping never stops
the controller.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from bifrost.clock import Clock
from bifrost.records import GatewayRecord
from bifrost.settings import Settings
from bifrost.store.interface import OperationStore

__all__ = ["HousekeepingPolicy", "HousekeepingReport", "Housekeeper"]

log = logging.getLogger(__name__)

#: Deleted gateways purged per transaction (a pass repeats until none is left).
PURGE_BATCH = 200
#: The first pass of a term runs this long after the term starts (or the interval, if shorter).
FIRST_PASS_DELAY_SECONDS = 30.0


@dataclass(frozen=True)
class HousekeepingPolicy:
    """How long deleted Gateways are kept, how many journal rows a Gateway keeps, how often."""

    retention: timedelta = timedelta(days=7)
    journal_cap: int = 5000
    interval_seconds: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HousekeepingPolicy:
        return cls(
            retention=settings.deleted_gateway_retention,
            journal_cap=settings.journal_cap_per_gateway,
            interval_seconds=settings.housekeeping_interval_seconds,
        )


@dataclass(frozen=True)
class HousekeepingReport:
    """What one pass removed."""

    purged: tuple[GatewayRecord, ...]
    journal_rows_pruned: int
    gateways_pruned: int  # gateways whose journal lost rows

    def describe(self) -> str:
        return (
            f"purged {len(self.purged)} deleted gateway(s); pruned {self.journal_rows_pruned} "
            f"journal row(s) of {self.gateways_pruned} gateway(s)"
        )


def _policy_from_environment() -> HousekeepingPolicy:
    """The ``BIFROST_*`` settings (``bifrost run`` validated them at start); the defaults, with a
    warning, when they do not validate — housekeeping never stops a leadership term."""
    try:
        return HousekeepingPolicy.from_settings(Settings())
    except ValueError as exc:  # pydantic's ValidationError
        log.warning("housekeeping uses its defaults: invalid settings: %s", exc)
        return HousekeepingPolicy()


class Housekeeper:
    """Applies a :class:`HousekeepingPolicy` to a store."""

    def __init__(
        self, store: OperationStore, *, clock: Clock, policy: HousekeepingPolicy | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy or _policy_from_environment()

    def run_once(self) -> HousekeepingReport:
        """Purge the deleted Gateways past the retention, then cap every journal."""
        before = self.clock.now() - self.policy.retention
        purged: list[GatewayRecord] = []
        while True:
            batch = self.store.purge_deleted_gateways(before=before, limit=PURGE_BATCH)
            purged.extend(batch)
            if len(batch) < PURGE_BATCH:
                break
        rows = gateways = 0
        # one read finds the journals over the cap; only those are written
        for uid in self.store.journal_over(self.policy.journal_cap):
            removed = self.store.prune_journal(uid, keep=self.policy.journal_cap)
            if removed:
                rows += removed
                gateways += 1
        report = HousekeepingReport(purged=tuple(purged), journal_rows_pruned=rows,
                                    gateways_pruned=gateways)
        if purged or rows:
            log.info("housekeeping: %s", report.describe())
        return report

    def loop(self, term: threading.Event) -> None:
        """Run a pass shortly after the term starts, then every interval, until ``term`` is
        set (the leader's thread)."""
        wait = min(FIRST_PASS_DELAY_SECONDS, self.policy.interval_seconds)
        while not term.wait(wait):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - logged; the next pass tries again
                log.exception("housekeeping pass failed; trying again in %.0f s",
                              self.policy.interval_seconds)
            wait = self.policy.interval_seconds
