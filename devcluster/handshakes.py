"""A client that keeps making real TLS handshakes against the data plane and counts failures.

Zero downtime is measured, not asserted: while a rotation runs, :class:`HandshakeLoop` connects to
every (address, port, SNI name) target again and again, verifies the served chain against the
issuing CA, the name and the validity period exactly as a browser would (Python's ``ssl`` with
``check_hostname`` and a default-verifying context), and records every failure with its reason and
every leaf fingerprint it was served. ``bifrost demo``, the rotation tests and the rotation
benchmark all use it.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["HandshakeLoop", "HandshakeReport", "Target"]


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    server_name: str


@dataclass
class HandshakeReport:
    """What the loop saw. ``longest_gap`` is the longest time between two consecutive
    handshake attempts on the same target (the sampling guarantee: a gap bigger than the
    promised interval would make "0 failures" mean less)."""

    handshakes: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    fingerprints: Counter[str] = field(default_factory=Counter)
    longest_gap: float = 0.0


class HandshakeLoop:
    """Handshake with every target every ``interval`` seconds on a background thread."""

    def __init__(self, targets: list[Target], *, ca_pem: str, interval: float = 0.02,
                 timeout: float = 2.0) -> None:
        self.targets = list(targets)
        self.interval = interval
        self.timeout = timeout
        self._context = ssl.create_default_context(cadata=ca_pem)
        self._lock = threading.Lock()
        self._report = HandshakeReport()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def handshake(self, target: Target) -> str:
        """One verified handshake; the served leaf's SHA-256 fingerprint (raises on failure)."""
        with (socket.create_connection((target.host, target.port), timeout=self.timeout) as raw,
              self._context.wrap_socket(raw, server_hostname=target.server_name) as tls):
            der = tls.getpeercert(binary_form=True)
        if der is None:
            raise ssl.SSLError("no peer certificate")
        return hashlib.sha256(der).hexdigest()

    def _run(self) -> None:
        last: dict[Target, float] = {}
        while not self._stop.is_set():
            for target in self.targets:
                started = time.monotonic()
                try:
                    fingerprint = self.handshake(target)
                    error = None
                except (OSError, ssl.SSLError) as exc:
                    fingerprint, error = None, f"{target.server_name}@{target.port}: {exc}"
                with self._lock:
                    report = self._report
                    report.handshakes += 1
                    if error is not None:
                        report.failures += 1
                        if len(report.errors) < 50:
                            report.errors.append(error)
                    else:
                        assert fingerprint is not None
                        report.fingerprints[fingerprint] += 1
                    if target in last:
                        report.longest_gap = max(report.longest_gap, started - last[target])
                    last[target] = started
            self._stop.wait(self.interval)

    def start(self) -> HandshakeLoop:
        self._thread = threading.Thread(target=self._run, name="handshake-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> HandshakeReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return self.report()

    def report(self) -> HandshakeReport:
        with self._lock:
            r = self._report
            return HandshakeReport(r.handshakes, r.failures, list(r.errors),
                                   Counter(r.fingerprints), r.longest_gap)

    def __enter__(self) -> HandshakeLoop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
