"""The peers' work queue de-duplicates keys, so periodic re-checks never pile up."""

from __future__ import annotations

import threading
import time

from support.waiting import wait_for

from devcluster.peers._runtime import WorkQueue


def test_delayed_adds_of_one_key_collapse_into_the_earliest() -> None:
    seen: list[tuple[str, float]] = []
    done = threading.Event()

    def process(key: str) -> None:
        seen.append((key, time.monotonic()))
        if key == "last":
            done.set()

    q: WorkQueue[str] = WorkQueue("test", process)
    q.start()
    try:
        t0 = time.monotonic()
        for _ in range(100):
            q.add_after("k", 0.3)
        q.add_after("k", 0.1)  # an earlier wake-up supersedes the later ones
        q.add_after("mid", 0.2)  # due before the superseded 0.3, after the 0.1
        q.add_after("last", 0.5)
        wait_for(done.is_set, timeout=5, what="the last key")
        # "k" before "mid": it woke at 0.1, not 0.3 (keys due together are taken in due order,
        # so a late worker thread does not change this)
        assert [k for k, _ in seen] == ["k", "mid", "last"]
        assert seen[0][1] - t0 >= 0.1
        # done is set inside process(); the queue stops being busy once process() returns
        wait_for(q.idle, timeout=5, what="the queue idle after the last key")
        assert [k for k, _ in seen] == ["k", "mid", "last"]  # and nothing was processed again
    finally:
        q.stop()


def test_ready_keys_are_deduplicated_and_processed_one_at_a_time() -> None:
    gate = threading.Event()
    running = 0
    overlap = False
    processed: list[int] = []

    def process(key: int) -> None:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        gate.wait(5)
        processed.append(key)
        running -= 1

    q: WorkQueue[int] = WorkQueue("test", process)
    q.start()
    try:
        q.add(1)
        wait_for(lambda: not q.idle() and running == 1, what="key 1 in progress")
        for _ in range(10):
            q.add(2)
        gate.set()
        wait_for(lambda: processed == [1, 2] and q.idle(), what="both keys processed once")
        assert not overlap
    finally:
        q.stop()
