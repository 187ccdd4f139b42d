"""Stopping a local pod's containers, and its graceful deletion.

* Deletion (``deletionTimestamp``): a ``Killing`` Event, SIGTERM, the grace period
  (``deletionGracePeriodSeconds``, else ``terminationGracePeriodSeconds``, else 30 s), SIGKILL;
  then the kubelet's final delete (``finish_pod_deletion``) once no finalizer is left, and the
  Pod's directory is removed.
* A Pod removed without grace, or the node's shutdown, stops the processes with a short grace
  (:data:`SHUTDOWN_GRACE`).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devcluster.handlers import now_rfc3339
from devcluster.localpods.container import Container
from devcluster.localpods.status import exit_reason

if TYPE_CHECKING:
    from devcluster.localpods.runtime import LocalRuntime

__all__ = ["SHUTDOWN_GRACE", "delete_pod", "grace_period", "stop_runs"]

JSON = dict[str, Any]
SHUTDOWN_GRACE = 2.0


def grace_period(pod: JSON) -> float:
    """The seconds between SIGTERM and SIGKILL for ``pod``'s containers."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds")
    return float(30 if grace is None else grace)


def stop_runs(containers: Sequence[Container], grace: float) -> None:
    """SIGTERM to every running container, up to ``grace`` seconds, SIGKILL; each is then
    terminated for good."""
    running = [c for c in containers if c.process is not None]
    for c in running:
        assert c.process is not None
        c.process.terminate()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(
        c.process is not None and c.process.poll() is None for c in running
    ):
        time.sleep(0.05)
    for c in running:
        assert c.process is not None
        c.process.kill()
        c.process.stop(0)
        code = c.process.poll()
        c.process = None
        c.view.running_since = None
        exit_code = 137 if code is None else code
        c.view.terminated = {
            "exitCode": exit_code,
            "reason": exit_reason(exit_code, oom_killed=c.release_cgroup(exit_code)),
            "finishedAt": now_rfc3339(),
            "containerID": c.view.container_id,
        }


def delete_pod(
    runtime: LocalRuntime,
    pod: JSON,
    inits: Sequence[Container],
    containers: Sequence[Container],
    *,
    pod_dir: Path,
    wake: threading.Event,
    shutdown: threading.Event,
) -> None:
    """The graceful deletion of ``pod`` (see the module docstring); waits on ``wake`` for its
    finalizers to go, until ``shutdown``."""
    meta = pod["metadata"]
    namespace, name = str(meta.get("namespace") or ""), str(meta["name"])
    uid = str(meta.get("uid") or "")
    if any(c.process is not None for c in [*inits, *containers]):
        runtime.event(
            pod,
            "Killing",
            "Stopping container "
            + ", ".join(c.view.name for c in containers if c.process is not None),
        )
    stop_runs([*inits, *containers], grace_period(pod))
    while not shutdown.is_set():
        pod_now = runtime.get_pod(namespace, name)
        if pod_now is None or pod_now["metadata"].get("uid") != uid:
            break
        if not pod_now["metadata"].get("finalizers"):
            runtime.finish_deletion(namespace, name, uid)
            break
        wake.clear()
        wake.wait(1.0)
    shutil.rmtree(pod_dir, ignore_errors=True)
