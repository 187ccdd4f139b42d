"""Adoption and release (client-go's ``ControllerRefManager``): a controller owns the objects
that name it as their controller; it adopts orphans its selector matches and releases the ones
it owns that no longer match. A controller being deleted neither adopts nor releases.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from devcluster.controllers.pods import controller_of, controller_ref
from devcluster.controllers.runtime import StoreKey, Writer

__all__ = ["claim"]

JSON = dict[str, Any]


def claim(
    writer: Writer,
    key: StoreKey,
    owner: JSON,
    candidates: list[JSON],
    matches: Callable[[JSON], bool],
) -> list[JSON]:
    """The candidates ``owner`` controls once orphans are adopted and strays released."""
    uid = owner["metadata"]["uid"]
    owner_deleting = bool(owner["metadata"].get("deletionTimestamp"))
    out: list[JSON] = []
    for obj in candidates:
        ref = controller_of(obj)
        deleting = bool(obj["metadata"].get("deletionTimestamp"))
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches(obj) or owner_deleting or deleting:
                out.append(obj)
                continue
            new = copy.deepcopy(obj)
            new["metadata"]["ownerReferences"] = [
                r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
            ]
            writer.update(key, new)
            continue
        if owner_deleting or deleting or not matches(obj):
            continue
        new = copy.deepcopy(obj)
        refs = list(obj["metadata"].get("ownerReferences") or [])
        refs.append(controller_ref(owner))
        new["metadata"]["ownerReferences"] = refs
        out.append(writer.update(key, new))
    return out
