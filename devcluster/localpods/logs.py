"""The CRI container log format: the file a container runtime writes for each run of a
container and the kubelet reads to answer ``pods/log``.

One entry per line, ``<time> <stream> <tag> <content>\\n``:

* ``time``: RFC3339Nano in UTC (``2026-01-02T03:04:05.123456789Z``, trailing zeros of the
  fraction dropped, as Go's ``time.RFC3339Nano``), when the runtime wrote the entry;
* ``stream``: ``stdout`` or ``stderr`` — the runtime reads each through its own pipe;
* ``tag``: ``F`` for a whole line (its newline is the entry's), ``P`` for a part of one: a line
  longer than the runtime's buffer is cut into ``P`` entries of that size and ends with an ``F``
  entry, and output that ends without a newline (the stream closed) is a last ``P`` entry.

As containerd's ``redirectLogs`` writes it (its ``max_container_log_line_size`` is
:data:`MAX_LINE`) and the kubelet's ``parseCRILog`` reads it: the content of an ``F`` entry
is returned with its newline, that of a ``P`` entry without, so joining the contents gives back
exactly what the program printed on that stream. A line that does not parse is skipped, as the
kubelet does.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

__all__ = [
    "MAX_LINE",
    "LogEntry",
    "encode_entry",
    "format_time",
    "parse_entries",
    "parse_time",
]

MAX_LINE = 16 * 1024
"""The longest line content written as one entry (containerd's default)."""

STREAMS = ("stdout", "stderr")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def format_time(ns: int) -> str:
    """``ns`` (nanoseconds since the epoch) as RFC3339Nano in UTC."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = (_EPOCH + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def parse_time(text: str) -> int:
    """An RFC3339 time (any fraction up to nanoseconds, ``Z`` or an offset) in nanoseconds since
    the epoch; ValueError when ``text`` is not one."""
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"not an RFC3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    offset = datetime.timedelta(0)
    if m.group(9):
        offset = datetime.timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        if m.group(9) == "-":
            offset = -offset
    when = datetime.datetime(
        year, month, day, hour, minute, second, tzinfo=datetime.timezone(offset)
    )
    whole = (when - _EPOCH) // datetime.timedelta(seconds=1)
    return whole * 1_000_000_000 + int((m.group(7) or "").ljust(9, "0"))


@dataclass(frozen=True)
class LogEntry:
    """One line of the log file; ``content`` is as the kubelet returns it (an ``F`` entry's with
    its newline, a ``P`` entry's without)."""

    time_ns: int
    stream: str
    partial: bool
    content: bytes


def encode_entry(time_ns: int, stream: str, partial: bool, content: bytes) -> bytes:
    """One line of the log file; ``content`` without a newline (the line's own ends it)."""
    tag = b"P" if partial else b"F"
    return b"%s %s %s %s\n" % (format_time(time_ns).encode(), stream.encode(), tag, content)


def parse_entry(line: bytes) -> LogEntry | None:
    """One line of the log file (with or without its newline); None when it is not an entry."""
    parts = line.split(b" ", 3)
    if len(parts) < 4:
        return None
    stamp, stream, tags, content = parts
    if stream not in (b"stdout", b"stderr"):
        return None
    try:
        time_ns = parse_time(stamp.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    partial = tags.split(b":")[0] == b"P"  # later tags are for forward compatibility
    if partial and content.endswith(b"\n"):
        content = content[:-1]
    return LogEntry(time_ns, stream.decode(), partial, content)


def parse_entries(data: bytes, *, final: bool = True) -> tuple[list[LogEntry], int]:
    """The entries of ``data`` and how many of its bytes they take. ``final``: ``data`` is all
    there is, a last line without its newline is read too; otherwise it is left (the runtime is
    still writing it) and not counted, so a follower reads it again with what comes next."""
    entries: list[LogEntry] = []
    used = 0
    while used < len(data):
        end = data.find(b"\n", used)
        if end < 0:
            if not final:
                break
            end = len(data) - 1
        entry = parse_entry(data[used : end + 1])
        if entry is not None:
            entries.append(entry)
        used = end + 1
    return entries, used
