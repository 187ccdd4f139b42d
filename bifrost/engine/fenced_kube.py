"""The cluster port the steps are built with: every write re-checks, just before it is sent,
that the runner still holds the operation and still leads.

The store fences its own writes (``bifrost.store.fence``), but the API server knows nothing of
operation leases: a runner frozen mid-step (SIGSTOP, a VM pause, a long evaluation) that wakes
after its successor moved on would otherwise still send the stale body it computed. So each
write through :class:`FencedKube` made inside a step (while the runner's ``StepFence`` is set)
first

1. asks the fence's ``term_current``: the leadership term the runner was started in goes on
   (the term's stop event is not set and the leader elector still holds the Lease), and
2. asks the store (``check_step_lease``, one indexed read): the operation is still leased to
   this runner at the version, step and attempt it began, and the lease has not expired by the
   runner's clock (which follows the database's in production).

If either fails it raises the store's ``LeaseLost`` and sends nothing; the runner drops the work
as for a fenced-off store write. Reads pass through unchecked, and so does everything outside a
step (the observer's status writes, tests calling a step directly).

What remains is the window between the check and the request reaching the API server (a pause
exactly there); writes that carry preconditions (``resourceVersion``/``uid`` of what the step
read, see ``bifrost.steps.preconditions``) are refused by the API server even then.
"""

from __future__ import annotations

from bifrost.kube.delegate import KubeDelegate
from bifrost.kube.ports import Kube
from bifrost.store.errors import LeaseLost
from bifrost.store.fence import current_fence
from bifrost.store.interface import OperationStore

__all__ = ["FencedKube", "check_fence"]


def check_fence(store: OperationStore, what: str) -> None:
    """LeaseLost unless the step running in this thread (if any) may still write ``what``."""
    fence = current_fence()
    if fence is None:
        return
    if fence.term_current is not None and not fence.term_current():
        raise LeaseLost(
            f"operation {fence.operation_id}: the leadership term of {fence.owner!r} ended; "
            f"not sending {what}"
        )
    if fence.now is None:
        raise LeaseLost(f"operation {fence.operation_id}: a step fence without a clock cannot "
                        f"judge its lease; not sending {what}")
    store.check_step_lease(fence, now=fence.now())


def _what(verb: str, kind: str, name: str | None, namespace: str | None) -> str:
    where = f"{namespace}/{name}" if namespace else str(name)
    return f"{verb} of {kind} {where}"


class FencedKube(KubeDelegate):
    """A :class:`~bifrost.kube.ports.Kube` whose writes inside a step are fenced (see the
    module docstring); ``inner`` does the work. Reads pass through unchecked."""

    def __init__(self, inner: Kube, store: OperationStore) -> None:
        super().__init__(inner)
        self.store = store

    def before_write(self, verb: str, kind: str, name: str | None,
                     namespace: str | None) -> None:
        check_fence(self.store, _what(verb, kind, name, namespace))
