"""``restartCount`` survives the local kubelet: a devcluster restarted over its state file
continues a local pod's restart counts (its first run there is a restart), and the runs' log
files are numbered on, instead of the count starting again at 0 (upstream's restartCount
survives kubelet restarts). A 30 s back-off makes each cluster's count settle: one immediate
restart, then CrashLoopBackOff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config  # type: ignore[import-untyped]
from local_pods_kit import IMAGE, container_status, pod_body, processes_mentioning
from support.waiting import wait_for

from devcluster.localpods import LocalPodOptions
from devcluster.server import DevCluster

pytestmark = pytest.mark.slow


def _core(dc: DevCluster, where: Path) -> client.CoreV1Api:
    """A client of ``dc`` as its admin, its ``default`` namespace able to run Pods (the
    ServiceAccount ``default`` exists)."""
    core = client.CoreV1Api(config.new_client_from_config(str(dc.write_kubeconfig(where))))
    if not core.list_namespaced_service_account("default").items:
        core.create_namespaced_service_account("default", {"metadata": {"name": "default"}})
    return core


def _backing_off(core: client.CoreV1Api, after: str) -> dict[str, Any] | None:
    """The container's status once it waits in CrashLoopBackOff after a run other than
    ``after`` (a containerID)."""
    cs = container_status(core, "default", "crash")
    waiting = (cs.get("state") or {}).get("waiting") or {}
    if waiting.get("reason") != "CrashLoopBackOff" or cs.get("containerID") == after:
        return None
    return cs


def test_a_restarted_devcluster_continues_the_restart_counts(tmp_path: Path) -> None:
    root = tmp_path / "local-pods"
    options = LocalPodOptions(images=(IMAGE,), root=root, backoff_base=30.0)
    state = tmp_path / "state.json"

    first = DevCluster(local_pods=options, state_file=state)
    first.start()
    try:
        core = _core(first, tmp_path / "kubeconfig-1")
        env = [{"name": "APP_MODE", "value": "crash"}]  # exits 3 at once
        core.create_namespaced_pod("default", pod_body("crash", env=env, probes={}))
        uid = core.read_namespaced_pod("crash", "default").metadata.uid
        before = wait_for(lambda: _backing_off(core, after=""), what="CrashLoopBackOff", timeout=20)
        assert before["restartCount"] == 1, before  # run 0, an immediate restart: run 1
    finally:
        first.stop()
    assert processes_mentioning(str(root)) == []

    second = DevCluster(local_pods=options, state_file=state)
    second.start()
    try:
        core = _core(second, tmp_path / "kubeconfig-2")
        after = wait_for(
            lambda: _backing_off(core, after=str(before["containerID"])),
            what="CrashLoopBackOff on the restarted devcluster",
            timeout=20,
        )
        # its first run here is run 2 (a restart of run 1), then one immediate restart: run 3
        assert after["restartCount"] == 3, after
        logs = root / "pods" / f"default_crash_{uid}" / "logs" / "app"
        assert sorted(p.name for p in logs.iterdir()) == ["0.log", "1.log", "2.log", "3.log"]
        pod_logs = second.api.pod_logs
        assert pod_logs is not None
        previous = pod_logs.read("default", "crash", "app", previous=True)
        assert previous is not None and b"app crashing" in previous
    finally:
        second.stop()
    assert processes_mentioning(str(root)) == []


def _running_after(core: client.CoreV1Api, name: str, after: str) -> dict[str, Any] | None:
    """The container's status once it runs in a run other than ``after`` (a containerID)."""
    cs = container_status(core, "default", name)
    if "running" not in (cs.get("state") or {}) or cs.get("containerID") == after:
        return None
    return cs


def test_a_run_lost_with_the_devcluster_is_the_next_run_s_unknown_last_state(
        tmp_path: Path) -> None:
    """A container still running when the devcluster stopped ended unseen, as in a node reboot:
    its next run shows it as ``lastState.terminated`` exit code 255, reason ``Unknown``."""
    options = LocalPodOptions(images=(IMAGE,), root=tmp_path / "local-pods")
    state = tmp_path / "state.json"
    first = DevCluster(local_pods=options, state_file=state)
    first.start()
    try:
        core = _core(first, tmp_path / "kubeconfig-1")
        core.create_namespaced_pod("default", pod_body("serving"))
        before = wait_for(lambda: _running_after(core, "serving", after=""), what="running",
                          timeout=20)
        assert before["restartCount"] == 0 and before["lastState"] == {}
    finally:
        first.stop()

    second = DevCluster(local_pods=options, state_file=state)
    second.start()
    try:
        core = _core(second, tmp_path / "kubeconfig-2")
        after = wait_for(lambda: _running_after(core, "serving", str(before["containerID"])),
                         what="running again on the restarted devcluster", timeout=20)
        assert after["restartCount"] == 1, after
        lost = after["lastState"]["terminated"]
        assert (lost["exitCode"], lost["reason"]) == (255, "Unknown"), lost
        assert lost["startedAt"] == before["state"]["running"]["startedAt"]
        assert lost["containerID"] == before["containerID"]
    finally:
        second.stop()
    assert processes_mentioning(str(tmp_path / "local-pods")) == []
