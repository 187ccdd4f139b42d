"""Built-in kinds: what they are (:mod:`.catalog`), how a served kind is described
(:mod:`.resource_type`), their schemas (:mod:`.schemas`), defaults (:mod:`.defaults`) and
kubectl columns (:mod:`.columns`)."""

from __future__ import annotations

from collections.abc import Callable

from devcluster.kinds import catalog, columns
from devcluster.kinds.resource_type import ALL_VERBS, CREATE_ONLY, ResourceType, Subresource
from devcluster.kinds.schemas import storage_schema
from devcluster.schema import StructuralSchema

__all__ = ["ALL_VERBS", "ResourceType", "Subresource", "builtin_types"]

# Validated by its own code in the handlers (and its schema is recursive).
_NO_STORAGE_SCHEMA = {("apiextensions.k8s.io", "customresourcedefinitions")}


def _schema_source(group: str, kind: str) -> Callable[[str], StructuralSchema | None]:
    def source(version: str) -> StructuralSchema | None:
        return storage_schema(group, version, kind)

    return source


def builtin_types() -> list[ResourceType]:
    """The catalog's kinds (a fresh list: each registry owns its copies) with their schemas
    (derived on first use) and kubectl columns attached. The review kinds store nothing and
    have no storage schema."""
    out = catalog.builtin_types()
    for rt in out:
        if rt.verbs != CREATE_ONLY and rt.key not in _NO_STORAGE_SCHEMA:
            rt.schema_source = _schema_source(rt.group, rt.kind)
        rt.printer_columns = {v: columns.columns_for(rt.group, rt.kind) for v in rt.versions}
    return out
