"""The worker of one local pod: a thread that starts its containers, supervises them (exits,
restarts with back-off, probes), reports the Pod's status and stops them when the Pod is
deleted or the node shuts down.

* Init containers run one after the other to completion before the containers start; a failed
  one is restarted unless ``restartPolicy`` is ``Never`` (then the Pod fails).
* A container that exits is restarted per ``restartPolicy`` (Always; OnFailure: non-zero exit;
  Never): the first time at once, the following times after the back-off of
  :mod:`devcluster.localpods.backoff`, while it waits in ``CrashLoopBackOff`` with upstream's
  message and a ``BackOff`` Event.
* ``restartCount`` survives the local kubelet: a worker started for a Pod whose status shows a
  container that ran (a devcluster restarted over its state, a worker that failed) continues
  its count, and its first run there is a restart (a new process after the one that ran, as
  upstream counts a container recreated after a node reboot), numbered on from the last run so
  that the ``previous`` log is that run's, where the Pod's directory was kept; its
  ``lastState`` is the run before (one that was running then: exit code 255, ``Unknown``, as
  upstream shows a container lost in a reboot).
* A liveness (or startup) probe past its failure threshold kills the container
  (``Unhealthy`` and ``Killing`` Events) and it is restarted as above; readiness sets
  ``ready`` and the Pod's Ready/ContainersReady conditions. An exec probe runs its command in
  the container's current run, as ``kubectl exec`` does (:mod:`.probes`).

Where the rest lives: starting a run (volumes, env, command, sandbox, memory cgroup) in
:mod:`.launch`, stopping and graceful deletion in :mod:`.termination`, the status written in
:mod:`.publish`, one container's state in :mod:`.container`.

The worker reads the Pod from the store and writes its status through the kubelet's Writer; it
sleeps on an event that the kubelet sets on every change of the Pod, at most until the next
probe or restart is due.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devcluster.handlers import now_rfc3339
from devcluster.localpods import ImageCommand
from devcluster.localpods.backoff import RestartBackoff, crash_loop_message
from devcluster.localpods.container import Container, run_log
from devcluster.localpods.exec import plan_exec
from devcluster.localpods.launch import TOKEN_SECONDS, Launcher
from devcluster.localpods.probes import run_probe
from devcluster.localpods.publish import containers_status, publish_status
from devcluster.localpods.status import ContainerView, exit_reason
from devcluster.localpods.termination import SHUTDOWN_GRACE, delete_pod, grace_period, stop_runs

if TYPE_CHECKING:
    from devcluster.localpods.runtime import LocalRuntime

# TOKEN_SECONDS: the runtime reads the token lifetime here
__all__ = ["TOKEN_SECONDS", "PodWorker"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]


class PodWorker:
    """Runs one Pod (by uid) on its own thread; :meth:`wake` after any change of the Pod."""

    def __init__(
        self,
        runtime: LocalRuntime,
        pod: JSON,
        images: dict[str, ImageCommand],
        pod_ip: str,
        host_ip: str,
    ) -> None:
        meta = pod["metadata"]
        self.runtime = runtime
        self.namespace = str(meta.get("namespace") or "")
        self.name = str(meta["name"])
        self.uid = str(meta.get("uid") or "")
        self.pod_ip = pod_ip
        self.host_ip = host_ip
        self.dir = runtime.options.root / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        spec = pod.get("spec") or {}
        self.policy = str(spec.get("restartPolicy") or "Always")
        opts = runtime.options

        def make(c: JSON, init: bool) -> Container:
            name = str(c.get("name"))
            view = ContainerView(name, str(c.get("image")))
            backoff = RestartBackoff(opts.backoff_base, opts.backoff_cap)
            return Container(c, images[name], init, view, backoff)

        self.inits = [make(c, True) for c in spec.get("initContainers") or []]
        self.containers = [make(c, False) for c in spec.get("containers") or []]
        _continue_counts(pod, self.inits + self.containers)
        self.launcher = Launcher(
            runtime,
            namespace=self.namespace,
            name=self.name,
            uid=self.uid,
            pod_ip=pod_ip,
            host_ip=host_ip,
            pod_dir=self.dir,
        )
        self._wake = threading.Event()
        self._shutdown = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"devcluster-pod-{self.namespace}/{self.name}", daemon=True
        )

    # ---------------------------------------------------------------- control

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self._wake.set()

    def shutdown(self) -> None:
        """The node stops: stop the containers (short grace) and end the thread."""
        self._shutdown.set()
        self._wake.set()

    def has_container(self, container: str) -> bool:
        return any(c.view.name == container for c in self.inits + self.containers)

    def log_file(self, container: str, previous: bool) -> Path | None:
        for c in self.inits + self.containers:
            if c.view.name == container:
                run = c.runs - (2 if previous else 1)
                if run < 0:
                    return None
                return run_log(self.dir, container, run)
        return None

    # ---------------------------------------------------------------- loop

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # the worker must not die silently with its processes running
            log.exception("local pod %s/%s: worker failed", self.namespace, self.name)
        finally:
            stop_runs(self.inits + self.containers, SHUTDOWN_GRACE)
            self.runtime.forget(self)

    def _loop(self) -> None:
        while not self._shutdown.is_set():
            self._wake.clear()
            pod = self.runtime.get_pod(self.namespace, self.name)
            if pod is None or pod["metadata"].get("uid") != self.uid:
                return  # removed without grace: stopped in _run
            if pod["metadata"].get("deletionTimestamp"):
                delete_pod(
                    self.runtime,
                    pod,
                    self.inits,
                    self.containers,
                    pod_dir=self.dir,
                    wake=self._wake,
                    shutdown=self._shutdown,
                )
                return
            self._step(pod)
            self._publish()
            self._wake.wait(self._sleep())

    def _sleep(self) -> float:
        now = time.monotonic()
        due = [now + 1.0]
        for c in self.inits + self.containers:
            if c.process is not None:
                due.append(now + 0.1)
                for p in (c.probes or {}).values():
                    due.append(p.next_due)
            elif c.backoff_until:
                due.append(c.backoff_until)
        return max(0.01, min(due) - now)

    def _publish(self) -> JSON | None:
        def status_of(pod: JSON) -> JSON:
            return containers_status(
                pod, self.inits, self.containers, pod_ip=self.pod_ip, host_ip=self.host_ip
            )

        return publish_status(self.runtime, self.namespace, self.name, self.uid, status_of)

    # ---------------------------------------------------------------- containers

    def _step(self, pod: JSON) -> None:
        now = time.monotonic()
        if self.launcher.files_due(now):
            self.launcher.refresh_files(pod)
        for c in self.inits:
            if c.finished:
                continue
            self._supervise(pod, c, now)
            return  # one init container at a time
        for c in self.containers:
            self._supervise(pod, c, now)

    def _supervise(self, pod: JSON, c: Container, now: float) -> None:
        if c.process is not None:
            code = c.process.poll()
            if code is None:
                failed = self._probe(pod, c)
                if failed is None:
                    return
                code = self._kill_for_probe(pod, c, failed)
            self._exited(pod, c, code)
        if c.finished or now < c.backoff_until:
            return
        self.launcher.start(pod, c)

    def _exited(self, pod: JSON, c: Container, code: int) -> None:
        """The run of ``c`` ended with ``code``: terminated for good, or restarted after the
        back-off."""
        assert c.process is not None
        c.process = None
        c.probes = None
        terminated = {
            "exitCode": code,
            "reason": exit_reason(code, oom_killed=c.release_cgroup(code)),
            "startedAt": c.view.running_since,
            "finishedAt": now_rfc3339(),
            "containerID": c.view.container_id,
        }
        c.view.running_since = None
        c.view.ready = False
        c.view.started = False
        if c.init:
            restart = code != 0 and self.policy != "Never"
        else:
            restart = self.policy == "Always" or (self.policy == "OnFailure" and code != 0)
        if not restart:
            c.finished = True
            c.view.terminated = terminated
            return
        c.view.last_terminated = terminated
        delay = c.backoff.next_delay(time.monotonic() - c.started_mono)
        if delay == 0:
            c.backoff_until = 0.0  # restarted at once
            return
        c.backoff_until = time.monotonic() + delay
        c.view.waiting = (
            "CrashLoopBackOff",
            crash_loop_message(delay, c.view.name, self.name, self.namespace, self.uid),
        )
        self.runtime.event(
            pod,
            "BackOff",
            f"Back-off restarting failed container {c.view.name} in pod "
            f"{self.name}_{self.namespace}({self.uid})",
            "Warning",
        )

    # ---------------------------------------------------------------- probes

    def _probe(self, pod: JSON, c: Container) -> str | None:
        """Run the probes of ``c`` that are due; the kind of the one past its failure
        threshold, if any."""
        probes = c.probes or {}
        now = time.monotonic()
        startup = probes.get("startup")
        order = (
            ["startup"]
            if startup is not None and not startup.result
            else [
                "liveness",
                "readiness",
            ]
        )
        for kind in order:
            p = probes.get(kind)
            if p is None or not p.due(now):
                continue
            process = c.process
            planner = None if process is None or process.finished is not None else (
                functools.partial(plan_exec, process.pid, process.sandboxed))
            ok, message = run_probe(p.probe, c.spec, self.pod_ip, p.timeout, planner)
            p.record(ok, message, time.monotonic())
            if not ok:
                self.runtime.event(
                    pod, "Unhealthy", f"{kind.capitalize()} probe failed: {message}", "Warning"
                )
            if kind == "startup" and p.result:
                c.view.started = True
            if kind == "readiness":
                c.view.ready = p.result and self.runtime.pods_ready()
            if p.failed:
                return kind
        return None

    def _kill_for_probe(self, pod: JSON, c: Container, kind: str) -> int:
        """Stop ``c`` for its failed ``kind`` probe; its exit code."""
        self.runtime.event(
            pod,
            "Killing",
            f"Container {c.view.name} failed {kind} probe, will be restarted",
        )
        proc = c.process
        assert proc is not None
        return proc.stop(grace_period(pod))


def _continue_counts(pod: JSON, containers: list[Container]) -> None:
    """Take over the restart counts and last states of the containers that ran before this
    worker, from the Pod's status (see the module docstring)."""
    status = pod.get("status") or {}
    before = {
        str(cs.get("name")): cs
        for cs in [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]
    }
    for c in containers:
        cs = before.get(c.view.name) or {}
        if not cs.get("containerID"):
            continue  # never started
        count = int(cs.get("restartCount") or 0)
        c.view.restart_count = count
        c.runs = count + 1  # the run that ran last was run ``count``
        c.view.last_terminated = _last_state(cs)


def _last_state(cs: JSON) -> JSON | None:
    """The ``lastState.terminated`` a container's next run shows, from its status before this
    worker: a run that was still running ended unseen (the node went down under it), which
    upstream reports as exit code 255, reason ``Unknown``; a run that had ended, as it ended."""
    state = cs.get("state") or {}
    running = state.get("running")
    if running is not None:
        return {"exitCode": 255, "reason": "Unknown",
                "startedAt": running.get("startedAt") or now_rfc3339(),
                "finishedAt": now_rfc3339(), "containerID": str(cs.get("containerID") or "")}
    ended = state.get("terminated") or (cs.get("lastState") or {}).get("terminated")
    return dict(ended) if ended else None
