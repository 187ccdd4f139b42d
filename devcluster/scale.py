"""The ``scale`` subresource of deployments, replicasets, statefulsets and
replicationcontrollers: an ``autoscaling/v1`` Scale view of the parent's replicas.

GET answers ``spec.replicas``, ``status.replicas`` and ``status.selector`` (the label selector
in its string form, as a HorizontalPodAutoscaler reads it). PUT, and PATCH (merge, JSON patch,
strategic merge, apply), change the parent's ``spec.replicas`` (a spec change: the parent's
generation moves, its controller scales); a ``resourceVersion`` in the Scale is a precondition
on the parent (409 when stale), and a negative count is 422. ``kubectl scale`` uses this.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from devcluster import patch
from devcluster.controllers.labels import map_selector_string, selector_string
from devcluster.errors import ApiError
from devcluster.handlers import Api, RequestContext, Target, parse_body

__all__ = ["SCALABLE", "register"]

JSON = dict[str, Any]

SCALABLE = (
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("", "replicationcontrollers"),
)

_MERGE = "application/merge-patch+json"
_JSONPATCH = "application/json-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"
_APPLY = "application/apply-patch+yaml"


def register(api: Api) -> None:
    """Serve ``<kind>/scale`` for every scalable kind."""
    for group, plural in SCALABLE:
        api.handlers[(group, plural, "scale")] = handle


def scale_of(t: Target, obj: JSON) -> JSON:
    """The Scale view of a parent object."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    if t.rt.key == ("", "replicationcontrollers"):
        selector = map_selector_string(spec.get("selector"))
    else:
        selector = selector_string(spec.get("selector"))
    replicas = spec.get("replicas")
    scale_meta = {
        k: meta[k]
        for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        if k in meta
    }
    scale_spec: JSON = {}
    want = 1 if replicas is None else int(replicas)
    if want:
        scale_spec["replicas"] = want
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": scale_spec,
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas") or 0),
            "selector": selector,
        },
    }


def _parent(t: Target) -> Target:
    return Target(t.rt, t.version, t.namespace, t.name)


def _invalid(name: str, message: str, field: str) -> ApiError:
    return ApiError(
        422,
        f'Scale.autoscaling "{name}" is invalid: {field}: {message}',
        "Invalid",
        name=name,
        group="autoscaling",
        kind="Scale",
        causes=[{"reason": "FieldValueInvalid", "message": message, "field": field}],
    )


def _conflict(t: Target) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {t.rt.group_resource} "{t.name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        "Conflict",
        name=t.name,
        group=t.rt.group,
        kind=t.rt.plural,
    )


def _set_replicas(ctx: RequestContext, scale: Any) -> JSON:
    """Write the Scale's spec.replicas to the parent (store lock held by the caller)."""
    t = ctx.target
    api = ctx.api
    assert t.name is not None
    if not isinstance(scale, dict):
        raise ApiError(400, "the body of the request must be an object", "BadRequest")
    kind = scale.get("kind")
    if kind and kind != "Scale":
        raise ApiError(
            400,
            f"the kind in the data ({kind}) does not match the expected kind (Scale)",
            "BadRequest",
        )
    meta = scale.get("metadata") or {}
    if meta.get("name") and meta["name"] != t.name:
        raise ApiError(
            400,
            f"the name of the object ({meta['name']}) does not match the name on the URL "
            f"({t.name})",
            "BadRequest",
        )
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise _invalid(t.name, f"Invalid value: {replicas!r}: must be an integer", "spec.replicas")
    if replicas < 0:
        raise _invalid(
            t.name,
            f"Invalid value: {replicas}: must be greater than or equal to 0",
            "spec.replicas",
        )
    parent = api.get(_parent(t))
    rv = meta.get("resourceVersion")
    if rv and str(rv) != parent["metadata"].get("resourceVersion"):
        raise _conflict(t)
    new = copy.deepcopy(parent)
    new.setdefault("spec", {})["replicas"] = replicas
    written = api.update(_parent(t), new, ctx.query)
    return scale_of(t, written)


def handle(ctx: RequestContext) -> tuple[int, JSON]:
    t = ctx.target
    api = ctx.api
    if ctx.verb == "get":
        return 200, scale_of(t, api.get(_parent(t)))
    if ctx.verb == "update":
        body = parse_body(ctx.raw, content_type=ctx.content_type)
        with api.store.lock:
            return 200, _set_replicas(ctx, body)
    if ctx.verb in ("patch", "apply"):
        ctype = ctx.content_type.split(";", 1)[0].strip().lower()
        with api.store.lock:
            current = scale_of(t, api.get(_parent(t)))
            try:
                if ctype == _APPLY:
                    applied = yaml.safe_load(ctx.raw)
                    new = patch.merge_patch(current, applied)
                elif ctype == _MERGE:
                    new = patch.merge_patch(current, parse_body(ctx.raw))
                elif ctype == _JSONPATCH:
                    new = patch.json_patch(current, parse_body(ctx.raw))
                elif ctype == _STRATEGIC:
                    new = patch.strategic_merge_patch(current, parse_body(ctx.raw), kind="Scale")
                else:
                    raise ApiError(
                        415,
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, "
                        "application/merge-patch+json, application/apply-patch+yaml, "
                        "application/strategic-merge-patch+json",
                        "UnsupportedMediaType",
                    )
            except patch.PatchError as e:
                raise ApiError(
                    e.code, e.message, "Invalid" if e.code == 422 else "BadRequest"
                ) from e
            except yaml.YAMLError as e:
                raise ApiError(400, f"the body of the request could not be decoded: {e}") from e
            return 200, _set_replicas(ctx, new)
    raise ApiError(
        405, "the server does not allow this method on the requested resource", "MethodNotAllowed"
    )
