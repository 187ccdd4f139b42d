"""Conversion between core/v1 Events and events.k8s.io/v1 Events, which share one storage.

On a real cluster both APIs serve the same objects: an Event that bifrost writes through
events.k8s.io/v1 shows up in ``kubectl describe`` (which reads core/v1 Events) and the other way
round. The devcluster stores the core/v1 shape and converts field by field, as the API server's
conversion functions do.
"""

from __future__ import annotations

from typing import Any

__all__ = ["core_event_to_v1", "v1_event_to_core"]

# events.k8s.io/v1 field -> core/v1 field
_V1_TO_CORE = {
    "regarding": "involvedObject",
    "related": "related",
    "note": "message",
    "reportingController": "reportingComponent",
    "reportingInstance": "reportingInstance",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "series": "series",
    "eventTime": "eventTime",
    "action": "action",
    "reason": "reason",
    "type": "type",
}
_CORE_TO_V1 = {v: k for k, v in _V1_TO_CORE.items()}


def v1_event_to_core(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event", "metadata": obj["metadata"]}
    for k, v in obj.items():
        if k in _V1_TO_CORE and v is not None:
            out[_V1_TO_CORE[k]] = v
    if "involvedObject" not in out:
        out["involvedObject"] = {}
    return out


def core_event_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": obj["metadata"],
    }
    for k, v in obj.items():
        if k in _CORE_TO_V1 and v is not None and v != {}:
            out[_CORE_TO_V1[k]] = v
    out.setdefault("eventTime", None)
    return out
