"""The description of one served kind (:class:`ResourceType`), built-in or CRD-defined."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devcluster.schema import StructuralSchema

__all__ = ["ALL_VERBS", "CREATE_ONLY", "ResourceType", "Subresource"]

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]

CREATE_ONLY = ["create"]
"""Verbs of the review kinds (SubjectAccessReview, TokenReview, ...): nothing is stored."""


@dataclass(frozen=True)
class Subresource:
    """A subresource other than ``status``, as discovery describes it."""

    verbs: tuple[str, ...]
    kind: str
    group: str | None = None  # None: the parent's group and version
    version: str | None = None


@dataclass
class ResourceType:
    """One kind, with every version it is served in (they share storage)."""

    group: str
    versions: list[str]
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    status: bool = False  # has a /status subresource
    custom: bool = False  # a custom resource (CRD-defined or registered permissively)
    schemas: dict[str, StructuralSchema] = field(default_factory=dict)
    printer_columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    crd_name: str | None = None
    verbs: list[str] = field(default_factory=lambda: list(ALL_VERBS))
    storage_key: tuple[str, str] | None = None  # shares another kind's storage
    # Subresources beyond ``status``: name -> (verbs, kind, group, version) as discovery lists
    # them, e.g. ``scale`` (autoscaling/v1 Scale) or ``token`` (authentication.k8s.io/v1
    # TokenRequest). Requests to them go to the handler registered in ``Api.subresources``.
    subresources: dict[str, Subresource] = field(default_factory=dict)
    # Where a schema missing from ``schemas`` comes from, asked once per version (built-in
    # kinds derive theirs lazily: most clusters never write most kinds).
    schema_source: Callable[[str], StructuralSchema | None] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def skey(self) -> tuple[str, str]:
        """Where objects of this kind are stored (usually :attr:`key`)."""
        return self.storage_key if self.storage_key is not None else self.key

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: (group, plural); all versions share it."""
        return (self.group, self.plural)

    @property
    def group_resource(self) -> str:
        """``leases.coordination.k8s.io`` / ``configmaps`` as used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_group(self) -> str:
        """``Gateway.gateway.networking.k8s.io`` as used in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def storage_version(self) -> str:
        return self.versions[0]

    def schema(self, version: str) -> StructuralSchema | None:
        found = self.schemas.get(version)
        if found is None and self.schema_source is not None and version in self.versions:
            found = self.schema_source(version)
            if found is not None:
                self.schemas[version] = found
        return found

    def discovery_entries(self) -> list[dict[str, Any]]:
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        out = [main]
        if self.status:
            out.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(SUB_VERBS),
                }
            )
        for sub_name, sub in self.subresources.items():
            entry: dict[str, Any] = {
                "name": f"{self.plural}/{sub_name}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": sub.kind,
                "verbs": list(sub.verbs),
            }
            if sub.group is not None:
                entry["group"] = sub.group
                entry["version"] = sub.version
            out.append(entry)
        return out
