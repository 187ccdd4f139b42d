"""Server-side printing: the ``Table`` kubectl asks for with ``Accept: ...;as=Table``.

Columns come from the kind's printer columns (a CRD's ``additionalPrinterColumns``, or the
built-in kinds' columns in :mod:`devcluster.kinds`), each a JSONPath into the object.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from devcluster.registry import ResourceType

__all__ = ["render_table"]

JSON = dict[str, Any]


def render_table(
    rt: ResourceType,
    version: str,
    objs: list[JSON],
    rv: str | None,
    include_object: str = "Metadata",
) -> JSON:
    """A ``meta.k8s.io/v1`` Table of ``objs``: Name, then the kind's printer columns (or Age)."""
    cols_src = rt.printer_columns.get(version) or []
    columns: list[JSON] = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name",
            "priority": 0,
        }
    ]
    for c in cols_src:
        columns.append(
            {
                "name": c.get("name", ""),
                "type": c.get("type", "string"),
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": int(c.get("priority", 0)),
            }
        )
    if not cols_src:
        columns.append(
            {
                "name": "Age",
                "type": "date",
                "format": "",
                "description": "CreationTimestamp",
                "priority": 0,
            }
        )
    rows = []
    for obj in objs:
        cells: list[Any] = [obj["metadata"]["name"]]
        for c in cols_src:
            val = _jsonpath(obj, c.get("jsonPath", ""))
            if c.get("type") == "date":
                val = _human_age(val)
            cells.append(val)
        if not cols_src:
            cells.append(_human_age(obj["metadata"].get("creationTimestamp")))
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


def _human_age(ts: Any) -> Any:
    if not isinstance(ts, str):
        return "<unknown>"
    try:
        then = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    secs = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
    secs = max(secs, 0)
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 60:
        return f"{mins}m"
    hours = mins // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"
