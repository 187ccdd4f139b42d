"""The probes' building blocks, judged by a manual clock: the database check (cached answers,
how long the database has been lost, a hung query answered by the timeout) and the heartbeats
(a stalled thread, a thread that died, one that ended with its term)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from support.waiting import wait_for

from bifrost.clock import ManualClock
from bifrost.controller.health import DatabaseCheck, Heartbeats, Verdict
from bifrost.store import StoreUnavailable


class Database:
    """A probe target that answers, fails or hangs as told; counts the questions."""

    def __init__(self) -> None:
        self.asked = 0
        self.error: Exception | None = None
        self.release = threading.Event()
        self.release.set()

    def query(self) -> None:
        self.asked += 1
        self.release.wait(10)
        if self.error is not None:
            raise self.error


def test_answers_are_cached_and_a_lost_database_is_timed_from_its_first_failure() -> None:
    clock, db = ManualClock(), Database()
    check = DatabaseCheck(db.query, clock, timeout=5, cache_for=timedelta(seconds=2))
    assert check.check().error is None
    clock.advance(1)
    check.check()
    assert db.asked == 1  # reused within cache_for

    db.error = StoreUnavailable("database unavailable: connection refused")
    clock.advance(2)
    first = check.check()
    assert first.error == "database unavailable: connection refused"
    assert check.lost_for(first) == timedelta(0)
    clock.advance(30)
    later = check.check()
    assert db.asked == 3
    assert check.lost_for(later) == timedelta(seconds=30)  # from the first failure, not the last

    db.error = None
    clock.advance(3)
    back = check.check()
    assert back.error is None and back.down_since is None
    assert check.lost_for(back) == timedelta(0)


def test_a_hung_query_fails_the_check_after_the_timeout_and_is_not_asked_twice() -> None:
    clock, db = ManualClock(), Database()
    check = DatabaseCheck(db.query, clock, timeout=0.2, cache_for=timedelta(seconds=2))
    db.release.clear()
    assert check.check().error == "no answer within 0.2s"
    clock.advance(5)
    assert check.check().error == "no answer within 0.2s"
    assert db.asked == 1  # the hung query is waited on again, not repeated
    db.release.set()

    clock.advance(5)
    # the late answer is recorded when it comes
    wait_for(lambda: (s := check.state) is not None and s.error is None, what="the late answer")


def test_heartbeats_report_stalled_and_dead_threads_and_forget_ended_ones() -> None:
    clock = ManualClock()
    beats = Heartbeats(clock)
    go_on, stop = threading.Event(), threading.Event()

    def worker() -> None:
        beats.track()
        while not stop.is_set():
            go_on.wait(5)
            go_on.clear()
            beats.beat()
        beats.forget()

    def dies() -> None:
        beats.track()  # and ends without forget(), as an exception escaping its loop would

    alive = threading.Thread(target=worker, name="worker-0")
    doomed = threading.Thread(target=dies, name="engine-0")
    alive.start()
    # worker-0 tracks itself on its own thread: the checks below must not run before it did
    wait_for(lambda: beats.check(timedelta(seconds=10))["tracked"] == 1, what="worker-0 tracked")
    doomed.start()
    doomed.join()
    beats.beat()  # an untracked thread's beat is ignored
    report = beats.check(timedelta(seconds=10))
    assert (report["dead"], report["stalled"], report["ok"]) == (["engine-0"], [], False)

    clock.advance(11)
    assert beats.check(timedelta(seconds=10))["stalled"] == ["worker-0"]
    go_on.set()

    wait_for(lambda: beats.check(timedelta(seconds=10))["stalled"] == [], what="a new beat")
    stop.set()
    go_on.set()
    alive.join()
    assert beats.check(timedelta(seconds=10))["tracked"] == 1  # only the dead one


@pytest.mark.parametrize(("checks", "ok", "failed"), [
    ({"a": {"ok": True}, "b": {"ok": True}}, True, []),
    ({"a": {"ok": True}, "database": {"ok": False, "error": "x"}}, False, ["database"]),
])
def test_verdict_names_the_failed_checks(checks: dict[str, dict[str, object]], ok: bool,
                                         failed: list[str]) -> None:
    verdict = Verdict(checks)
    assert (verdict.ok, verdict.failed, verdict.body()["failed"]) == (ok, failed, failed)
