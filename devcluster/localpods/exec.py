"""Running a command in a local container (``kubectl exec``): the command line, environment
and working directory of a process that joins the container's current run.

A sandboxed run is ``bwrap`` (the kubelet's child, on the host) whose child is the sandbox's
init (pid 1 of the new PID namespace) whose child is the container's command. The exec'd
command enters that command's namespaces with ``nsenter`` (user, mount, PID, IPC and UTS: it
sees the container's files, volumes and processes, ``ps`` included, since nsenter forks into
the PID namespace), its root and working directory, as the container's user and group (read
from the namespace's uid/gid maps: the ``runAsUser`` the container runs as). An unsandboxed run
is the command itself: the exec'd one starts next to it. Either way it gets the container's
environment, read from ``/proc/<pid>/environ`` (what the kubelet gave the container, not what
the container later changed of its own).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from devcluster.localpods.process import proc_stats

__all__ = ["ContainerNotRunning", "ExecPlan", "plan_exec", "sandboxed_command"]


class ContainerNotRunning(Exception):
    """The container has no running process to join."""


@dataclass(frozen=True)
class ExecPlan:
    """How to start the exec'd command: ``argv`` with exactly ``env`` in ``cwd`` (None: the
    working directory is set by ``argv`` itself, nsenter's ``-w``)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc), lowest first."""
    return sorted(p for p, fields in proc_stats() if len(fields) > 1 and fields[1] == str(pid))


def sandboxed_command(bwrap_pid: int) -> int | None:
    """The pid (on the host) of the container's command in bwrap ``bwrap_pid``'s sandbox: the
    first child of the sandbox's init, or None when it is not (or no longer) there."""
    for init in _children(bwrap_pid):
        commands = _children(init)
        if commands:
            return commands[0]
    return None


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.decode("utf-8", "surrogateescape").partition("=")
        if sep and key:
            env[key] = value
    return env


def _inside_id(pid: int, which: str, outside: int) -> int:
    """The id of the namespace of ``pid`` that ``outside`` (a host id) is mapped to."""
    with open(f"/proc/{pid}/{which}_map", encoding="ascii") as f:
        for line in f:
            fields = line.split()
            if len(fields) == 3:
                inside, start, count = (int(x) for x in fields)
                if start <= outside < start + count:
                    return inside + outside - start
    raise ContainerNotRunning(f"host id {outside} is not mapped in the container's {which}_map")


def plan_exec(pid: int, sandboxed: bool, command: Sequence[str]) -> ExecPlan:
    """How to run ``command`` in the container whose current run is process ``pid`` (bwrap's
    when ``sandboxed``); raises :class:`ContainerNotRunning` when that run is gone."""
    try:
        if not sandboxed:
            return ExecPlan(list(command), _environ(pid), os.readlink(f"/proc/{pid}/cwd"))
        target = sandboxed_command(pid)
        if target is None:
            raise ContainerNotRunning("the container's process is not running")
        env = _environ(target)
        uid = _inside_id(target, "uid", os.geteuid())
        gid = _inside_id(target, "gid", os.getegid())
    except OSError as e:  # the process ended meanwhile
        raise ContainerNotRunning(f"the container's process is gone: {e}") from e
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise ContainerNotRunning("nsenter (util-linux) is not installed on this machine")
    argv = [nsenter, "-t", str(target), "-U", "-m", "-p", "-i", "-u", "-r", "-w"]
    argv += ["-S", str(uid), "-G", str(gid), "--", *command]
    return ExecPlan(argv, env, None)
