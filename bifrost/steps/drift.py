"""Drift of a child: did someone change a field bifrost sets since bifrost last applied it?

Pure functions, no I/O; the provision step (``apply_children``) and the controller's drift check
(``bifrost.controller.drift``) share them.

How drift is told from everything else that changes a live object:

- The **field shape** of what bifrost applies is the applied body with every leaf replaced by
  ``None`` — keys and list positions only, never a value (a Secret child's data never reaches
  the store). It is recorded per child (``ChildRecord.field_shape``).
- The **projection** of a live object onto that shape keeps exactly those fields. Fields other
  managers own (an HPA's ``replicas`` when the template leaves it out, a status, an annotation
  added by a tool) are outside the shape and never count.
- Right after an apply, the hash of the projection of the object the API server returned is
  recorded (``ChildRecord.observed_hash``): it is the server's form of what bifrost wrote
  (defaults, normalised quantities), so an unchanged child always projects to it again. A later
  projection with another hash means a field bifrost sets was changed: drift.
- A template's ``ignoreDrift`` paths (e.g. ``spec.replicas``) leave the shape: the platform
  wants them left alone after creation. When bifrost re-applies an existing child, the live
  values at those paths are copied into the body first, so a re-apply never reverts them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bifrost.steps.ownership import body_hash

__all__ = [
    "MISSING",
    "drifted",
    "field_shape",
    "keep_live_values",
    "load_shape",
    "observed_hash",
    "parse_path",
    "projection",
]

#: What a projection holds where the live object lacks a field of the shape.
MISSING = "\x00missing"

#: Server-managed metadata that a body never sets meaningfully for drift.
_SERVER_METADATA = ("resourceVersion", "uid", "generation", "creationTimestamp",
                    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def parse_path(path: str) -> tuple[str | int, ...]:
    """``spec.ports.0.port`` → ``("spec", "ports", 0, "port")``: dotted keys, a number indexes
    a list. ValueError for an empty segment."""
    parts: list[str | int] = []
    for segment in path.split("."):
        if not segment:
            raise ValueError(f"field path {path!r} has an empty segment")
        parts.append(int(segment) if segment.isdigit() else segment)
    return tuple(parts)


def _shape(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


def _remove(shape: Any, path: Sequence[str | int]) -> None:
    node = shape
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            if last:
                del node[part]
                return
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if last:
                node[part] = MISSING  # keep the positions of the others
                return
            node = node[part]
        else:
            return


def field_shape(body: Mapping[str, Any], ignore: Iterable[str] = ()) -> dict[str, Any]:
    """The shape of the fields ``body`` sets, minus the ``ignore`` paths and the metadata the
    server owns."""
    shape = _shape(body)
    assert isinstance(shape, dict)
    meta = shape.get("metadata")
    if isinstance(meta, dict):
        for name in _SERVER_METADATA:
            meta.pop(name, None)
    shape.pop("status", None)
    for path in ignore:
        _remove(shape, parse_path(path))
    return shape


def projection(obj: Any, shape: Any) -> Any:
    """``obj`` reduced to the fields of ``shape`` (``MISSING`` where it lacks one)."""
    if shape is None:
        return obj if not isinstance(obj, Mapping | list) else _leafless(obj)
    if shape == MISSING:
        return None
    if isinstance(shape, dict):
        if not isinstance(obj, Mapping):
            return MISSING
        return {k: (projection(obj[k], s) if k in obj else MISSING) for k, s in shape.items()}
    if isinstance(shape, list):
        if not isinstance(obj, list):
            return MISSING
        return [projection(obj[i], s) if i < len(obj) else MISSING for i, s in enumerate(shape)]
    return MISSING


def _leafless(value: Any) -> Any:
    """A structured value where the shape has a leaf (the body set ``{}`` or ``[]``): its own
    size is what bifrost set, so compare it by its JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def observed_hash(obj: Mapping[str, Any], shape: Mapping[str, Any]) -> str:
    """The hash of ``obj``'s projection onto ``shape``."""
    return body_hash({"projection": projection(obj, shape)})


def load_shape(text: str | None) -> dict[str, Any] | None:
    """A recorded ``field_shape`` (None when none was recorded or it is unreadable)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def drifted(obj: Mapping[str, Any] | None, shape_text: str | None,
            recorded: str | None) -> bool | None:
    """Whether ``obj`` (None: gone) drifted from what bifrost applied: True / False, or None
    when nothing was recorded to compare with."""
    if obj is None:
        return True
    shape = load_shape(shape_text)
    if shape is None or recorded is None:
        return None
    return observed_hash(obj, shape) != recorded


def keep_live_values(body: dict[str, Any], live: Mapping[str, Any] | None,
                     ignore: Iterable[str]) -> dict[str, Any]:
    """``body`` with the live values at the ``ignore`` paths (where the live object has them),
    so re-applying an existing child leaves those fields as they are."""
    if live is None:
        return body
    out = copy.deepcopy(body)
    for path in ignore:
        parts = parse_path(path)
        value: Any = live
        found = True
        for part in parts:
            if _has(value, part):
                value = value[part]
            else:
                found = False
                break
        if found:
            _set(out, parts, copy.deepcopy(value))
    return out


def _set(body: dict[str, Any], parts: Sequence[str | int], value: Any) -> None:
    node: Any = body
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, dict) and isinstance(part, str):
            if not isinstance(node.get(part), dict | list):
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return
    last = parts[-1]
    if _has(node, last) or (isinstance(node, dict) and isinstance(last, str)):
        node[last] = value


def _has(node: Any, part: str | int) -> bool:
    """``node[part]`` exists (a key of a mapping, an index of a list)."""
    if isinstance(part, str):
        return isinstance(node, Mapping) and part in node
    return isinstance(node, list) and 0 <= part < len(node)
