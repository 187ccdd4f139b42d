"""The controller's composition root: store, client, informers, queue, workers, engine, resync,
leader election and health endpoints, wired once and shut down cleanly.

Why it is shaped this way:

- **Caches are always warm, work is leader-only.** Every replica runs the informers (so a
  follower that becomes leader starts from a synced cache, not a cold list), but only the holder
  of the ``bifrost-controller`` Lease runs the queue workers, the engine :class:`Runner` and the
  resync. Losing the Lease stops that work at once; the engine's fencing rejects any late
  commit of a deposed leader, so a step in flight cannot corrupt an operation.
- **Watches drive, resync backstops.** Watch events enqueue exactly the affected keys (see
  :mod:`bifrost.controller.informers`). A periodic resync re-enqueues every known key *from the
  cache* (no API list): reconciles are level-triggered and write only what changed, so a resync
  of a converged fleet costs no writes.
- **Fenced terms.** The runners run for one leadership term at a time: a new term's threads
  start only after the previous term's have ended (joined on a starter thread, so the elector
  keeps renewing meanwhile); a runner goes on to another step only while its term is current;
  the steps write the cluster through a :class:`~bifrost.engine.fenced_kube.FencedKube`, which
  re-checks the operation lease and the term before every write. Operation leases are shorter
  than the leader Lease (default two thirds of it) and, unless a clock is injected, judged by
  the database's clock (:class:`~bifrost.engine.database_clock.DatabaseClock`).
- **Plug points** (one callable each): ``steps_factory`` builds the step implementations the
  runner may run (provision/teardown steps join the default here); ``status_writer_factory``
  builds the Gateway :class:`~bifrost.controller.observe.StatusWriter`.

``/readyz`` answers 200 once every informer has synced and the database answers (followers are
ready too: they are healthy standbys); ``/healthz`` answers 200 while the elector, the workers
and the runners make progress and the database was not lost for long (see
:mod:`bifrost.controller.health`: thresholds in ``ControllerOptions.health``). Both return JSON
naming the failed checks, with the identity, leadership and sync state. ``/metrics`` is served
on its own listener (``metrics_host``/``metrics_port``, loopback by default), never on the health
port: probes need the pod IP, metrics need not be open to the world.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bifrost.api.objects import Obj
from bifrost.certificates.renewal import renewal_policy
from bifrost.clock import Clock, SystemClock
from bifrost.controller.cached_reads import CachedReads
from bifrost.controller.children import ChildInformers
from bifrost.controller.class_finalizer import class_keys_for_gateway
from bifrost.controller.drift import DriftCheck
from bifrost.controller.gateway_view import StatusWriter
from bifrost.controller.health import (
    DatabaseCheck,
    HealthOptions,
    HealthServer,
    Heartbeats,
    Verdict,
)
from bifrost.controller.housekeeping import Housekeeper
from bifrost.controller.informers import (
    WATCHED,
    Cache,
    CacheBlueprints,
    Informers,
    KindSpec,
    WorkKey,
)
from bifrost.controller.metrics import Metrics
from bifrost.controller.observe import Observer
from bifrost.controller.queue import RateLimiter, WorkQueue
from bifrost.controller.scheduler import RenewalScheduler
from bifrost.controller.status_writer import GatewayApiStatusWriter
from bifrost.engine import Runner, Step
from bifrost.engine.database_clock import DatabaseClock
from bifrost.engine.fenced_kube import FencedKube
from bifrost.kube import EventRecorder, Kube, KubeClient, KubeError, LeaderElector, Retryable
from bifrost.kube.identity import default_identity
from bifrost.machines.catalog import default_registry
from bifrost.machines.registry import MachineRegistry
from bifrost.machines.rotation import REASON_RENEWAL_DUE
from bifrost.records import CertificateRecord, OperationStatus
from bifrost.steps.bindings import bind_steps
from bifrost.store.errors import StoreUnavailable
from bifrost.store.interface import OperationStore

__all__ = [
    "LEASE_NAME",
    "Controller",
    "ControllerOptions",
    "HealthServer",
    "StatusWriterFactory",
    "StepsFactory",
    "default_lease_namespace",
    "default_steps",
]

log = logging.getLogger(__name__)

LEASE_NAME = "bifrost-controller"

StepsFactory = Callable[[Kube, OperationStore, Cache], Mapping[str, Step]]
StatusWriterFactory = Callable[[Kube, Clock], StatusWriter]


def default_lease_namespace() -> str:
    """``$POD_NAMESPACE`` (the Deployment sets it from the Downward API), else ``default``."""
    return os.environ.get("POD_NAMESPACE", "").strip() or "default"


def default_steps(kube: Kube, store: OperationStore, cache: Cache) -> dict[str, Step]:
    """The step implementations of every machine in the catalog, keyed by step name (see
    ``bifrost.steps.bindings``). Blueprints are read from the informer cache, not fetched per
    step; the renewal policy is ``bifrost.certificates.renewal``."""
    return bind_steps(kube, store, blueprints=CacheBlueprints(cache), renewal_time=renewal_policy)


@dataclass(frozen=True)
class ControllerOptions:
    identity: str = field(default_factory=default_identity)
    lease_name: str = LEASE_NAME
    lease_namespace: str = field(default_factory=default_lease_namespace)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    workers: int = 4
    resync_interval: float = 300.0
    health_host: str = "0.0.0.0"  # noqa: S104 - probes come from the kubelet
    health_port: int = 0  # 0: no health server
    #: ``/metrics`` listener (0: none). Loopback unless an operator exposes it deliberately.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    #: How long a runner holds an operation without renewing. Must be shorter than the leader
    #: Lease (a deposed leader's runner loses its operations before anyone could have taken
    #: them over through the Lease); None: two thirds of ``lease_duration`` (15 s → 10 s).
    runner_lease: timedelta | None = None
    #: Engine threads (runners) of the leader; operations of different Gateways run in
    #: parallel, each one still a step at a time.
    engine_workers: int = 4
    runner_idle: timedelta = timedelta(seconds=1)
    controller_namespace: str = field(
        default_factory=lambda: os.environ.get("POD_NAMESPACE", "").strip() or "bifrost-system"
    )
    watch_timeout_seconds: int = 300
    kinds: tuple[KindSpec, ...] = WATCHED
    #: How often active operations are looked up to observe their Gateways.
    operation_poll: timedelta = timedelta(seconds=2)
    #: How often the renewal scheduler re-reads the store besides its per-certificate alarms.
    renewal_poll: timedelta = timedelta(seconds=30)
    #: Renewals are spread over up to this many seconds (deterministic per certificate).
    renewal_jitter: float = 60.0
    #: The probes' thresholds (``/readyz``, ``/healthz``).
    health: HealthOptions = field(default_factory=HealthOptions)

    def __post_init__(self) -> None:
        if self.runner_lease is not None and not (
            timedelta(0) < self.runner_lease < timedelta(seconds=self.lease_duration)
        ):
            raise ValueError(
                f"runner_lease ({self.runner_lease.total_seconds():g}s) must be positive and "
                f"shorter than the leader Lease (lease_duration {self.lease_duration:g}s)")

    @property
    def operation_lease(self) -> timedelta:
        """The operation lease the runners take (``runner_lease`` or its default)."""
        if self.runner_lease is not None:
            return self.runner_lease
        return timedelta(seconds=self.lease_duration * 2 / 3)


class Controller:
    """One controller process: call :meth:`run` (blocking) and set ``stop`` to end it."""

    def __init__(
        self,
        kube: KubeClient,
        store: OperationStore,
        *,
        options: ControllerOptions | None = None,
        clock: Clock | None = None,
        registry: MachineRegistry | None = None,
        steps_factory: StepsFactory = default_steps,
        status_writer_factory: StatusWriterFactory = GatewayApiStatusWriter,
    ) -> None:
        self.kube = kube
        self.store = store
        self.options = options or ControllerOptions()
        self.clock = clock or SystemClock()
        self.registry = registry or default_registry()
        # Secrets: metadata from the watch, data read by name only for the referenced ones.
        self.cache = Cache(secret_reader=lambda ns, name: kube.get("v1", "Secret", name, ns))
        self.metrics = Metrics(store, self.clock)
        self.queue: WorkQueue[WorkKey] = WorkQueue(
            rate_limiter=RateLimiter(base=0.05, cap=300.0),
            observer=self.metrics.queue("bifrost", lambda: self.queue.depth()))
        # Children: one label-selected watch per kind in the inventory; their events re-observe
        # the Gateway (drift) and wake the operation waiting on the object.
        self.children = ChildInformers(kube, self.cache, self._child_changed,
                                       timeout_seconds=self.options.watch_timeout_seconds,
                                       main_synced=lambda: self.informers.synced())
        # Steps and the status writer read what the informers hold from their caches
        # (read-your-writes; see bifrost.controller.cached_reads).
        self.reads = CachedReads(kube, self.children)
        self.informers = Informers(
            kube, self.cache, self._enqueue, kinds=self.options.kinds,
            timeout_seconds=self.options.watch_timeout_seconds,
            on_event=self._main_event,
        )
        self.observer = Observer(
            cache=self.cache, kube=kube, store=store, registry=self.registry, clock=self.clock,
            actor=self.options.identity,
            status_writer=status_writer_factory(self.reads, self.clock),
            controller_namespace=self.options.controller_namespace,
            events=EventRecorder(kube, reporting_instance=self.options.identity,
                                 clock=self.clock),
            on_operation_end=self._operation_ended,
            drift=DriftCheck(self.children),
            on_drift_repair=self.metrics.drift_repaired,
        )
        # Steps write the cluster through the fence (lease and term re-checked per write).
        steps = steps_factory(FencedKube(self.reads, store), store, self.cache)
        # Leases are judged by the database's clock unless the caller injected a clock.
        runner_clock = self.clock if clock is not None else DatabaseClock(store.database_time)
        # Several runners, one thread each: steps wait on the API server and the database, so
        # operations of different Gateways overlap. They share the pod identity as lease owner
        # (it is the journal's actor); a claim is an atomic UPDATE of free leases, so one
        # operation never goes to two runners, and every write is fenced on its version.
        self.runners = [
            Runner(
                store, self.registry, steps, clock=runner_clock, owner=self.options.identity,
                lease_for=self.options.operation_lease, idle_interval=self.options.runner_idle,
                leading=self._leading, observer=self.metrics.engine,
            )
            for _ in range(max(1, self.options.engine_workers))
        ]
        self.runner = self.runners[0]
        kube.on_request = self.metrics.kube.request
        self.metrics.watch(lease=self.options.lease_name, leading=lambda: self.is_leader,
                           informers={"main": (self.cache.sizes, self.informers.watch_stats),
                                      "children": (self.children.sizes,
                                                   self.children.watch_stats)})
        self.elector = LeaderElector(
            kube, lease_name=self.options.lease_name, namespace=self.options.lease_namespace,
            identity=self.options.identity, lease_duration=self.options.lease_duration,
            renew_deadline=self.options.renew_deadline, retry_period=self.options.retry_period,
            on_started_leading=self._started_leading,
            on_stopped_leading=self._stopped_leading,
        )
        self._lock = threading.Lock()
        self._term: threading.Event | None = None
        self._term_threads: list[threading.Thread] = []
        self._running = threading.Event()
        #: Workers and runners beat here; ``/healthz`` fails on a dead or stalled one.
        self.heartbeats = Heartbeats(self.clock)
        self._elector_thread: threading.Thread | None = None
        self._started_at: datetime | None = None
        self.database = DatabaseCheck(
            store.database_time, self.clock, timeout=self.options.health.database_timeout,
            cache_for=self.options.health.database_cache)
        self.health: HealthServer | None = None
        self.metrics_server: HealthServer | None = None
        #: The renewal scheduler of the current term (leader only).
        self.scheduler: RenewalScheduler | None = None
        #: Counters for tests and metrics.
        self.stats: dict[str, int] = {"observed": 0, "errors": 0, "terms": 0}
        #: key → the failure last logged at WARNING for it (a key is observed by one worker
        #: at a time; it leaves once observed again)
        self._failing: dict[WorkKey, str] = {}

    # ---- state ----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    def _leading(self) -> bool:
        """The runners' term check: the elector still holds the Lease (renewed within
        ``lease_duration``), asked without waiting for a renewal in progress. A runner asks
        before every step: that is its heartbeat."""
        self.heartbeats.beat()
        return self.elector.holds_lease()

    def readiness(self) -> Verdict:
        """``/readyz``: running, caches synced, database reachable."""
        db = self.database.check()
        return Verdict({
            "running": {"ok": self._running.is_set()},
            "informers": {"ok": self.informers.synced()},
            "database": {"ok": db.error is None, "error": db.error},
        })

    def liveness(self) -> Verdict:
        """``/healthz``: the elector, workers and runners make progress; the database was not
        lost for longer than ``health.database_lost_after``."""
        limits = self.options.health
        db = self.database.check()
        lost = self.database.lost_for(db)
        since = self.elector.since_last_step()
        if since is None and self._started_at is not None:  # no attempt finished yet
            since = self.clock.now() - self._started_at
        thread = self._elector_thread
        elector_ok = (thread is not None and thread.is_alive()
                      and (since is None or since <= limits.stall_after))
        return Verdict({
            "running": {"ok": self._running.is_set()},
            "elector": {"ok": elector_ok,
                        "last_step_seconds": None if since is None else since.total_seconds()},
            "threads": self.heartbeats.check(limits.stall_after),
            "database": {"ok": lost <= limits.database_lost_after, "error": db.error,
                         "lost_seconds": lost.total_seconds()},
        })

    def ready(self) -> bool:
        return self.readiness().ok

    def healthy(self) -> bool:
        return self.liveness().ok

    def describe(self) -> dict[str, Any]:
        return {
            "identity": self.options.identity,
            "leader": self.is_leader,
            "synced": self.informers.synced(),
            "queued": len(self.queue),
            **self.stats,
        }

    # ---- run ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Start everything, block until ``stop`` is set, then shut down in reverse order."""
        if self.options.health_port:
            self.health = HealthServer(self, self.options.health_host, self.options.health_port,
                                       metrics=False)
            self.health.start()
        if self.options.metrics_port:
            self.metrics_server = HealthServer(self, self.options.metrics_host,
                                               self.options.metrics_port, health=False)
            self.metrics_server.start()
        self._started_at = self.clock.now()
        self._running.set()
        self.informers.start()
        try:
            self._elector_thread = self.elector.start()
            while not stop.wait(0.5):  # short waits keep signal handling prompt
                pass
        finally:
            log.info("%s: shutting down", self.options.identity)
            self._running.clear()
            # Release the Lease first, so a standby takes over while we finish up.
            self.elector.stop(release=True)
            self._stopped_leading()
            self._join_term()
            self.queue.shutdown()
            if self.observer.events is not None:
                self.observer.events.flush()  # unwritten Event series counts
            self.informers.stop()
            self.children.stop()
            if self.health is not None:
                self.health.stop()
            if self.metrics_server is not None:
                self.metrics_server.stop()

    def _child_changed(self, gateway_uid: str, key: str) -> None:
        """A child changed (or was created or deleted): its Gateway is observed again (drift)
        and, on the leader, the operation waiting on exactly this object is woken."""
        gateway = self.cache.gateway_for_uid(gateway_uid)
        if gateway is not None:
            self.queue.add(gateway)
        if self.is_leader:
            try:
                self.store.wake_waiting(gateway_uid, key=key, now=self.clock.now())
            except StoreUnavailable as exc:
                log.warning("waking the operations waiting on %s: %s", key, exc)

    def watch_children(self) -> None:
        """Watch the kinds the inventory has (started and stopped as they come and go)."""
        try:
            self.children.ensure(self.store.child_kinds())
        except StoreUnavailable as exc:
            log.warning("reading the children's kinds: %s", exc)

    def _main_event(self, kind: str, obj: Obj) -> None:
        self.children.main_event(kind, obj)
        if kind == "Gateway":  # its class's gateway-exists finalizer may have to change
            self._enqueue(class_keys_for_gateway(self.cache, obj))

    def _enqueue(self, keys: set[WorkKey]) -> None:
        for key in keys:
            self.queue.add(key)

    def resync(self) -> int:
        """Enqueue every known key from the cache (no API list); returns how many."""
        keys = self.cache.work_keys()
        self._enqueue(keys)
        return len(keys)

    # ---- leadership -----------------------------------------------------------------------

    def _started_leading(self) -> None:
        with self._lock:
            if self._term is not None and not self._term.is_set():
                return
            previous = [t for t in self._term_threads if t.is_alive()]
            term = threading.Event()
            self._term = term
            self.stats["terms"] += 1
            threads = [
                threading.Thread(target=self._tracked(self._worker), args=(term,),
                                 name=f"worker-{i}", daemon=True)
                for i in range(self.options.workers)
            ]
            threads += [threading.Thread(target=self._tracked(self._run_engine),
                                         args=(term, runner), name=f"engine-{i}", daemon=True)
                        for i, runner in enumerate(self.runners)]
            threads.append(threading.Thread(target=self._resync_loop, args=(term,),
                                            name="resync", daemon=True))
            threads.append(threading.Thread(target=self._operations_loop, args=(term,),
                                            name="operations", daemon=True))
            threads.append(threading.Thread(target=Housekeeper(self.store, clock=self.clock).loop,
                                            args=(term,), name="housekeeping", daemon=True))
            starter = threading.Thread(target=self._start_term, args=(term, previous, threads),
                                       name="term-start", daemon=True)
            # The previous term's threads still running stay listed until they end, so that
            # the term after this one (or shutdown) waits for them too.
            self._term_threads = [*previous, starter, *threads]
        starter.start()

    def _start_term(self, term: threading.Event, previous: list[threading.Thread],
                    threads: list[threading.Thread]) -> None:
        """Start a term's threads once every thread of the previous term has ended (a runner
        of the old term may still be in a step; it must not overlap the new term's runners,
        which are the same objects). Runs on its own thread so the elector keeps renewing."""
        for thread in previous:
            while thread.is_alive():
                thread.join(timeout=5.0)
                if thread.is_alive():
                    log.warning("new term waits for %s of the previous term to end", thread.name)
                if term.is_set():
                    return
        if term.is_set():
            return  # the term ended before it started
        self.observer.new_term()  # another leader may have written the store meanwhile
        log.info("%s leads: starting workers, engine and resync", self.options.identity)
        for thread in threads:
            thread.start()

    def _stopped_leading(self) -> None:
        with self._lock:
            if self._term is not None and not self._term.is_set():
                log.info("%s no longer leads: stopping leader work", self.options.identity)
                self._term.set()

    def _join_term(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._join_term_locked(timeout)

    def _join_term_locked(self, timeout: float) -> None:
        for thread in self._term_threads:
            if thread is not threading.current_thread() and thread.ident is not None:
                thread.join(timeout)
        self._term_threads = [t for t in self._term_threads if t.is_alive()]

    def _tracked(self, target: Callable[..., None]) -> Callable[..., None]:
        """``target`` with heartbeats: tracked from its start, forgotten when it returns (its
        term ended); an exception that ends the thread leaves it tracked, and dead."""
        def run(*args: Any) -> None:
            self.heartbeats.track()
            target(*args)
            self.heartbeats.forget()
        return run

    def _engine_wait(self, term: threading.Event) -> Callable[[float], bool]:
        def wait(seconds: float) -> bool:
            self.heartbeats.beat()  # an idle or backing-off runner is alive too
            return term.wait(seconds)
        return wait

    def _run_engine(self, term: threading.Event, runner: Runner) -> None:
        while not term.is_set():
            try:
                runner.run_forever(term, limit=1, wait=self._engine_wait(term))
            except Exception:  # the engine must survive anything a step or the store throws
                log.exception("engine loop failed; restarting it")
                term.wait(1.0)

    def _wait_synced(self, term: threading.Event) -> bool:
        """Block until the caches are synced (True) or the term ends (False)."""
        waited = 0
        while not self.informers.wait_synced(timeout=5, stop=term):
            if term.is_set():
                return False
            self.heartbeats.beat()  # waiting for the caches is no stall (/readyz tells)
            waited += 5
            if waited % 60 == 0:
                log.warning("informers not synced yet (is every CRD installed?)")
        return not term.is_set()

    def _resync_loop(self, term: threading.Event) -> None:
        if not self._wait_synced(term):
            return
        self.watch_children()
        count = self.resync()  # a new leader looks at everything once
        log.info("initial resync: %d keys", count)
        # Only the leader schedules renewals, once its caches are synced (the scheduler asks
        # the observer, which reads the cache); the schedule is rebuilt from the store.
        scheduler = RenewalScheduler(
            store=self.store, clock=self.clock, on_due=self._renewal_due,
            jitter_seconds=self.options.renewal_jitter, poll_interval=self.options.renewal_poll)
        self.scheduler = scheduler
        try:
            if not self._start_scheduler(term, scheduler):
                return
            while not term.wait(self.options.resync_interval):
                self.resync()
        finally:
            scheduler.stop()

    def _start_scheduler(self, term: threading.Event, scheduler: RenewalScheduler) -> bool:
        """Start the renewal scheduler, which reads the store: while the database is
        unavailable, retry with back-off (1 s doubling to 30 s) instead of ending the resync
        thread. False if the term ended first."""
        delay = 1.0
        while not term.is_set():
            try:
                scheduler.start()
                return True
            except StoreUnavailable as exc:
                scheduler.stop()  # start again from nothing on the next try
                log.warning("renewal schedule not built, the database is unavailable "
                            "(retrying in %.0f s): %s", delay, exc)
            if term.wait(delay):
                break
            delay = min(delay * 2, 30.0)
        return False

    def _operations_loop(self, term: threading.Event) -> None:
        """Operations start without a watch event (the renewal scheduler, ``bifrost-admin``
        in another process) and end without one: look at the active ones every
        ``operation_poll`` and observe their Gateways (observe re-checks an active one until
        it ended, then reports the end in status and Events). One indexed query per poll."""
        if not self._wait_synced(term):
            return
        active = [OperationStatus.PENDING, OperationStatus.RUNNING, OperationStatus.WAITING]
        last_id = 0
        while not term.wait(self.options.operation_poll.total_seconds()):
            try:
                ops = self.store.list_operations(statuses=active, limit=10_000)
                # also the ones created since the last poll: an operation that started and
                # ended in between was never seen active, and its end still needs reporting
                recent = self.store.list_operations(limit=500)
            except StoreUnavailable as exc:
                log.warning("listing active operations: %s", exc)
                continue
            fresh = [o for o in recent if o.id > last_id]
            last_id = max([last_id, *(o.id for o in recent)])
            self._enqueue({WorkKey("Gateway", o.namespace, o.name) for o in (*ops, *fresh)})
            self.watch_children()  # an operation may have applied a child of a new kind

    def _operation_ended(self, machine: str, result: str) -> None:
        self.metrics.operation_ended(machine, result)

    def _renewal_due(self, certificate: CertificateRecord) -> bool:
        return self.observer.start_rotation(certificate, reason=REASON_RENEWAL_DUE)

    def _worker(self, term: threading.Event) -> None:
        if not self._wait_synced(term):
            return
        while not term.is_set():
            self.heartbeats.beat()
            key = self.queue.get(timeout=0.5)
            if key is None:
                continue
            try:
                self.process(key)
            finally:
                self.queue.done(key)

    def process(self, key: WorkKey) -> None:
        """Observe one key; requeue it as the result (or a failure) asks."""
        began = self.metrics.reconcile.started()
        try:
            result = self.observer.observe(key)
        except (Retryable, StoreUnavailable) as exc:
            self.stats["errors"] += 1
            at_least = exc.delay if isinstance(exc, Retryable) else 0.0
            delay = self.queue.add_rate_limited(key, at_least=at_least)
            self._report_failure(key, exc, delay)
            self.metrics.reconcile.reconciled(key.kind, "error", began)
            return
        except KubeError as exc:
            self.stats["errors"] += 1
            delay = self.queue.add_rate_limited(key)
            self._report_failure(key, exc, delay)
            self.metrics.reconcile.reconciled(key.kind, "error", began)
            return
        except Exception:
            self.stats["errors"] += 1
            delay = self.queue.add_rate_limited(key)
            log.exception("%s: observe failed (retrying in %.1fs)", key, delay)
            self.metrics.reconcile.reconciled(key.kind, "error", began)
            return
        self.stats["observed"] += 1
        self.queue.forget(key)
        if self._failing.pop(key, None) is not None:
            log.info("%s: observed again", key)
        if result.actions:
            log.info("%s: %s", key, ", ".join(result.actions))
        if result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)
        self.metrics.reconcile.reconciled(
            key.kind, "success" if result.requeue_after is None else "requeue_after", began)

    def _report_failure(self, key: WorkKey, exc: Exception, delay: float) -> None:
        """One WARNING per key and change of failure (a status write denied by RBAC is retried
        with back-off for as long as the permission is missing); the repeats are DEBUG."""
        text = f"{key}: {exc}"
        if self._failing.get(key) == text:
            log.debug("%s (again; retrying in %.1fs)", text, delay)
            return
        self._failing[key] = text
        log.warning("%s (retrying in %.1fs)", text, delay)
