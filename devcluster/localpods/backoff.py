"""The restart back-off of a container that keeps exiting, and how the kubelet words it.

A container that exits (or is killed by its liveness probe) and is to be restarted waits
``backoff_base * 2**n`` seconds capped at ``backoff_cap`` (n: the restarts in a row), reset once
a run lasted 10 minutes; meanwhile its status says ``CrashLoopBackOff`` with upstream's message
(:func:`crash_loop_message`). Pure: the worker measures the run and keeps the time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RESET_AFTER", "RestartBackoff", "crash_loop_message", "go_duration"]

RESET_AFTER = 600.0  # a run this long resets the back-off


@dataclass
class RestartBackoff:
    """One container's back-off: ``base`` and ``cap`` in seconds."""

    base: float
    cap: float
    crashes: int = 0  # restarts in a row

    def next_delay(self, ran: float) -> float:
        """The seconds to wait before restarting a container whose run lasted ``ran`` seconds;
        counts the restart."""
        if ran >= RESET_AFTER:
            self.crashes = 0
        delay = min(self.cap, self.base * 2.0**self.crashes)
        self.crashes += 1
        return delay


def crash_loop_message(delay: float, container: str, pod: str, namespace: str, uid: str) -> str:
    """The ``CrashLoopBackOff`` waiting message, as upstream's kubelet writes it."""
    return (
        f"back-off {go_duration(delay)} restarting failed container={container} "
        f"pod={pod}_{namespace}({uid})"
    )


def go_duration(delay: float) -> str:
    """``10s``, ``2m40s``, ``200ms`` as Go's time.Duration prints a back-off."""
    if delay < 1:
        return f"{round(delay * 1000)}ms"
    total = int(delay)
    minutes, seconds = divmod(total, 60)
    frac = delay - total
    sec_text = f"{seconds + frac:g}s" if frac else f"{seconds}s"
    return f"{minutes}m{sec_text}" if minutes else sec_text
