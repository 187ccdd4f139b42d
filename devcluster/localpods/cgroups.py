"""Memory cgroups for the local kubelet: ``resources.limits.memory`` enforced by the kernel.

Each container run with a memory limit gets its own memory cgroup,
``<base>/devcluster-<kubelet pid>/<pod uid>-<container>-<run>``, where ``<base>`` is this
process's own cgroup in the memory hierarchy (so the containers stay inside whatever accounts
for the kubelet) or, if that cannot take a child, the hierarchy's root. The limit is
``memory.limit_in_bytes`` (cgroup v1, plus ``memory.memsw.limit_in_bytes`` at the same value
where swap accounting exists, so swap does not dodge it) or ``memory.max`` (v2, plus
``memory.swap.max`` = 0 where present).

The container joins its cgroup without a race: it is spawned through ``/bin/sh -c 'echo $$ >
<cgroup>/cgroup.procs && exec "$@"'``, so the shell moves itself in and then execs the real
command (bwrap), and every descendant is born inside. If the shell cannot join, it exits 1
before the command runs. After the run: did the OOM killer fire in the cgroup (v1: the
``oom_kill`` count of ``memory.oom_control``, or on kernels without it ``memory.failcnt`` > 0
with a SIGKILL exit; v2: ``oom_kill`` in ``memory.events``)? Then the cgroup is removed (its
leftover processes, if any, are SIGKILLed). The parent ``devcluster-<pid>`` is removed when its
last child is, and at interpreter exit.

Which hierarchy: cgroup v2 when the memory controller can be enabled for a child we create,
else v1's memory hierarchy, else none; :func:`hierarchy` probes once (creating and removing a
test cgroup) and remembers the answer.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import shlex
import signal
import threading
import time
from dataclasses import dataclass
from decimal import InvalidOperation
from pathlib import Path

from devcluster.validation_rules.library import _parse_quantity

__all__ = [
    "ContainerCgroup",
    "Hierarchy",
    "cgroup_name",
    "create",
    "hierarchy",
    "memory_bytes",
    "parent_dir",
]

_lock = threading.Lock()
_probed = False
_found: Hierarchy | None = None


@dataclass(frozen=True)
class Hierarchy:
    """A usable memory hierarchy: ``version`` 1 or 2; ``base``: where the kubelet's parent
    cgroup is created."""

    version: int
    base: Path


def memory_bytes(quantity: str) -> int:
    """The bytes of a Kubernetes memory quantity (``64Mi``, ``1.5Gi``, ``1G``, ``1e3``,
    ``128974848``), rounded up as upstream's ``Value()``; ValueError names the quantity."""
    try:
        value = _parse_quantity(str(quantity).strip())
    except (ValueError, InvalidOperation) as e:
        raise ValueError(f"invalid memory quantity {quantity!r}: {e}") from None
    if value <= 0:
        raise ValueError(f"invalid memory quantity {quantity!r}: it must be positive")
    return math.ceil(value)


def cgroup_name(pod_uid: str, container: str, run: int) -> str:
    """The directory name of one container run's cgroup."""
    return f"{pod_uid}-{container}-{run}"


def parent_dir(h: Hierarchy, pid: int | None = None) -> Path:
    """The kubelet's parent cgroup (``devcluster-<pid>``) in ``h``."""
    return h.base / f"devcluster-{os.getpid() if pid is None else pid}"


# ------------------------------------------------------------------------------------ detection


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, fs type, options) of the cgroup file systems."""
    out = []
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                    out.append((parts[1], parts[2], parts[3].split(",")))
    except OSError:
        pass
    return out


def _own_path(version: int) -> str:
    """This process's cgroup path in the v2 hierarchy or the v1 memory one ("/" if unknown)."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if version == 2 and controllers == "":
                    return path
                if version == 1 and "memory" in controllers.split(","):
                    return path
    except (OSError, ValueError):
        pass
    return "/"


def _bases(mount: str, own: str) -> list[Path]:
    root = Path(mount)
    mine = root / own.lstrip("/")
    return [mine, root] if mine != root else [root]


def _try_v2(base: Path) -> bool:
    """Can a child of ``base`` get its own ``memory.max``? (probes, leaves nothing behind)"""
    try:
        if "memory" not in (base / "cgroup.controllers").read_text().split():
            return False
        if "memory" not in (base / "cgroup.subtree_control").read_text().split():
            (base / "cgroup.subtree_control").write_text("+memory")
    except OSError:
        return False
    return _try_child(Hierarchy(2, base), "memory.max")


def _try_v1(base: Path) -> bool:
    return _try_child(Hierarchy(1, base), "memory.limit_in_bytes")


def _try_child(h: Hierarchy, limit_file: str) -> bool:
    parent = parent_dir(h)
    test = parent / "probe"
    try:
        _make_parent(h)
        test.mkdir()
        ok = (test / limit_file).exists()
    except OSError:
        ok = False
    with contextlib.suppress(OSError):
        test.rmdir()
    with contextlib.suppress(OSError):
        parent.rmdir()
    return ok


def _make_parent(h: Hierarchy) -> Path:
    parent = parent_dir(h)
    parent.mkdir(exist_ok=True)
    if h.version == 2:
        control = parent / "cgroup.subtree_control"
        if "memory" not in control.read_text().split():
            control.write_text("+memory")
    return parent


def hierarchy() -> Hierarchy | None:
    """The usable memory hierarchy of this machine, probed on the first call."""
    global _probed, _found
    with _lock:
        if not _probed:
            _probed = True
            _found = _detect()
            if _found is not None:
                atexit.register(remove_parent)
        return _found


def _detect() -> Hierarchy | None:
    mounts = _mounts()
    for mount, fstype, _ in mounts:
        if fstype == "cgroup2":
            for base in _bases(mount, _own_path(2)):
                if _try_v2(base):
                    return Hierarchy(2, base)
    for mount, fstype, options in mounts:
        if fstype == "cgroup" and "memory" in options:
            for base in _bases(mount, _own_path(1)):
                if _try_v1(base):
                    return Hierarchy(1, base)
    return None


def remove_parent() -> None:
    """Remove the kubelet's parent cgroup if no container cgroup is left in it."""
    with _lock:
        if _found is not None:
            with contextlib.suppress(OSError):
                parent_dir(_found).rmdir()


# ------------------------------------------------------------------------------------ one run


def _read_count(path: Path, key: str) -> int | None:
    """The value of ``key N`` in a flat-keyed cgroup file, None when absent."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return None


@dataclass(frozen=True)
class ContainerCgroup:
    """The memory cgroup of one container run."""

    path: Path
    version: int
    limit: int

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run so that it starts inside this cgroup (see the module docstring)."""
        procs = shlex.quote(str(self.path / "cgroup.procs"))
        return ["/bin/sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *argv]

    def oom_killed(self, exit_code: int) -> bool:
        """Whether the OOM killer killed a process of this cgroup (read before :meth:`remove`)."""
        if self.version == 2:
            return (_read_count(self.path / "memory.events", "oom_kill") or 0) > 0
        kills = _read_count(self.path / "memory.oom_control", "oom_kill")
        if kills is not None:
            return kills > 0
        try:
            failcnt = int((self.path / "memory.failcnt").read_text())
        except (OSError, ValueError):
            return False
        return failcnt > 0 and exit_code == 128 + signal.SIGKILL

    def procs(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def remove(self, wait: float = 2.0) -> None:
        """Remove the cgroup once its processes are gone (SIGKILL to stragglers after
        ``wait`` seconds), then the parent if it is empty."""
        deadline = time.monotonic() + wait
        killed = False
        while True:
            try:
                self.path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() >= deadline:
                    if killed:
                        return  # cannot remove it; remove_parent at exit will try again
                    for pid in self.procs():
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    killed = True
                    deadline = time.monotonic() + wait
                time.sleep(0.02)
        remove_parent()


def create(pod_uid: str, container: str, run: int, limit: int) -> ContainerCgroup:
    """A fresh cgroup limited to ``limit`` bytes for one container run; OSError when it cannot
    be made (call :func:`hierarchy` first: it must not be None)."""
    h = hierarchy()
    if h is None:
        raise OSError("no usable memory cgroup hierarchy on this machine")
    with _lock:  # the parent is not removed while a child is being made
        path = _make_parent(h) / cgroup_name(pod_uid, container, run)
        with contextlib.suppress(FileExistsError):
            path.mkdir()
    cg = ContainerCgroup(path, h.version, limit)
    try:
        if h.version == 2:
            (path / "memory.max").write_text(str(limit))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
        else:
            (path / "memory.limit_in_bytes").write_text(str(limit))
            if (path / "memory.memsw.limit_in_bytes").exists():
                (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
    except OSError:
        cg.remove(0)
        raise
    return cg
