"""JSON values as the CEL of a CRD validation rule sees them, shaped by the node's schema.

A real API server does not hand a rule the raw JSON: it wraps the value in a typed view
(``UnstructuredToVal`` in ``k8s.io/apiserver/pkg/cel/common``). What the rule can tell apart, and
this module reproduces over plain Python values for the ``cel`` package:

* property names are escaped: CEL keywords become ``__name__`` (``namespace`` is
  ``self.__namespace__``), ``__`` becomes ``__underscores__``, ``.`` ``__dot__``, ``-`` ``__dash__``
  and ``/`` ``__slash__``; a name that cannot be escaped (leading digit, other characters) is not
  visible at all. Map keys (``additionalProperties``) are left as they are.
* ``type: number`` is always a double (``1`` in JSON is ``1.0``);
* strings with ``format: duration``, ``date``, ``date-time`` and ``byte`` are durations,
  timestamps and bytes (a value that does not parse stays a string);
* the root of the resource, and every ``x-kubernetes-embedded-resource``, shows only
  ``metadata.name`` and ``metadata.generateName`` of its metadata.

Not reproduced: ``set`` and ``map`` lists compare equal regardless of order upstream, here they
compare in order; values under ``x-kubernetes-preserve-unknown-fields`` are fully visible here,
where upstream only compares them for equality.

A view may also leave out what the node's rules cannot observe (:mod:`.fields`): properties no
rule names, and the content of those whose size or presence only they test, which become
placeholders (a list or map of as many nulls, or ``0``).

A :class:`Shape` is computed once per schema node; :data:`PLAIN` (``None``) means the value can be
handed to CEL unchanged, which is the common case and costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cel

__all__ = ["CONVERTED_FORMATS", "Shape", "Shapes", "escape", "to_cel"]

Schema = dict[str, Any]

_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
        "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
        "void", "while",
    }
)  # fmt: skip
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPANDABLE = re.compile(r"^[A-Za-z_.\-/][A-Za-z0-9_.\-/]*$")
_EXPAND = re.compile(r"__|[./-]")
_EXPANSIONS = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
_RESOURCE_META = ("name", "generateName")
_FORMAT_KINDS = {"duration": "duration", "date-time": "timestamp", "date": "date", "byte": "bytes"}
CONVERTED_FORMATS = frozenset(_FORMAT_KINDS)
"""String formats whose values CEL sees as something else than the string."""


@lru_cache(maxsize=4096)
def escape(name: str) -> str | None:
    """A property name as CEL sees it (``cel.Escape``), or ``None`` when it cannot be escaped."""
    if not name or name[0].isdigit():
        return None
    if name in _RESERVED:
        return f"__{name}__"
    if _PLAIN_NAME.match(name) and "__" not in name:
        return name
    if not _EXPANDABLE.match(name):
        return None
    return _EXPAND.sub(lambda m: _EXPANSIONS[m.group(0)], name)


@dataclass
class Shape:
    """How to turn a value at one schema node into its CEL view (see the module docstring)."""

    kind: str  # "object", "map", "list", "number", "duration", "timestamp", "date", "bytes",
    # "counted" (only the value's size or presence is observed: placeholders of the same size)
    properties: dict[str, tuple[str, Shape | None]] = field(default_factory=dict)
    """object: JSON name -> (CEL name, shape of the value); names not listed are hidden."""
    element: Shape | None = None
    """map values and list items."""
    resource_root: bool = False
    declared: frozenset[str] = frozenset()
    """object: the JSON names of its properties."""
    special: tuple[tuple[str, str | None, Shape | None], ...] = ()
    """object: the properties whose value or name changes (CEL name None: hidden)."""


PLAIN: Shape | None = None


class Shapes:
    """The shapes of one schema's nodes, computed once per node (keyed by the node's identity;
    the schema dicts live as long as the ``StructuralSchema`` that owns them and this cache).

    ``keep`` (CEL names) leaves every other property of every object out of the view: the
    fields the rules at a node can observe (:mod:`.fields`). Map entries and list
    items are never left out. Properties named in ``counted`` (a subset of ``keep``) show
    placeholders: the rules only take the size of their value or test its presence."""

    def __init__(self) -> None:
        self._cache: dict[
            tuple[int, bool, frozenset[str] | None, frozenset[str]], tuple[Schema, Shape | None]
        ] = {}

    def of(
        self,
        s: Schema | None,
        *,
        resource_root: bool = False,
        keep: frozenset[str] | None = None,
        counted: frozenset[str] = frozenset(),
    ) -> Shape | None:
        if not isinstance(s, dict):
            return PLAIN
        key = (id(s), resource_root, keep, counted)
        hit = self._cache.get(key)
        if hit is not None:
            return hit[1]
        self._cache[key] = (s, PLAIN)  # a schema containing itself sees itself as plain
        root = resource_root or bool(s.get("x-kubernetes-embedded-resource"))
        shape = self._build(s, root, keep, counted)
        self._cache[key] = (s, shape)
        return shape

    def _build(
        self, s: Schema, resource_root: bool, keep: frozenset[str] | None, counted: frozenset[str]
    ) -> Shape | None:
        if s.get("x-kubernetes-int-or-string"):
            return PLAIN
        t = s.get("type")
        if t == "number":
            return Shape("number")
        if t == "string":
            fmt = s.get("format")
            if isinstance(fmt, str) and fmt in _FORMAT_KINDS:
                return Shape(_FORMAT_KINDS[fmt])
            return PLAIN
        if t == "array":
            items = s.get("items")
            element = self.of(
                items if isinstance(items, dict) else None, keep=keep, counted=counted
            )
            return PLAIN if element is None else Shape("list", element=element)
        props = s.get("properties")
        if isinstance(props, dict) and (props or resource_root):
            out: dict[str, tuple[str, Shape | None]] = {}
            changed = resource_root
            for name, sub in props.items():
                cel_name = escape(name)
                if cel_name is None or (keep is not None and cel_name not in keep):
                    changed = True
                    continue
                if cel_name in counted:
                    child: Shape | None = _COUNTED
                else:
                    child = self.of(
                        sub if isinstance(sub, dict) else None, keep=keep, counted=counted
                    )
                if cel_name != name or child is not None:
                    changed = True
                out[name] = (cel_name, child)
            if resource_root:
                for name in ("apiVersion", "kind", "metadata"):
                    if keep is None or name in keep:
                        out.setdefault(name, (name, None))
            if not changed:
                return PLAIN
            special = tuple(
                (name, out[name][0] if name in out else None, out[name][1] if name in out else None)
                for name in props
                if name not in out or out[name][0] != name or out[name][1] is not None
            )
            return Shape(
                "object",
                properties=out,
                resource_root=resource_root,
                declared=frozenset(props),
                special=special,
            )
        ap = s.get("additionalProperties")
        if isinstance(ap, dict):
            element = self.of(ap, keep=keep, counted=counted)
            return PLAIN if element is None else Shape("map", element=element)
        return PLAIN


_COUNTED = Shape("counted")


def to_cel(value: Any, shape: Shape | None) -> Any:
    """The CEL view of ``value`` (``value`` itself when ``shape`` is :data:`PLAIN`)."""
    if shape is None or value is None:
        return value
    return _convert(value, shape)


def _convert(value: Any, shape: Shape) -> Any:
    kind = shape.kind
    if kind == "object":
        if not isinstance(value, dict):
            return value
        if not shape.resource_root and value.keys() <= shape.declared:
            # the usual case (a pruned value): copy only if a property changes
            out = value
            for name, cel_name, child in shape.special:
                if name in value:
                    if out is value:
                        out = dict(value)
                    v = out.pop(name)
                    if cel_name is not None:
                        out[cel_name] = to_cel(v, child)
            return out
        obj: dict[str, Any] = {}
        for name, v in value.items():
            prop = shape.properties.get(name)
            if prop is None:
                continue
            cel_name, child = prop
            if shape.resource_root and name == "metadata" and isinstance(v, dict):
                v = {k: v[k] for k in _RESOURCE_META if k in v}
                child = None
            obj[cel_name] = to_cel(v, child)
        return obj
    if kind == "map":
        if not isinstance(value, dict):
            return value
        return {k: to_cel(v, shape.element) for k, v in value.items()}
    if kind == "list":
        if not isinstance(value, list):
            return value
        return [to_cel(v, shape.element) for v in value]
    if kind == "counted":
        if isinstance(value, list):
            return [None] * len(value)
        if isinstance(value, dict):
            return dict.fromkeys(map(str, range(len(value))))
        return 0
    if kind == "number":
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if not isinstance(value, str):
        return value
    return _scalar(kind, value)


def _scalar(kind: str, value: str) -> Any:
    try:
        if kind == "duration":
            return _duration(value)
        if kind == "timestamp":
            return datetime.datetime.fromisoformat(value.replace("z", "Z"))
        if kind == "date":
            day = datetime.date.fromisoformat(value)
            return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
        if kind == "bytes":
            return base64.b64decode(value, validate=True)
    except (ValueError, TypeError, binascii.Error, RuntimeError):
        return value
    return value


_DURATION = cel.compile("duration(s)")


@lru_cache(maxsize=1024)
def _duration(text: str) -> Any:
    return _DURATION.execute({"s": text})
