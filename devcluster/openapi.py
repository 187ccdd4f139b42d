"""OpenAPI v3 documents (``/openapi/v3`` and one per group-version), as a real server publishes
them, for ``kubectl explain`` and for kubectl's choice of server-side validation.

Each group-version document has ``components.schemas`` for every kind it serves, named like a
real server's (``io.k8s.api.apps.v1.Deployment``; a custom resource's
``io.k8s.networking.gateway.v1.Gateway``, its reversed group), with
``x-kubernetes-group-version-kind`` on the kind's schema and ``allOf``/``$ref`` links to the
shared definitions it uses (ObjectMeta, PodSpec, ...), all in the same document. Built-in kinds'
schemas come from :mod:`devcluster.kinds.schemas` (the official client's models, with their
descriptions); a custom resource's is its CRD's ``openAPIV3Schema`` with ``metadata`` linked to
ObjectMeta. The paths give each kind a ``get`` and a ``patch`` operation on its object (a
``post`` on the collection for the review kinds), carrying its group-version-kind: that is how
``kubectl explain`` finds the kind's schema.

kubectl (1.27+) validates manifests client-side unless the document shows that the PATCH
operation of the kind accepts the ``fieldValidation`` query parameter, and refuses to apply
without a document at all (``failed to download openapi``); so the patch operations declare
it. They list no strategic-merge media type, so kubectl builds client-side apply patches from
its compiled-in types (built-ins) or as JSON merge patches (custom resources), as against a
server whose schemas it cannot use: these schemas carry no ``x-kubernetes-patch-strategy``.

Documents are built once per set of served kinds of a group-version and cached; a CRD change
gives the group-version new :class:`~devcluster.registry.ResourceType` objects and so a new
document (and a new ``hash`` in the discovery document).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from devcluster.kinds import schemas
from devcluster.kinds.resource_type import CREATE_ONLY
from devcluster.registry import Registry, ResourceType

__all__ = ["openapi_v3_discovery", "openapi_v3_group_version"]

JSON = dict[str, Any]

_PARAMS = ["fieldValidation", "dryRun", "fieldManager", "force"]
_REF = schemas.REF
_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DOC = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _custom_schema_name(group: str, version: str, kind: str) -> str:
    return ".".join([*reversed(group.split(".")), version, kind])


# --------------------------------------------------------------------------------------------
# components


def _custom_schema(rt: ResourceType, version: str) -> JSON:
    schema = rt.schema(version)
    out: JSON = (
        copy.deepcopy(schema.schema)
        if schema is not None
        else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    props = out.setdefault("properties", {})
    props["apiVersion"] = {"description": _API_VERSION_DOC, "type": "string"}
    props["kind"] = {"description": _KIND_DOC, "type": "string"}
    props["metadata"] = {
        "allOf": [{"$ref": _REF + schemas.OBJECT_META}],
        "description": _METADATA_DOC,
    }
    out.setdefault("type", "object")
    return out


def _components(rts: list[ResourceType], group: str, version: str) -> JSON:
    out: JSON = {}
    kinds: dict[str, list[JSON]] = {}  # component name -> its group-version-kinds
    for rt in rts:
        gvk = [{"group": group, "kind": rt.kind, "version": version}]
        builtin = None if rt.custom else schemas.kind_schema_name(group, version, rt.kind)
        if builtin is None:  # a custom resource (or a kind without a model): open + ObjectMeta
            out.update(schemas.object_meta_definitions())
            name = _schema_name(rt, group, version)
            out[name] = _custom_schema(rt, version)
        else:
            out.update(schemas.definitions(group, version, rt.kind))
            name = builtin
        kinds[name] = gvk
    for name, gvk in kinds.items():  # after all updates: a kind may be another's field type
        out[name] = {**out[name], "x-kubernetes-group-version-kind": gvk}
    return out


# --------------------------------------------------------------------------------------------
# paths


def _schema_name(rt: ResourceType, group: str, version: str) -> str:
    if rt.custom:
        return _custom_schema_name(group, version, rt.kind)
    return schemas.kind_schema_name(group, version, rt.kind) or _custom_schema_name(
        group or "core", version, rt.kind
    )


def _paths(rts: list[ResourceType], group: str, version: str) -> JSON:
    paths: JSON = {}
    base = "/" + _gv_path(group, version)
    body_schema = {"schema": {"type": "object"}}
    params = [
        {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for p in _PARAMS
    ]
    for rt in rts:
        gvk = {"group": group, "version": version, "kind": rt.kind}
        answer = {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {"$ref": _REF + _schema_name(rt, group, version)}
                    }
                },
            }
        }
        collection = (
            f"{base}/namespaces/{{namespace}}/{rt.plural}"
            if rt.namespaced
            else f"{base}/{rt.plural}"
        )
        if rt.verbs == CREATE_ONLY:
            paths[collection] = {
                "post": {
                    "operationId": f"create{rt.kind}",
                    "requestBody": {"content": {"application/json": body_schema}},
                    "responses": answer,
                    "x-kubernetes-action": "post",
                    "x-kubernetes-group-version-kind": gvk,
                }
            }
            continue
        paths[f"{collection}/{{name}}"] = {
            "get": {
                "operationId": f"read{rt.kind}",
                "responses": answer,
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": gvk,
            },
            "patch": {
                "operationId": f"patch{rt.kind}",
                "parameters": params,
                "requestBody": {
                    "content": {
                        "application/json-patch+json": body_schema,
                        "application/merge-patch+json": body_schema,
                        "application/apply-patch+yaml": body_schema,
                    },
                    "required": True,
                },
                "responses": answer,
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            },
        }
    return paths


# --------------------------------------------------------------------------------------------
# documents, cached


@dataclass
class _Entry:
    signature: tuple[Any, ...]
    rts: list[ResourceType]  # keeps the custom types (whose ids are in the signature) alive
    doc: JSON
    digest: str


_MAX_ENTRIES = 64
_cache: OrderedDict[tuple[str, str], list[_Entry]] = OrderedDict()
_lock = threading.Lock()


def _served(registry: Registry, group: str, version: str) -> list[ResourceType]:
    return sorted(
        (rt for rt in registry.all() if rt.group == group and version in rt.versions),
        key=lambda rt: rt.plural,
    )


def _signature(rts: list[ResourceType]) -> tuple[Any, ...]:
    """What the document depends on: built-in kinds by their names (the same in every
    cluster), custom kinds by identity (a CRD change makes a new ResourceType)."""
    return tuple(
        ("c", id(rt)) if rt.custom else ("b", rt.kind, rt.plural, rt.namespaced, tuple(rt.verbs))
        for rt in rts
    )


def _entry(registry: Registry, group: str, version: str) -> _Entry | None:
    if not registry.has_group_version(group, version):
        return None
    rts = _served(registry, group, version)
    signature = _signature(rts)
    key = (group, version)
    with _lock:
        for e in _cache.get(key, ()):
            if e.signature == signature:
                _cache.move_to_end(key)
                return e
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": _paths(rts, group, version),
        "components": {"schemas": _components(rts, group, version)},
    }
    digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()
    entry = _Entry(signature, rts, doc, digest)
    with _lock:
        entries = _cache.setdefault(key, [])
        entries.append(entry)
        del entries[:-4]  # a few clusters (or CRD generations) per group-version
        _cache.move_to_end(key)
        while len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
    return entry


def openapi_v3_group_version(registry: Registry, group: str, version: str) -> JSON | None:
    """The document of one group-version (shared and cached: do not change it), or None."""
    entry = _entry(registry, group, version)
    return entry.doc if entry is not None else None


def openapi_v3_discovery(registry: Registry) -> JSON:
    """``/openapi/v3``: every group-version's document URL, with its content hash."""
    out: JSON = {}
    for group, versions in registry.group_versions().items():
        for v in versions:
            entry = _entry(registry, group, v)
            if entry is None:
                continue
            key = _gv_path(group, v)
            out[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={entry.digest}"}
    return {"paths": out}
