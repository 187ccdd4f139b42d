"""The crash test's child: runs the demo machine with side-effecting steps until nothing is due,
and SIGKILLs itself at a chosen point (``--crash KIND:N`` or ``--crash KIND@STEP``):

- ``before_begin`` / ``after_begin`` — around the write-ahead commit of a step: begin_step, or
  the merged commit ``finish_step(begin_next=(STEP, n))`` that finishes the previous step and
  enters this one;
- ``before_finish`` / ``after_finish`` — around the outcome commit (finish_step, merged or not);
- ``after_effect`` — just after a side effect was applied, before the step returns;
- ``after_claim`` — just after a claim that returned work;
- ``before_commit`` / ``after_commit`` — around any engine commit (begin or finish);
- ``any`` — any of the above.

``KIND:N`` kills at the N-th such event of this run; ``KIND@STEP`` at the first one that
concerns step STEP. Just before dying the child prints ``killed KIND@STEP`` (plus ``merged`` when
the point is around a merged finish+begin commit) so the parent can tell which commit it hit.

Side effects are rows in a separate SQLite file (``effects``), one per idempotency key, applied
only if absent (observe first, act only if needed), each in its own transaction — outside the
engine's. The table has no unique constraint on purpose: a double application would show as two
rows for one key.

Time: the system clock shifted by ``--clock-offset`` seconds, which the parent raises past the
lease on every restart, so a restarted child reclaims at once without anyone sleeping.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from support.machines.demo import DEMO_STEPS, demo_spec

from bifrost.clock import SystemClock
from bifrost.engine import Done, Runner, StepContext
from bifrost.machines import MachineRegistry, RetryPolicy
from bifrost.store import open_store

CRASH_POLICY = RetryPolicy(max_attempts=1000, initial_backoff=timedelta(seconds=1))
LEASE = timedelta(seconds=30)


class OffsetClock:
    def __init__(self, offset: float) -> None:
        self.offset = timedelta(seconds=offset)
        self._system = SystemClock()

    def now(self) -> datetime:
        return self._system.now() + self.offset


class CrashPlan:
    def __init__(self, spec: str | None) -> None:
        self.kind, self.n, self.step = "", 0, ""
        if spec and "@" in spec:
            self.kind, self.step = spec.split("@")
        elif spec:
            self.kind, self.n = spec.split(":")[0], int(spec.split(":")[1])
        self.count = 0

    def hit(self, kind: str, step: str | None = None, *, merged: bool = False) -> None:
        if self.kind != "any" and kind != self.kind and not (
            self.kind in ("before_commit", "after_commit")
            and kind.split("_")[0] == self.kind.split("_")[0]
            and kind.split("_")[1] in ("begin", "finish")
        ):
            return
        if self.step:
            if step != self.step:
                return
        else:
            self.count += 1
            if self.count != self.n:
                return
        print(f"killed {kind}@{step}{' merged' if merged else ''}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


class CrashingStore:
    """The real store, with kill points around the engine's commits (fault injection only)."""

    def __init__(self, store: Any, plan: CrashPlan) -> None:
        self._store = store
        self._plan = plan
        self._in_flight: dict[int, str] = {}  # operation id -> step begun by this process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def begin_step(self, operation_id: int, **kwargs: Any) -> Any:
        step = kwargs["step"]
        self._plan.hit("before_begin", step)
        result = self._store.begin_step(operation_id, **kwargs)
        self._in_flight[operation_id] = step
        self._plan.hit("after_begin", step)
        return result

    def finish_step(self, operation_id: int, **kwargs: Any) -> Any:
        step = self._in_flight.pop(operation_id, None)
        begin_next = kwargs.get("begin_next")
        merged = begin_next is not None
        self._plan.hit("before_finish", step, merged=merged)
        if begin_next is not None:
            self._plan.hit("before_begin", begin_next[0], merged=True)
        result = self._store.finish_step(operation_id, **kwargs)
        if begin_next is not None:
            self._in_flight[operation_id] = begin_next[0]
        self._plan.hit("after_finish", step, merged=merged)
        if begin_next is not None:
            self._plan.hit("after_begin", begin_next[0], merged=True)
        return result

    def claim_due(self, *args: Any, **kwargs: Any) -> Any:
        claimed = self._store.claim_due(*args, **kwargs)
        if claimed:
            self._plan.hit("after_claim")
        return claimed


class EffectStep:
    def __init__(self, name: str, effects_path: str, plan: CrashPlan) -> None:
        self.name = name
        self.effects_path = effects_path
        self.plan = plan

    def run(self, ctx: StepContext[Any], input: Any) -> Done:
        key = ctx.idempotency_key
        conn = sqlite3.connect(self.effects_path, timeout=30, isolation_level=None)
        try:
            present = conn.execute("SELECT count(*) FROM effects WHERE key = ?", (key,)).fetchone()
            if present[0] == 0:
                conn.execute(
                    "INSERT INTO effects (key, operation_id, step, attempt) VALUES (?, ?, ?, ?)",
                    (key, ctx.operation.id, self.name, ctx.attempt),
                )
                self.plan.hit("after_effect", self.name)
        finally:
            conn.close()
        return Done(output={"key": key})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--effects", required=True)
    parser.add_argument("--crash", default=None)
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--owner", default="child")
    args = parser.parse_args()

    plan = CrashPlan(args.crash)
    store = open_store(args.url)
    steps = {name: EffectStep(name, args.effects, plan) for name in (*DEMO_STEPS, "undo")}
    runner = Runner(
        CrashingStore(store, plan),
        MachineRegistry([demo_spec(CRASH_POLICY)]),
        steps,
        clock=OffsetClock(args.clock_offset),
        owner=args.owner,
        lease_for=LEASE,
    )
    runner.run_until_idle(limit=10)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
