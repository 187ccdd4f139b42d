"""The worker of one local pod: a thread that starts its containers, supervises them (exits,
restarts with back-off, probes), reports the Pod's status and stops them when the Pod is
deleted or the node shuts down.

* Init containers run one after the other to completion before the containers start; a failed
  one is restarted unless ``restartPolicy`` is ``Never`` (then the Pod fails).
* A container that exits is restarted per ``restartPolicy`` (Always; OnFailure: non-zero exit;
  Never), after a back-off of ``backoff_base * 2**n`` seconds capped at ``backoff_cap`` (n: the
  restarts in a row, reset once a run lasted 10 minutes); meanwhile it waits in
  ``CrashLoopBackOff`` with upstream's message and a ``BackOff`` Event.
* A liveness (or startup) probe past its failure threshold kills the container
  (``Unhealthy`` and ``Killing`` Events) and it is restarted as above; readiness sets
  ``ready`` and the Pod's Ready/ContainersReady conditions.
* Deletion (``deletionTimestamp``): SIGTERM, ``deletionGracePeriodSeconds``, SIGKILL, then the
  kubelet's final delete (``finish_pod_deletion``) once no finalizer is left. A Pod removed
  without grace, or the node's shutdown, stops the processes with a short grace.

* ``resources.limits.memory`` is enforced with a memory cgroup per container run
  (:mod:`devcluster.localpods.cgroups`; cgroup v2 or v1, with swap counted against it): past
  the limit the kernel's OOM killer ends the container, which then shows
  ``reason: OOMKilled`` (exit code 137) and is restarted as above. Where no memory cgroup can be
  made (or ``LocalPodOptions.memory_limits`` is ``"off"``) the limit is not applied; with
  ``"auto"`` the Pod then gets one ``MemoryLimitNotEnforced`` Warning Event.

Not emulated: the other ``resources`` (requests, CPU, ephemeral storage; a memory limit is not
applied as RLIMIT_AS either where there is no cgroup, since that must be set between fork and
exec, ``preexec_fn`` is unsafe in this multi-threaded server, and a threaded Python program
reserves far more address space than it uses), exec probes (they fail, saying so), the pod's
hostname (``HOSTNAME`` is set in the environment only), image pulls (``Pulled`` always says the
image is present).

The worker reads the Pod from the store and writes its status through the kubelet's Writer
(retrying a conflict with the fresh object); it sleeps on an event that the kubelet sets on
every change of the Pod, at most until the next probe or restart is due.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devcluster.errors import ApiError
from devcluster.handlers import now_rfc3339
from devcluster.localpods import ImageCommand, cgroups
from devcluster.localpods.environment import (
    ContainerConfigError,
    PodNetwork,
    command_line,
    container_env,
)
from devcluster.localpods.probes import ProbeState, run_probe
from devcluster.localpods.process import ContainerProcess
from devcluster.localpods.sandbox import SandboxSpec, bwrap_argv
from devcluster.localpods.status import ContainerView, exit_reason, pod_status
from devcluster.localpods.volumes import Mount, VolumePlan, plan_volumes, write_files

if TYPE_CHECKING:
    from devcluster.localpods.runtime import LocalRuntime

__all__ = ["PodWorker"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
POD = ("", "pods")
NETSHIM = str(Path(__file__).parent / "netshim")
RESET_AFTER = 600.0  # a run this long resets the back-off
SHUTDOWN_GRACE = 2.0
TOKEN_SECONDS = 3600


class _CreateError(Exception):
    """The container cannot be created (``CreateContainerError``)."""


@dataclass
class _Container:
    spec: JSON
    image: ImageCommand
    init: bool
    view: ContainerView
    process: ContainerProcess | None = None
    runs: int = 0  # runs started; the current (or last) one is runs - 1
    crashes: int = 0  # restarts in a row, for the back-off
    backoff_until: float = 0.0
    finished: bool = False  # terminated for good (init done, or not to be restarted)
    probes: dict[str, ProbeState] | None = None
    started_mono: float = 0.0
    cgroup: cgroups.ContainerCgroup | None = None  # the current run's memory cgroup


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

        def make(c: JSON, init: bool) -> _Container:
            name = str(c.get("name"))
            return _Container(c, images[name], init, ContainerView(name, str(c.get("image"))))

        self.inits = [make(c, True) for c in spec.get("initContainers") or []]
        self.containers = [make(c, False) for c in spec.get("containers") or []]
        self._wake = threading.Event()
        self._shutdown = threading.Event()
        self._token_refresh = 0.0
        self._warned_unsandboxed = False
        self._warned_memory = False
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
                return self._log_path(container, run)
        return None

    def _log_path(self, container: str, run: int) -> Path:
        return self.dir / "logs" / container / f"{run}.log"

    # ---------------------------------------------------------------- loop

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # the worker must not die silently with its processes running
            log.exception("local pod %s/%s: worker failed", self.namespace, self.name)
        finally:
            self._stop_all(SHUTDOWN_GRACE)
            self.runtime.forget(self)

    def _loop(self) -> None:
        while not self._shutdown.is_set():
            self._wake.clear()
            pod = self.runtime.get_pod(self.namespace, self.name)
            if pod is None or pod["metadata"].get("uid") != self.uid:
                return  # removed without grace: stopped in _run
            if pod["metadata"].get("deletionTimestamp"):
                self._delete(pod)
                return
            self._step(pod)
            pod = self._publish()
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

    # ---------------------------------------------------------------- containers

    def _step(self, pod: JSON) -> None:
        now = time.monotonic()
        if self._token_refresh and now >= self._token_refresh:
            self._refresh_files(pod)
        for c in self.inits:
            if c.finished:
                continue
            self._supervise(pod, c, now)
            return  # one init container at a time
        for c in self.containers:
            self._supervise(pod, c, now)

    def _supervise(self, pod: JSON, c: _Container, now: float) -> None:
        if c.process is not None:
            code = c.process.poll()
            if code is None:
                self._probe(pod, c)
                return
            self._exited(pod, c, code, killed=False)
        if c.finished or now < c.backoff_until:
            return
        self._start(pod, c)

    def _exited(self, pod: JSON, c: _Container, code: int, *, killed: bool) -> None:
        proc = c.process
        assert proc is not None
        c.process = None
        c.probes = None
        terminated = {
            "exitCode": code,
            "reason": exit_reason(code, oom_killed=self._release_cgroup(c, code)),
            "startedAt": c.view.running_since,
            "finishedAt": now_rfc3339(),
            "containerID": c.view.container_id,
        }
        c.view.running_since = None
        c.view.ready = False
        c.view.started = False
        ran = time.monotonic() - c.started_mono
        if ran >= RESET_AFTER:
            c.crashes = 0
        if c.init:
            restart = code != 0 and self.policy != "Never"
        else:
            restart = self.policy == "Always" or (self.policy == "OnFailure" and code != 0)
        if not restart:
            c.finished = True
            c.view.terminated = terminated
            return
        c.view.last_terminated = terminated
        opts = self.runtime.options
        delay = min(opts.backoff_cap, opts.backoff_base * 2**c.crashes)
        c.crashes += 1
        c.backoff_until = time.monotonic() + delay
        message = (
            f"back-off {_seconds(delay)} restarting failed container={c.view.name} "
            f"pod={self.name}_{self.namespace}({self.uid})"
        )
        c.view.waiting = ("CrashLoopBackOff", message)
        self.runtime.event(
            pod,
            "BackOff",
            f"Back-off restarting failed container {c.view.name} in pod "
            f"{self.name}_{self.namespace}({self.uid})",
            "Warning",
        )

    def _start(self, pod: JSON, c: _Container) -> None:
        try:
            argv, env, cwd, sandboxed = self._prepare(pod, c)
        except ContainerConfigError as e:
            c.view.waiting = ("CreateContainerConfigError", str(e))
            c.backoff_until = time.monotonic() + 1.0
            return
        except _CreateError as e:
            c.view.waiting = ("CreateContainerError", str(e))
            c.backoff_until = time.monotonic() + 1.0
            return
        try:
            cgroup = self._memory_cgroup(pod, c)
        except ContainerConfigError as e:
            c.view.waiting = ("CreateContainerConfigError", str(e))
            c.backoff_until = time.monotonic() + 1.0
            return
        except OSError as e:
            c.view.waiting = ("CreateContainerError", f"cannot create the memory cgroup: {e}")
            c.backoff_until = time.monotonic() + 1.0
            return
        if c.runs > 0:
            c.view.restart_count += 1
        run = c.runs
        c.runs += 1
        try:
            c.process = ContainerProcess(
                cgroup.wrap(argv) if cgroup is not None else argv,
                self._log_path(c.view.name, run),
                env=env,
                cwd=cwd,
                sandboxed=sandboxed,
            )
        except OSError as e:
            if cgroup is not None:
                cgroup.remove()
            c.view.waiting = ("CreateContainerError", f"cannot start {argv[0]}: {e}")
            c.backoff_until = time.monotonic() + 1.0
            return
        c.cgroup = cgroup
        c.started_mono = time.monotonic()
        c.backoff_until = 0.0
        c.view.waiting = None
        c.view.terminated = None
        c.view.running_since = now_rfc3339()
        c.view.ever_started = True
        c.view.container_id = (
            "containerd://"
            + hashlib.sha256(f"{self.uid}/{c.view.name}/{run}/{c.process.pid}".encode()).hexdigest()
        )
        spec = c.spec
        probes: dict[str, ProbeState] = {}
        if not c.init:
            for kind in ("startup", "liveness", "readiness"):
                if spec.get(f"{kind}Probe"):
                    probes[kind] = ProbeState(kind, spec[f"{kind}Probe"], c.started_mono)
        c.probes = probes
        c.view.started = "startup" not in probes
        c.view.ready = not c.init and "readiness" not in probes and self.runtime.pods_ready()
        image = spec.get("image")
        self.runtime.event(pod, "Pulled", f'Container image "{image}" already present on machine')
        self.runtime.event(pod, "Created", f"Created container: {c.view.name}")
        self.runtime.event(pod, "Started", f"Started container {c.view.name}")

    def _probe(self, pod: JSON, c: _Container) -> None:
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
            ok, message = run_probe(p.probe, c.spec, self.pod_ip, p.timeout)
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
                self._kill_for_probe(pod, c, kind)
                return

    def _kill_for_probe(self, pod: JSON, c: _Container, kind: str) -> None:
        self.runtime.event(
            pod,
            "Killing",
            f"Container {c.view.name} failed {kind} probe, will be restarted",
        )
        proc = c.process
        assert proc is not None
        code = proc.stop(self._grace(pod))
        self._exited(pod, c, code, killed=True)

    # ---------------------------------------------------------------- memory limit

    def _memory_cgroup(self, pod: JSON, c: _Container) -> cgroups.ContainerCgroup | None:
        """The cgroup enforcing the container's ``limits.memory`` for its next run; None when
        it has no limit, limits are off, or this machine has no usable memory cgroup (then one
        Warning Event per Pod says so)."""
        limits = (c.spec.get("resources") or {}).get("limits") or {}
        quantity = limits.get("memory")
        if quantity is None or self.runtime.options.memory_limits == "off":
            return None
        try:
            limit = cgroups.memory_bytes(str(quantity))
        except ValueError as e:
            raise ContainerConfigError(
                f"container {c.view.name}: resources.limits.memory: {e}"
            ) from None
        if cgroups.hierarchy() is None:
            if not self._warned_memory:
                self._warned_memory = True
                self.runtime.event(
                    pod,
                    "MemoryLimitNotEnforced",
                    f"container {c.view.name}: resources.limits.memory ({quantity}) is not "
                    "enforced on this machine (no writable memory cgroup, v2 or v1)",
                    "Warning",
                )
            return None
        return cgroups.create(self.uid, c.view.name, c.runs, limit)

    def _release_cgroup(self, c: _Container, code: int) -> bool:
        """Remove the ended run's cgroup; whether the OOM killer fired in it."""
        cg, c.cgroup = c.cgroup, None
        if cg is None:
            return False
        oom = cg.oom_killed(code)
        cg.remove()
        return oom

    # ---------------------------------------------------------------- configuration

    def _write_volumes(self, pod: JSON, net: PodNetwork) -> VolumePlan:
        """Plan the Pod's volumes and write their files (the token among them)."""
        rt = self.runtime
        plan = plan_volumes(
            pod,
            self.dir,
            rt.options.root,
            rt.lookup,
            net=net,
            ca_pem=rt.ca_pem,
            token=lambda proj: rt.token(pod, proj),
            automount=rt.automount(pod),
        )
        write_files(plan)
        return plan

    def _prepare(self, pod: JSON, c: _Container) -> tuple[list[str], dict[str, str], str, bool]:
        rt = self.runtime
        net = PodNetwork(self.pod_ip, self.host_ip, rt.api_host, rt.api_port)
        env = container_env(pod, c.spec, c.image, net, rt.lookup)
        env["DEVCLUSTER_POD_IP"] = self.pod_ip
        env.setdefault("HOSTNAME", self.name)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (NETSHIM, env.get("PYTHONPATH", "")) if p)
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        argv = command_line(c.spec, c.image, env)
        automount = rt.automount(pod)
        plan = self._write_volumes(pod, net)
        self._token_refresh = time.monotonic() + TOKEN_SECONDS * 0.8
        mounts = plan.mounts(c.spec, service_account=automount)
        # the image's own files (its venv) stay visible where they are, even under a volume's
        # mount path (a venv under /tmp would otherwise be hidden by the Pod's /tmp)
        mounts += [Mount(Path(p), p, True) for p in c.image.paths]
        # the bind shim is the kubelet's own file: visible wherever the kubelet is installed
        mounts.append(Mount(Path(NETSHIM), NETSHIM, True))
        pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
        sc = c.spec.get("securityContext") or {}
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        cwd = str(c.spec.get("workingDir") or c.image.working_dir or "/")
        bwrap = rt.bwrap()
        if bwrap is None:
            if rt.options.sandbox == "required":
                raise _CreateError(
                    "bubblewrap (bwrap) is not available or cannot create a sandbox here, and "
                    "the local kubelet's sandbox is 'required'; install bubblewrap or use "
                    "sandbox='auto'"
                )
            if not self._warned_unsandboxed:
                self._warned_unsandboxed = True
                rt.event(
                    pod,
                    "Unsandboxed",
                    f"container {c.view.name} runs without a sandbox (no working bubblewrap): "
                    "volumes are not mounted, runAsUser and readOnlyRootFilesystem are ignored",
                    "Warning",
                )
            host_cwd = cwd if os.path.isdir(cwd) else str(self.dir)
            return argv, env, host_cwd, False
        spec = SandboxSpec(
            mounts,
            read_only_root=bool(sc.get("readOnlyRootFilesystem")),
            uid=None if uid is None else int(uid),
            gid=None if gid is None else int(gid),
            env=env,
            cwd=cwd,
        )
        return bwrap_argv(bwrap, spec, argv), {}, str(self.dir), True

    def _refresh_files(self, pod: JSON) -> None:
        """Rewrite the token (and the other projected files) before the token expires."""
        rt = self.runtime
        net = PodNetwork(self.pod_ip, self.host_ip, rt.api_host, rt.api_port)
        try:
            self._write_volumes(pod, net)
        except (ContainerConfigError, OSError) as e:
            log.warning("local pod %s/%s: refreshing volumes: %s", self.namespace, self.name, e)
        self._token_refresh = time.monotonic() + TOKEN_SECONDS * 0.8

    # ---------------------------------------------------------------- status

    def _publish(self) -> JSON | None:
        """Write the status the containers show (unless unchanged); retries a conflict."""
        for _ in range(5):
            pod = self.runtime.get_pod(self.namespace, self.name)
            if pod is None or pod["metadata"].get("uid") != self.uid:
                return None
            status = self._status(pod)
            if status == pod.get("status"):
                return pod
            new = copy.deepcopy(pod)
            new["status"] = status
            try:
                return self.runtime.write_status(new)
            except ApiError as e:
                if e.code == 409:
                    continue
                if e.code == 404:
                    return None
                raise
        return None

    def _done(self) -> bool:
        if any(
            c.finished and c.view.terminated and c.view.terminated["exitCode"] != 0
            for c in self.inits
        ):
            return True
        return bool(self.containers) and all(c.finished for c in self.containers)

    def _status(self, pod: JSON) -> JSON:
        initialized = all(
            c.finished and (c.view.terminated or {}).get("exitCode") == 0 for c in self.inits
        )
        old = pod.get("status") or {}
        now = now_rfc3339()
        for c in self.containers + self.inits:
            if c.view.running_since is None and c.view.terminated is None and not c.view.waiting:
                c.view.waiting = (
                    ("PodInitializing", "")
                    if not initialized and not c.init
                    else ("ContainerCreating", "")
                )
        return pod_status(
            {"spec": pod.get("spec") or {}, "status": old},
            [c.view for c in self.inits],
            [c.view for c in self.containers],
            initialized=initialized,
            done=self._done(),
            pod_ip=self.pod_ip,
            host_ip=self.host_ip,
            now=now,
        )

    # ---------------------------------------------------------------- stopping

    def _grace(self, pod: JSON) -> float:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds")
        return float(30 if grace is None else grace)

    def _stop_all(self, grace: float) -> None:
        running = [c for c in self.inits + self.containers if c.process is not None]
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
                "reason": exit_reason(exit_code, oom_killed=self._release_cgroup(c, exit_code)),
                "finishedAt": now_rfc3339(),
                "containerID": c.view.container_id,
            }

    def _delete(self, pod: JSON) -> None:
        if any(c.process is not None for c in self.inits + self.containers):
            self.runtime.event(
                pod,
                "Killing",
                "Stopping container "
                + ", ".join(c.view.name for c in self.containers if c.process is not None),
            )
        self._stop_all(self._grace(pod))
        while not self._shutdown.is_set():
            pod_now = self.runtime.get_pod(self.namespace, self.name)
            if pod_now is None or pod_now["metadata"].get("uid") != self.uid:
                break
            if not pod_now["metadata"].get("finalizers"):
                self.runtime.finish_deletion(self.namespace, self.name, self.uid)
                break
            self._wake.clear()
            self._wake.wait(1.0)
        shutil.rmtree(self.dir, ignore_errors=True)


def _seconds(delay: float) -> str:
    """``10s``, ``2m40s``, ``200ms`` as Go's time.Duration prints a back-off."""
    if delay < 1:
        return f"{round(delay * 1000)}ms"
    total = int(delay)
    minutes, seconds = divmod(total, 60)
    frac = delay - total
    sec_text = f"{seconds + frac:g}s" if frac else f"{seconds}s"
    return f"{minutes}m{sec_text}" if minutes else sec_text
