"""One run of one container: a process group whose output goes to the run's log file.

The output is written as a container runtime writes it (the CRI format of :mod:`.logs`): stdout
and stderr are pipes drained by :class:`~.logs_capture.StreamCapture`; the pipes are the
process's fds 1 and 2, inherited through bubblewrap like any fd. When the run is over,
:meth:`ContainerProcess.poll` waits (at most :data:`DRAIN_SECONDS`) for the pipes to be drained,
so the log is complete once the exit is reported; a process of the group that outlives the main
one and keeps the pipes open keeps the readers going (and its output logged) until it exits or
is killed with the group (:meth:`ContainerProcess.kill`).

The kubelet signals the whole group: SIGTERM to every member except a bubblewrap parent (bwrap
dies of SIGTERM and ``--die-with-parent`` would SIGKILL the container at once, cutting its
grace period short), then SIGKILL to the group when the grace period is over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from devcluster.localpods.logs import MAX_LINE
from devcluster.localpods.logs_capture import Clock, LogFile, StreamCapture

__all__ = ["DRAIN_SECONDS", "ContainerProcess", "group_members"]

DRAIN_SECONDS = 2.0
"""How long an exit waits for the rest of the output to reach the log file."""


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """Each process's pid and the fields of its /proc stat after the command name (state,
    ppid, pgrp, ...)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        yield int(entry), stat[stat.rfind(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """The pids of process group ``pgid`` (from /proc)."""
    return [pid for pid, fields in proc_stats() if len(fields) > 2 and fields[2] == str(pgid)]


class ContainerProcess:
    """A started container run; ``sandboxed``: ``argv[0]`` is bwrap. ``clock`` stamps the log
    entries (nanoseconds since the epoch); ``max_line``: the longest line written as one."""

    def __init__(
        self,
        argv: Sequence[str],
        log_file: Path,
        *,
        env: dict[str, str] | None,
        cwd: str | None,
        sandboxed: bool,
        clock: Clock = time.time_ns,
        max_line: int = MAX_LINE,
    ) -> None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file = log_file
        self.sandboxed = sandboxed
        self.started = time.time()
        out = LogFile(log_file, clock)
        try:
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            out.close()
            raise
        assert self._popen.stdout is not None and self._popen.stderr is not None
        self.pid = self._popen.pid
        self.finished: float | None = None
        self._capture = StreamCapture(
            {"stdout": self._popen.stdout, "stderr": self._popen.stderr},
            out,
            max_line=max_line,
            name=str(self.pid),
        )

    def poll(self) -> int | None:
        """The exit code once the run is over (a signal N is 128+N, as a runtime reports)."""
        code = self._popen.poll()
        if code is None:
            return None
        if self.finished is None:
            self.finished = time.time()
            self._capture.wait(DRAIN_SECONDS)
        return 128 - code if code < 0 else code

    def output_done(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the output to be all in the log file (the pipes
        closed); True when it is."""
        return self._capture.wait(timeout)

    def terminate(self) -> None:
        """SIGTERM to the container's processes."""
        members = group_members(self.pid) or [self.pid]
        for pid in members:
            if self.sandboxed and pid == self.pid:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the whole group (the sandbox's PID namespace dies with bwrap)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def stop(self, grace: float) -> int:
        """SIGTERM, up to ``grace`` seconds, then SIGKILL; returns the exit code."""
        self.terminate()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            code = self.poll()
            if code is not None:
                self.kill()  # stragglers of the group
                return code
            time.sleep(0.05)
        self.kill()
        self._popen.wait()
        code = self.poll()
        return 137 if code is None else code
