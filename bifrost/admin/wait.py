"""``--wait``: follow one operation to its end, showing its state and step as they change.

``renew --wait`` and ``retry --wait`` started (or restarted) an operation; this polls it — from
the store or from the admin API, through the same ``fetch`` — and prints one line each time
its state, step, attempt or status changes. The end decides the exit: succeeded → return
(exit 0), failed or cancelled → :class:`~bifrost.admin.errors.OperationUnsuccessful` (exit 5),
``timeout`` seconds passed first → :class:`~bifrost.admin.errors.WaitTimedOut` (exit 6; the
operation goes on, only the waiting stops). A paused operation is waited for like any other
(the line says ``paused``): an operator may resume it.

Time is the injected clock's and the pause between polls the injected ``sleep``, so tests
drive a wait without sleeping. A store or server that does not answer for a moment while
waiting is said once on the progress stream and asked again; only the first read must succeed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from bifrost.admin.errors import OperationUnsuccessful, ServerUnreachable, WaitTimedOut
from bifrost.admin.views import OperationProgress, OperationSummary
from bifrost.clock import Clock
from bifrost.records import OperationStatus
from bifrost.store.errors import StoreUnavailable

#: Seconds between polls.
DEFAULT_INTERVAL_S = 1.0


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f}m"


def progress_line(doc: OperationProgress, *, elapsed: float) -> str:
    """One progress line: time since the wait began, operation, state, step and status."""
    op = doc.operation
    step = f" step {op.step}" if op.step else ""
    attempt = f" (attempt {op.attempt})" if op.attempt > 1 else ""
    error = f", last error: {op.last_error}" if op.last_error and op.status != "succeeded" else ""
    return (f"[{_seconds(elapsed):>6}] #{op.id} {op.machine} {doc.gateway.namespace}/"
            f"{doc.gateway.name}: {op.status}, state {op.state}{step}{attempt}{error}")


def _ended(op: OperationSummary) -> str:
    since = op.finished_at or op.updated_at
    took = max(0.0, (since - op.created_at).total_seconds())
    return f"operation #{op.id} {op.machine} {op.status} in state {op.state} after {_seconds(took)}"


def follow(
    fetch: Callable[[], OperationProgress],
    *,
    clock: Clock,
    sleep: Callable[[float], None],
    show: Callable[[str], None],
    timeout: float | None,
    interval: float = DEFAULT_INTERVAL_S,
) -> OperationProgress:
    """Poll ``fetch`` until the operation ends; its last document when it succeeded."""
    began = clock.now()
    deadline = began + timedelta(seconds=timeout) if timeout is not None else None
    shown: tuple[object, ...] | None = None
    doc: OperationProgress | None = None
    unavailable = False
    while True:
        try:
            doc = fetch()
            unavailable = False
        except (StoreUnavailable, ServerUnreachable) as exc:
            if doc is None:
                raise
            if not unavailable:
                show(f"not answering, asking again every {interval:g}s: {exc}")
            unavailable = True
        if doc is not None and not unavailable:
            op = doc.operation
            key = (op.status, op.state, op.step, op.attempt)
            if key != shown:
                shown = key
                show(progress_line(doc, elapsed=(clock.now() - began).total_seconds()))
            status = OperationStatus(op.status)
            if status is OperationStatus.SUCCEEDED:
                show(_ended(op))
                return doc
            if status.terminal:
                reason = f": {op.last_error}" if op.last_error else ""
                raise OperationUnsuccessful(_ended(op) + reason)
        if deadline is not None and clock.now() >= deadline:
            assert doc is not None
            op = doc.operation
            raise WaitTimedOut(
                f"--timeout {timeout:g}s passed while operation #{op.id} {op.machine} is "
                f"{op.status} in state {op.state}; it goes on (follow it with bifrost-admin "
                f"show {doc.gateway.namespace}/{doc.gateway.name} --watch)"
            )
        sleep(interval)
