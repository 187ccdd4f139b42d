"""Helpers for the devcluster tests: decoding Status bodies."""

from __future__ import annotations

import json
from typing import Any


def body_of(exc: Any) -> dict[str, Any]:
    """The decoded Status body of an ``ApiException``."""
    return json.loads(exc.body)  # type: ignore[no-any-return]
