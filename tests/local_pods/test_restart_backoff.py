"""The restart back-off as upstream's kubelet keeps it: the first restart of a container that
exits is immediate, the following ones wait ``backoff_base * 2**n`` capped at ``backoff_cap``,
and a run longer than twice the cap starts the series again. The Pod test runs with a 30 s
base, so waiting or not is plain without timing the restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client  # type: ignore[import-untyped]
from local_pods_kit import IMAGE, container_status, events_of, pod_body
from support.waiting import wait_for

from devcluster.localpods import LocalPodOptions
from devcluster.localpods.backoff import RestartBackoff, crash_loop_message, go_duration
from devcluster.server import DevCluster

SHORT_RUN = 1.0


def test_the_first_restart_is_immediate_then_the_wait_doubles_to_the_cap() -> None:
    backoff = RestartBackoff(base=10, cap=300)
    delays = [backoff.next_delay(SHORT_RUN) for _ in range(8)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]


def test_a_run_longer_than_twice_the_cap_starts_the_series_again() -> None:
    backoff = RestartBackoff(base=1, cap=5)
    assert [backoff.next_delay(SHORT_RUN) for _ in range(3)] == [0, 1, 2]
    assert backoff.next_delay(10.0) == 4  # exactly 2 x cap: still in the series, as upstream
    assert backoff.next_delay(10.5) == 0
    assert backoff.next_delay(SHORT_RUN) == 1


def test_a_long_series_stays_at_the_cap() -> None:
    backoff = RestartBackoff(base=0.2, cap=1)
    backoff.restarts = 5000
    assert backoff.next_delay(SHORT_RUN) == 1


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "200ms"), (10, "10s"), (2.5, "2.5s"), (160, "2m40s"), (300, "5m0s")],
)
def test_durations_are_printed_as_go_does(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_the_crash_loop_message_is_upstreams() -> None:
    assert crash_loop_message(20, "app", "web-0", "shop", "u-1") == (
        "back-off 20s restarting failed container=app pod=web-0_shop(u-1)"
    )


@pytest.fixture(scope="module")
def local_pod_options(pods_root: Path) -> LocalPodOptions:
    return LocalPodOptions(images=(IMAGE,), root=pods_root, backoff_base=30.0)


@pytest.mark.slow
def test_the_first_restart_does_not_wait_the_back_off_the_second_does(
    core: client.CoreV1Api, cluster: DevCluster, namespace: str
) -> None:
    env = [{"name": "APP_MODE", "value": "crash"}]  # exits 3 at once
    core.create_namespaced_pod(namespace, pod_body("crash", env=env, probes={}))
    uid = core.read_namespaced_pod("crash", namespace).metadata.uid

    def backing_off_after_one_restart() -> dict[str, Any] | None:
        cs = container_status(core, namespace, "crash")
        waiting = (cs.get("state") or {}).get("waiting") or {}
        return cs if waiting.get("reason") == "CrashLoopBackOff" else None

    # within 20 s, less than the 30 s back-off: the first restart did not wait it (had it
    # waited, CrashLoopBackOff would show with restartCount 0), the second one waits it
    cs = wait_for(backing_off_after_one_restart, what="CrashLoopBackOff", timeout=20)
    assert cs["restartCount"] == 1, cs
    assert cs["state"]["waiting"]["message"] == (
        f"back-off 30s restarting failed container=app pod=crash_{namespace}({uid})"
    )
    last = cs["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (3, "Error")
    back_offs = [m for r, m in events_of(core, namespace, "crash") if r == "BackOff"]
    assert back_offs == [
        f"Back-off restarting failed container app in pod crash_{namespace}({uid})"
    ]
    logs = cluster.api.pod_logs
    assert logs is not None
    previous = logs.read(namespace, "crash", "app", previous=True)
    assert previous is not None and b"app crashing" in previous  # the first restart's run
