"""Small helpers shared by the status computations: reading API dicts and merging conditions.

The status functions take objects exactly as the API server returns them (plain dicts), because
the caller already holds them from its watches and a round trip through models would only add
failure modes. These helpers keep the dict access in one place: defaults for missing fields,
and merging freshly computed conditions into the ones already on the object with
:func:`bifrost.api.conditions.set_condition`, so that ``lastTransitionTime`` survives an
unchanged status and a condition written by another writer is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from bifrost.api.conditions import Condition, parse_conditions, set_condition

__all__ = ["Obj", "generation", "get_list", "get_map", "merge_conditions", "name", "namespace"]

#: An API object or a part of one, as the API server returns it.
Obj = Mapping[str, Any]

GATEWAY_GROUP = "gateway.networking.k8s.io"


def get_map(obj: Obj | None, *keys: str) -> Obj:
    """``obj[k1][k2]…`` or ``{}`` when any step is missing or not a map."""
    cur: Any = obj or {}
    for key in keys:
        cur = cur.get(key) if isinstance(cur, Mapping) else None
        if cur is None:
            return {}
    return cur if isinstance(cur, Mapping) else {}


def get_list(obj: Obj | None, *keys: str) -> list[Any]:
    """``obj[k1]…[kn]`` as a list, ``[]`` when missing."""
    if not keys:
        return []
    parent = get_map(obj, *keys[:-1])
    value = parent.get(keys[-1])
    return list(value) if isinstance(value, list) else []


def name(obj: Obj) -> str:
    return str(get_map(obj, "metadata").get("name", ""))


def namespace(obj: Obj) -> str:
    return str(get_map(obj, "metadata").get("namespace", ""))


def generation(obj: Obj) -> int | None:
    value = get_map(obj, "metadata").get("generation")
    return int(value) if isinstance(value, int) else None


def merge_conditions(old: object, new: Iterable[Condition]) -> list[dict[str, Any]]:
    """``new`` merged into the ``old`` raw condition list; the result as API dicts.

    Unparseable old conditions (written by a broken writer) are dropped rather than failing the
    whole status computation: the fresh conditions replace them.
    """
    try:
        merged = parse_conditions(old)
    except (ValueError, ValidationError):
        merged = ()
    for cond in new:
        merged = set_condition(merged, cond)
    return [c.to_api() for c in merged]
