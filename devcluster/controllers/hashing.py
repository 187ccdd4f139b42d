"""The pod template hash of Deployments, StatefulSets and DaemonSets (``controller.ComputeHash``):
FNV-32a over the template and the collision count, written as the real controllers write it (the
decimal digits mapped onto ``bcdfghjklmnpqrstvwxz2456789``), e.g. ``7c5ddbdf54``.

The template is hashed as canonical JSON, not as Go's object dump, so the values differ from a
real cluster's; their shape, stability and collision handling are the same. Like Go's typed
structs, :func:`semantic` does not tell a null, empty object or empty list from a missing field
(``resources: {}`` as kubectl sends it back in ``rollout undo``), for hashing and comparing.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["pod_template_hash", "semantic"]

_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def semantic(value: Any) -> Any:
    """``value`` without null, ``{}`` and ``[]`` members (recursively)."""
    if isinstance(value, dict):
        out = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def pod_template_hash(template: dict[str, Any], collision_count: int | None) -> str:
    data = json.dumps(semantic(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in str(h))
