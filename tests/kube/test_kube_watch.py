"""Watcher against the devcluster: every change is seen eventually, despite drops, 410s and errors.

Each test runs a Watcher on a thread that folds events into a view ``{(ns, name): object}``, makes
changes (while injecting faults), then polls until the view equals what the server lists. The
request log bounds how hard the watcher hit the server, so busy loops fail the tests.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import configmap
from support.waiting import wait_for

from bifrost.kube.client import KubeClient
from bifrost.kube.watch import Backoff, Watcher, WatchEvent
from devcluster.faults import FaultInjector
from devcluster.server import DevCluster

FAST = Backoff(base=0.05, cap=0.2)


class Consumer:
    """Folds watch events into a view, as a controller's cache would."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.view: dict[tuple[str, str], str] = {}  # key -> data["v"]
        self.events: list[WatchEvent] = []
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for event in self.watcher:
                with self._lock:
                    self.events.append(event)
                    if event.type == "DELETED":
                        self.view.pop(event.key, None)
                    else:
                        self.view[event.key] = (event.object.get("data") or {}).get("v", "")
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def snapshot(self) -> dict[tuple[str, str], str]:
        with self._lock:
            return dict(self.view)

    def types(self) -> list[str]:
        with self._lock:
            return [e.type for e in self.events]


@contextmanager
def consuming(watcher: Watcher) -> Iterator[Consumer]:
    consumer = Consumer(watcher)
    consumer.thread.start()
    try:
        yield consumer
    finally:
        watcher.stop()
        consumer.thread.join(5)
        assert not consumer.thread.is_alive(), "the watcher did not stop"
    assert consumer.error is None, consumer.error


_own_lists = [0]  # lists made by the tests themselves, to tell them from the watcher's


def server_view(kube: KubeClient, namespace: str) -> dict[tuple[str, str], str]:
    _own_lists[0] += 1
    items, _ = kube.list("v1", "ConfigMap", namespace)
    return {(namespace, i["metadata"]["name"]): (i.get("data") or {}).get("v", "") for i in items}


def converged(kube: KubeClient, consumer: Consumer, namespace: str) -> bool:
    return consumer.snapshot() == server_view(kube, namespace)


def churn(kube: KubeClient, namespace: str, n: int, *, seed: int = 0, every: Any = None) -> None:
    """Create n objects, update half of them, delete a third; call ``every(i)`` between writes."""
    rng = random.Random(seed)
    for i in range(n):
        kube.create(configmap(f"cm-{i}", namespace, v="0"))
        if every:
            every(i)
    for i in rng.sample(range(n), n // 2):
        kube.patch("v1", "ConfigMap", f"cm-{i}", namespace, {"data": {"v": f"u{i}"}})
        if every:
            every(i)
    for i in rng.sample(range(n), n // 3):
        kube.delete("v1", "ConfigMap", f"cm-{i}", namespace)
        if every:
            every(i)


def watcher_lists(cluster: DevCluster) -> int:
    """List requests for configmaps the watcher made since the log was last reset."""
    return cluster.request_log.count(verbs=["list"], resources=["configmaps"]) - _own_lists[0]


@pytest.fixture(autouse=True)
def _count_own_lists() -> None:
    _own_lists[0] = 0


def watcher(kube: KubeClient, namespace: str, **kwargs: Any) -> Watcher:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("rng", random.Random(5))
    return Watcher(kube, "v1", "ConfigMap", namespace, **kwargs)


def test_lists_then_streams_every_change_in_order(kube: KubeClient, namespace: str) -> None:
    kube.create(configmap("before", namespace, v="0"))
    with consuming(watcher(kube, namespace)) as consumer:
        wait_for(lambda: consumer.types() == ["ADDED"], what="initial ADDED")
        kube.create(configmap("after", namespace, v="1"))
        kube.patch("v1", "ConfigMap", "after", namespace, {"data": {"v": "2"}})
        kube.delete("v1", "ConfigMap", "before", namespace)
        wait_for(
            lambda: consumer.types() == ["ADDED", "ADDED", "MODIFIED", "DELETED"],
            what="live events",
        )
        assert consumer.snapshot() == {(namespace, "after"): "2"}
        assert not any(e.synthetic for e in consumer.events)


def test_dropped_streams_resume_without_losing_events_or_relisting(
    kube: KubeClient, namespace: str, faults: FaultInjector, cluster: DevCluster
) -> None:
    faults.add_rule(verbs=["watch"], resources=["configmaps"], drop_watch_after=3)
    w = watcher(kube, namespace)
    with consuming(w) as consumer:
        wait_for(lambda: w.stats["watches"] >= 1, what="first watch")
        churn(kube, namespace, 30)
        wait_for(lambda: converged(kube, consumer, namespace), what="convergence")
    writes = 30 + 15 + 10
    assert w.stats["lists"] == watcher_lists(cluster) == 1 and w.stats["relists"] == 0
    watches = cluster.request_log.count(verbs=["watch"], resources=["configmaps"])
    # Each stream carries up to 3 events (plus any bookmark): about writes/3 resumes, not a spin.
    assert writes // 3 <= watches <= writes // 2 + 5, watches


def test_forced_410_relists_and_emits_what_changed_meanwhile(
    kube: KubeClient, namespace: str, faults: FaultInjector, cluster: DevCluster
) -> None:
    for i in range(5):
        kube.create(configmap(f"cm-{i}", namespace, v="0"))
    w = watcher(kube, namespace)
    with consuming(w) as consumer:
        wait_for(lambda: converged(kube, consumer, namespace), what="initial sync")
        # Cut the watcher off, change things while it cannot see, and forget the history.
        blocked = faults.add_rule(verbs=["watch"], resources=["configmaps"], error_rate=1.0)
        cluster.drop_watches()
        wait_for(lambda: w.stats["errors"] >= 1, what="watch refused")
        kube.delete("v1", "ConfigMap", "cm-0", namespace)
        kube.patch("v1", "ConfigMap", "cm-1", namespace, {"data": {"v": "changed"}})
        kube.create(configmap("cm-new", namespace, v="new"))
        kube.delete("v1", "ConfigMap", "cm-2", namespace)
        kube.create(configmap("cm-2", namespace, v="reborn"))  # same name, new uid
        cluster.compact()
        faults.remove_rule(blocked)
        wait_for(lambda: converged(kube, consumer, namespace), what="convergence after 410")
        assert w.stats["relists"] >= 1
        synthetic = [(e.type, e.key[1]) for e in consumer.events if e.synthetic]
        assert ("DELETED", "cm-0") in synthetic
        assert ("MODIFIED", "cm-1") in synthetic
        assert ("ADDED", "cm-new") in synthetic
        assert ("DELETED", "cm-2") in synthetic and ("ADDED", "cm-2") in synthetic
        # The relist happened once (plus the initial list), not in a loop.
        assert watcher_lists(cluster) == w.stats["lists"] == 2


def test_writes_while_compacting_and_dropping_are_all_seen(
    kube: KubeClient, namespace: str, cluster: DevCluster
) -> None:
    w = watcher(kube, namespace)

    def disrupt(i: int) -> None:
        if i % 7 == 3:
            cluster.compact()
            cluster.drop_watches()

    with consuming(w) as consumer:
        wait_for(lambda: w.stats["watches"] >= 1, what="first watch")
        churn(kube, namespace, 40, seed=1, every=disrupt)
        wait_for(lambda: converged(kube, consumer, namespace), what="convergence")
    lists = watcher_lists(cluster)
    watches = cluster.request_log.count(verbs=["watch"], resources=["configmaps"])
    disruptions = sum(1 for i in range(40 + 20 + 13) if i % 7 == 3) + 5
    assert lists <= disruptions + 1, lists
    assert watches <= 2 * disruptions + 2, watches


def test_injected_expired_watch_is_answered_by_a_relist(
    kube: KubeClient, namespace: str, faults: FaultInjector, cluster: DevCluster
) -> None:
    w = watcher(kube, namespace)
    with consuming(w) as consumer:
        wait_for(lambda: w.stats["watches"] >= 1, what="first watch")
        faults.add_rule(verbs=["watch"], resources=["configmaps"], expire_watch=True, times=2)
        cluster.drop_watches()
        kube.create(configmap("a", namespace, v="1"))
        wait_for(lambda: converged(kube, consumer, namespace), what="convergence")
        wait_for(lambda: w.stats["relists"] == 2, what="two relists")
        kube.create(configmap("b", namespace, v="2"))
        wait_for(lambda: converged(kube, consumer, namespace), what="convergence")
    assert w.stats["lists"] == 3


def test_a_server_that_refuses_every_watch_is_not_hammered(
    kube: KubeClient, namespace: str, faults: FaultInjector, cluster: DevCluster
) -> None:
    w = watcher(kube, namespace, backoff=Backoff(base=0.1, cap=0.4))
    with consuming(w) as consumer:
        wait_for(lambda: w.stats["watches"] >= 1, what="first watch")
        faults.add_rule(verbs=["watch"], resources=["configmaps"], error_rate=1.0, status=500)
        cluster.drop_watches()
        cluster.request_log.reset()
        time.sleep(1.5)  # the observation window: how many attempts in 1.5 s?
        attempts = cluster.request_log.count(verbs=["watch"], resources=["configmaps"])
        # Backoff 0.05-0.1, 0.1-0.2, then 0.2-0.4 s: at most ~9 attempts; a spin would be 100s.
        assert 2 <= attempts <= 12, attempts
        faults.clear()
        kube.create(configmap("after-outage", namespace, v="1"))
        wait_for(lambda: converged(kube, consumer, namespace), what="recovery")


def test_a_server_that_always_expires_is_not_relisted_in_a_loop(
    kube: KubeClient, namespace: str, faults: FaultInjector, cluster: DevCluster
) -> None:
    w = watcher(kube, namespace, backoff=Backoff(base=0.1, cap=0.4))
    with consuming(w) as consumer:
        wait_for(lambda: w.stats["watches"] >= 1, what="first watch")
        faults.add_rule(verbs=["watch"], resources=["configmaps"], expire_watch=True)
        cluster.drop_watches()
        cluster.request_log.reset()
        _own_lists[0] = 0
        time.sleep(1.5)  # the observation window
        lists = watcher_lists(cluster)
        watches = cluster.request_log.count(verbs=["watch"], resources=["configmaps"])
        assert 2 <= lists <= 12 and watches <= lists + 1, (lists, watches)
        faults.clear()
        kube.create(configmap("after-expiries", namespace, v="1"))
        wait_for(lambda: converged(kube, consumer, namespace), what="recovery")


def test_streams_cut_as_soon_as_they_open_are_backed_off(
    kube: KubeClient, namespace: str, cluster: DevCluster
) -> None:
    w = watcher(kube, namespace, backoff=Backoff(base=0.1, cap=0.4))
    with consuming(w) as consumer:
        wait_for(lambda: w.stats["watches"] >= 1, what="first watch")
        cluster.request_log.reset()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # an unstable network: every stream is cut at once
            cluster.drop_watches()
            time.sleep(0.005)
        attempts = cluster.request_log.count(verbs=["watch"], resources=["configmaps"])
        assert 2 <= attempts <= 12, attempts
        kube.create(configmap("after-cuts", namespace, v="1"))
        wait_for(lambda: converged(kube, consumer, namespace), what="recovery")


def test_streams_closed_at_once_are_backed_off_too(
    kube: KubeClient, namespace: str, faults: FaultInjector, cluster: DevCluster
) -> None:
    w = watcher(kube, namespace, backoff=Backoff(base=0.1, cap=0.4))
    with consuming(w):
        wait_for(lambda: w.stats["watches"] >= 1, what="first watch")
        faults.add_rule(verbs=["watch"], resources=["configmaps"], drop_watch_after=0)
        cluster.drop_watches()
        cluster.request_log.reset()
        time.sleep(1.5)
        attempts = cluster.request_log.count(verbs=["watch"], resources=["configmaps"])
        assert 2 <= attempts <= 12, attempts


def test_list_errors_honour_retry_after(
    kube: KubeClient, namespace: str, faults: FaultInjector
) -> None:
    faults.add_rule(
        verbs=["list"], resources=["configmaps"], error_rate=1.0, status=429, retry_after=5, times=1
    )
    slept: list[float] = []
    kube.create(configmap("x", namespace, v="1"))
    w = watcher(kube, namespace, sleep=slept.append)  # record, don't wait 5 s
    with consuming(w) as consumer:
        # The watcher's first list takes the 429 (the test's own lists must not race it).
        wait_for(lambda: w.stats["lists"] >= 2, what="second list")
        wait_for(lambda: converged(kube, consumer, namespace), what="sync after 429")
    assert slept and slept[0] >= 5.0
    assert w.stats["lists"] == 2


def test_stop_ends_a_blocked_iteration_promptly(kube: KubeClient, namespace: str) -> None:
    w = watcher(kube, namespace, timeout_seconds=300)
    consumer = Consumer(w)
    consumer.thread.start()
    wait_for(lambda: w.stats["watches"] >= 1, what="watch open")
    started = time.monotonic()
    w.stop()
    consumer.thread.join(5)
    assert not consumer.thread.is_alive()
    assert time.monotonic() - started < 2.0
    assert consumer.error is None


def test_a_watcher_is_single_use(kube: KubeClient, namespace: str) -> None:
    w = watcher(kube, namespace)
    w.stop()
    assert list(w) == []
    with pytest.raises(RuntimeError):
        list(w)


def test_backoff_has_full_jitter_within_bounds() -> None:
    backoff = Backoff(base=0.5, cap=4.0)
    rng = random.Random(0)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 4.0)]:
        delays = [backoff.delay(failures, rng) for _ in range(200)]
        assert min(delays) >= ceiling / 2 and max(delays) <= ceiling
        assert len(set(delays)) > 100
    assert backoff.delay(0, rng) == 0.0


def test_bookmarks_keep_a_quiet_watch_resumable_after_compaction(tmp_path: Path) -> None:
    # A watch on a quiet namespace while the rest of the cluster is busy: without bookmarks its
    # resourceVersion would fall behind and the resume after a compaction would need a relist.
    devcluster = DevCluster(bookmark_interval=0.1)
    devcluster.start()
    try:
        kube = KubeClient.from_kubeconfig(devcluster.write_kubeconfig(tmp_path / "kubeconfig"))
        for ns in ("quiet", "busy"):
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        kube.create(configmap("only", "quiet", v="1"))
        w = watcher(kube, "quiet")
        with consuming(w) as consumer:
            wait_for(lambda: w.stats["watches"] >= 1, what="first watch")
            listed_rv = int(w.resource_version)
            last = 0
            for i in range(5):
                last = int(kube.create(configmap(f"b{i}", "busy"))["metadata"]["resourceVersion"])
            wait_for(lambda: int(w.resource_version) >= last, what="bookmark past busy writes")
            assert listed_rv < last
            devcluster.compact()
            devcluster.drop_watches()
            wait_for(lambda: w.stats["watches"] >= 2, what="resumed watch")
            kube.patch("v1", "ConfigMap", "only", "quiet", {"data": {"v": "2"}})
            wait_for(lambda: converged(kube, consumer, "quiet"), what="convergence")
        assert w.stats["lists"] == 1 and w.stats["relists"] == 0
        assert not any(e.synthetic for e in consumer.events)
        kube.close()
    finally:
        devcluster.stop()
