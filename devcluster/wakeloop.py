"""A background thread that runs one pass of work each time it is woken, for the devcluster's
small in-process controllers (ClusterRole aggregation, token Secrets): a store listener calls
:meth:`WakeLoop.wake`; a pass that asks to run again (or raises) is retried after a short pause.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["WakeLoop"]

RETRY_PAUSE = 0.1


class WakeLoop:
    """Runs ``run_pass`` on its own thread when woken; ``run_pass`` returns True to run again."""

    def __init__(self, name: str, run_pass: Callable[[], bool]) -> None:
        self.name = name
        self.run_pass = run_pass
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self, *, run_now: bool = False) -> None:
        self._stop.clear()
        if run_now:
            self._wake.set()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                again = self.run_pass()
            except Exception:  # pragma: no cover - the controller must never die
                again = True
            if again:
                self._stop.wait(RETRY_PAUSE)
                self._wake.set()
