"""One container of a local pod as its worker keeps it: its spec and image, its current run
(process, memory cgroup, probes), how often it ran, its back-off, and the
:class:`~devcluster.localpods.status.ContainerView` its status is made of.

A run's output goes to ``<pod dir>/logs/<container>/<run>.log`` (run 0, 1, ...), which the
``pods/log`` source reads (the current run, or the one before it with ``previous``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.localpods import ImageCommand, cgroups
from devcluster.localpods.backoff import RestartBackoff
from devcluster.localpods.probes import ProbeState
from devcluster.localpods.process import ContainerProcess
from devcluster.localpods.status import ContainerView

__all__ = ["Container", "run_log"]

JSON = dict[str, Any]


def run_log(pod_dir: Path, container: str, run: int) -> Path:
    """The log file of run ``run`` (0, 1, ...) of ``container``."""
    return pod_dir / "logs" / container / f"{run}.log"


@dataclass
class Container:
    spec: JSON
    image: ImageCommand
    init: bool
    view: ContainerView
    backoff: RestartBackoff
    process: ContainerProcess | None = None
    runs: int = 0  # runs started; the current (or last) one is runs - 1
    backoff_until: float = 0.0
    finished: bool = False  # terminated for good (init done, or not to be restarted)
    probes: dict[str, ProbeState] | None = None
    started_mono: float = 0.0
    cgroup: cgroups.ContainerCgroup | None = None  # the current run's memory cgroup

    def release_cgroup(self, code: int) -> bool:
        """Remove the ended run's cgroup; whether the OOM killer fired in it."""
        cg, self.cgroup = self.cgroup, None
        if cg is None:
            return False
        oom = cg.oom_killed(code)
        cg.remove()
        return oom
