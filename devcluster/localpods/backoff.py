"""The restart back-off of a container that keeps exiting, and how the kubelet words it.

As upstream's kubelet (its ``flowcontrol.Backoff`` per container): the first restart of a
container after it exits (or is killed by its liveness probe) is immediate — the kubelet's
back-off entry only exists once it restarted it — and the following ones wait
``backoff_base * 2**n`` seconds capped at ``backoff_cap`` (n: 0 for the second restart in a row,
1 for the third, ...); meanwhile its status says ``CrashLoopBackOff`` with upstream's message
(:func:`crash_loop_message`). A run that lasted more than twice the cap (upstream: 10 minutes
with its 5-minute cap) ends the series: its restart is immediate again. Pure: the worker
measures the run and keeps the time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RestartBackoff", "crash_loop_message", "go_duration"]

MAX_DOUBLINGS = 1000  # 2.0**1024 overflows; the cap is reached long before


@dataclass
class RestartBackoff:
    """One container's back-off: ``base`` and ``cap`` in seconds."""

    base: float
    cap: float
    restarts: int = 0  # restarts in a row

    def next_delay(self, ran: float) -> float:
        """The seconds to wait before restarting a container whose run lasted ``ran`` seconds
        (0: restart at once); counts the restart."""
        if ran > 2 * self.cap:
            self.restarts = 0
        if self.restarts == 0:
            delay = 0.0
        else:
            delay = min(self.cap, self.base * 2.0 ** min(self.restarts - 1, MAX_DOUBLINGS))
        self.restarts += 1
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
