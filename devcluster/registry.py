"""Resource types the devcluster serves, and the discovery documents that describe them.

The official client's ``LazyDiscoverer`` and kubectl decide every URL from discovery, so the
documents must have exactly the shape a real API server produces (``preferredVersion``
dict-equal to one entry of ``versions``, ``namespaced`` on subresources, ...). Built-in kinds and
CRD-defined kinds live in one table: a CRD becomes a :class:`ResourceType` the moment it is
created, so ``/apis`` lists it at once (a discovery miss in the client refetches everything).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from devcluster.schema import StructuralSchema

__all__ = ["Registry", "ResourceType", "kube_version_key"]

_ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_SUB_VERBS = ["get", "patch", "update"]

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def kube_version_key(version: str) -> tuple[int, int, int, str]:
    """Sort key: GA before beta before alpha, higher numbers first (ascending sort = preferred)."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {"": 0, None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)


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
    verbs: list[str] = field(default_factory=lambda: list(_ALL_VERBS))
    storage_key: tuple[str, str] | None = None  # shares another kind's storage

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
        return self.schemas.get(version)

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
                    "verbs": list(_SUB_VERBS),
                }
            )
        return out


def _builtins() -> list[ResourceType]:
    return [
        ResourceType(
            "", ["v1"], "Namespace", "namespaces", "namespace", False, ["ns"], [], status=True
        ),
        ResourceType("", ["v1"], "ConfigMap", "configmaps", "configmap", True, ["cm"], []),
        ResourceType("", ["v1"], "Secret", "secrets", "secret", True, [], []),
        ResourceType(
            "", ["v1"], "Service", "services", "service", True, ["svc"], ["all"], status=True
        ),
        ResourceType("", ["v1"], "Event", "events", "event", True, ["ev"], []),
        ResourceType("", ["v1"], "Pod", "pods", "pod", True, ["po"], ["all"], status=True),
        ResourceType("", ["v1"], "Endpoints", "endpoints", "endpoints", True, ["ep"], []),
        ResourceType("coordination.k8s.io", ["v1"], "Lease", "leases", "lease", True),
        # RBAC objects are stored (examples ship ClusterRoles beside their blueprints), not
        # enforced: the devcluster authorizes every request.
        ResourceType(
            "rbac.authorization.k8s.io", ["v1"], "ClusterRole", "clusterroles", "clusterrole",
            False,
        ),
        ResourceType(
            "rbac.authorization.k8s.io", ["v1"], "ClusterRoleBinding", "clusterrolebindings",
            "clusterrolebinding", False,
        ),
        ResourceType("rbac.authorization.k8s.io", ["v1"], "Role", "roles", "role", True),
        ResourceType(
            "rbac.authorization.k8s.io", ["v1"], "RoleBinding", "rolebindings", "rolebinding",
            True,
        ),
        ResourceType(
            "events.k8s.io",
            ["v1"],
            "Event",
            "events",
            "event",
            True,
            ["ev"],
            storage_key=("", "events"),
        ),
        ResourceType(
            "discovery.k8s.io", ["v1"], "EndpointSlice", "endpointslices", "endpointslice", True
        ),
        ResourceType(
            "apiextensions.k8s.io",
            ["v1"],
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "customresourcedefinition",
            False,
            ["crd", "crds"],
            ["api-extensions"],
            status=True,
        ),
    ]


class Registry:
    """The table of served resource types; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._gv_cache: dict[str, list[str]] | None = None
        for t in _builtins():
            self._types[t.key] = t

    def add(self, rt: ResourceType) -> None:
        with self._lock:
            self._types[rt.key] = rt
            self._gv_cache = None

    def remove(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._types.pop(key, None)
            self._gv_cache = None

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self._types.get((group, plural))
        if rt is None or version not in rt.versions:
            return None
        return rt

    def by_key(self, key: tuple[str, str]) -> ResourceType | None:
        return self._types.get(key)

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, preferred first."""
        cached = self._gv_cache
        if cached is not None:
            return cached
        out: dict[str, set[str]] = {}
        for rt in self.all():
            out.setdefault(rt.group, set()).update(rt.versions)
        result = {g: sorted(vs, key=kube_version_key) for g, vs in out.items()}
        self._gv_cache = result
        return result

    def has_group_version(self, group: str, version: str) -> bool:
        return version in self.group_versions().get(group, ())

    def find_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self.all():
            if rt.group == group and rt.kind == kind and version in rt.versions:
                return rt
        return None

    # ---------------------------------------------------------------- discovery documents

    def api_group_list(self) -> dict[str, Any]:
        groups = []
        gvs = self.group_versions()
        for group in sorted(g for g in gvs if g):
            versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in gvs[group]]
            groups.append(
                {"name": group, "versions": versions, "preferredVersion": dict(versions[0])}
            )
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group: str) -> dict[str, Any] | None:
        gvs = self.group_versions().get(group)
        if not gvs or not group:
            return None
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in gvs]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": versions,
            "preferredVersion": dict(versions[0]),
        }

    def api_resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        if not self.has_group_version(group, version):
            return None
        resources: list[dict[str, Any]] = []
        for rt in sorted(self.all(), key=lambda r: r.plural):
            if rt.group == group and version in rt.versions:
                resources.extend(rt.discovery_entries())
        gv = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }


def resource_type_from_crd(crd: dict[str, Any]) -> ResourceType:
    """Build the served type of a CustomResourceDefinition object (served versions only)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    served = [v for v in spec.get("versions") or [] if v.get("served", True)]
    storage = [v["name"] for v in served if v.get("storage")]
    ordered = storage + [v["name"] for v in served if v["name"] not in storage]
    schemas: dict[str, StructuralSchema] = {}
    columns: dict[str, list[dict[str, Any]]] = {}
    status = False
    for v in served:
        s = (v.get("schema") or {}).get("openAPIV3Schema")
        if isinstance(s, dict):
            schemas[v["name"]] = StructuralSchema(s)
        if "status" in (v.get("subresources") or {}):
            status = True
        columns[v["name"]] = list(v.get("additionalPrinterColumns") or [])
    plural = names["plural"]
    return ResourceType(
        group=spec["group"],
        versions=ordered,
        kind=names["kind"],
        plural=plural,
        singular=names.get("singular") or plural,
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=list(names.get("shortNames") or []),
        categories=list(names.get("categories") or []),
        status=status,
        custom=True,
        schemas=schemas,
        printer_columns=columns,
        crd_name=(crd.get("metadata") or {}).get("name"),
    )
