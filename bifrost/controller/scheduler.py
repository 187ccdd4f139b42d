"""The renewal scheduler: wakes the engine when a certificate is due for renewal.

The only module that imports APScheduler. The store is the source of truth: every decision reads
``renewal_at`` from it as recorded (it is decided once, by :mod:`bifrost.certificates.renewal`,
when a certificate is recorded, and never recomputed here) and asks
:func:`bifrost.triggers.rotation.renewal_due` with the injected :class:`~bifrost.clock.Clock`'s
time. APScheduler is only an alarm clock:

- one ``DateTrigger`` job per certificate (id ``"{gateway_uid}/{object_name}"``) at its
  renewal time plus a deterministic per-certificate jitter (:func:`renewal_jitter`), which
  spreads a fleet whose renewals fall on the same minute;
- one interval job (``poll_interval``) that calls :meth:`RenewalScheduler.run_due`, the safety
  net: APScheduler drops a one-shot job that misses its grace time, a wake-up can come a hair
  early, and a certificate recorded without a :meth:`~RenewalScheduler.schedule` call (a crash
  in between) must still renew. So nothing relies on the one-shot jobs alone.

A job's alarm time is translated from the injected clock to the wall clock APScheduler runs on
(``wall now + (due - clock now)``), so a manual clock in tests or a skewed one never makes it
fire at a meaningless time; an alarm that rings early re-arms itself for the rest.

``on_due(record) -> bool`` starts the renewal — the controller passes
:meth:`bifrost.controller.observe.Observer.start_rotation`, which goes through
:func:`bifrost.triggers.rotation.start_rotation`; ``False`` means "not now"
(e.g. the gateway's lane is busy) and the next poll tries again. ``True`` means accepted: the same
certificate, with the same ``renewal_at``, is not offered again for ``refire_after`` — a rotation
that succeeds records a new certificate (new ``renewal_at``), one that failed is offered again
after that pause rather than hammered every poll. At most one ``on_due`` per certificate is in
flight at a time and no certificate is offered twice within one :meth:`run_due`; "one rotation
per certificate" is otherwise the engine's lane guard.

Thread-safety: ``on_due`` is called from APScheduler's worker thread (a single worker, so wake-ups
and polls never call it concurrently with each other) or from the caller of :meth:`run_due`;
shared state and every call into APScheduler are guarded by one lock, never held while calling
``on_due`` or the store, so ``on_due`` may call :meth:`schedule` / :meth:`unschedule` itself (but
not :meth:`stop`). Only the leader should run a scheduler: :meth:`start` on winning the lease,
:meth:`stop` on losing it.

Certificates already due when scheduled (renewals missed while no leader ran, found by the
:meth:`~RenewalScheduler.rebuild` at start) get no alarm each but one immediate ``run_due`` job.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bifrost.clock import Clock
from bifrost.records import CertificateRecord
from bifrost.store.interface import OperationStore
from bifrost.triggers.rotation import renewal_due, renewal_due_at

__all__ = ["CATCH_UP_JOB_ID", "POLL_JOB_ID", "RenewalScheduler", "job_id"]

log = logging.getLogger(__name__)

#: The APScheduler id of the safety-net poll (certificate job ids always contain a ``/``).
POLL_JOB_ID = "renewal-poll"
#: The APScheduler id of the immediate run for certificates that were already due when scheduled.
CATCH_UP_JOB_ID = "renewal-catch-up"


def job_id(gateway_uid: str, object_name: str) -> str:
    """The scheduler's key (and APScheduler job id) of one certificate."""
    return f"{gateway_uid}/{object_name}"


class RenewalScheduler:
    """Fires ``on_due`` for certificates whose ``renewal_at`` (+ jitter) has come."""

    def __init__(
        self,
        *,
        store: OperationStore,
        clock: Clock,
        on_due: Callable[[CertificateRecord], bool],
        jitter_seconds: float = 60.0,
        poll_interval: timedelta = timedelta(minutes=1),
        batch: int = 1000,
        refire_after: timedelta = timedelta(hours=1),
    ) -> None:
        if jitter_seconds < 0:
            raise ValueError("jitter_seconds must not be negative")
        if poll_interval <= timedelta(0):
            raise ValueError("poll_interval must be positive")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._store = store
        self._clock = clock
        self._on_due = on_due
        self._jitter_seconds = jitter_seconds
        self._poll_interval = poll_interval
        self._batch = batch
        self._refire_after = refire_after
        self._lock = threading.RLock()
        self._aps: BackgroundScheduler | None = None
        # key -> due time (renewal_at + jitter, clock domain): what has an alarm
        self._due: dict[str, datetime] = {}
        # key -> (renewal_at, accepted at): on_due said yes for that renewal time
        self._accepted: dict[str, tuple[datetime, datetime]] = {}
        # keys whose on_due call is running right now
        self._in_flight: set[str] = set()

    # --- lifecycle --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        with self._lock:
            return self._aps is not None

    def start(self) -> None:
        """Start APScheduler (a fresh one each time, so stop/start follows leadership), add the
        poll job, then :meth:`rebuild` from the store."""
        with self._lock:
            if self._aps is not None:
                return
            aps = BackgroundScheduler(
                timezone=UTC,
                executors={"default": ThreadPoolExecutor(max_workers=1)},
                # an alarm may re-arm itself (same id) while it still runs: let the new one queue
                # behind it on the single worker instead of being skipped
                job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 2},
            )
            aps.start()
            aps.add_job(
                self._poll,
                trigger=IntervalTrigger(seconds=self._poll_interval.total_seconds(), timezone=UTC),
                id=POLL_JOB_ID,
                replace_existing=True,
                max_instances=1,
            )
            self._aps = aps
        self.rebuild()

    def stop(self) -> None:
        """Stop APScheduler, waiting for a running wake-up (and its ``on_due``) to finish; the
        schedule is forgotten — the next :meth:`start` rebuilds it from the store. Must not be
        called from ``on_due`` (it would wait for itself)."""
        with self._lock:
            # From here on no job touches APScheduler (every call goes through the lock and
            # checks _aps): APScheduler's shutdown holds its job-store lock while it waits for
            # running jobs, so a job calling add_job/remove_job then would deadlock.
            aps, self._aps = self._aps, None
            self._due.clear()
        if aps is not None:
            # remove_all_jobs waits for APScheduler's loop to finish its round: shutting down
            # while it is removing a job that just ran makes that loop fail (it looks the job up
            # among the pending ones once the state is "stopped").
            aps.remove_all_jobs()
            aps.shutdown(wait=True)

    # --- the schedule -----------------------------------------------------------------------
    def rebuild(self) -> int:
        """Forget every alarm and re-read the store: each attached certificate with a renewal
        time (the earliest ``batch`` of them; later ones are found by the poll) gets an alarm at
        ``renewal_at`` + jitter; those already due (missed while no leader ran) are offered at
        once by one immediate run. Returns how many certificates are scheduled."""
        records = [
            r for r in self._store.due_renewals(limit=self._batch) if r.renewal_at and r.attached
        ]
        with self._lock:
            for key in self._due:
                self._disarm_locked(key)
            self._due.clear()
            self._accepted.clear()
            for record in records:
                self._schedule_locked(record)
        log.info("renewal schedule rebuilt from the store: %d certificate(s)", len(records))
        return len(records)

    def schedule(self, record: CertificateRecord) -> None:
        """(Re)schedule one certificate from its record as stored (e.g. after a rotation
        recorded a new one). A record without ``renewal_at`` or not attached is unscheduled."""
        if record.renewal_at is None or not record.attached:
            self.unschedule(record.gateway_uid, record.object_name)
            return
        with self._lock:
            self._schedule_locked(record)

    def unschedule(self, gateway_uid: str, object_name: str) -> None:
        """Drop a certificate's alarm. The store still decides what is due: a certificate that
        is still attached with a past renewal time there is offered again by the next poll."""
        key = job_id(gateway_uid, object_name)
        with self._lock:
            self._due.pop(key, None)
            self._accepted.pop(key, None)
            self._disarm_locked(key)

    def jobs(self) -> list[tuple[str, datetime]]:
        """The scheduled certificates as ``(job id, due time)``, earliest first (due time =
        ``renewal_at`` + jitter, in the injected clock's terms)."""
        with self._lock:
            return sorted(self._due.items(), key=lambda item: (item[1], item[0]))

    def due_at(self, record: CertificateRecord) -> datetime:
        """When ``record`` is due: its stored ``renewal_at`` plus its deterministic jitter
        (:func:`bifrost.triggers.rotation.renewal_due_at`)."""
        return renewal_due_at(record, jitter_seconds=self._jitter_seconds)

    # --- firing -----------------------------------------------------------------------------
    def run_due(self) -> int:
        """Offer every due certificate (``renewal_at`` + jitter <= clock now) to ``on_due``, each
        at most once; returns how many were offered. Store errors propagate; an ``on_due`` that
        raises is logged and counts as "not now"."""
        now = self._clock.now()
        with self._lock:
            self._forget_old_acceptances(now)
            # accepted-but-unchanged rows still sort among the due ones: read past them
            limit = self._batch + len(self._accepted) + len(self._in_flight)
        records = self._store.due_renewals(before=now, limit=limit)
        fired = 0
        seen: set[str] = set()
        for record in records:
            key = job_id(record.gateway_uid, record.object_name)
            if key in seen:
                continue
            seen.add(key)
            if self._offer(record, now):
                fired += 1
        return fired

    def _offer(self, record: CertificateRecord, now: datetime, *, alarm: bool = False) -> bool:
        """Call ``on_due`` for ``record`` if it is due and not accepted/in flight already (and,
        for an ``alarm``, still scheduled); returns whether ``on_due`` was called."""
        renewal_at = record.renewal_at
        if renewal_at is None or not renewal_due(record, now=now,
                                                 jitter_seconds=self._jitter_seconds):
            return False
        key = job_id(record.gateway_uid, record.object_name)
        with self._lock:
            if key in self._in_flight or (alarm and key not in self._due):
                return False
            accepted = self._accepted.get(key)
            if accepted is not None and accepted[0] == renewal_at:
                return False
            self._in_flight.add(key)
        ok = False
        try:
            ok = bool(self._on_due(record))
        except Exception:
            log.exception("renewal of %s failed to start; retrying at the next poll", key)
        finally:
            with self._lock:
                self._in_flight.discard(key)
        if not ok:
            log.debug("renewal of %s not started now; the next poll retries", key)
            return True
        with self._lock:
            self._accepted[key] = (renewal_at, now)
            # the alarm has done its job; a new certificate comes with a new schedule()
            if self._due.get(key) == self.due_at(record):
                del self._due[key]
                self._disarm_locked(key)
        return True

    def _forget_old_acceptances(self, now: datetime) -> None:
        stale = [k for k, (_, at) in self._accepted.items() if now - at >= self._refire_after]
        for key in stale:
            del self._accepted[key]

    # --- APScheduler plumbing (a wake-up only; decisions use the injected clock) -------------
    # Every call into APScheduler happens with self._lock held and only while self._aps is set
    # (see stop()). APScheduler never calls back into this class while holding its own locks
    # (it hands jobs to its executor), so holding ours across its calls cannot deadlock.

    def _schedule_locked(self, record: CertificateRecord) -> None:
        key = job_id(record.gateway_uid, record.object_name)
        due = self.due_at(record)
        self._due[key] = due
        accepted = self._accepted.get(key)
        if accepted is not None and accepted[0] != record.renewal_at:
            del self._accepted[key]
        self._arm_locked(key, due)

    def _arm_locked(self, key: str, due: datetime) -> None:
        aps = self._aps
        if aps is None:
            return
        delay = due - self._clock.now()
        wall = datetime.now(UTC) + max(delay, timedelta(0))
        if delay <= timedelta(0):
            # Already due (missed while no leader ran, or recorded late): one immediate
            # run_due for all of them instead of one alarm each — a restart with a thousand
            # overdue certificates reads the store once, not a thousand times.
            self._disarm_locked(key)
            aps.add_job(
                self._poll,
                trigger=DateTrigger(run_date=wall, timezone=UTC),
                id=CATCH_UP_JOB_ID,
                replace_existing=True,
            )
            return
        aps.add_job(
            self._wake,
            trigger=DateTrigger(run_date=wall, timezone=UTC),
            args=(key,),
            id=key,
            replace_existing=True,
        )

    def _disarm_locked(self, key: str) -> None:
        if self._aps is None:
            return
        # JobLookupError: it already rang (one-shot jobs remove themselves) or was never armed
        with contextlib.suppress(JobLookupError):
            self._aps.remove_job(key)

    def _wake(self, key: str) -> None:
        """A certificate's alarm: re-read it from the store and offer it if due; re-arm when the
        alarm rang early (or the injected clock is behind the wall clock)."""
        try:
            with self._lock:
                if key not in self._due:  # unscheduled meanwhile
                    return
            gateway_uid, object_name = key.split("/", 1)
            record = next(
                (
                    c
                    for c in self._store.list_certificates(gateway_uid=gateway_uid)
                    if c.object_name == object_name
                ),
                None,
            )
            if record is None or record.renewal_at is None or not record.attached:
                with self._lock:
                    self._due.pop(key, None)
                return
            now = self._clock.now()
            due = self.due_at(record)
            if due > now:
                with self._lock:
                    if key in self._due:
                        self._due[key] = due  # the store's renewal time wins
                        self._arm_locked(key, due)
                return
            self._offer(record, now, alarm=True)
        except Exception:
            log.exception("renewal alarm %s failed; the poll will retry", key)

    def _poll(self) -> None:
        try:
            fired = self.run_due()
        except Exception:
            log.exception("renewal poll failed; retrying at the next poll")
            return
        if fired:
            log.info("renewal poll offered %d certificate(s)", fired)
