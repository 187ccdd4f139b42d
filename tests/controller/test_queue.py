"""The work queue: dedup, no concurrent work on one key, delayed and rate-limited requeue on an
injected clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from bifrost.controller.queue import RateLimiter, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> WorkQueue[str]:
    return WorkQueue(rate_limiter=RateLimiter(base=1.0, cap=8.0), monotonic=clock)


def test_duplicates_collapse_and_order_is_fifo(queue: WorkQueue[str]) -> None:
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(timeout=0) for _ in range(3)] == ["a", "b", "c"]
    assert queue.get(timeout=0) is None


def test_key_in_flight_is_not_handed_out_twice_and_requeued_on_done(
    queue: WorkQueue[str],
) -> None:
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add("a")  # changed while a worker processes it
    queue.add("a")
    assert queue.get(timeout=0) is None  # not handed to a second worker
    assert queue.pending() == {"a"}
    queue.done("a")
    assert queue.get(timeout=0) == "a"  # exactly once more
    queue.done("a")
    assert queue.get(timeout=0) is None


def test_add_after_waits_for_the_clock(queue: WorkQueue[str], clock: FakeClock) -> None:
    queue.add_after("a", 5.0)
    queue.add_after("a", 10.0)  # a later request does not postpone the earlier one
    assert queue.get(timeout=0) is None
    clock.now += 4.9
    assert queue.get(timeout=0) is None
    clock.now += 0.1
    assert queue.get(timeout=0) == "a"
    queue.done("a")
    clock.now += 100
    assert queue.get(timeout=0) is None  # the superseded 10 s entry does not fire again


def test_immediate_add_supersedes_a_delayed_one(queue: WorkQueue[str], clock: FakeClock) -> None:
    queue.add_after("a", 5.0)
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.done("a")
    clock.now += 10
    assert queue.get(timeout=0) is None


def test_rate_limited_requeue_backs_off_exponentially_until_forgotten(
    queue: WorkQueue[str], clock: FakeClock
) -> None:
    delays = [queue.add_rate_limited("a") for _ in range(5)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]  # capped
    assert queue.failures("a") == 5
    assert queue.get(timeout=0) is None
    clock.now += 1.0
    assert queue.get(timeout=0) == "a"  # the earliest request wins
    queue.done("a")
    queue.forget("a")
    assert queue.failures("a") == 0
    assert queue.add_rate_limited("a") == 1.0
    assert queue.add_rate_limited("b") == 1.0  # per key


def test_shutdown_wakes_blocked_workers() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get(timeout=30)))
    worker.start()
    queue.shutdown()
    worker.join(5)
    assert not worker.is_alive()
    assert got == [None]
    queue.add("a")
    assert queue.get(timeout=0) is None


def test_blocking_get_returns_a_key_added_from_another_thread() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get(timeout=30)))
    worker.start()
    queue.add("x")
    worker.join(5)
    assert got == ["x"]


def test_many_threads_each_key_processed_once_at_a_time() -> None:
    queue: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    lock = threading.Lock()
    overlaps: list[int] = []
    processed: list[int] = []

    def work() -> None:
        while (key := queue.get(timeout=0.5)) is not None:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
            with lock:
                active.discard(key)
                processed.append(key)
            queue.done(key)

    for i in range(200):
        queue.add(i % 10)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        queue.add(i % 10)
    for t in threads:
        t.join(10)
    assert not overlaps
    assert set(processed) == set(range(10))
    assert len(processed) <= 40  # dedup: far fewer than the 400 adds
