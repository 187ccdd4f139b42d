"""``intstr.GetScaledValueFromIntOrPercent``: an int-or-percent field (``maxSurge``,
``maxUnavailable``) resolved against a total."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["scaled_value"]


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An int as it is, ``"25%"`` as 25 % of ``total`` rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        exact = total * int(text[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)
