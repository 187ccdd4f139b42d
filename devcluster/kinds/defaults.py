"""Defaults and admission of built-in kinds beyond their schema (what the real API server's
per-kind strategies do on create and update).

Nothing yet: :func:`admit` leaves every object as it is.
"""

from __future__ import annotations

from typing import Any

from devcluster.kinds.resource_type import ResourceType

__all__ = ["admit"]


def admit(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Default (in place) the fields a real server defaults for the built-in kind ``rt``."""
    return None
