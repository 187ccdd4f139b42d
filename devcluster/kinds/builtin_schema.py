"""The structural schema of a built-in kind: :class:`~devcluster.schema.StructuralSchema` with
fast paths for the schemas :mod:`devcluster.kinds.schemas` derives.

Those schemas use only ``type``, ``format``, ``properties``, ``additionalProperties``,
``items``, ``required``, ``x-kubernetes-int-or-string`` and
``x-kubernetes-preserve-unknown-fields`` (no defaults, no nullable, no value validations), and
every write of a built-in kind goes through them (the RBAC bootstrap of every new cluster, every
Pod a controller creates). So the schema is compiled once into a tree of :class:`_Node` and
pruning, null dropping ("defaulting" without defaults) and validation are one pass each over the
object, giving exactly what the general walkers of :mod:`devcluster.schema` give for such a
schema: the same objects, the same errors in the same order. Server-side apply's list semantics
are the built-in ones (the ``+listType`` tags, which the client's models do not carry).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from devcluster import fieldmanager
from devcluster.schema import (  # the general walkers' own error shapes
    FieldError,
    StructuralSchema,
    _format_ok,
    _go_quote,
    _json_type,
    _required,
    _type_invalid,
)

__all__ = ["BuiltinSchema"]

Schema = dict[str, Any]

_META_FIELDS = ("apiVersion", "kind", "metadata")
_CONTAINERS = (dict, list)


@dataclass(eq=False)
class _Node:
    types: tuple[str, ...]  # empty: any type
    fmt: str | None
    props: dict[str, _Node] | None
    order: dict[str, int]  # property -> its place in the schema (error order)
    required: tuple[str, ...]
    additional: _Node | None
    items: _Node | None
    preserve: bool
    leaf: bool = False  # a scalar: no properties, additionalProperties, items or preserve


def _leaf_ok(v: Any, n: _Node) -> bool:
    """Whether a scalar node accepts ``v`` with nothing to report (the common case, checked
    without a call per list element)."""
    if n.fmt is not None:
        return False
    t = v.__class__
    if t is str:
        return not n.types or "string" in n.types
    if t is int:
        return not n.types or "integer" in n.types or "number" in n.types
    if t is bool:
        return not n.types or "boolean" in n.types
    return False


def _compile(s: Schema, memo: dict[int, _Node]) -> _Node:
    found = memo.get(id(s))
    if found is not None:
        return found
    if s.get("x-kubernetes-int-or-string"):
        types: tuple[str, ...] = ("integer", "string")
    elif isinstance(s.get("type"), str) and s["type"]:
        types = (s["type"],)
    else:
        types = ()
    node = _Node(
        types=types,
        fmt=s.get("format") if isinstance(s.get("format"), str) and s.get("format") else None,
        props=None,
        order={},
        required=tuple(s.get("required") or ()),
        additional=None,
        items=None,
        preserve=bool(s.get("x-kubernetes-preserve-unknown-fields")),
    )
    memo[id(s)] = node
    props = s.get("properties")
    if isinstance(props, dict):
        node.props = {k: _compile(v, memo) for k, v in props.items()}
        node.order = {k: i for i, k in enumerate(props)}
    if isinstance(s.get("additionalProperties"), dict):
        node.additional = _compile(s["additionalProperties"], memo)
    if isinstance(s.get("items"), dict):
        node.items = _compile(s["items"], memo)
    node.leaf = (
        node.props is None and node.additional is None and node.items is None and not node.preserve
    )
    return node


def _supported(s: Any) -> bool:
    """Whether the schema uses only what the fast paths handle."""
    if not isinstance(s, dict):
        return False
    allowed = {
        "type",
        "format",
        "description",
        "properties",
        "additionalProperties",
        "items",
        "required",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    }
    if set(s) - allowed:
        return False
    if s.get("x-kubernetes-preserve-unknown-fields") and s.get("properties"):
        return False
    children = list((s.get("properties") or {}).values())
    for key in ("additionalProperties", "items"):
        if key in s:
            children.append(s[key])
    return all(_supported(c) for c in children)


# --------------------------------------------------------------------------------------------
# pruning


def _emptied(x: Any) -> Any:
    """What pruning without a schema leaves: objects emptied, lists walked."""
    if isinstance(x, dict):
        return {}
    if isinstance(x, list):
        return [_emptied(v) for v in x]
    return x


def _pruned(x: Any, n: _Node, root: bool = False) -> Any:
    if n.preserve:
        return copy.deepcopy(x)
    if isinstance(x, dict):
        props = n.props or {}
        out: dict[str, Any] = {}
        for k, v in x.items():
            if root and k in _META_FIELDS and (k == "metadata" or k not in props):
                out[k] = v if k == "metadata" else copy.deepcopy(v)  # metadata: see BuiltinSchema
                continue
            p = props.get(k) or n.additional
            if p is not None:
                out[k] = v if p.leaf and v.__class__ not in _CONTAINERS else _pruned(v, p)
        return out
    if isinstance(x, list):
        items = n.items
        if items is None:
            return [_emptied(v) for v in x]
        if items.leaf:
            return [v if v.__class__ not in _CONTAINERS else _pruned(v, items) for v in x]
        return [_pruned(v, items) for v in x]
    return x


# --------------------------------------------------------------------------------------------
# defaulting: no defaults, so only null properties go


def _copied(v: Any) -> Any:
    return v if v.__class__ not in _CONTAINERS else copy.deepcopy(v)


def _without_nulls(x: Any, n: _Node, root: bool = False) -> Any:
    if isinstance(x, dict):
        props = n.props or {}
        out: dict[str, Any] = {}
        for k, v in x.items():
            p = props.get(k)
            if root and k == "metadata":
                out[k] = v  # see BuiltinSchema
            elif p is None:
                out[k] = _copied(v)
            elif v is not None:
                out[k] = v if p.leaf and v.__class__ not in _CONTAINERS else _without_nulls(v, p)
        return out
    if isinstance(x, list):
        items = n.items
        if items is None:
            return copy.deepcopy(x)
        if items.leaf:
            return [_copied(v) for v in x]
        return [_without_nulls(v, items) for v in x]
    return x


# --------------------------------------------------------------------------------------------
# validation


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(x: Any, n: _Node, path: str, errs: list[FieldError], root: bool = False) -> None:
    types = n.types
    if x is None:
        if types:
            errs.append(
                _type_invalid(
                    path, "null", f'{path} in body must be of type {",".join(types)}: "null"'
                )
            )
        return
    if types:
        jt = _json_type(x)
        if not (
            jt in types
            or (jt == "number" and "integer" in types and isinstance(x, float) and x.is_integer())
            or (jt == "integer" and "number" in types)
        ):
            errs.append(
                _type_invalid(path, jt, f'{path} in body must be of type {",".join(types)}: "{jt}"')
            )
            return
    if isinstance(x, str):
        if n.fmt is not None and not _format_ok(n.fmt, x):
            errs.append(
                _type_invalid(path, x, f"{path} in body must be of type {n.fmt}: {_go_quote(x)}")
            )
    elif isinstance(x, list):
        items = n.items
        if items is not None:
            leaf = items.leaf
            for i, v in enumerate(x):
                if not (leaf and _leaf_ok(v, items)):
                    _check(v, items, f"{path}[{i}]", errs)
    elif isinstance(x, dict):
        for k in n.required:
            if k not in x:
                errs.append(_required(_join(path, k)))
        props = n.props
        if props:
            present = [k for k in x if k in props and not (root and k == "metadata")]
            if len(present) > 1:
                present.sort(key=n.order.__getitem__)
            for k in present:
                p = props[k]
                v = x[k]
                if not (p.leaf and _leaf_ok(v, p)):
                    _check(v, p, _join(path, k), errs)
        extra = n.additional
        if extra is not None:
            leaf = extra.leaf
            for k, v in x.items():
                if (not props or k not in props) and not (leaf and _leaf_ok(v, extra)):
                    _check(v, extra, _join(path, k), errs)


# --------------------------------------------------------------------------------------------


class BuiltinSchema(StructuralSchema):
    """A built-in kind's structural schema (see the module docstring).

    Like the general walkers, :meth:`prune` and :meth:`apply_defaults` return new objects and
    leave their input alone, except for the root ``metadata``, which they do not touch and
    share with the input instead of copying (the server puts its own ObjectMeta back anyway).
    """

    def __init__(self, openapi_v3_schema: Schema, kind: str) -> None:
        super().__init__(openapi_v3_schema)
        self._builtin_list_type = fieldmanager.builtin_list_type(kind)
        self._root = _compile(openapi_v3_schema, {}) if _supported(openapi_v3_schema) else None

    def list_type(self, path: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
        return self._builtin_list_type(path)

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self._root is None:
            return super().prune(obj)
        out: dict[str, Any] = _pruned(obj, self._root, root=True)
        return out

    def apply_defaults(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self._root is None:
            return super().apply_defaults(obj)
        out: dict[str, Any] = _without_nulls(obj, self._root, root=True)
        return out

    def validate(self, obj: dict[str, Any]) -> list[FieldError]:
        if self._root is None:
            return super().validate(obj)
        errors: list[FieldError] = []
        _check(obj, self._root, "", errors, root=True)
        return errors
