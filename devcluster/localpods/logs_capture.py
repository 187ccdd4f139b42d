"""A container run's output written to its log file in the CRI format (:mod:`.logs`), as a
container runtime does it: the process's stdout and stderr are two pipes, each drained by its
own thread, cut into lines and written as entries stamped with the time they are written.

Draining never waits on anything but the log file, so a program is never blocked on a full
pipe by the reader. A reader ends when its pipe closes (every process holding its write end has
exited or closed it): it writes what is left (an unterminated line as a ``P`` entry) and closes
the pipe; the last one to end closes the log file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from devcluster.localpods.logs import MAX_LINE, encode_entry

__all__ = ["LineSplitter", "LogFile", "StreamCapture"]

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024

Clock = Callable[[], int]
"""Nanoseconds since the epoch (``time.time_ns``)."""


class LogFile:
    """A run's log file, open for appending. Each entry is one ``write`` under one lock: the
    two streams' entries never interleave, and the file is in the order of its timestamps. A
    failed write is logged (once) and the entry dropped, as containerd does."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._failed = False
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, stream: str, partial: bool, content: bytes) -> None:
        with self._lock:
            if self._fd is None:
                raise ValueError(f"log file {self.path} is closed")
            data = memoryview(encode_entry(self._clock(), stream, partial, content))
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError as e:  # keep draining the pipes: the program must not block on them
                if not self._failed:
                    log.warning("cannot write the container log %s: %s", self.path, e)
                self._failed = True

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    @property
    def closed(self) -> bool:
        return self._fd is None


class LineSplitter:
    """One stream's bytes as entries, as containerd cuts them: a line (without its newline) is
    an ``F`` entry; a line longer than ``max_line`` gives ``P`` entries of ``max_line`` bytes
    first (as soon as they are read); what is left without a newline when the stream ends is a
    ``P`` entry."""

    def __init__(self, stream: str, out: LogFile, max_line: int = MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.stream = stream
        self.out = out
        self.max_line = max_line
        self._pending = b""

    def feed(self, data: bytes) -> None:
        buf = self._pending + data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            start = self._whole_parts(buf, start, end)
            self.out.write(self.stream, False, buf[start:end])
            start = end + 1
        start = self._whole_parts(buf, start, len(buf))
        self._pending = buf[start:]

    def _whole_parts(self, buf: bytes, start: int, end: int) -> int:
        """Write ``P`` entries while more than ``max_line`` bytes remain before ``end``."""
        while end - start > self.max_line:
            self.out.write(self.stream, True, buf[start : start + self.max_line])
            start += self.max_line
        return start

    def finish(self) -> None:
        """The stream has ended: an unterminated line is written as a ``P`` entry."""
        if self._pending:
            self.out.write(self.stream, True, self._pending)
            self._pending = b""


class StreamCapture:
    """Copies each of ``pipes`` (stream name -> the read end) into ``out`` on a thread of its
    own until it closes; closes each pipe, and ``out`` once all have ended."""

    def __init__(
        self,
        pipes: Mapping[str, IO[bytes]],
        out: LogFile,
        *,
        max_line: int = MAX_LINE,
        name: str = "container",
    ) -> None:
        self.out = out
        self._lock = threading.Lock()
        self._open = len(pipes)
        self._threads = [
            threading.Thread(
                target=self._copy,
                args=(pipe, LineSplitter(stream, out, max_line)),
                name=f"devcluster-log-{name}-{stream}",
                daemon=True,
            )
            for stream, pipe in pipes.items()
        ]
        for t in self._threads:
            t.start()
        if not pipes:
            out.close()

    def _copy(self, pipe: IO[bytes], splitter: LineSplitter) -> None:
        try:
            fd = pipe.fileno()
            while True:
                data = os.read(fd, READ_SIZE)
                if not data:
                    break
                splitter.feed(data)
            splitter.finish()
        finally:
            pipe.close()
            with self._lock:
                self._open -= 1
                last = self._open == 0
            if last:
                self.out.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for every stream to end; True when they have (all
        the output is in the log file, which is closed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)
