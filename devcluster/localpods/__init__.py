"""A local kubelet: Pods whose image is mapped to a local command run as real processes.

The simulated kubelet (:mod:`devcluster.controllers.kubelet`) gives every other Pod a status
and nothing more; a Pod whose every container's image matches one of
:attr:`LocalPodOptions.images` is started here instead, as processes on this machine. Off
unless ``DevCluster(local_pods=...)`` is given (``python -m devcluster --local-image``).

What a Pod gets, and where it lives:

* ``images``: which images run, and as what command (ENTRYPOINT, CMD, ENV, WORKDIR);
* ``environment``: the container's env (``valueFrom``, ``envFrom``, ``$(VAR)``), the in-cluster
  variables (``KUBERNETES_SERVICE_HOST``/``PORT``: the devcluster's TLS port on 127.0.0.1);
* ``volumes``: emptyDir, Secret, ConfigMap, projected, downwardAPI and PVC volumes as per-pod
  (per-claim) directories, and the ServiceAccount token, ``ca.crt`` and ``namespace`` at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` (a 1 h token bound to the Pod, renewed);
* ``sandbox``: bubblewrap — a read-only root when ``readOnlyRootFilesystem``, the volumes bound
  at their mount paths, ``runAsUser``/``runAsGroup`` in a user namespace, a PID namespace;
* ``cgroups``: ``limits.memory`` in a memory cgroup per run (OOMKilled reported);
* ``netshim``: each Pod's own loopback address (127.n.x.y) as its pod IP; a Python program's
  listeners on the wildcard or 127.0.0.1 are bound there, so replicas share port numbers (an
  emulated network namespace: Python programs only; the network itself is the host's);
* ``runner``: the per-pod worker, its loop and the supervision of its containers (exits,
  restarts, probes); ``container``: one container's state there; ``backoff``: the restart
  back-off; ``launch``: starting a container's run (volumes written, env and command, sandbox,
  memory cgroup); ``termination``: stopping runs and graceful deletion; ``publish``: the status
  written to the Pod, made by ``status``;
* ``process``, ``probes``, ``runtime``: a run's process, HTTP/TCP probes, and the node's set of
  workers and their pod IPs (also the ``pods/log`` source);
* ``logs_capture``, ``logs``: a run's stdout and stderr piped into its log file in the CRI
  format a container runtime writes (timestamped, per stream), and that format read back for
  ``kubectl logs`` (``--timestamps``, ``--since``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ImageCommand", "LocalPodOptions"]


@dataclass(frozen=True)
class ImageCommand:
    """What a container image is on this machine: ``pattern`` is matched (``fnmatch``) against
    the container's ``image`` as written in the Pod (``bifrost:*``); ``entrypoint`` and
    ``cmd`` are the image's ENTRYPOINT and CMD (a container's ``command`` replaces the first,
    its ``args`` the second); ``env`` the image's ENV; ``working_dir`` its WORKDIR. ``paths``:
    host directories that are the image's files (e.g. the venv the entrypoint lives in), bound
    read-only at the same path in the sandbox on top of the Pod's volumes — needed only where
    they lie under a volume's mount path such as ``/tmp``."""

    pattern: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalPodOptions:
    """``root``: per-pod directories (volumes, the ServiceAccount token, log files).
    ``sandbox``: ``"auto"`` (bubblewrap where it works), ``"required"`` (a Pod that cannot be
    sandboxed fails to start) or ``"off"``. ``backoff_base``/``backoff_cap``: the restart
    back-off, in seconds, as the kubelet's (10 s doubling to 300 s): a container that exits is
    restarted at once the first time, then after ``backoff_base * 2**n`` capped at
    ``backoff_cap`` (n: 0 for the second restart in a row, 1 for the third, ...); a run that
    lasted more than ``2 * backoff_cap`` starts the series again. ``memory_limits``: ``"auto"``
    (a container's ``resources.limits.memory`` is enforced by a memory cgroup where this
    machine has a writable one, v2 or v1; elsewhere not, with a ``MemoryLimitNotEnforced``
    Warning Event on the Pod) or ``"off"`` (never applied, no Event)."""

    images: tuple[ImageCommand, ...]
    root: Path
    sandbox: str = "auto"
    backoff_base: float = 10.0
    backoff_cap: float = 300.0
    memory_limits: str = "auto"

    def __post_init__(self) -> None:
        if self.memory_limits not in ("auto", "off"):
            raise ValueError(
                f"LocalPodOptions.memory_limits: {self.memory_limits!r} is not 'auto' or 'off'"
            )
