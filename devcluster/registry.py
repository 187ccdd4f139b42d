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
from typing import Any

from devcluster.kinds import ResourceType, builtin_types
from devcluster.schema import StructuralSchema

__all__ = ["Registry", "ResourceType", "kube_version_key"]

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


class Registry:
    """The table of served resource types; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._gv_cache: dict[str, list[str]] | None = None
        for t in builtin_types():
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
