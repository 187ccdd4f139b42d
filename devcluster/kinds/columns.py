"""kubectl columns of the built-in kinds (placeholder)."""

from __future__ import annotations

from typing import Any


def columns_for(group: str, kind: str) -> list[dict[str, Any]]:
    return []
