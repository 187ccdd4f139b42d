"""The on-disk form of a devcluster's state: a snapshot plus an append-only journal.

With ``--state-file PATH`` the store keeps

- ``PATH``: a JSON snapshot, replaced atomically (write to a temporary file, fsync, rename over,
  fsync the directory). It holds the objects as they were at ``baseResourceVersion`` and the
  watch-history window that follows (``events``), so a restart can replay history, like etcd's
  compaction window. It names the journal generation that continues it.
- ``PATH.journal.<generation>``: every committed change after the snapshot, one record per line
  (``<crc32 hex> <json>``), appended and fsynced before the request that made the change is
  answered. Writers that commit at the same time share one fsync (group commit).

A record is ``{"rv", "t", "g", "p", "o"}``: the resourceVersion, the type (``ADDED``,
``MODIFIED``, ``DELETED``; ``REPLACE`` for an object swapped without an event; ``COMPACT`` for a
history reset), the (group, plural) and the object (the last state for DELETED). Reading stops at
the first torn or corrupt record (bad checksum, no newline, not JSON, a gap in resourceVersions)
and drops it and everything after it: a crash loses at most the writes that were not yet
acknowledged, and never leaves a state that cannot be loaded.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "EVENT_TYPES",
    "Journal",
    "Record",
    "decode_records",
    "encode_record",
    "journal_files",
    "read_snapshot",
    "write_snapshot",
]

JSON = dict[str, Any]
EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED")
REPLACE = "REPLACE"
COMPACT = "COMPACT"


@dataclass(frozen=True)
class Record:
    """One journal line."""

    rv: int
    type: str
    key: tuple[str, str] = ("", "")
    obj: JSON | None = None

    def to_json(self) -> JSON:
        out: JSON = {"rv": self.rv, "t": self.type}
        if self.obj is not None:
            out["g"], out["p"] = self.key
            out["o"] = self.obj
        return out

    @staticmethod
    def from_json(data: Any) -> Record:
        if not isinstance(data, dict) or not isinstance(data.get("rv"), int):
            raise ValueError("not a journal record")
        t = data.get("t")
        if t not in (*EVENT_TYPES, REPLACE, COMPACT):
            raise ValueError(f"unknown record type {t!r}")
        obj = data.get("o")
        if t != COMPACT and not isinstance(obj, dict):
            raise ValueError("record without an object")
        return Record(
            int(data["rv"]), str(t), (str(data.get("g", "")), str(data.get("p", ""))), obj
        )


def encode_record(rec: Record) -> bytes:
    body = json.dumps(rec.to_json(), separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_records(data: bytes) -> tuple[list[Record], int]:
    """The intact records at the start of ``data`` and the length of that intact prefix."""
    out: list[Record] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break  # torn: the last line was never finished
        line = data[pos:end]
        if len(line) < 10 or line[8:9] != b" ":
            break
        body = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(body):
                break
            rec = Record.from_json(json.loads(body))
        except ValueError:
            break
        out.append(rec)
        pos = end + 1
    return out, pos


def journal_files(state_file: Path) -> list[tuple[int, Path]]:
    """(generation, path) of every journal next to ``state_file``, oldest first."""
    prefix = state_file.name + ".journal."
    found: list[tuple[int, Path]] = []
    if not state_file.parent.exists():
        return found
    for p in state_file.parent.iterdir():
        if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit():
            found.append((int(p.name[len(prefix) :]), p))
    return sorted(found)


def journal_path(state_file: Path, generation: int) -> Path:
    return state_file.with_name(f"{state_file.name}.journal.{generation}")


def _datasync(fd: int) -> None:
    """Data (and the size an append changed) on disk; the mtime may lag (fdatasync)."""
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(state_file: Path, payload: JSON) -> None:
    """Replace the snapshot atomically and durably."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(state_file.name + ".tmp")
    data = json.dumps(payload, separators=(",", ":")).encode()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, state_file)
    _fsync_dir(state_file.parent)


def read_snapshot(state_file: Path) -> JSON | None:
    if not state_file.exists():
        return None
    data = json.loads(state_file.read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{state_file}: not a devcluster state file")
    return data


class Journal:
    """Appends records to the current generation's file; :meth:`sync` makes them durable.

    :meth:`append` only queues (it runs under the store lock and must be cheap); :meth:`sync`
    is called by the committing thread once it has released the store lock: whoever gets the
    I/O lock first writes and fsyncs everything queued so far, so concurrent writers share
    fsyncs. Records are encoded outside the store lock (stored objects are immutable).
    """

    def __init__(self, state_file: Path, generation: int) -> None:
        self._state_file = state_file
        self._generation = generation
        self._queue_lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._queued: list[Record] = []
        self._seq = 0  # records queued so far
        self._durable = 0  # records written and fsynced so far
        self._file: BinaryIO | None = None
        self._file_generation = -1
        self.records_since_rotation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def append(self, rec: Record) -> int:
        """Queue one record; returns the sequence number to :meth:`sync` on."""
        with self._queue_lock:
            self._queued.append(rec)
            self._seq += 1
            self.records_since_rotation += 1
            return self._seq

    def rotate(self) -> int:
        """Start a new generation (records queued from now on, or not yet written, go there)."""
        with self._queue_lock:
            self._generation += 1
            self.records_since_rotation = 0
            return self._generation

    def sync(self, seq: int) -> None:
        """Return once record ``seq`` (and every earlier one) is on disk."""
        if self._durable >= seq:
            return
        with self._io_lock:
            if self._durable >= seq:
                return
            with self._queue_lock:
                batch, self._queued = self._queued, []
                upto = self._seq
                generation = self._generation
            if batch:
                f = self._open(generation)
                f.write(b"".join(encode_record(r) for r in batch))
                f.flush()
                _datasync(f.fileno())
            self._durable = upto

    def _open(self, generation: int) -> BinaryIO:
        if self._file is not None and self._file_generation == generation:
            return self._file
        if self._file is not None:
            self._file.close()
        path = journal_path(self._state_file, generation)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - kept open across writes
        self._file_generation = generation
        _fsync_dir(path.parent)
        return self._file

    def flush(self) -> None:
        """Make everything queued so far durable."""
        with self._queue_lock:
            seq = self._seq
        self.sync(seq)

    def close(self) -> None:
        self.flush()
        with self._io_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                self._file_generation = -1
