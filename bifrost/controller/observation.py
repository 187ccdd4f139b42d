"""What observing one work key did: the result every observer part returns to the
:class:`~bifrost.controller.manager.Controller`, which logs the actions and requeues the key
when asked."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Observation"]


@dataclass(frozen=True)
class Observation:
    """What one observation did; ``requeue_after`` asks for a re-check (seconds)."""

    actions: tuple[str, ...] = ()
    requeue_after: float | None = None
