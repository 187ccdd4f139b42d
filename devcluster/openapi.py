"""Minimal OpenAPI v3 documents, just enough for kubectl to trust the server's validation.

kubectl (1.27+) validates manifests client-side unless the server's OpenAPI v3 document shows
that the PATCH operation of the kind accepts the ``fieldValidation`` query parameter; without an
OpenAPI document at all it refuses to apply (``failed to download openapi``). These documents
declare exactly that, and list no strategic-merge media type, so kubectl builds its client-side
apply patches from its compiled-in types (built-ins) or as JSON merge patches (custom
resources), as it does against a real server whose schemas it cannot use.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devcluster.registry import Registry

__all__ = ["openapi_v3_discovery", "openapi_v3_group_version"]

_PARAMS = ["fieldValidation", "dryRun", "fieldManager", "force"]


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def openapi_v3_group_version(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    if not registry.has_group_version(group, version):
        return None
    paths: dict[str, Any] = {}
    base = "/" + _gv_path(group, version)
    body_schema = {"schema": {"type": "object"}}
    for rt in registry.all():
        if rt.group != group or version not in rt.versions:
            continue
        gvk = {"group": group, "version": version, "kind": rt.kind}
        params = [
            {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for p in _PARAMS
        ]
        op = {
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
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        }
        if rt.namespaced:
            p = f"{base}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
        else:
            p = f"{base}/{rt.plural}/{{name}}"
        paths[p] = {"patch": op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def openapi_v3_discovery(registry: Registry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for v in versions:
            doc = openapi_v3_group_version(registry, group, v)
            digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
            key = _gv_path(group, v)
            out[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest.upper()}"}
    return {"paths": out}
