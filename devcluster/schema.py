"""CRD structural schemas: defaulting, pruning and validation as the real API server does them.

The devcluster must reject and rewrite custom resources exactly like a real cluster, or bifrost's
tests would pass against the emulator and fail against Kubernetes. This module reproduces, over
plain JSON values, what ``apiextensions-apiserver`` does with a CRD version's
``openAPIV3Schema``:

* :meth:`StructuralSchema.prune` -- ``structuralpruning.Prune`` (drop undeclared fields);
* :meth:`StructuralSchema.apply_defaults` -- ``structuraldefaulting.Default`` followed by
  ``PruneNonNullableNullsWithoutDefaults``;
* :meth:`StructuralSchema.validate` -- the kube-openapi schema validator, with its errors turned
  into field errors the way ``kubeOpenAPIResultToFieldErrors`` does, so causes and messages
  read like a real server's (``spec.listeners[0].name: Required value``).

The real server applies them in this order on every write: prune, default, validate; and defaults
again on every read. CEL rules (``x-kubernetes-validations``) are *not* evaluated, and
``metadata`` (at the root and in embedded resources) is left to the server's ObjectMeta handling.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import ipaddress
import json
import math
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["FieldError", "StructuralSchema", "format_value", "invalid_message"]

Schema = dict[str, Any]

_META_FIELDS = ("apiVersion", "kind", "metadata")


@dataclass(frozen=True)
class FieldError:
    """One validation error, as in ``details.causes`` of a 422 Invalid Status.

    ``reason`` is the cause type (``FieldValueRequired``, ``FieldValueInvalid``,
    ``FieldValueNotSupported``, ``FieldValueTypeInvalid``, ``FieldValueTooLong``,
    ``FieldValueTooMany``); ``message`` is the error body without the field
    (``Required value``); ``field`` the path (``spec.listeners[0].name``).
    """

    reason: str
    message: str
    field: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def invalid_message(kind_group: str, name: str, errors: list[FieldError]) -> str:
    """The 422 message: ``Kind.group "name" is invalid: [field: message, ...]``.

    Like ``errors.NewInvalid`` with ``ErrorList.ToAggregate``: duplicates are dropped, a single
    error is not bracketed, no errors gives ``... is invalid``.
    """
    msgs: list[str] = []
    for e in errors:
        s = str(e)
        if s not in msgs:
            msgs.append(s)
    head = f"{kind_group} {_go_quote(name)} is invalid"
    if not msgs:
        return head
    if len(msgs) == 1:
        return f"{head}: {msgs[0]}"
    return f"{head}: [{', '.join(msgs)}]"


# --------------------------------------------------------------------------------------------
# value formatting like Go's field.Error.ErrorBody


def _go_quote(s: str) -> str:
    """Approximately Go's ``%q`` / ``strconv.Quote``."""
    return json.dumps(s, ensure_ascii=False)


def _go_number(n: int | float) -> str:
    if isinstance(n, float):
        if math.isfinite(n) and n.is_integer() and abs(n) < 1e21:
            return str(int(n))
        return repr(n)
    return str(n)


def format_value(value: Any) -> str:
    """A bad value as ``field.Error.ErrorBody`` prints it (strings quoted, null as ``"null"``)."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_number(value)
    if isinstance(value, str):
        return _go_quote(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _required(field: str) -> FieldError:
    return FieldError("FieldValueRequired", "Required value", field)


def _invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", f"Invalid value: {format_value(value)}: {detail}", field)


def _type_invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(
        "FieldValueTypeInvalid", f"Invalid value: {format_value(value)}: {detail}", field
    )


def _not_supported(field: str, value: Any, allowed: list[Any]) -> FieldError:
    quoted = [_go_quote(v if isinstance(v, str) else json.dumps(v)) for v in allowed]
    msg = f"Unsupported value: {format_value(value)}"
    if quoted:
        msg += f": supported values: {', '.join(quoted)}"
    return FieldError("FieldValueNotSupported", msg, field)


def _too_long(field: str, max_length: int) -> FieldError:
    unit = "byte" if max_length == 1 else "bytes"
    return FieldError(
        "FieldValueTooLong", f"Too long: may not be more than {max_length} {unit}", field
    )


def _too_many(field: str, actual: int, maximum: int) -> FieldError:
    unit = "item" if maximum == 1 else "items"
    return FieldError(
        "FieldValueTooMany", f"Too many: {actual}: must have at most {maximum} {unit}", field
    )


# --------------------------------------------------------------------------------------------
# JSON type helpers


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _is_int_or_string(s: Schema) -> bool:
    return bool(s.get("x-kubernetes-int-or-string"))


def _preserves(s: Schema | None) -> bool:
    return bool(s is not None and s.get("x-kubernetes-preserve-unknown-fields"))


def _additional(s: Schema) -> Schema | bool | None:
    ap = s.get("additionalProperties")
    if isinstance(ap, dict | bool):
        return ap
    return None


def _child(s: Schema | None, key: str) -> Schema | None:
    """The schema of object property ``key`` (properties, then additionalProperties)."""
    if s is None:
        return None
    props = s.get("properties") or {}
    if key in props:
        sub = props[key]
        return sub if isinstance(sub, dict) else None
    ap = _additional(s)
    return ap if isinstance(ap, dict) else None


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


# Formats that the API server keeps in CRD schemas (StripUnsupportedFormatsPostProcess) and that
# are simple to check. Others are accepted.
_HOSTNAME = re.compile(
    r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAC = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$"
)
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def _format_ok(fmt: str, v: str) -> bool:
    try:
        if fmt == "ipv4":
            ipaddress.IPv4Address(v)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(v)
        elif fmt == "cidr":
            ipaddress.ip_network(v, strict=False)
        elif fmt in ("uuid", "uuid3", "uuid4", "uuid5"):
            u = uuid.UUID(v)
            if fmt != "uuid" and str(u.version) != fmt[-1]:
                return False
        elif fmt == "byte":
            base64.b64decode(v, validate=True)
        elif fmt == "date":
            datetime.date.fromisoformat(v)
        elif fmt in ("date-time", "datetime"):
            return bool(_DATE_TIME.match(v))
        elif fmt == "hostname":
            return len(v) <= 255 and bool(_HOSTNAME.match(v))
        elif fmt == "email":
            return bool(_EMAIL.match(v))
        elif fmt == "mac":
            return bool(_MAC.match(v))
    except (ValueError, binascii.Error):
        return False
    return True


# --------------------------------------------------------------------------------------------


class StructuralSchema:
    """One CRD version's ``openAPIV3Schema``, used for defaulting, pruning and validation.

    CEL rules (``x-kubernetes-validations``) are not evaluated.
    """

    def __init__(self, openapi_v3_schema: dict[str, Any]) -> None:
        self.schema: Schema = openapi_v3_schema
        self._list_types: dict[tuple[str, ...], tuple[str, tuple[str, ...]] | None] = {}

    # ---------------------------------------------------------------- defaulting

    def apply_defaults(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Return a new object with ``default:`` values applied recursively.

        A default is applied only where the parent object exists (so ``spec.x`` defaults need a
        ``spec``), also to array items and ``additionalProperties`` values, and also in place of
        ``null`` in a non-nullable field. Defaulted values are defaulted in turn. Afterwards
        ``null`` values of non-nullable properties without a default are dropped, as the API
        server does. The root ``metadata`` is left alone.
        """
        out = copy.deepcopy(obj)
        _default(out, self.schema, root=True)
        _prune_nulls(out, self.schema, root=True)
        return out

    # ---------------------------------------------------------------- pruning

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Return a new object without fields the schema does not declare.

        Honours ``x-kubernetes-preserve-unknown-fields`` (unknown fields kept, known ones still
        pruned inside), ``x-kubernetes-embedded-resource`` (``apiVersion``, ``kind``,
        ``metadata`` kept) and ``additionalProperties``. ``apiVersion``, ``kind`` and
        ``metadata`` at the root are never pruned (the server handles ``metadata``).
        """
        out = copy.deepcopy(obj)
        _prune(out, self.schema, root=True)
        return out

    def undeclared_fields(self, obj: dict[str, Any]) -> list[str]:
        """The fields :meth:`prune` would drop, as structured-merge-diff paths.

        For server-side apply: the real server refuses an applied configuration with such
        fields (``failed to create typed patch object (ns/name; group/version, Kind=K):
        .spec.listeners[name="http"].junk: field not declared in schema``, HTTP 500) instead of
        pruning it. Paths look like ``.spec.x``, ``.spec.listeners[name="http"].y``,
        ``.spec.tags[="a"]``, ``.spec.plain[0]``.
        """
        out: list[str] = []
        _undeclared(obj, self.schema, "", out, root=True)
        return out

    # ---------------------------------------------------------------- validation

    def validate(self, obj: dict[str, Any]) -> list[FieldError]:
        """Validate ``obj`` against the schema; an empty list means valid.

        Checks type (integer vs number; ``x-kubernetes-int-or-string``; ``nullable``), enum,
        required, pattern, minLength/maxLength, minimum/maximum (and exclusive), multipleOf,
        minItems/maxItems, uniqueItems, minProperties/maxProperties, simple formats (ipv4, ipv6,
        cidr, uuid, byte, date, date-time, hostname, email, mac), and the value validations
        allOf/anyOf/oneOf/not. The root ``metadata`` is not validated here.
        """
        errors: list[FieldError] = []
        _validate(obj, self.schema, "", errors, root=True)
        return errors

    # ---------------------------------------------------------------- list types

    def list_type(self, path: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
        """The list semantics at ``path`` ('*' for array items), for server-side apply.

        ``("map", keys)`` for ``x-kubernetes-list-type: map``, ``("set", ())`` for ``set``,
        ``("atomic", ())`` for ``atomic`` or an array without a list type (the default for CRDs).
        Also ``("atomic", ())`` for an object with ``x-kubernetes-map-type: atomic`` so that
        server-side apply owns it as a whole. ``None`` when the path is not a list or is not
        described by the schema. ``metadata.finalizers`` and ``metadata.ownerReferences`` are
        answered as for any object.
        """
        try:
            return self._list_types[path]
        except KeyError:
            pass
        if len(self._list_types) > 4096:
            self._list_types.clear()
        result = self._list_type(path)
        self._list_types[path] = result
        return result

    def _list_type(self, path: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
        meta = _metadata_list_type(path)
        if meta is not None or (path and path[0] == "metadata"):
            return meta
        node: Schema | None = self.schema
        for seg in path:
            if node is None:
                return None
            if seg == "*":
                items = node.get("items")
                node = items if isinstance(items, dict) else None
            else:
                node = _child(node, seg)
        if node is None:
            return None
        if node.get("type") == "array" or "items" in node:
            lt = node.get("x-kubernetes-list-type", "atomic")
            if lt == "map":
                return ("map", tuple(node.get("x-kubernetes-list-map-keys") or ()))
            if lt == "set":
                return ("set", ())
            return ("atomic", ())
        if node.get("x-kubernetes-map-type") == "atomic":
            return ("atomic", ())
        return None


def _metadata_list_type(path: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    if path == ("metadata", "finalizers"):
        return ("set", ())
    if path == ("metadata", "ownerReferences"):
        return ("map", ("uid",))
    return None


# --------------------------------------------------------------------------------------------
# defaulting


def _non_nullable_null(v: Any, s: Schema | None) -> bool:
    return v is None and s is not None and not s.get("nullable", False)


def _default(x: Any, s: Schema | None, *, root: bool = False) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props: dict[str, Schema] = s.get("properties") or {}
        for k, prop in props.items():
            if root and k == "metadata":
                continue
            if not isinstance(prop, dict) or "default" not in prop:
                continue
            if k not in x or _non_nullable_null(x[k], prop):
                x[k] = copy.deepcopy(prop["default"])
        ap = _additional(s)
        for k in list(x):
            if (
                root
                and k == "metadata"
                or (s.get("x-kubernetes-embedded-resource") and k == "metadata")
            ):
                continue
            if k in props:
                _default(x[k], props[k])
            elif isinstance(ap, dict):
                if _non_nullable_null(x[k], ap) and "default" in ap:
                    x[k] = copy.deepcopy(ap["default"])
                _default(x[k], ap)
    elif isinstance(x, list):
        items = s.get("items")
        if not isinstance(items, dict):
            return
        for i, v in enumerate(x):
            if _non_nullable_null(v, items) and "default" in items:
                x[i] = copy.deepcopy(items["default"])
            _default(x[i], items)


def _prune_nulls(x: Any, s: Schema | None, *, root: bool = False) -> None:
    """``PruneNonNullableNullsWithoutDefaults``: only declared properties, recursively."""
    if s is None:
        return
    if isinstance(x, dict):
        props: dict[str, Schema] = s.get("properties") or {}
        for k in list(x):
            if root and k == "metadata":
                continue
            prop = props.get(k)
            if prop is None:
                continue
            v = x[k]
            if v is None and "default" not in prop and not prop.get("nullable", False):
                del x[k]
            else:
                _prune_nulls(v, prop)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for v in x:
                _prune_nulls(v, items)


# --------------------------------------------------------------------------------------------
# pruning


def _prune(x: Any, s: Schema | None, *, root: bool = False) -> None:
    if _preserves(s):
        _skip_prune(x, s)
        return
    if isinstance(x, dict):
        if s is None:
            x.clear()
            return
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        props: dict[str, Schema] = s.get("properties") or {}
        ap = _additional(s)
        for k in list(x):
            # metadata of the resource itself and of embedded resources is ObjectMeta,
            # handled (coerced) by the server, not by this schema.
            if (embedded or root) and k in _META_FIELDS and (k == "metadata" or k not in props):
                continue
            if k in props:
                _prune(x[k], props[k])
            elif isinstance(ap, dict):
                _prune(x[k], ap)
            elif ap is True:
                # additionalProperties: true without a schema -- keep the value as it is.
                continue
            else:
                del x[k]
    elif isinstance(x, list):
        items = s.get("items") if s is not None else None
        for v in x:
            _prune(v, items if isinstance(items, dict) else None)


def _item_path(item: Any, index: int, s: Schema) -> str:
    lt = s.get("x-kubernetes-list-type")
    if lt == "map" and isinstance(item, dict):
        keys = sorted(k for k in s.get("x-kubernetes-list-map-keys") or () if k in item)
        return "[" + ",".join(f"{k}={_smd_value(item[k])}" for k in keys) + "]"
    if lt == "set":
        return f"[={_smd_value(item)}]"
    return f"[{index}]"


def _smd_value(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _undeclared(x: Any, s: Schema | None, path: str, out: list[str], *, root: bool = False) -> None:
    """Like :func:`_prune`, recording instead of deleting."""
    if s is None:
        return
    preserve = _preserves(s)
    if isinstance(x, dict):
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        props: dict[str, Schema] = s.get("properties") or {}
        ap = _additional(s)
        for k, v in x.items():
            if (embedded or root) and k in _META_FIELDS and (k == "metadata" or k not in props):
                continue
            child = f"{path}.{k}"
            if k in props:
                _undeclared(v, props[k], child, out)
            elif isinstance(ap, dict):
                _undeclared(v, ap, child, out)
            elif ap is True or preserve:
                continue
            else:
                out.append(child)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(x):
                _undeclared(v, items, path + _item_path(v, i, s), out)


def _skip_prune(x: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        props: dict[str, Schema] = s.get("properties") or {}
        ap = _additional(s)
        for k in list(x):
            if embedded and k in _META_FIELDS and (k == "metadata" or k not in props):
                continue
            if k in props:
                _prune(x[k], props[k])
            elif isinstance(ap, dict):
                _prune(x[k], ap)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for v in x:
                _skip_prune(v, items)


# --------------------------------------------------------------------------------------------
# validation (kube-openapi order: type, value validations, string, format, number, array,
# enum, object)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _validate(x: Any, s: Schema, path: str, errs: list[FieldError], *, root: bool = False) -> None:
    # type
    jt = _json_type(x)
    types: list[str] = []
    if _is_int_or_string(s):
        types = ["integer", "string"]
    elif isinstance(s.get("type"), str) and s["type"]:
        types = [s["type"]]
    if x is None:
        if types and not s.get("nullable", False):
            errs.append(
                _type_invalid(
                    path, "null", f'{path} in body must be of type {",".join(types)}: "null"'
                )
            )
        elif isinstance(s.get("enum"), list) and not any(e is None for e in s["enum"]):
            # kube-openapi checks enum for null too: a nullable enum must list null.
            errs.append(_not_supported(path, None, s["enum"]))
        return
    if types:
        ok = (
            jt in types
            or (jt == "number" and "integer" in types and isinstance(x, float) and x.is_integer())
            or (jt == "integer" and "number" in types)
        )
        if not ok:
            errs.append(
                _type_invalid(path, jt, f'{path} in body must be of type {",".join(types)}: "{jt}"')
            )
            return

    # value validations
    _validate_composition(x, s, path, errs)

    # string
    if isinstance(x, str):
        n = len(x)
        if "maxLength" in s and n > int(s["maxLength"]):
            errs.append(_too_long(path, int(s["maxLength"])))
        if "minLength" in s and n < int(s["minLength"]):
            errs.append(
                _invalid(
                    path, x, f"{path} in body should be at least {int(s['minLength'])} chars long"
                )
            )
        if isinstance(s.get("pattern"), str):
            rx = _compile(s["pattern"])
            if rx is not None and not rx.search(x):
                errs.append(_invalid(path, x, f"{path} in body should match '{s['pattern']}'"))
        fmt = s.get("format")
        if isinstance(fmt, str) and fmt and not _format_ok(fmt, x):
            errs.append(
                _type_invalid(path, x, f"{path} in body must be of type {fmt}: {_go_quote(x)}")
            )

    # number
    if isinstance(x, int | float) and not isinstance(x, bool):
        _validate_number(x, s, path, errs)

    # array
    if isinstance(x, list):
        if "maxItems" in s and len(x) > int(s["maxItems"]):
            errs.append(_too_many(path, len(x), int(s["maxItems"])))
        if "minItems" in s and len(x) < int(s["minItems"]):
            errs.append(
                _invalid(
                    path, len(x), f"{path} in body should have at least {int(s['minItems'])} items"
                )
            )
        if s.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in x}) != len(x):
            errs.append(_invalid(path, x, f"{path} in body shouldn't contain duplicates"))
        _validate_list_type(x, s, path, errs)
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(x):
                _validate(v, items, f"{path}[{i}]", errs)

    # enum
    if isinstance(s.get("enum"), list) and not any(_json_equal(x, e) for e in s["enum"]):
        errs.append(_not_supported(path, x, s["enum"]))

    # object
    if isinstance(x, dict):
        if "maxProperties" in s and len(x) > int(s["maxProperties"]):
            errs.append(_too_many(path, len(x), int(s["maxProperties"])))
        if "minProperties" in s and len(x) < int(s["minProperties"]):
            errs.append(
                _invalid(
                    path,
                    len(x),
                    f"{path} in body should have at least {int(s['minProperties'])} properties",
                )
            )
        for k in s.get("required") or ():
            if k not in x:
                errs.append(_required(_join(path, k)))
        props: dict[str, Schema] = s.get("properties") or {}
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        if embedded:
            for k in ("apiVersion", "kind"):
                if k not in x:
                    errs.append(
                        FieldError(
                            "FieldValueRequired",
                            "Required value: must not be empty",
                            _join(path, k),
                        )
                    )
        for k, prop in props.items():
            if k in x and isinstance(prop, dict):
                if (root or embedded) and k == "metadata":
                    continue
                _validate(x[k], prop, _join(path, k), errs)
        ap = _additional(s)
        if isinstance(ap, dict):
            for k, v in x.items():
                if k not in props:
                    _validate(v, ap, _join(path, k), errs)


def _validate_number(x: int | float, s: Schema, path: str, errs: list[FieldError]) -> None:
    if "maximum" in s:
        m = s["maximum"]
        if s.get("exclusiveMaximum") is True:
            if x >= m:
                errs.append(
                    _invalid(path, x, f"{path} in body should be less than {_go_number(m)}")
                )
        elif x > m:
            errs.append(
                _invalid(path, x, f"{path} in body should be less than or equal to {_go_number(m)}")
            )
    if "minimum" in s:
        m = s["minimum"]
        if s.get("exclusiveMinimum") is True:
            if x <= m:
                errs.append(
                    _invalid(path, x, f"{path} in body should be greater than {_go_number(m)}")
                )
        elif x < m:
            errs.append(
                _invalid(
                    path, x, f"{path} in body should be greater than or equal to {_go_number(m)}"
                )
            )
    mo = s.get("multipleOf")
    if isinstance(mo, int | float) and not isinstance(mo, bool) and mo > 0:
        q = x / mo
        if not math.isclose(q, round(q), rel_tol=0, abs_tol=1e-9):
            errs.append(
                _invalid(path, x, f"{path} in body should be a multiple of {_go_number(mo)}")
            )


def _validate_list_type(x: list[Any], s: Schema, path: str, errs: list[FieldError]) -> None:
    """Duplicates in ``set`` and ``map`` lists (``validation.ValidateListSetsAndMaps``)."""
    lt = s.get("x-kubernetes-list-type")
    if lt == "set":
        seen: set[str] = set()
        for i, v in enumerate(x):
            key = json.dumps(v, sort_keys=True)
            if key in seen:
                errs.append(
                    FieldError(
                        "FieldValueDuplicate", f"Duplicate value: {format_value(v)}", f"{path}[{i}]"
                    )
                )
            seen.add(key)
    elif lt == "map":
        keys = s.get("x-kubernetes-list-map-keys") or []
        items = s.get("items") if isinstance(s.get("items"), dict) else {}
        props: dict[str, Schema] = (items or {}).get("properties") or {}
        seen_keys: set[str] = set()
        for i, v in enumerate(x):
            if not isinstance(v, dict):
                continue
            ident: dict[str, Any] = {}
            for k in keys:
                if k in v:
                    ident[k] = v[k]
                elif isinstance(props.get(k), dict) and "default" in props[k]:
                    ident[k] = props[k]["default"]
            key = json.dumps(ident, sort_keys=True)
            if key in seen_keys:
                errs.append(
                    FieldError(
                        "FieldValueDuplicate",
                        f"Duplicate value: {format_value(ident)}",
                        f"{path}[{i}]",
                    )
                )
            seen_keys.add(key)


def _validate_composition(x: Any, s: Schema, path: str, errs: list[FieldError]) -> None:
    """allOf / anyOf / oneOf / not (only value validations in a structural schema)."""
    shown = path or "<nil>"
    for sub in s.get("allOf") or ():
        if isinstance(sub, dict):
            _validate(x, sub, path, errs)
    any_of = [sub for sub in s.get("anyOf") or () if isinstance(sub, dict)]
    if any_of:
        best: list[FieldError] | None = None
        best_sub: Schema = {}
        for sub in any_of:
            sub_errs: list[FieldError] = []
            _validate(x, sub, path, sub_errs)
            if not sub_errs:
                best = None
                break
            if best is None or _better(x, sub, sub_errs, best_sub, best):
                best, best_sub = sub_errs, sub
        else:
            errs.append(_invalid(shown, "", f"{path} must validate at least one schema (anyOf)"))
        if best:
            errs.extend(best)
    one_of = [sub for sub in s.get("oneOf") or () if isinstance(sub, dict)]
    if one_of:
        valid = 0
        best_one: list[FieldError] | None = None
        best_one_sub: Schema = {}
        for sub in one_of:
            sub_errs = []
            _validate(x, sub, path, sub_errs)
            if not sub_errs:
                valid += 1
            elif valid == 0 and (
                best_one is None or _better(x, sub, sub_errs, best_one_sub, best_one)
            ):
                best_one, best_one_sub = sub_errs, sub
        if valid != 1:
            extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            errs.append(
                _invalid(
                    shown, "", f"{path} must validate one and only one schema (oneOf). {extra}"
                )
            )
            if valid == 0 and best_one:
                errs.extend(best_one)
    not_s = s.get("not")
    if isinstance(not_s, dict):
        sub_errs = []
        _validate(x, not_s, path, sub_errs)
        if not sub_errs:
            errs.append(_invalid(shown, "", f"{path} must not validate the schema (not)"))


def _better(
    x: Any, sub: Schema, errs: list[FieldError], best_sub: Schema, best: list[FieldError]
) -> bool:
    """Whether ``sub`` failed "closer" than ``best_sub`` (kube-openapi's best MatchCount).

    The alternative that describes more of the value (more of its properties present) wins;
    on a tie, the one with fewer errors.
    """
    mine, theirs = _coverage(x, sub), _coverage(x, best_sub)
    if mine != theirs:
        return mine > theirs
    return len(errs) < len(best)


def _coverage(x: Any, s: Schema) -> int:
    if not isinstance(x, dict):
        return 0
    props = s.get("properties") or {}
    return sum(1 for k in props if k in x)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(p, q) for p, q in zip(a, b, strict=True))
    return bool(a == b)
