"""Shared base for bifrost's API models: one place fixes how Kubernetes JSON maps to Python.

Every model of an API object is frozen (a parsed object is a value, never edited in place), uses
snake_case attributes with the API's camelCase names as aliases (``populate_by_name`` lets code
and tests use either), and forbids unknown fields so that an object the model cannot fully
represent fails loudly instead of silently losing data — the drift test in ``tests/api`` keeps
the models and the CRD schemas in ``deploy/crds`` identical, so a field the API server accepts is
always a field the model knows.

``x_kube`` attaches the ``x-kubernetes-*`` markers (list types, preserved unknown fields) to a
field's JSON schema, so the models declare the same list/map semantics as the CRDs and the drift
test can compare them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "ApiModel",
    "ModelCheckError",
    "ObjectMeta",
    "format_time",
    "x_cel",
    "x_kube",
]


class ApiModel(BaseModel):
    """Frozen, camelCase-aliased, closed model of (a part of) a Kubernetes object."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=False,
    )

    def to_api(self) -> dict[str, Any]:
        """The object as the API server expects it (camelCase, no unset optionals)."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class ModelCheckError(ValueError):
    """A check beyond the CRD schema failed; ``reason`` is the condition reason to report.

    Raised inside model validators; :func:`bifrost.api.errors.parse_resource` surfaces the reason
    on :class:`~bifrost.api.errors.InvalidResourceError` so status can say e.g. DependencyCycle.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def x_kube(
    *,
    list_type: str | None = None,
    list_map_keys: list[str] | None = None,
    preserve_unknown_fields: bool = False,
) -> dict[str, Any]:
    """``json_schema_extra`` carrying a field's ``x-kubernetes-*`` markers (see module doc)."""
    extra: dict[str, Any] = {}
    if list_type is not None:
        extra["x-kubernetes-list-type"] = list_type
    if list_map_keys is not None:
        extra["x-kubernetes-list-map-keys"] = list(list_map_keys)
    if preserve_unknown_fields:
        extra["x-kubernetes-preserve-unknown-fields"] = True
    return extra


def x_cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` declaring the CRD's CEL rules as ``(rule, message)`` pairs.

    The API server evaluates them (the devcluster does not); the model states them so the drift
    test notices a rule the model's validators do not know about.
    """
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC at second precision, as ``metav1.Time`` serialises."""
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectMeta(BaseModel):
    """The parts of ``metadata`` bifrost reads; everything else the server sends is ignored.

    ``metadata`` is owned by the API server, not by bifrost's CRDs, so this model is open
    (``extra="ignore"``) unlike the spec/status models.
    """

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
