"""Waiting for a condition with a deadline: the one ``wait_for`` of the test suites.

The scenario tests drive real servers and threads (a devcluster, a controller, its peers), so a
test waits for the world to reach a state. ``wait_for`` polls a predicate until it returns
something truthy and fails with what it waited for once the deadline passes; the sleep between
polls is the polling interval, not a pause that hides a race.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    *,
    what: str | Callable[[], str] = "",
    timeout: float = 10.0,
    interval: float = 0.05,
) -> T:
    """``predicate()``'s first truthy result, polled every ``interval`` seconds.

    After ``timeout`` seconds raise ``AssertionError`` naming ``what`` (a callable is called
    then, so the message can describe the state at the deadline; empty: the predicate) and the
    predicate's last result.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = (what() if callable(what) else what) or repr(predicate)
            raise AssertionError(
                f"timed out after {timeout}s waiting for {detail} (last result: {value!r})"
            )
        time.sleep(interval)
