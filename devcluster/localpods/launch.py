"""Starting one run of a local pod's container: its volumes written, its environment and
command line, its sandbox, its memory cgroup, then the process (and its probes' schedule).

* The Pod's volumes (the ServiceAccount token among them) are written before every run and
  rewritten at 80 % of the token's hour (:meth:`Launcher.refresh_files`).
* A container whose config cannot be resolved waits in ``CreateContainerConfigError``, one that
  cannot be created (no sandbox while it is ``required``, no cgroup, no executable) in
  ``CreateContainerError``; both are tried again a second later.
* Without a working bubblewrap (and sandbox ``auto``) the command runs unsandboxed: one
  ``Unsandboxed`` Warning Event per Pod.
* ``resources.limits.memory`` is enforced with a memory cgroup per container run
  (:mod:`devcluster.localpods.cgroups`; cgroup v2 or v1, with swap counted against it): past
  the limit the kernel's OOM killer ends the container, which then shows
  ``reason: OOMKilled`` (exit code 137) and is restarted as any exit. Where no memory cgroup can
  be made (or ``LocalPodOptions.memory_limits`` is ``"off"``) the limit is not applied; with
  ``"auto"`` the Pod then gets one ``MemoryLimitNotEnforced`` Warning Event.

Not emulated: the other ``resources`` (requests, CPU, ephemeral storage; a memory limit is not
applied as RLIMIT_AS either where there is no cgroup, since that must be set between fork and
exec, ``preexec_fn`` is unsafe in this multi-threaded server, and a threaded Python program
reserves far more address space than it uses), the pod's hostname (``HOSTNAME`` is set in the
environment only), image pulls (``Pulled`` always says the image is present).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devcluster.handlers import now_rfc3339
from devcluster.localpods import cgroups
from devcluster.localpods.container import Container, run_log
from devcluster.localpods.environment import (
    ContainerConfigError,
    PodNetwork,
    command_line,
    container_env,
)
from devcluster.localpods.probes import ProbeState
from devcluster.localpods.process import ContainerProcess
from devcluster.localpods.sandbox import SandboxSpec, bwrap_argv
from devcluster.localpods.volumes import Mount, VolumePlan, plan_volumes, write_files

if TYPE_CHECKING:
    from devcluster.localpods.runtime import LocalRuntime

__all__ = ["NETSHIM", "TOKEN_SECONDS", "Launcher"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
NETSHIM = str(Path(__file__).parent / "netshim")
TOKEN_SECONDS = 3600
RETRY_CREATE = 1.0  # seconds before a container that could not be created is tried again


class _CreateError(Exception):
    """The container cannot be created (``CreateContainerError``)."""


class Launcher:
    """Starts the runs of one Pod's containers (see the module docstring); keeps when the Pod's
    files are to be rewritten and which Warnings the Pod was given."""

    def __init__(
        self,
        runtime: LocalRuntime,
        *,
        namespace: str,
        name: str,
        uid: str,
        pod_ip: str,
        host_ip: str,
        pod_dir: Path,
    ) -> None:
        self.runtime = runtime
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.pod_ip = pod_ip
        self.host_ip = host_ip
        self.dir = pod_dir
        self._token_refresh = 0.0
        self._warned_unsandboxed = False
        self._warned_memory = False

    # ---------------------------------------------------------------- a run

    def start(self, pod: JSON, c: Container) -> None:
        """Start the next run of ``c``, or leave it waiting with the reason it cannot start."""
        try:
            argv, env, cwd, sandboxed = self._prepare(pod, c)
        except ContainerConfigError as e:
            self._not_started(c, "CreateContainerConfigError", str(e))
            return
        except _CreateError as e:
            self._not_started(c, "CreateContainerError", str(e))
            return
        try:
            cgroup = self._memory_cgroup(pod, c)
        except ContainerConfigError as e:
            self._not_started(c, "CreateContainerConfigError", str(e))
            return
        except OSError as e:
            self._not_started(c, "CreateContainerError", f"cannot create the memory cgroup: {e}")
            return
        if c.runs > 0:
            c.view.restart_count += 1
        run = c.runs
        c.runs += 1
        try:
            c.process = ContainerProcess(
                cgroup.wrap(argv) if cgroup is not None else argv,
                run_log(self.dir, c.view.name, run),
                env=env,
                cwd=cwd,
                sandboxed=sandboxed,
            )
        except OSError as e:
            if cgroup is not None:
                cgroup.remove()
            self._not_started(c, "CreateContainerError", f"cannot start {argv[0]}: {e}")
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

    def _not_started(self, c: Container, reason: str, message: str) -> None:
        c.view.waiting = (reason, message)
        c.backoff_until = time.monotonic() + RETRY_CREATE

    # ---------------------------------------------------------------- memory limit

    def _memory_cgroup(self, pod: JSON, c: Container) -> cgroups.ContainerCgroup | None:
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

    def _prepare(self, pod: JSON, c: Container) -> tuple[list[str], dict[str, str], str, bool]:
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

    # ---------------------------------------------------------------- the token

    def files_due(self, now: float) -> bool:
        """Whether the Pod's files (the token) are to be rewritten (once a run was prepared)."""
        return bool(self._token_refresh) and now >= self._token_refresh

    def refresh_files(self, pod: JSON) -> None:
        """Rewrite the token (and the other projected files) before the token expires."""
        rt = self.runtime
        net = PodNetwork(self.pod_ip, self.host_ip, rt.api_host, rt.api_port)
        try:
            self._write_volumes(pod, net)
        except (ContainerConfigError, OSError) as e:
            log.warning("local pod %s/%s: refreshing volumes: %s", self.namespace, self.name, e)
        self._token_refresh = time.monotonic() + TOKEN_SECONDS * 0.8
