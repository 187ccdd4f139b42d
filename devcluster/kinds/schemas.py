"""Schemas of the built-in kinds, derived from the model classes of the official ``kubernetes``
client (the one module of the devcluster that imports it).

The client's models are generated from the API server's own OpenAPI document, so they carry
every built-in type's fields: wire names (``attribute_map``), types (``openapi_types`` and the
pydantic annotations: ``int``, ``str``, ``bool``, ``float``, ``datetime``, ``bytes``, ``object``,
``List[X]``, ``Dict[str, X]``, nested models, int-or-string unions), which fields are required
and the field and type descriptions. Two forms are built from them, once per process and lazily
(a kind's models are imported the first time the kind is written or documented):

* :func:`storage_schema` -- one structural schema per kind, everything inlined, so the
  :class:`~devcluster.schema.StructuralSchema` machinery prunes unknown fields and checks types
  and required fields of built-in kinds as it does for custom resources;
* :func:`definitions` -- OpenAPI v3 component schemas named like a real server's
  (``io.k8s.api.apps.v1.Deployment``, ``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta``),
  linked with ``allOf``/``$ref`` and carrying the descriptions, for ``/openapi/v3``.

What the models lose is filled in here by name, and only that: which string fields are
``resource.Quantity`` (they also accept JSON numbers). The list semantics for server-side apply
stay those of :func:`devcluster.fieldmanager.builtin_list_type` (see
:class:`~devcluster.kinds.builtin_schema.BuiltinSchema`).
"""

from __future__ import annotations

import re
import threading
import typing
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

from devcluster.kinds.builtin_schema import BuiltinSchema
from devcluster.kinds.catalog import builtin_types
from devcluster.kinds.resource_type import CREATE_ONLY
from devcluster.schema import StructuralSchema

__all__ = [
    "OBJECT_META",
    "QUANTITY_FIELDS",
    "REF",
    "BuiltinSchema",
    "definitions",
    "kind_schema_name",
    "model_class",
    "object_meta_definitions",
    "storage_schema",
]

Schema = dict[str, Any]

REF = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{_META}.ObjectMeta"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_TIME = f"{_META}.Time"

# Types of apimachinery's meta/v1 package (the client names them like any v1 type).
_META_TYPES = frozenset(
    {
        "ObjectMeta",
        "ListMeta",
        "LabelSelector",
        "LabelSelectorRequirement",
        "ManagedFieldsEntry",
        "OwnerReference",
        "Condition",
        "Status",
        "StatusDetails",
        "StatusCause",
        "DeleteOptions",
        "Preconditions",
    }
)

# Fields whose Go type is resource.Quantity: the client types them ``str``, the server also
# accepts JSON numbers there (``cpu: 1``, ``cpu: 0.5``). (model class, python attribute).
QUANTITY_FIELDS = frozenset(
    {
        ("V1ResourceRequirements", "limits"),
        ("V1ResourceRequirements", "requests"),
        ("V1VolumeResourceRequirements", "limits"),
        ("V1VolumeResourceRequirements", "requests"),
        ("V1PodSpec", "overhead"),
        ("V1EmptyDirVolumeSource", "size_limit"),
        ("V1ContainerStatus", "allocated_resources"),
        ("V1PersistentVolumeClaimStatus", "capacity"),
        ("V1PersistentVolumeClaimStatus", "allocated_resources"),
        ("V1NodeStatus", "capacity"),
        ("V1NodeStatus", "allocatable"),
        ("V2MetricTarget", "average_value"),
        ("V2MetricTarget", "value"),
        ("V2MetricValueStatus", "average_value"),
        ("V2MetricValueStatus", "value"),
    }
)

# The scalar types every group shares, as a real server's documents define them...
_SHARED: dict[str, Schema] = {
    _INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in "
        "JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  "
        "This allows you to have, for example, a JSON field that can accept a name or number.",
        "type": "string",
        "format": "int-or-string",
    },
    _QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number: a signed number "
        "with an optional suffix (Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an "
        "exponent), for example 100m, 1.5, 2Gi or 1e3.",
        "type": "string",
    },
    _TIME: {
        "description": "Time is a wrapper around time.Time which supports correct marshaling to "
        "YAML and JSON, as an RFC 3339 date and time.",
        "type": "string",
        "format": "date-time",
    },
}

# ... and inside a structural schema.
_SHARED_STRUCTURAL: dict[str, Schema] = {
    _INT_OR_STRING: {"x-kubernetes-int-or-string": True},
    _QUANTITY: {},  # a string or a number
    _TIME: {"type": "string", "format": "date-time"},
}

_PRESERVE: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

# Internal links, resolved differently by the two forms.
_MODEL = "$model"  # {"$model": "V1PodSpec"}
_SHARED_KEY = "$shared"  # {"$shared": "io.k8s.apimachinery.pkg.util.intstr.IntOrString"}

_CLASS_NAME = re.compile(r"^([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$")
_TYPE_TOKEN = re.compile(r"[A-Za-z_]\w*")
_NOT_MODELS = frozenset(
    {"int", "str", "bool", "float", "datetime", "bytes", "object", "List", "Dict"}
)

_lock = threading.RLock()


# --------------------------------------------------------------------------------------------
# model classes


def _models() -> Any:
    from kubernetes.client import models

    return models


def _model(name: str) -> type | None:
    cls = getattr(_models(), name, None)
    return cls if isinstance(cls, type) and hasattr(cls, "openapi_types") else None


@cache
def model_class(group: str, version: str, kind: str) -> type | None:
    """The client's model of ``kind`` in ``group/version`` (``V1Deployment``; ``CoreV1Event``
    and ``EventsV1Event`` where the client tells the groups apart), or None."""
    ver = version[:1].upper() + version[1:]
    prefix = (group.split(".", 1)[0] or "core").capitalize()
    for name in (f"{prefix}{ver}{kind}", f"{ver}{kind}"):
        cls = _model(name)
        if cls is not None:
            return cls
    return None


def _referenced_models(cls: type) -> list[type]:
    out: list[type] = []
    for t in cls.openapi_types.values():  # type: ignore[attr-defined]
        for token in _TYPE_TOKEN.findall(t):
            if token in _NOT_MODELS:
                continue
            sub = _model(token)
            if sub is not None and sub not in out:
                out.append(sub)
    return out


# --------------------------------------------------------------------------------------------
# one model class as a schema with internal links


def _class_description(cls: type) -> str:
    doc = (cls.__doc__ or "").split("Attributes:", 1)[0]
    return " ".join(doc.split())


def _base_types(annotation: Any) -> set[type]:
    """The plain types of an annotation (Optional, Union and Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_types(typing.get_args(annotation)[0])
    if origin is typing.Union:
        out: set[type] = set()
        for a in typing.get_args(annotation):
            out |= _base_types(a)
        return out
    return {annotation} if isinstance(annotation, type) else set()


def _type_schema(t: str, *, int_or_string: bool, quantity: bool) -> Schema:
    t = t.strip()
    if t.startswith("List[") and t.endswith("]"):
        return {
            "type": "array",
            "items": _type_schema(t[5:-1], int_or_string=False, quantity=False),
        }
    if t.startswith("Dict[") and t.endswith("]"):
        value = t[5:-1].split(",", 1)[1]
        return {
            "type": "object",
            "additionalProperties": _type_schema(value, int_or_string=False, quantity=quantity),
        }
    if quantity and t == "str":
        return {_SHARED_KEY: _QUANTITY}
    simple = {
        "int": {"type": "integer"},
        "str": {"type": "string"},
        "bool": {"type": "boolean"},
        "float": {"type": "number", "format": "double"},
        "bytes": {"type": "string", "format": "byte"},
    }.get(t)
    if simple is not None:
        return simple
    if t == "datetime":
        return {_SHARED_KEY: _TIME}
    if t == "object":
        return {_SHARED_KEY: _INT_OR_STRING} if int_or_string else dict(_PRESERVE)
    if _model(t) is None:
        return dict(_PRESERVE)
    return {_MODEL: t}


@cache
def _raw(cls: type) -> Schema:
    """``cls`` as an object schema whose nested types are ``$model``/``$shared`` links."""
    props: dict[str, Schema] = {}
    required: list[str] = []
    fields: dict[str, Any] = cls.model_fields  # type: ignore[attr-defined]
    types: dict[str, str] = cls.openapi_types  # type: ignore[attr-defined]
    wire_names: dict[str, str] = cls.attribute_map  # type: ignore[attr-defined]
    for attr, t in types.items():
        info = fields.get(attr)
        base = _base_types(info.annotation) if info is not None else set()
        prop = _type_schema(
            t,
            int_or_string=t == "object" and {int, str} <= base,
            quantity=(cls.__name__, attr) in QUANTITY_FIELDS,
        )
        description = getattr(info, "description", None)
        if description:
            prop["description"] = description
        wire = wire_names.get(attr, attr)
        props[wire] = prop
        if info is not None and info.is_required():
            required.append(wire)
    out: Schema = {"type": "object", "properties": props}
    description = _class_description(cls)
    if description:
        out["description"] = description
    if required:
        out["required"] = required
    return out


# --------------------------------------------------------------------------------------------
# structural schemas (everything inlined)


_inlined: dict[str, Schema] = {}


def _inline(node: Any, stack: tuple[str, ...], cut: list[bool]) -> Any:
    if isinstance(node, list):
        return [_inline(v, stack, cut) for v in node]
    if not isinstance(node, dict):
        return node
    if _SHARED_KEY in node:
        return _SHARED_STRUCTURAL[node[_SHARED_KEY]]
    if _MODEL in node:
        return _inline_model(node[_MODEL], stack, cut)
    out: Schema = {}
    for k, v in node.items():
        if k == "description":
            continue
        if k == "properties":
            out[k] = {name: _inline(sub, stack, cut) for name, sub in v.items()}
        elif k in ("items", "additionalProperties"):
            out[k] = _inline(v, stack, cut)
        else:
            out[k] = v
    return out


def _inline_model(name: str, stack: tuple[str, ...], cut: list[bool]) -> Schema:
    if name in stack:  # a recursive type: anything goes below this point
        cut[0] = True
        return dict(_PRESERVE)
    cached = _inlined.get(name)
    if cached is not None:
        return cached
    cls = _model(name)
    if cls is None:
        return dict(_PRESERVE)
    mine = [False]
    result: Schema = _inline(_raw(cls), (*stack, name), mine)
    if mine[0]:
        cut[0] = True  # depends on the path it was reached by: not shared
    else:
        _inlined[name] = result
    return result


@cache
def storage_schema(group: str, version: str, kind: str) -> StructuralSchema | None:
    """The structural schema of a built-in kind, or None when the client has no model of it.
    Subtrees are shared between kinds: nothing may change them."""
    cls = model_class(group, version, kind)
    if cls is None:
        return None
    with _lock:
        root = _inline_model(cls.__name__, (), [False])
    return BuiltinSchema(root, kind)


# --------------------------------------------------------------------------------------------
# OpenAPI v3 definitions


def _group_package(group: str) -> str:
    if group == "apiextensions.k8s.io":
        return "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"
    return f"io.k8s.api.{group.split('.', 1)[0] or 'core'}"


@lru_cache(maxsize=1)
def _owners() -> dict[str, str]:
    """Model class name -> API group whose package defines it: the group of the first built-in
    kind that reaches it, core kinds first (PodTemplateSpec is a core type although apps kinds
    use it too)."""
    owners: dict[str, str] = {}
    kinds = sorted(builtin_types(), key=lambda rt: (rt.group != "", rt.verbs == CREATE_ONLY))
    for rt in kinds:
        for version in rt.versions:
            root = model_class(rt.group, version, rt.kind)
            todo = [root] if root is not None else []
            while todo:
                cls = todo.pop()
                if cls.__name__ in owners:
                    continue
                owners[cls.__name__] = rt.group
                todo.extend(_referenced_models(cls))
    return owners


@cache
def _definition_name(class_name: str) -> str:
    m = _CLASS_NAME.match(class_name)
    if m is None:
        return class_name
    prefix, ver, name = m.group(1), m.group(2).lower(), m.group(3)
    if prefix is None and name in _META_TYPES:
        return f"{_META}.{name}"
    if prefix is not None:
        group = "" if prefix == "Core" else f"{prefix.lower()}.k8s.io"
    else:
        group = _owners().get(class_name, "")
    return f"{_group_package(group)}.{ver}.{name}"


def kind_schema_name(group: str, version: str, kind: str) -> str | None:
    """The component name of a built-in kind (``io.k8s.api.apps.v1.Deployment``), or None."""
    cls = model_class(group, version, kind)
    return _definition_name(cls.__name__) if cls is not None else None


def _link(target: str) -> Schema:
    return {"allOf": [{"$ref": REF + target}]}


def _document_form(node: Any) -> Any:
    if isinstance(node, list):
        return [_document_form(v) for v in node]
    if not isinstance(node, dict):
        return node
    if _SHARED_KEY in node or _MODEL in node:
        target = node.get(_SHARED_KEY) or _definition_name(node[_MODEL])
        out = _link(target)
        if "description" in node:
            out["description"] = node["description"]
        return out
    return {k: _document_form(v) for k, v in node.items()}


@cache
def _document_definition(class_name: str) -> Schema:
    cls = _model(class_name)
    assert cls is not None
    return typing.cast(Schema, _document_form(_raw(cls)))


def _links(node: Any) -> Iterable[tuple[str, str]]:
    """(kind of link, target) of every internal link below ``node``."""
    if isinstance(node, dict):
        for key in (_MODEL, _SHARED_KEY):
            if key in node:
                yield key, node[key]
        for v in node.values():
            yield from _links(v)
    elif isinstance(node, list):
        for v in node:
            yield from _links(v)


@cache
def _closure(class_name: str) -> tuple[tuple[str, Schema], ...]:
    """(component name, schema) of ``class_name`` and of every type it reaches."""
    out: dict[str, Schema] = {}
    todo = [class_name]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        cls = _model(name)
        if cls is None:
            continue
        out[_definition_name(name)] = _document_definition(name)
        for key, target in _links(_raw(cls)):
            if key == _MODEL:
                todo.append(target)
            else:
                out[target] = _SHARED[target]
    return tuple(out.items())


def definitions(group: str, version: str, kind: str) -> dict[str, Schema]:
    """The component schemas a built-in kind's document needs (its own without the
    ``x-kubernetes-group-version-kind`` extension), by name; empty without a model. The
    schemas are shared: copy before changing one."""
    cls = model_class(group, version, kind)
    if cls is None:
        return {}
    with _lock:
        return dict(_closure(cls.__name__))


def object_meta_definitions() -> dict[str, Schema]:
    """ObjectMeta and the types it references, for custom resources' documents."""
    with _lock:
        return dict(_closure("V1ObjectMeta"))
