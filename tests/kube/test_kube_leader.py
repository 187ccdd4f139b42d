"""Lease-based leader election against the devcluster's real Lease semantics."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from support.waiting import wait_for

from bifrost.clock import ManualClock
from bifrost.kube.client import KubeClient
from bifrost.kube.leader import LEASE_API_VERSION, LeaderElector
from bifrost.kube.lease_release import ReleaseWatch
from devcluster.faults import FaultInjector


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def started(self) -> None:
        self.calls.append("started")

    def stopped(self) -> None:
        self.calls.append("stopped")


def elector(
    kube: KubeClient, namespace: str, identity: str, clock: Any, rec: Recorder | None = None
) -> LeaderElector:
    rec = rec or Recorder()
    return LeaderElector(
        kube,
        lease_name="bifrost-leader",
        namespace=namespace,
        identity=identity,
        lease_duration=15,
        renew_deadline=10,
        retry_period=2,
        clock=clock,
        on_started_leading=rec.started,
        on_stopped_leading=rec.stopped,
    )


def lease(kube: KubeClient, namespace: str) -> dict[str, Any]:
    found = kube.get(LEASE_API_VERSION, "Lease", "bifrost-leader", namespace)
    assert found is not None
    return found["spec"]


def test_two_candidates_exactly_one_leader(kube: KubeClient, namespace: str) -> None:
    clock = ManualClock()
    ra, rb = Recorder(), Recorder()
    a, b = elector(kube, namespace, "a", clock, ra), elector(kube, namespace, "b", clock, rb)
    for _ in range(5):
        a.step()
        b.step()
        assert [a.is_leader, b.is_leader] == [True, False]
        clock.advance(2)
    spec = lease(kube, namespace)
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["renewTime"] == "2026-01-01T00:00:08.000000Z"
    assert ra.calls == ["started"] and rb.calls == []
    assert b.leader == "a"


def test_a_crashed_leader_is_replaced_after_the_lease_expires(
    kube: KubeClient, namespace: str
) -> None:
    clock = ManualClock()
    ra, rb = Recorder(), Recorder()
    a, b = elector(kube, namespace, "a", clock, ra), elector(kube, namespace, "b", clock, rb)
    assert a.step() is True
    assert b.step() is False  # b first observes a's record now
    # a crashes: no renewals, no release. Until the lease duration has passed on b's clock, b waits.
    clock.advance(14)
    assert b.step() is False
    clock.advance(2)
    assert b.step() is True
    spec = lease(kube, namespace)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert rb.calls == ["started"]
    # a comes back: it sees b holding the lease and steps down at once.
    assert a.step() is False
    assert ra.calls == ["started", "stopped"]
    assert not a.is_leader and b.is_leader


def test_renewals_keep_the_lease_even_past_its_duration(kube: KubeClient, namespace: str) -> None:
    clock = ManualClock()
    a, b = elector(kube, namespace, "a", clock), elector(kube, namespace, "b", clock)
    a.step()
    for _ in range(20):  # 40 s, well beyond the 15 s duration
        clock.advance(2)
        assert a.step() is True
        assert b.step() is False


def test_stop_releases_so_the_successor_need_not_wait(kube: KubeClient, namespace: str) -> None:
    clock = ManualClock()
    ra = Recorder()
    a, b = elector(kube, namespace, "a", clock, ra), elector(kube, namespace, "b", clock)
    a.step()
    b.step()
    a.stop()
    assert ra.calls == ["started", "stopped"]
    assert lease(kube, namespace)["holderIdentity"] == ""
    assert b.step() is True  # no clock advance needed


def test_a_lost_race_is_not_an_error(
    kube: KubeClient, namespace: str, faults: FaultInjector
) -> None:
    clock = ManualClock()
    a = elector(kube, namespace, "a", clock)
    a.step()
    a.release()
    b = elector(kube, namespace, "b", clock)
    faults.add_rule(verbs=["update"], resources=["leases"], error_rate=1.0, status=409, times=1)
    assert b.try_acquire_or_renew() is False
    assert b.try_acquire_or_renew() is True


def test_a_creation_race_is_lost_quietly(kube: KubeClient, namespace: str) -> None:
    clock = ManualClock()
    a, b = elector(kube, namespace, "a", clock), elector(kube, namespace, "b", clock)
    assert a.try_acquire_or_renew() is True
    b._client = _StaleGetClient(kube)  # b reads "no lease" but a created it meanwhile
    assert b.try_acquire_or_renew() is False


class _StaleGetClient:
    """A KubeClient whose get of the Lease misses once: a creation race, made deterministic."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._missed = False

    def get(self, *args: Any, **kwargs: Any) -> Any:
        if not self._missed:
            self._missed = True
            return None
        return self._kube.get(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)


def test_a_leader_that_cannot_renew_steps_down_by_the_renew_deadline(
    kube: KubeClient, namespace: str, faults: FaultInjector
) -> None:
    clock = ManualClock()
    ra = Recorder()
    a = elector(kube, namespace, "a", clock, ra)
    assert a.step() is True
    faults.add_rule(resources=["leases"], error_rate=1.0, status=503)
    clock.advance(2)
    assert a.step() is True  # one failed renewal is tolerated
    clock.advance(8)
    assert a.step() is False  # 10 s since the last renewal: step down
    assert ra.calls == ["started", "stopped"]


def test_is_leader_goes_false_when_the_lease_would_have_expired(
    kube: KubeClient, namespace: str
) -> None:
    clock = ManualClock()
    a = elector(kube, namespace, "a", clock)
    a.step()
    clock.advance(16)
    assert a.is_leader is False


def test_invalid_timings_are_refused(kube: KubeClient) -> None:
    with pytest.raises(ValueError):
        LeaderElector(kube, lease_name="x", namespace="default", lease_duration=5, renew_deadline=5)


def test_threads_elect_one_leader_and_fail_over_after_a_crash(
    kube: KubeClient, namespace: str
) -> None:
    def make(identity: str) -> LeaderElector:
        return LeaderElector(
            kube,
            lease_name="bifrost-leader",
            namespace=namespace,
            identity=identity,
            lease_duration=1.0,
            renew_deadline=0.6,
            retry_period=0.1,
        )

    a, b = make("a"), make("b")
    both_led = threading.Event()
    seen: set[str] = set()

    def watch_exclusive() -> bool:
        leaders = [e.identity for e in (a, b) if e.is_leader]
        if len(leaders) > 1:
            both_led.set()
        seen.update(leaders)
        return len(leaders) == 1

    a.start()
    b.start()
    try:
        wait_for(watch_exclusive, timeout=15, what="one leader")
        first = a if a.is_leader else b
        second = b if first is a else a
        for _ in range(10):  # stays exclusive while renewing
            assert watch_exclusive()
        first.stop(release=False)  # crash: the lease is left held
        wait_for(lambda: second.is_leader, timeout=15, what="failover")
        assert lease(kube, namespace)["holderIdentity"] == second.identity
        assert not both_led.is_set()
    finally:
        a.stop()
        b.stop()


def test_our_lease_is_readable_by_the_official_client(kube: KubeClient, namespace: str) -> None:
    a = elector(kube, namespace, "a", ManualClock())
    a.step()
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    lock = LeaseLock("bifrost-leader", namespace, "someone")
    lock.api_instance = _coordination_api(kube)
    ok, record = lock.get("bifrost-leader", namespace)
    assert ok is True
    assert record.holder_identity == "a"
    assert int(record.lease_duration) == 15


def _coordination_api(kube: KubeClient) -> Any:
    from kubernetes import client as k8s

    return k8s.CoordinationV1Api(kube._api_client)


def test_renew_time_moves_with_the_clock(kube: KubeClient, namespace: str) -> None:
    clock = ManualClock()
    a = elector(kube, namespace, "a", clock)
    a.step()
    acquired = lease(kube, namespace)["acquireTime"]
    clock.advance(timedelta(seconds=3, microseconds=250))
    a.step()
    spec = lease(kube, namespace)
    assert spec["acquireTime"] == acquired
    assert spec["renewTime"] == "2026-01-01T00:00:03.000250Z"


def test_a_lease_failing_the_same_way_is_one_warning_until_it_answers_again(
    kube: KubeClient, namespace: str, faults: FaultInjector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bifrost.kube.leader")
    clock = ManualClock()
    a = elector(kube, namespace, "a", clock)
    rule = faults.add_rule(resources=["leases"], error_rate=1.0, status=403)
    for _ in range(4):
        assert a.step() is False
        clock.advance(2)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "lease " in r.getMessage()]
    assert [level for level, _ in lines] == [logging.WARNING] + [logging.DEBUG] * 3, lines
    assert lines[0][1].startswith(f"lease {namespace}/bifrost-leader: ")
    assert lines[0][1].endswith("(retrying every 2s)")
    faults.remove_rule(rule)
    caplog.clear()
    assert a.step() is True
    assert [(r.levelno, r.getMessage()) for r in caplog.records
            if r.getMessage().startswith("lease ")] == [
        (logging.INFO, f"lease {namespace}/bifrost-leader answers again")]


def _slow_poller(kube: KubeClient, namespace: str, identity: str) -> LeaderElector:
    """A candidate that polls every 20 s: only the release watch can make it lead sooner."""
    return LeaderElector(kube, lease_name="bifrost-leader", namespace=namespace,
                         identity=identity, lease_duration=60, renew_deadline=40,
                         retry_period=20)


def test_a_standby_takes_over_as_soon_as_the_leader_releases_the_lease(
    kube: KubeClient, namespace: str
) -> None:
    a, b = _slow_poller(kube, namespace, "a"), _slow_poller(kube, namespace, "b")
    a.start()
    try:
        wait_for(lambda: a.is_leader, what="a leads")
        b.start()
        wait_for(lambda: b.leader == "a", what="b has seen a lead")
        a.stop()  # a rollout: a releases the Lease
        # b's next poll is 20 s away; the watch wakes it at once
        wait_for(lambda: b.is_leader, timeout=10, what="b leading after a released the Lease")
        assert lease(kube, namespace)["holderIdentity"] == "b"
    finally:
        a.stop()
        b.stop(timeout=5)


def test_without_watch_on_the_lease_a_standby_polls_and_says_so_once(
    kube: KubeClient, namespace: str, faults: FaultInjector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bifrost.kube.lease_release")
    faults.add_rule(verbs=["watch"], resources=["leases"], error_rate=1.0, status=403)

    def poller(identity: str) -> LeaderElector:
        return LeaderElector(kube, lease_name="bifrost-leader", namespace=namespace,
                             identity=identity, lease_duration=3, renew_deadline=2,
                             retry_period=0.2)

    a, b = poller("a"), poller("b")
    a.start()
    try:
        wait_for(lambda: a.is_leader, what="a leads")
        b.start()
        wait_for(lambda: len([r for r in caplog.records
                              if r.getMessage().startswith("watching lease")]) >= 3,
                 what="three polls without the watch")
        a.stop()
        wait_for(lambda: b.is_leader, timeout=10, what="b leading by polling")
        lines = [r for r in caplog.records if r.getMessage().startswith("watching lease")]
        assert [r.levelno for r in lines[:3]] == [logging.WARNING, logging.DEBUG,
                                                  logging.DEBUG]
        assert "403" in lines[0].getMessage()
        assert lines[0].getMessage().endswith("instead")
    finally:
        a.stop()
        b.stop(timeout=5)


def test_a_watch_the_server_ends_at_once_is_no_release_and_the_wait_is_slept_out(
    kube: KubeClient, namespace: str, faults: FaultInjector
) -> None:
    a = elector(kube, namespace, "a", ManualClock())
    assert a.step() is True
    found = kube.get(LEASE_API_VERSION, "Lease", "bifrost-leader", namespace)
    assert found is not None
    faults.add_rule(resources=["leases"], expire_watch=True)  # every watch: 410 at once
    waiting = ReleaseWatch(kube, api_version=LEASE_API_VERSION, namespace=namespace,
                           name="bifrost-leader")
    began = time.monotonic()
    assert waiting.wait(0.5, resource_version=found["metadata"]["resourceVersion"]) is False
    # not a tight loop of attempts: the standby sleeps what is left of its retry period
    assert time.monotonic() - began >= 0.5
    assert faults.snapshot()[0]["fired"] >= 1


def test_interrupting_a_release_watch_ends_the_wait(kube: KubeClient, namespace: str) -> None:
    a = elector(kube, namespace, "a", ManualClock())
    assert a.step() is True
    found = kube.get(LEASE_API_VERSION, "Lease", "bifrost-leader", namespace)
    assert found is not None
    waiting = ReleaseWatch(kube, api_version=LEASE_API_VERSION, namespace=namespace,
                           name="bifrost-leader")
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(
        waiting.wait(60, resource_version=found["metadata"]["resourceVersion"])))
    thread.start()
    wait_for(lambda: waiting._stream is not None, what="the watch open")
    waiting.interrupt()
    thread.join(timeout=10)
    assert not thread.is_alive() and result == [False]
