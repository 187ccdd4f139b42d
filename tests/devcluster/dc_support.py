"""Helpers for the devcluster tests: polling with a deadline, decoding Status bodies."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any


def wait_for(pred: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def body_of(exc: Any) -> dict[str, Any]:
    """The decoded Status body of an ``ApiException``."""
    return json.loads(exc.body)  # type: ignore[no-any-return]
