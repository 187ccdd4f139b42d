"""The durable runner: claim due operations, run one step at a time, commit every transition.

For each claimed operation the runner

1. checks that the code knows the operation's machine, version, state and step and that its
   context is valid JSON matching the machine's model; if not the operation is *poison* and is
   failed visibly (``store.fail_operation`` with a message naming what is unknown) while the
   runner goes on with the others;
2. commits the write-ahead "entering step X, attempt n" (``begin_step``);
3. runs the step (no sleeping, no engine transaction open while it runs);
4. commits the outcome, the next state/status/context and the journal row in one transaction
   (``finish_step``), fenced by lease owner and row version. When the runner will go straight
   on to the next step Y (same claim, within ``max_steps_per_claim``, at least half the lease
   left), that commit also carries Y's write-ahead (``finish_step(begin_next=(Y, 1))``), so Y's
   "entering" is still committed before Y runs and a steadily running operation costs one
   commit per step instead of two.

A crash anywhere re-runs the step in flight (its side effects are keyed idempotently), never
skips it. ``LeaseLost`` means another runner (or an operator) took over: the work is dropped. A
``StoreUnavailable`` makes the runner back off; a step outcome that could not be committed is
kept in memory and committed on the next tick, as long as the lease still holds (after that the
step re-runs wherever the operation is claimed next, which is safe because steps are
idempotent).

**Waits.** A ``Wait`` with ``on`` (what the step waits for) stores those keys with the
operation (``EngineBookkeeping.wait_on``), so an informer event wakes exactly that operation
(``store.wake_waiting``); its recheck is only a safety net on a growing, capped backoff
(``WAIT_BACKOFF``). A ``Wait`` without ``on`` is rechecked after its ``recheck_after``. A wait
identical to the previous one is merged into its journal row by the store (``repeats``).

**Terms.** A runner started by a leader runs for one leadership term (``run_forever``'s
``stop`` is the term; ``leading`` says whether this process still leads): it goes on to the
next step of a claimed operation only while the term is current, and hands the operation back
(due now) when it ended. Each step runs under a ``StepFence`` carrying the term check and the
runner's clock, so the step's cluster writes are fenced too (``bifrost.engine.fenced_kube``).

Engine bookkeeping that must survive a crash (the next step within the state, the previous
step's output, when the step was first attempted, how many of its attempts failed or finished)
is the operation's ``EngineBookkeeping``, stored in columns of its own beside the typed context
and written by the same ``finish_step`` commit as the state and context it goes with (so it is
fenced and crash-safe exactly like them). Revision 0003 moved it there out of the context JSON,
where it used to live under the key ``"_engine"``.

**Observing.** The engine imports no metrics library: a :class:`RunnerObserver` (no-op by
default) is told of every step run (:class:`StepReport`: machine, step, outcome, seconds,
attempt), every claim (how long the claim query took), every lost lease and every journal row
written; the controller turns those into Prometheus metrics. Each operation's start and finish
and each step's outcome are one INFO line (names, ids, states, steps, outcomes, durations — never
a step's messages, which may quote tenant values), and every line logged while a step runs
carries the Gateway, operation, machine, step and attempt (:func:`bifrost.logcontext.bound`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from bifrost import logcontext
from bifrost.clock import Clock
from bifrost.engine.step import (
    Done,
    Fail,
    Retry,
    Step,
    StepContext,
    StepOutcome,
    Wait,
    idempotency_key,
)
from bifrost.machines.registry import InvalidTrigger, MachineRegistry, UnknownMachine
from bifrost.machines.retry import RetryPolicy, backoff
from bifrost.machines.spec import DONE_TRIGGER, FAIL_TRIGGER, MachineSpec, StateSpec, StepSpec
from bifrost.records import (
    EngineBookkeeping,
    JournalOutcome,
    OperationRecord,
    OperationStatus,
    StepStart,
)
from bifrost.store.errors import LeaseLost, OperationConflict, RecordNotFound, StoreUnavailable
from bifrost.store.fence import StepFence, step_fence
from bifrost.store.interface import OperationStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WaitBackoff:
    """When a step waiting *on* something (``Wait.on``) is rechecked although nothing woke it:
    the n-th identical wait in a row after ``recheck_after × multiplier^(n-1)``, at most
    ``cap`` (never sooner than ``recheck_after``). A wake makes it due at once and resets
    nothing; a different wait (another reason or step) starts again at n = 1."""

    multiplier: float = 2.0
    cap: timedelta = timedelta(seconds=30)

    def delay(self, recheck_after: timedelta, repeat: int) -> timedelta:
        seconds = recheck_after.total_seconds() * self.multiplier ** max(0, min(repeat - 1, 64))
        grown = self.cap if seconds >= self.cap.total_seconds() else timedelta(seconds=seconds)
        return max(recheck_after, grown)


#: The policy of the safety-net rechecks of event-driven waits.
WAIT_BACKOFF = WaitBackoff()

#: How the runner spaces out its attempts to reach an unavailable database.
STORE_RETRY = RetryPolicy(
    max_attempts=1_000_000,
    initial_backoff=timedelta(milliseconds=100),
    max_backoff=timedelta(seconds=10),
    multiplier=2.0,
    jitter=0.3,
)


@dataclass(frozen=True)
class StepReport:
    """One step attempt the runner ran: ``outcome`` is ``done``, ``wait``, ``retry``, ``fail``
    or ``error`` (the step raised or broke its contract; retried like ``retry``)."""

    operation: int
    machine: str
    state: str
    step: str
    attempt: int
    outcome: str
    seconds: float


class RunnerObserver:
    """What the runner tells about its work (the controller's metrics); every method is a
    no-op here. Called on the runner's thread: keep them quick and never raise."""

    def on_step(self, report: StepReport) -> None:
        """A step attempt ran (before its outcome is committed)."""

    def on_claim(self, seconds: float, claimed: int) -> None:
        """A claim query returned ``claimed`` operations after ``seconds``."""

    def on_lease_lost(self) -> None:
        """Another runner (or an operator) took an operation over; the work was dropped."""

    def on_journal(self, outcome: str) -> None:
        """A journal row with this outcome was committed (a merged repeated wait counts too)."""


class PoisonOperation(Exception):
    """The running code cannot interpret this operation; it is failed with this message."""


@dataclass
class Envelope:
    """The engine's bookkeeping while the runner works on an operation; committed as the
    record's ``EngineBookkeeping``."""

    state: str | None = None  # the state ``step`` belongs to (stale after a trigger moved on)
    step: str | None = None  # next step to run in ``state`` (None: the state's first)
    input: dict[str, Any] | None = None  # output of the previous Done, handed to ``step``
    since: datetime | None = None  # the step's first attempt (for the timeout)
    failures: int = 0  # failed attempts of ``step`` (Retry / exception)
    finished: int = 0  # attempt number of the step's last committed attempt
    error: str | None = None  # why compensation started (kept for the final last_error)
    failed: bool = False  # ``step`` failed the operation; an operator's retry grants one attempt
    wait_on: tuple[str, ...] = ()  # what a waiting ``step`` waits for (wake keys)

    @classmethod
    def load(cls, record: OperationRecord) -> Envelope:
        kept = record.bookkeeping
        if kept.input is None and kept.input_raw is not None:
            raise PoisonOperation(
                f"step input of operation {record.id} is not a JSON object: "
                f"{kept.input_raw!r:.200}"
            )
        return cls(state=kept.state, step=kept.step, input=kept.input, since=kept.since,
                   failures=kept.failures, finished=kept.finished, error=kept.error,
                   failed=kept.failed, wait_on=kept.wait_on)

    def dump(self) -> EngineBookkeeping:
        return EngineBookkeeping(
            state=self.state, step=self.step, input=self.input, since=self.since,
            failures=self.failures, finished=self.finished, error=self.error, failed=self.failed,
            wait_on=self.wait_on,
        )


def dumped(context: BaseModel) -> dict[str, Any]:
    """The typed context as stored."""
    return context.model_dump(mode="json")


@dataclass
class _Pending:
    """A finish_step whose commit failed with StoreUnavailable; retried on the next tick."""

    operation_id: int
    kwargs: dict[str, Any]
    lease_expires_at: datetime | None


@dataclass
class _Loaded:
    record: OperationRecord
    spec: MachineSpec
    state: StateSpec
    context: BaseModel
    envelope: Envelope = field(default_factory=Envelope)
    # The attempt this process began (and is finishing), when there is one.
    started: StepStart | None = None
    # The runner will run the next step right after this one's commit (same claim).
    may_begin_next: bool = False
    # How long the step attempt being finished ran (None: no step ran, e.g. a plain edge).
    step_seconds: float | None = None


@dataclass(frozen=True)
class _Continue:
    """The operation goes on in this claim; ``begun`` when its next step's write-ahead is
    already committed (with the previous step's outcome)."""

    record: OperationRecord
    begun: StepStart | None = None


class Runner:
    """Runs due operations of the machines in ``registry`` with the step implementations in
    ``steps`` (keyed by step name)."""

    def __init__(
        self,
        store: OperationStore,
        registry: MachineRegistry,
        steps: Mapping[str, Step],
        *,
        clock: Clock,
        owner: str,
        lease_for: timedelta = timedelta(seconds=30),
        rng: random.Random | None = None,
        max_steps_per_claim: int = 50,
        idle_interval: timedelta = timedelta(seconds=1),
        leading: Callable[[], bool] | None = None,
        wait_backoff: WaitBackoff = WAIT_BACKOFF,
        observer: RunnerObserver | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``leading``: whether this process still leads (the leader elector's view); with
        ``run_forever``'s ``stop`` it makes the term check of every step and cluster write.
        ``observer`` is told of steps, claims, lost leases and journal rows; durations are
        measured on ``monotonic``."""
        if lease_for <= timedelta(0):
            raise ValueError("lease_for must be positive")
        self.store = store
        self.registry = registry
        self.steps = dict(steps)
        self.clock = clock
        self.owner = owner
        self.lease_for = lease_for
        self.rng = rng or random.Random()
        self.max_steps_per_claim = max_steps_per_claim
        self.idle_interval = idle_interval
        self.leading = leading
        self.wait_backoff = wait_backoff
        self.observer = observer or RunnerObserver()
        self._monotonic = monotonic
        self._term = threading.local()  # the ``stop`` event of the term this thread runs in
        self._pending: list[_Pending] = []
        self._store_failures = 0
        self.last_store_error: str | None = None

    # --- the loop ---------------------------------------------------------------------------
    @property
    def store_backoff(self) -> timedelta | None:
        """How long to wait before touching the store again, or None when it is healthy."""
        if self._store_failures == 0:
            return None
        return backoff(STORE_RETRY, self._store_failures, self.rng)

    def run_once(self, limit: int = 10) -> int:
        """Claim up to ``limit`` due operations and run each as far as it goes now.

        Returns how many operations were handled. Never raises ``StoreUnavailable``: the error
        is remembered (``store_backoff``, ``last_store_error``) and the caller waits.
        """
        try:
            self._flush_pending()
            now = self.clock.now()
            began = self._monotonic()
            claimed = self.store.claim_due(
                owner=self.owner, now=now, lease_for=self.lease_for, limit=limit
            )
            self.observer.on_claim(self._monotonic() - began, len(claimed))
        except StoreUnavailable as exc:
            self._unavailable(exc)
            return 0
        self._store_failures = 0
        self.last_store_error = None
        for record in claimed:
            try:
                with logcontext.bound(gateway=f"{record.namespace}/{record.name}",
                                      operation=record.id, machine=record.machine):
                    self._process(record)
            except StoreUnavailable as exc:
                # Don't wait out the database once per claimed operation: the rest of the batch
                # stays leased to us and is claimed again (by anyone) when the leases expire.
                self._unavailable(exc)
                break
            except LeaseLost as exc:
                self.observer.on_lease_lost()
                log.info("operation %s: lease lost, dropping the work (%s)", record.id, exc)
        return len(claimed)

    def tick(self, limit: int = 10) -> timedelta:
        """One round; returns how long the caller should wait before the next."""
        handled = self.run_once(limit)
        delay = self.store_backoff
        if delay is not None:
            return delay
        return timedelta(0) if handled else self.idle_interval

    def run_until_idle(self, *, limit: int = 10, max_rounds: int = 10_000) -> int:
        """Run rounds until nothing is due (per the runner's clock); returns operations handled.

        Raises ``StoreUnavailable`` if the store cannot be reached (there is no progress to wait
        for here; the caller decides)."""
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once(limit)
            if self._store_failures:
                raise StoreUnavailable(self.last_store_error or "store unavailable")
            if handled == 0 and not self._pending:
                return total
            total += handled
        raise RuntimeError(f"still busy after {max_rounds} rounds")

    def run_forever(
        self,
        stop: threading.Event,
        *,
        limit: int = 10,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        """Tick until ``stop`` is set. ``wait(seconds) -> stopped`` is the only place that
        sleeps (default: ``stop.wait``)."""
        waiter = wait or stop.wait
        self._term.stop = stop
        try:
            while not stop.is_set():
                delay = self.tick(limit)
                if delay > timedelta(0) and waiter(delay.total_seconds()):
                    return
        finally:
            self._term.stop = None

    def term_current(self) -> bool:
        """Whether the term this thread runs in goes on: its ``stop`` is not set and (given a
        ``leading`` check) this process still leads."""
        stop: threading.Event | None = getattr(self._term, "stop", None)
        if stop is not None and stop.is_set():
            return False
        return self.leading is None or self.leading()

    def _unavailable(self, exc: StoreUnavailable) -> None:
        self._store_failures += 1
        self.last_store_error = str(exc)
        log.warning("store unavailable (%d in a row): %s", self._store_failures, exc)

    def _flush_pending(self) -> None:
        while self._pending:
            pending = self._pending[0]
            now = self.clock.now()
            if pending.lease_expires_at is not None and now >= pending.lease_expires_at:
                log.info("operation %s: lease expired before the store came back; "
                         "the step will re-run", pending.operation_id)
                self._pending.pop(0)
                continue
            try:
                self.store.finish_step(pending.operation_id, now=now, **pending.kwargs)
                self._journaled(pending.kwargs)
            except LeaseLost as exc:
                self.observer.on_lease_lost()
                log.info("operation %s: pending commit fenced off (%s)", pending.operation_id, exc)
            self._pending.pop(0)

    # --- one operation ------------------------------------------------------------------------
    def _journaled(self, kwargs: Mapping[str, Any]) -> None:
        """Tell the observer of the journal rows a committed finish_step wrote."""
        outcome = kwargs.get("outcome")
        if isinstance(outcome, JournalOutcome):
            self.observer.on_journal(outcome.value)
        if kwargs.get("begin_next") is not None:
            self.observer.on_journal(JournalOutcome.STARTED.value)

    def _process(self, record: OperationRecord) -> None:
        if record.status is OperationStatus.PENDING:
            log.info("operation %s started: %s v%s for gateway %s/%s", record.id, record.machine,
                     record.machine_version, record.namespace, record.name)
        begun: StepStart | None = None
        message = f"yielding after {self.max_steps_per_claim} steps"
        for turn in range(self.max_steps_per_claim):
            if not self.term_current():
                # The leadership term ended: no further step (a successor runs it); the
                # operation is handed back due now instead of waiting out our lease.
                message = "leadership term ended; handing the operation back"
                log.info("operation %s: %s", record.id, message)
                break
            try:
                loaded = self._load(record)
            except PoisonOperation as exc:
                self._poison(record, str(exc))
                return
            # Fold the next step's write-ahead into this step's commit only if a next turn
            # exists to run it: the fairness yield below must never leave a step begun.
            loaded.may_begin_next = turn + 1 < self.max_steps_per_claim
            nxt = self._advance(loaded, begun)
            if nxt is None:
                return
            record, begun = nxt.record, nxt.begun
        # Fairness (or the term ended): give the others a turn; the operation stays due.
        self.store.finish_step(
            record.id,
            owner=self.owner,
            version=record.version,
            now=self.clock.now(),
            outcome=JournalOutcome.TRANSITION,
            state=record.state,
            status=OperationStatus.WAITING,
            context=dict(record.context or {}),
            bookkeeping=record.bookkeeping,
            next_run_at=self.clock.now(),
            message=message,
        )
        self.observer.on_journal(JournalOutcome.TRANSITION.value)

    def _load(self, record: OperationRecord) -> _Loaded:
        try:
            spec = self.registry.get(record.machine, record.machine_version)
        except UnknownMachine as exc:
            raise PoisonOperation(str(exc)) from None
        state = spec.state(record.state)
        if state is None:
            known = ", ".join(s.name for s in spec.states)
            raise PoisonOperation(
                f"state {record.state!r} is not a state of machine {spec.name!r} "
                f"v{spec.version} (known: {known})"
            )
        if record.context is None:
            raise PoisonOperation(
                f"context of operation {record.id} is not valid JSON: {record.context_raw!r:.200}"
            )
        try:
            context = spec.context_model.model_validate(record.context)
        except ValidationError as exc:
            raise PoisonOperation(
                f"context of operation {record.id} does not match "
                f"{spec.context_model.__name__} of machine {spec.name!r} v{spec.version}: "
                + "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                    for err in exc.errors()
                )
            ) from None
        return _Loaded(record, spec, state, context, Envelope.load(record))

    def _poison(self, record: OperationRecord, message: str) -> None:
        log.error("operation %s failed: %s", record.id, message)
        log.info("operation %s finished: %s failed for gateway %s/%s (poison)", record.id,
                 record.machine, record.namespace, record.name)
        with contextlib.suppress(RecordNotFound, OperationConflict):  # gone, or already finished
            self.store.fail_operation(
                record.id, now=self.clock.now(), message=message, actor=self.owner
            )

    def _finish(self, loaded: _Loaded, version: int, **kwargs: Any) -> OperationRecord:
        """finish_step, remembered for the next tick if the store is unavailable. Returns the
        new record; see ``_finish_and_go_on`` for the commits after which the runner goes on."""
        now = self.clock.now()
        kwargs.setdefault("started", loaded.started)
        try:
            record = self.store.finish_step(
                loaded.record.id, owner=self.owner, version=version, now=now, **kwargs
            )
        except StoreUnavailable:
            kept = dict(kwargs, owner=self.owner, version=version, release_lease=True)
            kept.pop("begin_next", None)  # nobody runs the next step: leave it unbegun
            self._pending.append(_Pending(loaded.record.id, kept, loaded.record.lease_expires_at))
            raise
        self._journaled(kwargs)
        self._log_transition(loaded, record, kwargs)
        return record

    def _log_transition(self, loaded: _Loaded, record: OperationRecord,
                        kwargs: Mapping[str, Any]) -> None:
        """One INFO line per committed transition, one more when the operation finished. Only
        names, ids, states, outcomes and durations: a step's message may quote tenant values."""
        before = loaded.record
        outcome = kwargs.get("outcome")
        what = outcome.value if isinstance(outcome, JournalOutcome) else "transition"
        started = loaded.started
        took = (f" in {loaded.step_seconds:.3f}s" if loaded.step_seconds is not None else "")
        if started is not None:
            # A step waiting again (a recheck that found it still not ready) is no transition:
            # DEBUG, so a long wait is one INFO line, not one per recheck.
            level = logging.DEBUG if (outcome is JournalOutcome.WAIT
                                      and started.attempt > 1) else logging.INFO
            log.log(level, "operation %s step %s attempt %d: %s%s; state %s -> %s (%s)",
                    record.id, started.step, started.attempt, what, took, before.state,
                    record.state, record.status.value)
        else:
            log.info("operation %s: %s; state %s -> %s (%s)", record.id, what, before.state,
                     record.state, record.status.value)
        if not record.status.active and record.status is not OperationStatus.PAUSED:
            seconds = (record.finished_at - record.created_at).total_seconds() \
                if record.finished_at is not None else None
            log.info("operation %s finished: %s %s for gateway %s/%s%s", record.id,
                     record.machine, record.status.value, record.namespace, record.name,
                     f" after {seconds:.3f}s" if seconds is not None else "")

    def _finish_and_go_on(
        self, loaded: _Loaded, version: int, *, state: str, bookkeeping: EngineBookkeeping,
        **kwargs: Any,
    ) -> _Continue:
        """A finish that keeps the lease because the operation goes on at once; with the next
        step's write-ahead folded into the same commit when that step is known to run next."""
        now = self.clock.now()
        go_on = loaded.may_begin_next and self.term_current()
        nxt = self._next_step(loaded, state, bookkeeping, now) if go_on else None
        if nxt is None:
            record = self._finish(loaded, version, state=state, bookkeeping=bookkeeping,
                                  release_lease=False, **kwargs)
            return _Continue(record)
        record = self._finish(loaded, version, state=state, bookkeeping=bookkeeping,
                              release_lease=False, begin_next=(nxt, 1), **kwargs)
        return _Continue(record, StepStart(step=nxt, attempt=1, started_at=now))

    def _next_step(
        self, loaded: _Loaded, state_name: str, bookkeeping: EngineBookkeeping, now: datetime
    ) -> str | None:
        """The step ``_advance`` will begin, as a fresh attempt 1, right after a commit that
        leaves the operation in ``state_name`` with ``bookkeeping`` — or None when that is not
        certain (terminal or step-less state, unknown step, no implementation, a lease that
        needs renewing first): then the plain path decides."""
        record = loaded.record
        if record.lease_expires_at is None or (
            record.lease_expires_at - now < self.lease_for / 2
        ):
            return None
        state = loaded.spec.state(state_name)
        if state is None or state.terminal is not None or not state.steps:
            return None
        if bookkeeping.failed:
            return None  # an operator's retry bookkeeping: leave it to the plain path
        env_step = bookkeeping.step if bookkeeping.state == state_name else None
        step_name = env_step if env_step is not None else state.steps[0].name
        step = state.step(step_name)
        if step is None or step_name not in self.steps or step.retry.max_attempts < 1:
            return None
        return step_name

    def _advance(self, loaded: _Loaded, begun: StepStart | None = None) -> _Continue | None:
        """Run the operation's next step (or edge); how it goes on if it may go on now.
        ``begun``: that step's write-ahead is already committed (by the previous commit)."""
        record, spec, state, env = loaded.record, loaded.spec, loaded.state, loaded.envelope
        now = self.clock.now()
        if state.terminal is not None:
            # Reached through a trigger, or created in a terminal state: just close it.
            self._finish(
                loaded, record.version,
                outcome=JournalOutcome.TRANSITION, state=state.name, status=state.terminal,
                context=dumped(loaded.context), bookkeeping=None, next_run_at=None,
                message=f"reached terminal state {state.name!r}", last_error=env.error,
            )
            return None
        if not state.steps:
            return self._go(loaded, record.version, JournalOutcome.TRANSITION, DONE_TRIGGER,
                            loaded.context, None, f"state {state.name!r} has no steps")
        if env.state != state.name:
            # A trigger or compensation moved the operation: start the state from its first step.
            env = Envelope(state=state.name, input=env.input if env.state is None else None,
                           error=env.error)
        step_name = env.step or state.steps[0].name
        step = state.step(step_name)
        if step is None:
            raise_poison = (f"step {step_name!r} is not a step of state {state.name!r} of machine "
                            f"{spec.name!r} v{spec.version}")
            self._poison(record, raise_poison)
            return None
        impl = self.steps.get(step_name)
        if impl is None:
            self._poison(record, f"no implementation of step {step_name!r} (machine "
                                 f"{spec.name!r} v{spec.version}) in this controller")
            return None

        policy = step.retry
        if begun is not None and (begun.step, begun.attempt) == (record.step, record.attempt) \
                and begun.step == step_name:
            # Entered in the previous step's commit: a fresh attempt, already journaled.
            env = Envelope(state=state.name, step=step_name, input=env.input, error=env.error,
                           since=begun.started_at)
            return self._run_step(loaded, step, impl, env, begun.attempt, 0, record, begun)

        # Attempt bookkeeping. attempt == 0 on the row: a fresh step (or an operator's retry).
        if record.attempt == 0 or record.step != step_name:
            operator_retry = env.failed and env.step == step_name
            env = Envelope(state=state.name, step=step_name, input=env.input, error=env.error)
            if operator_retry:
                # ``bifrost-admin retry`` re-runs a failed step once: one failure fails it again.
                env.failures = policy.max_attempts - 1
            attempt = 1
        else:
            attempt = record.attempt + 1
        interrupted = max(0, (attempt - 1) - env.finished)
        failures = env.failures + interrupted
        if env.since is None:
            env.since = now
        if failures >= policy.max_attempts:
            return self._fail_step(
                loaded, record.version, step, env,
                f"step {step_name!r} gave up after {failures} failed or interrupted attempts",
            )

        if record.lease_expires_at is not None and (
            record.lease_expires_at - now < self.lease_for / 2
        ):
            record = self.store.renew_lease(
                record.id, owner=self.owner, version=record.version, now=now,
                lease_for=self.lease_for,
            )
        record = self.store.begin_step(
            record.id, owner=self.owner, version=record.version, now=now,
            step=step_name, attempt=attempt,
        )
        self.observer.on_journal(JournalOutcome.STARTED.value)
        return self._run_step(loaded, step, impl, env, attempt, failures, record,
                              StepStart(step=step_name, attempt=attempt, started_at=now))

    def _run_step(
        self, loaded: _Loaded, step: StepSpec, impl: Step, env: Envelope, attempt: int,
        failures: int, record: OperationRecord, started: StepStart,
    ) -> _Continue | None:
        """Run a begun step attempt (its write-ahead is committed) and commit its outcome."""
        spec, state, step_name = loaded.spec, loaded.state, step.name
        loaded = _Loaded(record, spec, state, loaded.context, env, started=started,
                         may_begin_next=loaded.may_begin_next)
        ctx: StepContext[Any] = StepContext(
            operation=record, machine=spec, state=state, step=step, context=loaded.context,
            attempt=attempt, clock=self.clock, actor=self.owner,
            idempotency_key=idempotency_key(record.gateway_uid, record.id, step_name),
            started_at=started.started_at,
        )
        # The step's own store writes are fenced like the engine's commits: once another runner
        # took the operation over, they raise LeaseLost and write nothing.
        fence = StepFence(record.id, self.owner, record.version, step_name, attempt,
                          term_current=self.term_current, now=self.clock.now,
                          lease_for=self.lease_for)
        began = self._monotonic()
        kind = "error"
        try:
            with step_fence(fence), logcontext.bound(
                    gateway=f"{record.namespace}/{record.name}", operation=record.id,
                    machine=spec.name, step=step_name, attempt=attempt):
                outcome: StepOutcome = impl.run(ctx, env.input)
            if not isinstance(outcome, Done | Wait | Retry | Fail):
                raise StepContractError(f"step {step_name!r} returned a "
                                        f"{type(outcome).__name__}, not an outcome")
            new_context = getattr(outcome, "context", None)
            if new_context is not None and not isinstance(new_context, spec.context_model):
                raise StepContractError(
                    f"step {step_name!r} returned a context of type "
                    f"{type(new_context).__name__}, not {spec.context_model.__name__}")
            kind = type(outcome).__name__.lower()
        except LeaseLost:
            raise  # fenced off: the operation is someone else's now (run_once drops the work)
        except StepContractError as exc:  # our own words, no values in them
            log.warning("operation %s step %s attempt %d: %s", record.id, step_name, attempt, exc)
            outcome = Retry(error=str(exc))
        except Exception as exc:  # noqa: BLE001 - any step bug is retried per the policy
            # The exception's text may quote what the step was handling (tenant values, Secret
            # data): the journal, last_error and the WARNING name its type and where it was
            # raised; the text and traceback go to DEBUG only.
            where = raised_at(exc)
            log.warning("operation %s step %s attempt %d raised %s at %s", record.id, step_name,
                        attempt, type(exc).__name__, where)
            log.debug("operation %s step %s attempt %d traceback", record.id, step_name, attempt,
                      exc_info=True)
            outcome = Retry(error=f"{type(exc).__name__} raised at {where}")
        loaded.step_seconds = self._monotonic() - began
        self.observer.on_step(StepReport(
            operation=record.id, machine=spec.name, state=state.name, step=step_name,
            attempt=attempt, outcome=kind, seconds=loaded.step_seconds))
        with logcontext.bound(step=step_name, attempt=attempt):
            return self._outcome(loaded, step, env, attempt, failures, outcome)

    def _outcome(
        self, loaded: _Loaded, step: StepSpec, env: Envelope, attempt: int, failures: int,
        outcome: StepOutcome,
    ) -> _Continue | None:
        record, state = loaded.record, loaded.state
        now = self.clock.now()
        policy = step.retry
        deadline = (env.since + policy.timeout
                    if policy.timeout is not None and env.since is not None else None)
        if isinstance(outcome, Done):
            context = outcome.context or loaded.context
            following = state.step_after(step.name)
            if following is not None:
                nxt = Envelope(state=state.name, step=following.name, input=outcome.output,
                               error=env.error)
                return self._finish_and_go_on(
                    loaded, record.version,
                    outcome=JournalOutcome.DONE, state=state.name, status=OperationStatus.RUNNING,
                    context=dumped(context), bookkeeping=nxt.dump(), next_run_at=None,
                    message=f"{step.name} done", output=outcome.output,
                )
            return self._go(loaded, record.version, JournalOutcome.DONE, DONE_TRIGGER, context,
                            outcome.output, f"{step.name} done")
        if isinstance(outcome, Fail):
            return self._fail_step(loaded, record.version, step, env, outcome.reason)
        if isinstance(outcome, Wait):
            env.finished = attempt
            env.failures = failures
            env.wait_on = tuple(outcome.on)
            if deadline is not None and now >= deadline:
                return self._fail_step(
                    loaded, record.version, step, env,
                    f"step {step.name!r} timed out after {policy.timeout}: {outcome.reason}",
                )
            delay = outcome.recheck_after
            if outcome.on:
                delay = self.wait_backoff.delay(
                    delay, self._repeat(loaded.record, step.name, attempt, outcome.reason))
            when = now + delay
            if deadline is not None:
                when = min(when, deadline)
            self._finish(
                loaded, record.version,
                outcome=JournalOutcome.WAIT, state=state.name, status=OperationStatus.WAITING,
                context=dumped(outcome.context or loaded.context), bookkeeping=env.dump(),
                next_run_at=when,
                message=outcome.reason,
            )
            return None
        # Retry (explicit, or an exception)
        failures += 1
        env.wait_on = ()
        env.finished = attempt
        env.failures = failures
        if failures >= policy.max_attempts:
            return self._fail_step(
                loaded, record.version, step, env,
                f"step {step.name!r} failed {failures} times, last: {outcome.error}",
            )
        delay = outcome.backoff if outcome.backoff is not None else backoff(
            policy, failures, self.rng)
        when = now + delay
        if deadline is not None:
            if now >= deadline:
                return self._fail_step(
                    loaded, record.version, step, env,
                    f"step {step.name!r} timed out after {policy.timeout}: {outcome.error}",
                )
            when = min(when, deadline)
        self._finish(
            loaded, record.version,
            outcome=JournalOutcome.RETRY, state=state.name, status=OperationStatus.WAITING,
            context=dumped(loaded.context), bookkeeping=env.dump(), next_run_at=when,
            message=f"attempt {attempt} failed ({failures}/{policy.max_attempts}), "
                    f"retrying in {delay.total_seconds():.3f}s: {outcome.error}",
            last_error=outcome.error,
        )
        return None

    def _repeat(self, record: OperationRecord, step: str, attempt: int, reason: str) -> int:
        """How many identical waits in a row this one makes (1: the first): one more than the
        repeats of the previous journaled wait when the store will merge this one into it."""
        tail = self.store.journal(operation_id=record.id, newest_first=True, limit=2)
        if len(tail) == 2:
            started, previous = tail
            if (started.outcome is JournalOutcome.STARTED and started.step == step
                    and started.attempt == attempt
                    and previous.outcome is JournalOutcome.WAIT and previous.step == step
                    and previous.state == record.state and previous.message == reason):
                return previous.repeats + 1
        return 1

    def _go(
        self, loaded: _Loaded, version: int, journal: JournalOutcome, trigger: str,
        context: BaseModel, output: dict[str, Any] | None, message: str,
    ) -> _Continue | None:
        """Follow a state edge; go on at once unless the target is terminal."""
        spec, state = loaded.spec, loaded.state
        try:
            target_name = self.registry.next_state(spec, state.name, trigger)
        except InvalidTrigger as exc:
            self._poison(loaded.record, str(exc))
            return None
        target = spec.state(target_name)
        assert target is not None  # the spec validated its edges
        error = loaded.envelope.error
        if target.terminal is not None:
            self._finish(
                loaded, version,
                outcome=journal, state=target.name, status=target.terminal,
                context=dumped(context), bookkeeping=None, next_run_at=None,
                message=f"{message} → {target.name}", output=output,
                last_error=error if target.terminal != OperationStatus.SUCCEEDED else None,
            )
            return None
        nxt = Envelope(state=target.name, step=None, input=output, error=error)
        return self._finish_and_go_on(
            loaded, version,
            outcome=journal, state=target.name, status=OperationStatus.RUNNING,
            context=dumped(context), bookkeeping=nxt.dump(), next_run_at=None,
            message=f"{message} → {target.name}", output=output,
        )

    def _fail_step(
        self, loaded: _Loaded, version: int, step: StepSpec, env: Envelope, reason: str,
    ) -> _Continue | None:
        """The step failed for good: compensate where the state says so, else fail."""
        record, spec, state = loaded.record, loaded.spec, loaded.state
        log.warning("operation %s step %s failed: %s", record.id, step.name, reason)
        if state.on_failure is not None:
            try:
                target_name = self.registry.next_state(spec, state.name, FAIL_TRIGGER)
            except InvalidTrigger as exc:
                self._poison(record, str(exc))
                return None
            target = spec.state(target_name)
            assert target is not None
            message = f"{step.name} failed: {reason}; compensating → {target.name}"
            if target.terminal is not None:
                self._finish(
                    loaded, version,
                    outcome=JournalOutcome.FAILED, state=target.name, status=target.terminal,
                    context=dumped(loaded.context), bookkeeping=None, next_run_at=None,
                    message=message, last_error=reason,
                )
                return None
            return self._finish_and_go_on(
                loaded, version,
                outcome=JournalOutcome.FAILED, state=target.name, status=OperationStatus.RUNNING,
                context=dumped(loaded.context),
                bookkeeping=Envelope(state=target.name, error=reason).dump(),
                next_run_at=None,
                message=message, last_error=reason,
            )
        # No compensation: the operation fails at this step; an operator's retry re-runs it.
        failed = Envelope(state=state.name, step=step.name, input=env.input, error=env.error,
                          failed=True)
        self._finish(
            loaded, version,
            outcome=JournalOutcome.FAILED, state=state.name, status=OperationStatus.FAILED,
            context=dumped(loaded.context), bookkeeping=failed.dump(), next_run_at=None,
            message=f"{step.name} failed: {reason}", last_error=reason,
        )
        return None


class StepContractError(TypeError):
    """A step broke its contract (returned something that is not an outcome, or a context of
    the wrong type); the message names the step and the types only."""


def raised_at(exc: BaseException) -> str:
    """``module.py:line in function`` of the innermost frame of ``exc``'s traceback."""
    tb = exc.__traceback__
    if tb is None:
        return "an unknown place"
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    path = code.co_filename.replace("\\", "/")
    short = path[path.rindex("/bifrost/") + 1:] if "/bifrost/" in path else path.rsplit("/", 1)[-1]
    return f"{short}:{tb.tb_lineno} in {code.co_name}"

