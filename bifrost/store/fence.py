"""Fencing of the store writes a step makes itself.

The engine's own commits (``begin_step``, ``finish_step``, ``renew_lease``) are fenced by lease
owner and row version. A step also writes the store directly — certificate rows, the children
inventory — and those writes must be fenced too: a runner that stopped for a while (a deposed
leader resumed after a pause, a long GC, a frozen VM) still finishes the step it was in, and a
late write of it (say ``await_issued`` recording the new certificate as not attached, after the
new leader attached it) would corrupt what the new owner of the operation relies on.

While the runner runs a step it sets the :class:`StepFence` of the attempt it began; the store's
step-facing writes (``upsert_certificate``, ``delete_certificate``, ``upsert_child``,
``delete_child``) then check, in their own transaction, that the operation is still leased by
that owner at that version with that step attempt in flight, and raise ``LeaseLost`` (writing
nothing) otherwise. Writes made outside a step (the controller's observer, bifrost-admin, tests)
carry no fence and are not checked.

The fence also carries what a step's *cluster* writes are checked against
(``bifrost.engine.fenced_kube``): ``term_current``, whether the leadership term the runner runs
in goes on, ``now``, the runner's clock, by which the store judges the lease's expiry, and
``lease_for``, by how much such a check may extend a lease running low.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["StepFence", "current_fence", "step_fence"]


@dataclass(frozen=True)
class StepFence:
    """The step attempt a runner began: the operation row it must still find."""

    operation_id: int
    owner: str
    version: int
    step: str
    attempt: int
    #: Whether the runner's leadership term goes on (None: not run by a leader).
    term_current: Callable[[], bool] | None = field(default=None, compare=False)
    #: The runner's clock (None: the cluster-write check cannot judge expiry and refuses).
    now: Callable[[], datetime] | None = field(default=None, compare=False)
    #: The runner's lease length: a cluster-write check that finds less than half of it left
    #: extends the lease (None: never), so a step writing for long keeps its operation.
    lease_for: timedelta | None = field(default=None, compare=False)


_CURRENT: ContextVar[StepFence | None] = ContextVar("bifrost_step_fence", default=None)


def current_fence() -> StepFence | None:
    """The fence of the step running in this thread (context), if any."""
    return _CURRENT.get()


@contextmanager
def step_fence(fence: StepFence) -> Iterator[StepFence]:
    """Fence the store writes made (in this thread) inside the block."""
    token = _CURRENT.set(fence)
    try:
        yield fence
    finally:
        _CURRENT.reset(token)
