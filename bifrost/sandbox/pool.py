"""Supervised sandbox worker processes: a hard time and memory limit around blueprint code.

Why processes: the CEL library evaluates in Rust while holding the GIL, and a single C call on a
large input (a sort, a regex) cannot be interrupted from Python. Run in the controller's process,
one hostile expression froze every thread — Lease renewal and health included. Here the calling
thread waits on a pipe (the GIL is free for everyone else); when a call overruns its time budget
the worker is killed and a fresh one takes its place, and a worker over its memory limit fails
alone.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from bifrost.sandbox import codec
from bifrost.sandbox.frames import HEADER, MAX_FRAME, PROGRESS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxSettings:
    """How many workers, and the hard limits of each call (documented in docs/security.md)."""

    workers: int = 2
    memory_mb: int = 384
    """Address-space limit of a worker (``RLIMIT_AS``); 0: none."""
    render_seconds: float = 10.0
    """Hard wall time of one render call (all children of one Gateway or one route)."""
    expression_seconds: float = 2.0
    """Hard wall time of one CEL evaluation."""


class SandboxTimeout(Exception):
    """A call overran its time budget; its worker was killed. ``at``: (child id, template field)
    of the child that was rendering, when the call renders children."""

    def __init__(self, message: str, at: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.at = at


class SandboxFailure(Exception):
    """A worker died or answered something unreadable (e.g. it hit its memory limit)."""


_INHERITED_ENV = frozenset({
    "PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
    "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "OPENBLAS_CORETYPE",
})


class _Worker:
    def __init__(self, settings: SandboxSettings) -> None:
        # Only what Python needs to start: the controller's environment (a database URL with
        # its password, cloud or cluster settings) is not the sandbox's business.
        env = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV}
        env["BIFROST_SANDBOX_MEMORY_MB"] = str(settings.memory_mb)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bifrost.sandbox.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.stdout_fd = self.process.stdout.fileno()
        self.at: tuple[str, str] | None = None
        """(child id, template field) the current call was last rendering."""

    def call(self, payload: bytes, timeout: float) -> bytes:
        """Send one request; the reply frame. Progress frames on the way say which child is
        rendering (``self.at``), so that a timeout can name it."""
        self.at = None
        deadline = time.monotonic() + timeout
        self.stdin.write(HEADER.pack(len(payload)) + payload)
        self.stdin.flush()
        while True:
            (size,) = HEADER.unpack(self._read(HEADER.size, deadline, timeout))
            if size > MAX_FRAME:
                raise SandboxFailure(f"the worker sent a frame of {size} bytes")
            frame = self._read(size, deadline, timeout)
            if not frame.startswith(PROGRESS):
                return frame
            try:
                child_id, field = json.loads(frame[len(PROGRESS):])
                self.at = (str(child_id), str(field))
            except (ValueError, TypeError):
                raise SandboxFailure("the worker sent an unreadable progress frame") from None

    def _read(self, size: int, deadline: float, timeout: float) -> bytes:
        chunks: list[bytes] = []
        remaining = size
        while remaining:
            # select's own timeout is real time, also when a test freezes the clock
            wait = min(max(deadline - time.monotonic(), 0.0), timeout)
            ready, _, _ = select.select([self.stdout_fd], [], [], wait)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.stdout_fd, min(remaining, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def exit_status(self) -> str | None:
        """How the worker ended, in words (``None``: still running after a short wait)."""
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None
        if code < 0:
            name = {6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV"}.get(-code, f"signal {-code}")
            hint = " (over its memory limit?)" if -code in (6, 9) else ""
            return f"was ended by {name}{hint}"
        return f"exited with status {code}" + (" (it could not start?)" if code else "")

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class Sandbox:
    """A small pool of worker processes, started on first use, shared by every thread."""

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self._lock = threading.Condition()
        """Guards the sets below; notified whenever a worker goes idle or a slot frees up."""
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()
        self._closed = False
        self.kills = 0
        """Workers killed for overrunning (for tests and metrics)."""

    def call(self, name: str, *args: Any, timeout: float, **kwargs: Any) -> Any:
        """Run ``worker.CALLS[name](*args, **kwargs)`` in a worker; its result, or the
        ``RenderError``/``NotAvailable`` it raised, raised here."""
        payload = codec.dumps((name, list(args), kwargs))
        worker = self._take()
        try:
            reply = worker.call(payload, timeout)
        except TimeoutError:
            self._discard(worker, killed=True)
            raise SandboxTimeout(f"over {timeout:g} s", worker.at) from None
        except (EOFError, OSError, SandboxFailure) as exc:
            status = worker.exit_status()
            self._discard(worker)
            raise SandboxFailure(f"the sandbox worker {status or 'failed'} "
                                 f"({type(exc).__name__})") from None
        except BaseException:
            self._discard(worker)
            raise
        with self._lock:
            self._idle.append(worker)
            self._lock.notify()
        try:
            kind, value = codec.loads(reply)
        except (codec.CodecError, ValueError, TypeError) as exc:
            raise SandboxFailure(f"unreadable reply from the sandbox ({exc})") from None
        if kind == "ok":
            return value
        if kind == "raise" and isinstance(value, Exception):
            raise value
        raise SandboxFailure(str(value))

    def _take(self) -> _Worker:
        """An idle worker, or a new one while there is room; else wait until a worker goes idle
        or one is discarded (a killed worker's slot is taken by a new one)."""
        with self._lock:
            while True:
                if self._closed:
                    raise SandboxFailure("the sandbox is shut down")
                if self._idle:
                    return self._idle.pop()
                if len(self._live) < self.settings.workers:
                    worker = _Worker(self.settings)
                    self._live.add(worker)
                    return worker
                self._lock.wait()

    def _discard(self, worker: _Worker, *, killed: bool = False) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)
            if killed:
                self.kills += 1
            self._lock.notify()
        if killed:
            log.warning("sandbox worker %s killed: a call overran its time budget",
                        worker.process.pid)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._live.clear()
            self._idle.clear()
            self._lock.notify_all()
        for worker in workers:
            worker.kill()


_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox (started lazily; ``configure`` replaces its settings)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
        return _default


def configure(settings: SandboxSettings) -> Sandbox:
    """Replace the process-wide sandbox (the controller calls this from its settings)."""
    global _default
    with _default_lock:
        old, _default = _default, Sandbox(settings)
    if old is not None:
        old.close()
    return _default


@atexit.register
def _close_default() -> None:
    if _default is not None:
        _default.close()
