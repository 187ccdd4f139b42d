"""CRD validation rules (``x-kubernetes-validations``), evaluated as a real API server does.

Not evaluated yet: :func:`check` accepts every object.
"""

from __future__ import annotations

from typing import Any

from devcluster.schema import FieldError, StructuralSchema

__all__ = ["check"]


def check(
    schema: StructuralSchema, obj: dict[str, Any], old: dict[str, Any] | None
) -> list[FieldError]:
    """The rules ``obj`` breaks (``old`` is the object before an update, for transition rules)."""
    return []
