"""Server-side printing: the ``Table`` kubectl asks for with ``Accept: ...;as=Table``.

Columns come from the kind's printer columns: a CRD's ``additionalPrinterColumns`` (each a
JSONPath into the object, after a ``Name`` column the server adds), or the built-in kinds'
columns of :mod:`devcluster.kinds.columns` (the full list, ``Name`` included, each cell computed
by a function of the object). Without columns: ``Name`` and ``Age``.
"""

from __future__ import annotations

import re
from typing import Any

from devcluster.kinds.columns import since
from devcluster.registry import ResourceType

__all__ = ["render_table"]

JSON = dict[str, Any]

_NAME: JSON = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name",
    "priority": 0,
    "jsonPath": ".metadata.name",
}
_AGE: JSON = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": "CreationTimestamp",
    "priority": 0,
    "jsonPath": ".metadata.creationTimestamp",
}


def _columns(rt: ResourceType, version: str) -> list[JSON]:
    given = rt.printer_columns.get(version) or []
    if not given:
        return [_NAME, _AGE]
    if any(c.get("format") == "name" for c in given):
        return list(given)  # a built-in kind's full list
    return [_NAME, *given]


def _cell(column: JSON, obj: JSON) -> Any:
    compute = column.get("cell")
    if compute is not None:
        return compute(obj)
    val = _jsonpath(obj, column.get("jsonPath", ""))
    if column.get("type") == "date":
        return since(val)
    return val


def render_table(
    rt: ResourceType,
    version: str,
    objs: list[JSON],
    rv: str | None,
    include_object: str = "Metadata",
) -> JSON:
    """A ``meta.k8s.io/v1`` Table of ``objs`` with the kind's columns."""
    cols = _columns(rt, version)
    columns: list[JSON] = [
        {
            "name": c.get("name", ""),
            "type": c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": int(c.get("priority", 0)),
        }
        for c in cols
    ]
    rows = []
    for obj in objs:
        cells: list[Any] = [_cell(c, obj) for c in cols]
        row_obj: JSON
        if include_object == "Object":
            row_obj = obj
        elif include_object == "None":
            row_obj = {}
        else:
            row_obj = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        row: JSON = {"cells": cells}
        if row_obj:
            row["object"] = row_obj
        rows.append(row)
    meta: JSON = {}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    }


_JP_FILTER = re.compile(r"^\[\?\(@\.([\w.]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]")
_JP_INDEX = re.compile(r"^\[(\d+)\]")
_JP_FIELD = re.compile(r"^\.([\w-]+)")


def _jsonpath(obj: Any, path: str) -> Any:
    """The subset of JSONPath that printer columns use: ``.a.b``, ``[0]``, ``[?(@.k=="v")]``."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1]
    cur: list[Any] = [obj]
    while p:
        m = _JP_FIELD.match(p)
        if m:
            cur = [c.get(m.group(1)) for c in cur if isinstance(c, dict)]
            p = p[m.end() :]
            continue
        m = _JP_INDEX.match(p)
        if m:
            i = int(m.group(1))
            cur = [c[i] for c in cur if isinstance(c, list) and len(c) > i]
            p = p[m.end() :]
            continue
        m = _JP_FILTER.match(p)
        if m:
            keys, want = m.group(1).split("."), m.group(2)
            nxt = []
            for c in cur:
                for item in c if isinstance(c, list) else []:
                    v: Any = item
                    for k in keys:
                        v = v.get(k) if isinstance(v, dict) else None
                    if str(v) == want:
                        nxt.append(item)
            cur = nxt
            p = p[m.end() :]
            continue
        if p.startswith("[*]"):
            cur = [x for c in cur if isinstance(c, list) for x in c]
            p = p[3:]
            continue
        return None
    vals = [c for c in cur if c is not None]
    if not vals:
        return None
    if len(vals) == 1:
        return vals[0]
    return ",".join(str(v) for v in vals)
