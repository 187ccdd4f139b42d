"""A local kubelet: Pods whose image is mapped to a local command run as real processes.

The simulated kubelet (:mod:`devcluster.controllers.kubelet`) gives every other Pod a status
and nothing more; a Pod whose every container's image matches one of
:attr:`LocalPodOptions.images` is started here instead, as processes on this machine (see
``devcluster-spec.md``, "Local pods"). Off unless ``DevCluster(local_pods=...)`` is given.
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
    its ``args`` the second); ``env`` the image's ENV; ``working_dir`` its WORKDIR."""

    pattern: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None


@dataclass(frozen=True)
class LocalPodOptions:
    """``root``: per-pod directories (volumes, the ServiceAccount token, log files).
    ``sandbox``: ``"auto"`` (bubblewrap where it works), ``"required"`` (a Pod that cannot be
    sandboxed fails to start) or ``"off"``. ``backoff_base``/``backoff_cap``: the restart
    back-off, in seconds (the kubelet's 10 s doubling to 300 s). ``memory_limits``: ``"auto"``
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
