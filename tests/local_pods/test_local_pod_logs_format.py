"""The CRI log format a container run's output is written in (``devcluster.localpods.logs``,
``logs_capture``, ``process.ContainerProcess``) and read back by ``pods/log``
(``devcluster.pod_logs.LogRenderer``): partial lines, stdout against stderr, a line longer than
the buffer, output that ends without a newline, and the options applied to the entries.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.waiting import wait_for

from devcluster.localpods.logs import (
    LogEntry,
    encode_entry,
    format_time,
    parse_entries,
    parse_time,
)
from devcluster.localpods.logs_capture import LineSplitter, LogFile
from devcluster.localpods.process import ContainerProcess
from devcluster.pod_logs import LogOptions, LogRenderer, tail

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
SECOND = 1_000_000_000


class Ticks:
    """A clock that advances one second each time it is read, from T0."""

    def __init__(self) -> None:
        self.now = T0 - SECOND
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            self.now += SECOND
            return self.now


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def contents(data: bytes) -> bytes:
    entries, used = parse_entries(data)
    assert used == len(data)
    return b"".join(e.content for e in entries)


def test_times_are_rfc3339nano_in_utc_and_parse_back() -> None:
    assert format_time(T0) == "2026-01-01T00:00:00Z"
    assert format_time(T0 + 120_000_000) == "2026-01-01T00:00:00.12Z"
    assert format_time(T0 + 1) == "2026-01-01T00:00:00.000000001Z"
    for ns in (T0, T0 + 1, T0 + 120_000_000, T0 + 999_999_999):
        assert parse_time(format_time(ns)) == ns
    assert parse_time("2026-01-01T02:00:00.5+02:00") == T0 + SECOND // 2
    assert parse_time("2025-12-31T23:00:00-01:00") == T0
    for bad in ("2026-01-01", "2026-01-01T00:00:00", "yesterday", "2026-01-01T00:00:00.Z"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_entries_encode_and_parse() -> None:
    data = (
        encode_entry(T0, "stdout", False, b"hello world")
        + encode_entry(T0 + 1, "stderr", True, b"half ")
        + encode_entry(T0 + 2, "stderr", False, b"")
        + b"not an entry\n"
        + encode_entry(T0 + 3, "stdout", False, b"a  b ")
    )
    assert data.splitlines()[0] == b"2026-01-01T00:00:00Z stdout F hello world"
    assert data.splitlines()[1] == b"2026-01-01T00:00:00.000000001Z stderr P half "
    entries, used = parse_entries(data)
    assert used == len(data)
    assert entries == [
        LogEntry(T0, "stdout", False, b"hello world\n"),
        LogEntry(T0 + 1, "stderr", True, b"half "),  # a part: its newline is not content
        LogEntry(T0 + 2, "stderr", False, b"\n"),
        LogEntry(T0 + 3, "stdout", False, b"a  b \n"),
    ]


def test_a_line_still_being_written_is_left_for_later_unless_final() -> None:
    whole = encode_entry(T0, "stdout", False, b"one")
    cut = encode_entry(T0 + 1, "stdout", False, b"two")[:-3]
    entries, used = parse_entries(whole + cut, final=False)
    assert ([e.content for e in entries], used) == ([b"one\n"], len(whole))
    entries, used = parse_entries(whole + cut)
    assert ([e.content for e in entries], used) == ([b"one\n", b"t"], len(whole + cut))


def test_the_splitter_cuts_lines_as_containerd(tmp_path: Path) -> None:
    out = LogFile(tmp_path / "0.log", Ticks())
    split = LineSplitter("stdout", out, max_line=4)
    split.feed(b"ab\ncd")  # a whole line, and the start of one
    split.feed(b"ef")  # "cdef": exactly the limit, not cut yet
    split.feed(b"\n")
    split.feed(b"0123456789\n")  # longer than the limit: P P F
    split.feed(b"wxyz")
    split.feed(b"!")  # over the limit without a newline: cut as soon as it is read
    split.feed(b"\n\n")
    split.feed(b"tail")
    split.finish()  # the stream ended without a newline: a last P
    split.finish()  # nothing more
    out.close()
    assert lines(tmp_path / "0.log") == [
        b"2026-01-01T00:00:00Z stdout F ab\n",
        b"2026-01-01T00:00:01Z stdout F cdef\n",
        b"2026-01-01T00:00:02Z stdout P 0123\n",
        b"2026-01-01T00:00:03Z stdout P 4567\n",
        b"2026-01-01T00:00:04Z stdout F 89\n",
        b"2026-01-01T00:00:05Z stdout P wxyz\n",
        b"2026-01-01T00:00:06Z stdout F !\n",
        b"2026-01-01T00:00:07Z stdout F \n",
        b"2026-01-01T00:00:08Z stdout P tail\n",
    ]
    assert contents((tmp_path / "0.log").read_bytes()) == (b"ab\ncdef\n0123456789\nwxyz!\n\ntail")


@pytest.fixture
def log_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "logs" / "main" / "0.log"


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_process_writes_stdout_and_stderr_as_entries(log_path: Path) -> None:
    code = (
        "import os, sys\n"
        "os.write(1, b'out 1\\n')\n"
        "os.write(2, b'err 1\\n')\n"
        "os.write(1, b'x' * 20 + b'\\n')\n"  # longer than max_line
        "os.write(2, b'no newline')\n"
    )
    proc = ContainerProcess(
        _python(code), log_path, env=None, cwd=None, sandboxed=False, clock=Ticks(), max_line=8
    )
    assert _exit_code(proc) == 0
    entries, _ = parse_entries(log_path.read_bytes())
    by_stream = {
        s: [(e.partial, e.content) for e in entries if e.stream == s] for s in ("stdout", "stderr")
    }
    assert by_stream == {
        "stdout": [(False, b"out 1\n"), (True, b"x" * 8), (True, b"x" * 8), (False, b"xxxx\n")],
        "stderr": [(False, b"err 1\n"), (True, b"no newli"), (True, b"ne")],
    }
    # one clock, one writer: the file is in the order of its timestamps, a second apart
    assert [e.time_ns for e in entries] == [T0 + i * SECOND for i in range(len(entries))]


def test_the_output_is_all_written_when_the_exit_is_reported(log_path: Path) -> None:
    """A large output (many times a pipe's capacity) is drained while the program runs (it
    would block on a full pipe otherwise) and is all in the file once poll() reports the exit;
    the readers are gone and their pipes closed."""
    code = "import sys\nfor i in range(20000): print('line', i, 'x' * 40)\nprint('bye', end='')"
    before = {t.ident for t in threading.enumerate()}
    proc = ContainerProcess(_python(code), log_path, env=None, cwd=None, sandboxed=False)
    assert _exit_code(proc) == 0
    expected = "".join(f"line {i} {'x' * 40}\n" for i in range(20000)) + "bye"
    assert contents(log_path.read_bytes()) == expected.encode()
    assert parse_entries(log_path.read_bytes())[0][-1].partial
    assert proc.output_done(0)
    assert {t.ident for t in threading.enumerate()} - before == set()
    assert proc._popen.stdout is not None and proc._popen.stdout.closed
    assert proc._popen.stderr is not None and proc._popen.stderr.closed
    assert proc._capture.out.closed


def test_a_killed_process_still_has_its_output(log_path: Path) -> None:
    code = "import os, time\nos.write(1, b'started\\n')\nos.write(2, b'partial')\ntime.sleep(60)"
    proc = ContainerProcess(_python(code), log_path, env=None, cwd=None, sandboxed=False)
    wait_for(lambda: log_path.read_bytes().endswith(b"started\n"), what="the line logged")
    proc.kill()
    assert _exit_code(proc) == 137
    # the unterminated write is a P entry once the pipe closes
    assert contents(log_path.read_bytes()) == b"started\npartial"


def _exit_code(proc: ContainerProcess) -> int:
    proc._popen.wait(timeout=60)
    code = proc.poll()
    assert code is not None
    return code


def _entries() -> list[LogEntry]:
    """Lines written a second apart from T0; the third is cut into two parts."""
    data = b"".join(
        encode_entry(T0 + i * SECOND, stream, partial, content)
        for i, (stream, partial, content) in enumerate(
            [
                ("stdout", False, b"zero"),
                ("stderr", False, b"one"),
                ("stdout", True, b"two "),
                ("stdout", False, b"and a half"),
                ("stdout", False, b"four"),
            ]
        )
    )
    return parse_entries(data)[0]


def _render(**options: object) -> bytes:
    tail_lines = options.pop("tail_lines", None)
    assert tail_lines is None or isinstance(tail_lines, int)
    opts = LogOptions(**options)  # type: ignore[arg-type]
    return LogRenderer(opts).render(tail(_entries(), tail_lines))


def test_the_renderer_applies_upstreams_options() -> None:
    assert _render() == b"zero\none\ntwo and a half\nfour\n"
    assert _render(timestamps=True) == (
        b"2026-01-01T00:00:00Z zero\n"
        b"2026-01-01T00:00:01Z one\n"
        b"2026-01-01T00:00:02Z two and a half\n"  # the time of the line's first part
        b"2026-01-01T00:00:04Z four\n"
    )
    # at or after the time
    assert _render(since_ns=T0 + SECOND) == b"one\ntwo and a half\nfour\n"
    assert _render(since_ns=T0 + SECOND + 1) == b"two and a half\nfour\n"
    assert _render(since_ns=T0 + 3 * SECOND) == b"and a half\nfour\n"
    # the last entries of the file (each part counts), then the time
    assert _render(tail_lines=2) == b"and a half\nfour\n"
    assert _render(tail_lines=0) == b""
    assert _render(tail_lines=3, since_ns=T0 + 3 * SECOND) == b"and a half\nfour\n"
    # the first bytes of the answer, timestamps included
    assert _render(limit_bytes=7) == b"zero\non"
    assert _render(timestamps=True, limit_bytes=23) == b"2026-01-01T00:00:00Z ze"


def test_the_renderer_keeps_its_state_across_a_followed_log() -> None:
    entries = _entries()
    renderer = LogRenderer(LogOptions(timestamps=True, limit_bytes=100))
    assert renderer.render(entries[:3]) == (
        b"2026-01-01T00:00:00Z zero\n2026-01-01T00:00:01Z one\n2026-01-01T00:00:02Z two "
    )
    assert renderer.render(entries[3:4]) == b"and a half\n"  # the rest of the line, no stamp
    assert not renderer.done
    assert renderer.render(entries[4:]) == b"2026-01-01T00"  # 87 sent before
    assert renderer.done


def test_a_log_that_cannot_be_written_does_not_block_the_program(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Writes to /dev/full fail (ENOSPC): the output is dropped, the pipes still drained."""
    code = "for i in range(20000): print('line', i, 'x' * 40)"
    proc = ContainerProcess(_python(code), Path("/dev/full"), env=None, cwd=None, sandboxed=False)
    assert _exit_code(proc) == 0
    assert proc.output_done(0)
    warnings = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
    assert warnings == [
        "cannot write the container log /dev/full: [Errno 28] No space left on device"
    ]
