"""The one shape of an unstructured Kubernetes object as bifrost passes it between layers, and
the accessors every layer uses to read it (instead of each file writing its own ``_meta``).

Objects bifrost reasons about in depth have typed models (``bifrost.api.blueprint``,
``bifrost.api.policies``); everything else — Gateways as read, children as rendered, peers' CRs
— travels as :data:`Obj` and is read through these helpers, which never raise on a missing or
ill-typed field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]
"""An unstructured Kubernetes object (what the API server returns as JSON)."""


def meta(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """``obj.metadata`` or ``{}``."""
    value = obj.get("metadata") if obj else None
    return value if isinstance(value, dict) else {}


def spec(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """``obj.spec`` or ``{}``."""
    value = obj.get("spec") if obj else None
    return value if isinstance(value, dict) else {}


def status(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """``obj.status`` or ``{}``."""
    value = obj.get("status") if obj else None
    return value if isinstance(value, dict) else {}


def generation(obj: Mapping[str, Any] | None) -> int | None:
    """``metadata.generation`` when it is an integer."""
    value = meta(obj).get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def namespaced_name(obj: Mapping[str, Any] | None) -> str:
    """``namespace/name`` (or ``name`` for a cluster-scoped object)."""
    m = meta(obj)
    namespace, name = m.get("namespace"), m.get("name", "")
    return f"{namespace}/{name}" if namespace else str(name)
