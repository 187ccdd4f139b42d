"""Where the controller remembers, per Gateway uid, the input hash of the last provision it
started (:class:`InputLedger`): by default in the store (``gateways.input_hash``), behind a
small in-process cache (:class:`StoreLedger`); :class:`MemoryLedger` keeps it in the process
only.

Why the store: a restarted controller (a crash, a roll-out, a new leader) must not provision
every unchanged Gateway again. Why the cache: a converged resync asks for every Gateway's hash;
answered from memory it costs no database read and no write. The cache holds what this process
read or wrote; :meth:`StoreLedger.invalidate` drops it when a new leadership term starts, because
another replica may have recorded newer hashes while this one was not leading.

Crash safety: the hash is recorded *after* the provision operation was created. A crash in
between leaves the old hash, so the next observation calls ``start_operation`` again, which
returns the already active provision (same machine, same lane) and records the hash then — no
duplicate operation. A provision that already finished by then is started once more (safe:
provision is idempotent and rewrites no unchanged child).
"""

from __future__ import annotations

import threading
from typing import Protocol

from bifrost.clock import Clock
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore

__all__ = ["InputLedger", "MemoryLedger", "StoreLedger"]


class InputLedger(Protocol):
    """Remembers, per Gateway uid, the input hash of the last provision started."""

    def recorded(self, uid: str) -> str | None: ...

    def record(self, uid: str, input_hash: str) -> None: ...

    def invalidate(self) -> None:
        """Forget anything cached from a shared record (a new leadership term begins: another
        replica may have recorded hashes meanwhile)."""
        ...


class MemoryLedger:
    """In-process ledger. After a restart every Gateway is provisioned once more, which is safe
    (provision is idempotent and writes no unchanged child) but costs one operation each."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()

    def recorded(self, uid: str) -> str | None:
        with self._lock:
            return self._hashes.get(uid)

    def record(self, uid: str, input_hash: str) -> None:
        with self._lock:
            self._hashes[uid] = input_hash

    def invalidate(self) -> None:
        """Nothing to do: this ledger is the record itself, not a cache of one."""


class StoreLedger:
    """An :class:`InputLedger` on the store, with a cache in front.

    ``recorded`` reads the store once per uid (per term) and then answers from memory;
    ``record`` writes only when the hash differs from the one known. Thread-safe; the work queue
    never observes one key in two workers at once, so a uid has one writer at a time.
    """

    def __init__(self, store: OperationStore, clock: Clock, *, max_entries: int = 200_000) -> None:
        self.store = store
        self.clock = clock
        self.max_entries = max_entries
        self._cache: dict[str, str | None] = {}
        self._lock = threading.Lock()
        #: Counters for tests and metrics: store reads and writes made.
        self.stats: dict[str, int] = {"reads": 0, "writes": 0}

    def recorded(self, uid: str) -> str | None:
        with self._lock:
            if uid in self._cache:
                return self._cache[uid]
        try:
            value = self.store.get_gateway(uid).input_hash
        except RecordNotFound:
            return None  # not cached: the record is about to be created
        finally:
            with self._lock:
                self.stats["reads"] += 1
        self._remember(uid, value)
        return value

    def record(self, uid: str, input_hash: str) -> None:
        with self._lock:
            if uid in self._cache and self._cache[uid] == input_hash:
                return
        self.store.record_input_hash(uid, input_hash, now=self.clock.now())
        with self._lock:
            self.stats["writes"] += 1
        self._remember(uid, input_hash)

    def forget(self, uid: str) -> None:
        """Drop one uid from the cache (its Gateway is gone)."""
        with self._lock:
            self._cache.pop(uid, None)

    def invalidate(self) -> None:
        """Drop the cache: the store is read again (once per uid) from now on."""
        with self._lock:
            self._cache.clear()

    def _remember(self, uid: str, value: str | None) -> None:
        with self._lock:
            if uid not in self._cache and len(self._cache) >= self.max_entries:
                # Bounded: drop the oldest entry (insertion order); it is re-read on demand.
                self._cache.pop(next(iter(self._cache)))
            self._cache[uid] = value
