"""When a provision that failed on a missing RBAC permission is tried again.

A failed provision is otherwise retried only when the Gateway's inputs change
(:mod:`bifrost.triggers.provision`): a broken template stays broken until someone edits it. A
403 is different — the fix is outside the Gateway (grant the verb to the controller's
ServiceAccount, see ``deploy/base/rbac*.yaml``), and nothing bifrost watches changes when it is
granted. So the latest provision of a Gateway that failed with an RBAC denial
(:func:`bifrost.kube.forbidden.is_forbidden_text`) is started again after a back-off: 10 s after
the first such failure, doubling with each further one in a row, at most 5 minutes apart.
Granting the permission therefore recovers the Gateway within that delay, without restarting
the controller; the failed attempts stay in its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bifrost.kube.forbidden import is_forbidden_text
from bifrost.machines.provision import PROVISION_MACHINE
from bifrost.records import OperationRecord, OperationStatus

__all__ = ["FORBIDDEN_RETRY_CAP", "FORBIDDEN_RETRY_FIRST", "forbidden_retry_in"]

FORBIDDEN_RETRY_FIRST = timedelta(seconds=10)
FORBIDDEN_RETRY_CAP = timedelta(minutes=5)


def _failed_forbidden(op: OperationRecord) -> bool:
    return (op.status is OperationStatus.FAILED and op.finished_at is not None
            and is_forbidden_text(op.last_error or ""))


def forbidden_retry_in(
    ops: Sequence[OperationRecord], now: datetime, *,
    first: timedelta = FORBIDDEN_RETRY_FIRST, cap: timedelta = FORBIDDEN_RETRY_CAP,
) -> float | None:
    """Seconds until the Gateway's latest provision, failed on a 403, is due again (0: now);
    ``None`` when its latest provision did not fail on a 403 (or it has none)."""
    provisions = sorted((o for o in ops if o.machine == PROVISION_MACHINE),
                        key=lambda o: o.id, reverse=True)
    streak = 0
    for op in provisions:
        if not _failed_forbidden(op):
            break
        streak += 1
    if streak == 0:
        return None
    finished = provisions[0].finished_at
    assert finished is not None
    delay = min(first * 2 ** (streak - 1), cap)
    remaining: float = (finished + delay - now).total_seconds()
    return max(0.0, remaining)
