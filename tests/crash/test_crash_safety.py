"""Crash safety: the demo machine (six side-effecting steps) runs in a child process that is
SIGKILLed at every step boundary (before and after every engine commit, after every side
effect), just before and just after every merged commit (a step's outcome together with the next
step's write-ahead), and at 50+ seeded random points, then restarted. Every operation completes,
no side effect is applied twice, and every journal is gap-free with strictly increasing
sequences.

Restarted children see a clock moved past the dead child's lease (no sleeping); the parent
only waits for child processes to exit.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.machines.demo import DEMO_STEPS, DemoContext, demo_spec

from bifrost.clock import SystemClock
from bifrost.engine import idempotency_key, start_operation
from bifrost.records import JournalOutcome, JournalRecord, OperationStatus
from bifrost.store import open_store

HERE = Path(__file__).resolve().parent
LEASE_S = 30
pytestmark = pytest.mark.slow


@dataclass
class Harness:
    url: str
    effects: Path
    offset: float = 0.0
    kills: list[str] = field(default_factory=list)
    kill_lines: list[str] = field(default_factory=list)  # what each killed child said last
    runs: int = 0

    def run_child(self, crash: str | None) -> bool:
        """Run one child; True when it was killed at its crash point."""
        self.runs += 1
        cmd = [
            sys.executable,
            "-m",
            "crash_child",
            "--url",
            self.url,
            "--effects",
            str(self.effects),
            "--clock-offset",
            str(self.offset),
            "--owner",
            f"child-{self.runs}",
        ]
        if crash:
            cmd += ["--crash", crash]
        # The child imports the demo machine from tests/support, like the tests do.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p)}
        proc = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True,
                              timeout=60)
        # Every restart happens after the dead child's lease would have expired.
        self.offset += LEASE_S + 1
        if proc.returncode == -9:
            self.kills.append(crash or "")
            said = [line for line in proc.stdout.splitlines() if line.startswith("killed ")]
            self.kill_lines.append(said[-1] if said else "")
            return True
        assert proc.returncode == 0, proc.stderr[-3000:]
        return False


def _setup(url: str, tmp_path: Path, n_ops: int) -> tuple[Harness, list[int]]:
    effects = tmp_path / "effects.db"
    with sqlite3.connect(effects) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS effects (id INTEGER PRIMARY KEY, key TEXT, "
            "operation_id INTEGER, step TEXT, attempt INTEGER)"
        )
    harness = Harness(url, effects)
    return harness, _add_ops(harness, 0, n_ops)


def _add_ops(harness: Harness, start: int, n: int) -> list[int]:
    store = open_store(harness.url)
    try:
        spec = demo_spec()
        ids = []
        for i in range(start, start + n):
            op = start_operation(
                store,
                spec,
                gateway_uid=f"uid-{i}",
                namespace="ns",
                name=f"gw-{i}",
                context=DemoContext(label=str(i)),
                clock=SystemClock(),
                actor="test",
            )
            ids.append(op.id)
        return ids
    finally:
        store.close()


def _verify(harness: Harness, op_ids: list[int]) -> None:
    store = open_store(harness.url)
    try:
        expected_keys = {}
        for op_id in op_ids:
            op = store.get_operation(op_id)
            assert (op.status, op.state) == (OperationStatus.SUCCEEDED, "done"), op
            for step in DEMO_STEPS:
                expected_keys[idempotency_key(op.gateway_uid, op.id, step)] = (op.id, step)
            rows = sorted(store.journal(operation_id=op_id, limit=100_000), key=lambda r: r.id)
            assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))
            done = Counter(r.step for r in rows if r.outcome is JournalOutcome.DONE)
            assert done == Counter(DEMO_STEPS), done  # each step finished exactly once
            for step in DEMO_STEPS:
                attempts = [
                    r.attempt for r in rows
                    if r.outcome is JournalOutcome.STARTED and r.step == step
                ]
                assert attempts == list(range(1, len(attempts) + 1)), (step, attempts)
    finally:
        store.close()
    with sqlite3.connect(harness.effects) as conn:
        per_key = Counter(k for (k,) in conn.execute("SELECT key FROM effects"))
    assert set(per_key) == set(expected_keys)
    doubled = {k: n for k, n in per_key.items() if n > 1}
    assert not doubled, f"side effects applied twice: {doubled}"


def _run_to_completion(harness: Harness, crash: str | None, max_runs: int = 200) -> None:
    for _ in range(max_runs):
        if not harness.run_child(crash):
            return
    raise AssertionError(f"no completion after {max_runs} runs with crash point {crash}")


BOUNDARIES = ("before_begin", "after_begin", "after_effect", "before_finish", "after_finish")


def test_killed_at_every_step_boundary(store_url: str, tmp_path: Path) -> None:
    """One child run per boundary, in order: each dies at its boundary, the next one resumes
    and dies at the following boundary, so every boundary of every step is hit once."""
    harness, ops = _setup(store_url, tmp_path, n_ops=1)
    points = [f"{point}@{step}" for step in DEMO_STEPS for point in BOUNDARIES]
    for point in points:
        assert harness.run_child(point), f"child was not killed at {point}"
    _run_to_completion(harness, None)
    assert harness.kills == points
    _verify(harness, ops)
    store = open_store(store_url)
    try:
        rows = store.journal(operation_id=ops[0])
    finally:
        store.close()
    # The outcome of every step but the last is committed together with the next step's
    # write-ahead (attempt 1): the before_finish / after_finish kills of those steps hit that
    # merged commit.
    for point, said in zip(points, harness.kill_lines, strict=True):
        kind, step = point.split("@")
        merged = kind in ("before_finish", "after_finish") and step != DEMO_STEPS[-1]
        assert said == f"killed {point}{' merged' if merged else ''}", (point, said)
    # reserve was started 4 times: killed after its write-ahead, after its side effect, before
    # its finish, then it finished (the before_begin kill happens before any write). Every
    # later step once more: its attempt 1 was entered by the previous step's merged commit,
    # whose child was killed right after it (after_finish), so it re-ran as attempt 2 once the
    # lease had expired — then the same four kills as reserve.
    started = Counter(r.step for r in rows if r.outcome is JournalOutcome.STARTED)
    assert started == {step: 4 if step == DEMO_STEPS[0] else 5 for step in DEMO_STEPS}
    _assert_merged_entries(rows)


def _assert_merged_entries(rows: list[JournalRecord]) -> None:
    """Each step after the first was entered (attempt 1) by the commit that finished the step
    before it: consecutive journal rows of the same actor."""
    by_sequence = sorted(rows, key=lambda r: r.sequence)
    for prev, nxt in zip(DEMO_STEPS, DEMO_STEPS[1:], strict=False):
        [entered] = [r for r in by_sequence
                     if r.outcome is JournalOutcome.STARTED and r.step == nxt and r.attempt == 1]
        before = by_sequence[by_sequence.index(entered) - 1]
        assert (before.outcome, before.step, before.actor) == (
            JournalOutcome.DONE, prev, entered.actor)
        assert before.finished_at == entered.started_at


def test_killed_just_before_and_after_every_merged_commit(store_url: str, tmp_path: Path) -> None:
    """The merged commit (finish X + enter Y) is killed from Y's side: before it (X's outcome is
    lost, X re-runs, its effect is found in place) and right after it (Y was entered but never
    ran: it re-runs as attempt 2 after the lease expired)."""
    harness, ops = _setup(store_url, tmp_path, n_ops=1)
    points = [f"{point}@{step}" for step in DEMO_STEPS[1:] for point in ("before_begin",
                                                                        "after_begin")]
    for point in points:
        assert harness.run_child(point), f"child was not killed at {point}"
    _run_to_completion(harness, None)
    assert harness.kills == points
    assert harness.kill_lines == [f"killed {point} merged" for point in points]
    _verify(harness, ops)
    store = open_store(store_url)
    try:
        rows = store.journal(operation_id=ops[0])
    finally:
        store.close()
    started = {
        step: [
            (r.attempt, r.actor)
            for r in rows
            if r.outcome is JournalOutcome.STARTED and r.step == step
        ]
        for step in DEMO_STEPS
    }
    # reserve: attempt 1 died before its merged commit, attempt 2 made it. Each middle step:
    # attempt 1 entered by a merged commit and killed right after it, attempt 2 died before its
    # own merged commit, attempt 3 made it. release: entered, killed, finished as attempt 2.
    assert [a for a, _ in started["reserve"]] == [1, 2]
    for step in DEMO_STEPS[1:-1]:
        assert [a for a, _ in started[step]] == [1, 2, 3], (step, started[step])
    assert [a for a, _ in started["release"]] == [1, 2]
    # the re-run after the kill right after the merged commit is another child's attempt 2
    for step in DEMO_STEPS[1:]:
        (_, entered_by), (_, rerun_by) = started[step][:2]
        assert entered_by != rerun_by
    _assert_merged_entries(rows)


def test_killed_at_random_points(store_url: str, tmp_path: Path) -> None:
    rng = random.Random(20261125)
    harness, ops = _setup(store_url, tmp_path, n_ops=3)
    while len(harness.kills) < 50:
        # the n-th event of the run: before/after a claim, a write-ahead, a side effect, a finish
        crash = f"any:{rng.randint(1, 30)}"
        if not harness.run_child(crash):
            ops += _add_ops(harness, len(ops), 3)  # all done: give it more to crash in
    _run_to_completion(harness, None)
    assert len(harness.kills) >= 50
    _verify(harness, ops)
    print(f"{len(harness.kills)} kills in {harness.runs} runs, {len(ops)} operations")
