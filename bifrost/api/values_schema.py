"""Typed values: the schema a GatewayClassBlueprint declares for its values, and its validator.

A blueprint's ``spec.values.schema`` is a small subset of OpenAPI v3 / JSON Schema, written like a
CRD's ``openAPIV3Schema``:

========================= ==================================================================
keyword                   meaning
========================= ==================================================================
``type``                  ``string``, ``integer``, ``number``, ``boolean``, ``object``,
                          ``array`` (absent: any value; the root must be ``object``)
``nullable``              ``null`` is allowed as well (OpenAPI v3.0)
``enum``                  one of these values (at most 256)
``minimum``/``maximum``   bounds of an ``integer``/``number``; ``exclusiveMinimum``/
                          ``exclusiveMaximum`` (booleans, OpenAPI v3.0) make them strict
``minLength``/            length of a ``string`` in characters
``maxLength``
``pattern``               a ``string`` must contain a match (unanchored, like Kubernetes:
                          write ``^…$``); RE2 syntax, see below
``minItems``/``maxItems`` length of an ``array``; ``items`` the schema of each element
``properties``            schemas of an ``object``'s declared keys; ``required`` those that
                          must be present in the merged values; ``additionalProperties``
                          ``true`` (default, like JSON Schema), ``false``, or a schema for
                          undeclared keys; ``maxProperties`` bounds the number of keys
``description``/``title`` documentation, ignored
========================= ==================================================================

Anything else is refused (:class:`SchemaError`, naming the keyword's path), as is a keyword that
does not fit the node's ``type`` (``maximum`` on a ``string``). The schema is admin-written but
evaluated by the controller against tenant data, so it is bounded: at most
:data:`MAX_SCHEMA_DEPTH` levels and :data:`MAX_SCHEMA_NODES` nodes, patterns of at most
:data:`MAX_PATTERN_LENGTH` characters.

**Patterns run in linear time.** They are compiled with RE2 (``google-re2``), whose matching time
is linear in the input (no backtracking, so no catastrophic patterns such as ``(a+)+$``) — the
same engine and syntax the Kubernetes API server uses for a CRD's ``pattern``. RE2 refuses
backreferences and lookaround; such a pattern is a :class:`SchemaError`. A tenant string is
bounded only by the size of the policy object (the API server's limit), which RE2 scans once.

Two ways to validate:

- :func:`validate` — a complete value (the merged values of a Gateway): every keyword, including
  ``required`` and ``maxProperties``;
- :func:`validate_level` — one *level* of values (a blueprint's ``defaults``, a policy's
  ``default``/``override``). A level is partial (maps deep-merge with the other levels), so maps
  are checked key by key against ``properties``/``additionalProperties`` and ``required``/
  ``maxProperties`` are left to the merged check; anything that is not a map (scalars, lists)
  replaces what was there, so it is checked completely.

A :class:`Violation` names the field path and the rule, never the value: values are tenant data.
Keys in a path are printed only when they are plain (letters, digits, ``_``, ``-``, ``.``, ``/``,
at most 63 characters); any other key is shown as ``[?]``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import re2

__all__ = [
    "MAX_PATTERN_LENGTH",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_NODES",
    "SchemaError",
    "SchemaNode",
    "Violation",
    "compile_schema",
    "compiled_schema",
    "declares_path",
    "format_violations",
    "join_path",
    "leaf_paths",
    "tenant_key_violations",
    "validate",
    "validate_level",
]

MAX_SCHEMA_DEPTH: Final = 16
MAX_SCHEMA_NODES: Final = 512
MAX_PATTERN_LENGTH: Final = 1024
MAX_ENUM: Final = 256
#: At most this many violations are reported for one value (the first ones, in key order).
MAX_VIOLATIONS: Final = 20

_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array"})
_ARTICLE = {"string": "a string", "integer": "an integer", "number": "a number",
            "boolean": "a boolean", "object": "a map", "array": "a list", "null": "null"}
_COMMON = frozenset({"type", "nullable", "enum", "description", "title"})
_BY_TYPE: dict[str | None, frozenset[str]] = {
    None: frozenset(),
    "string": frozenset({"minLength", "maxLength", "pattern"}),
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset(),
    "object": frozenset({"properties", "additionalProperties", "required", "maxProperties"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
}
_ALL_KEYWORDS = _COMMON.union(*_BY_TYPE.values())
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_./-]{1,63}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")


class SchemaError(ValueError):
    """The schema itself is wrong; the message names the keyword's path and the fix."""


@dataclass(frozen=True)
class Violation:
    """A value breaks a rule: ``path`` is the field path, ``rule`` what it must be."""

    path: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}"


@dataclass(frozen=True, eq=False)
class SchemaNode:
    """One compiled node of a values schema (see the module docstring)."""

    type: str | None = None
    nullable: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    items: SchemaNode | None = None
    properties: Mapping[str, SchemaNode] = field(default_factory=dict)
    additional: bool | SchemaNode = True
    required: tuple[str, ...] = ()
    max_properties: int | None = None
    _regex: Any = None


# ---------------------------------------------------------------- compiling a schema


def _plain_path(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f'{path}["{key}"]'


class _Compiler:
    def __init__(self) -> None:
        self.nodes = 0

    def node(self, raw: object, path: str, depth: int) -> SchemaNode:
        if not isinstance(raw, Mapping):
            raise SchemaError(f"{path}: must be a schema (a map of keywords)")
        self.nodes += 1
        if self.nodes > MAX_SCHEMA_NODES:
            raise SchemaError(f"{path}: the schema has more than {MAX_SCHEMA_NODES} nodes")
        if depth > MAX_SCHEMA_DEPTH:
            raise SchemaError(f"{path}: the schema is nested deeper than {MAX_SCHEMA_DEPTH} levels")
        unknown = sorted(str(k) for k in raw if k not in _ALL_KEYWORDS)
        if unknown:
            raise SchemaError(
                f"{path}: unknown keyword {unknown[0]!r} — supported: "
                + ", ".join(sorted(_ALL_KEYWORDS))
            )
        kind = raw.get("type")
        if kind is not None and kind not in _TYPES:
            raise SchemaError(f"{path}.type: must be one of {', '.join(sorted(_TYPES))}")
        allowed = _COMMON | _BY_TYPE[kind]
        misplaced = sorted(str(k) for k in raw if k not in allowed)
        if misplaced:
            needs = " or ".join(t for t, kws in _BY_TYPE.items() if t and misplaced[0] in kws)
            raise SchemaError(
                f"{path}.{misplaced[0]}: only applies to type {needs}"
                + (f", not {kind}" if kind else " — declare the type")
            )
        for key in ("description", "title"):
            if key in raw and not isinstance(raw[key], str):
                raise SchemaError(f"{path}.{key}: must be a string")
        args: dict[str, Any] = {"type": kind, "nullable": self._bool(raw, "nullable", path)}
        if "enum" in raw:
            enum = raw["enum"]
            if not isinstance(enum, list) or not enum or len(enum) > MAX_ENUM:
                raise SchemaError(f"{path}.enum: must be a list of 1 to {MAX_ENUM} values")
            args["enum"] = tuple(enum)
        for key, attr in (("minimum", "minimum"), ("maximum", "maximum")):
            if key in raw:
                args[attr] = self._number(raw[key], f"{path}.{key}")
        args["exclusive_minimum"] = self._bool(raw, "exclusiveMinimum", path)
        args["exclusive_maximum"] = self._bool(raw, "exclusiveMaximum", path)
        for key, attr in (("minLength", "min_length"), ("maxLength", "max_length"),
                          ("minItems", "min_items"), ("maxItems", "max_items"),
                          ("maxProperties", "max_properties")):
            if key in raw:
                args[attr] = self._count(raw[key], f"{path}.{key}")
        for low, high in (("minimum", "maximum"), ("min_length", "max_length"),
                          ("min_items", "max_items")):
            if args.get(low) is not None and args.get(high) is not None \
                    and args[low] > args[high]:
                raise SchemaError(f"{path}: the lower bound is above the upper bound")
        if "pattern" in raw:
            args["pattern"], args["_regex"] = _compile_pattern(raw["pattern"], f"{path}.pattern")
        if "items" in raw:
            args["items"] = self.node(raw["items"], f"{path}.items", depth + 1)
        if "properties" in raw:
            props = raw["properties"]
            if not isinstance(props, Mapping):
                raise SchemaError(f"{path}.properties: must be a map of key → schema")
            args["properties"] = {
                str(k): self.node(v, _plain_path(f"{path}.properties", str(k)), depth + 1)
                for k, v in props.items()
            }
        if "additionalProperties" in raw:
            extra = raw["additionalProperties"]
            args["additional"] = extra if isinstance(extra, bool) else self.node(
                extra, f"{path}.additionalProperties", depth + 1)
        if "required" in raw:
            req = raw["required"]
            if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
                raise SchemaError(f"{path}.required: must be a list of key names")
            args["required"] = tuple(req)
        return SchemaNode(**args)

    @staticmethod
    def _bool(raw: Mapping[str, Any], key: str, path: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            raise SchemaError(f"{path}.{key}: must be true or false")
        return value

    @staticmethod
    def _number(value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise SchemaError(f"{path}: must be a number")
        return value

    @staticmethod
    def _count(value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SchemaError(f"{path}: must be a whole number ≥ 0")
        return value


def _compile_pattern(source: object, path: str) -> tuple[str, Any]:
    if not isinstance(source, str) or not source:
        raise SchemaError(f"{path}: must be a non-empty string")
    if len(source) > MAX_PATTERN_LENGTH:
        raise SchemaError(f"{path}: longer than {MAX_PATTERN_LENGTH} characters")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    try:
        return source, re2.compile(source, options)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(
            exc.args[0], bytes) else str(exc)
        raise SchemaError(
            f"{path}: not an RE2 pattern ({detail.split(':')[0]}) — backreferences and "
            "lookaround are not supported"
        ) from None


def compile_schema(raw: object, *, path: str = "spec.values.schema") -> SchemaNode:
    """Check and compile a values schema; :class:`SchemaError` names the first problem."""
    root = _Compiler().node(raw, path, 1)
    if root.type != "object":
        raise SchemaError(f"{path}.type: the values are a map — declare type: object")
    return root


@lru_cache(maxsize=64)
def _compiled(canonical: str, path: str) -> SchemaNode:
    return compile_schema(json.loads(canonical), path=path)


def compiled_schema(raw: Mapping[str, Any], *, path: str = "spec.values.schema") -> SchemaNode:
    """:func:`compile_schema`, cached by content (a blueprint is parsed on every observation)."""
    try:
        canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{path}: not plain JSON data") from exc
    return _compiled(canonical, path)


# ---------------------------------------------------------------- validating values


def join_path(path: str, key: object) -> str:
    """``path`` followed by a map key, printed only if it is plain (see the module docstring)."""
    text = str(key)
    if _IDENTIFIER.fullmatch(text):
        return f"{path}.{text}"
    if _PLAIN_KEY.fullmatch(text):
        return f'{path}["{text}"]'
    return f"{path}[?]"


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return "unknown"


def _is(kind: str, value: object) -> bool:
    actual = _type_of(value)
    if kind == "number":
        return actual in ("integer", "number") and math.isfinite(float(value))  # type: ignore[arg-type]
    return actual == kind


def _show(value: object) -> str:
    """An admin-written schema value (enum member) for a message."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _bound(node: SchemaNode) -> str:
    parts = []
    if node.minimum is not None:
        parts.append(f"{'>' if node.exclusive_minimum else '≥'} {_num(node.minimum)}")
    if node.maximum is not None:
        parts.append(f"{'<' if node.exclusive_maximum else '≤'} {_num(node.maximum)}")
    return " and ".join(parts)


def _num(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _length(low: int | None, high: int | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"must have {low} to {high} {unit}"
    if high is not None:
        return f"must have at most {high} {unit}"
    return f"must have at least {low} {unit}"


class _Validator:
    def __init__(self) -> None:
        self.out: list[Violation] = []

    @property
    def full(self) -> bool:
        return len(self.out) >= MAX_VIOLATIONS

    def add(self, path: str, rule: str) -> None:
        if not self.full:
            self.out.append(Violation(path, rule))

    def scalar_rules(self, node: SchemaNode, value: object, path: str) -> bool:
        """type, nullable, enum and the scalar keywords; False when the value's type is wrong
        (nothing more to check below it)."""
        if value is None:
            if node.nullable or node.type is None and (node.enum is None or None in node.enum):
                return False
            self.add(path, f"must be {_ARTICLE.get(node.type or '', 'a value')}, not null")
            return False
        if node.type is not None and not _is(node.type, value):
            actual = _ARTICLE.get(_type_of(value), "this kind")
            self.add(path, f"must be {_ARTICLE[node.type]}, not {actual}")
            return False
        if node.enum is not None and not any(_same(value, e) for e in node.enum):
            shown = ", ".join(_show(e) for e in node.enum[:10])
            more = f" (and {len(node.enum) - 10} more)" if len(node.enum) > 10 else ""
            self.add(path, f"must be one of {shown}{more}")
            return True
        if node.type in ("integer", "number"):
            number = float(value)  # type: ignore[arg-type]
            low_bad = node.minimum is not None and (
                number <= node.minimum if node.exclusive_minimum else number < node.minimum)
            high_bad = node.maximum is not None and (
                number >= node.maximum if node.exclusive_maximum else number > node.maximum)
            if low_bad or high_bad:
                self.add(path, f"must be {_ARTICLE[node.type]} {_bound(node)}")
        elif node.type == "string":
            assert isinstance(value, str)
            too_short = node.min_length is not None and len(value) < node.min_length
            too_long = node.max_length is not None and len(value) > node.max_length
            if too_short or too_long:
                self.add(path, _length(node.min_length, node.max_length, "characters"))
            elif node._regex is not None and node._regex.search(value) is None:
                self.add(path, f"must match the pattern {node.pattern}")
        return True

    def full_value(self, node: SchemaNode, value: object, path: str) -> None:
        if self.full or not self.scalar_rules(node, value, path):
            return
        if node.type == "array":
            assert isinstance(value, list | tuple)
            if (node.min_items is not None and len(value) < node.min_items) or (
                    node.max_items is not None and len(value) > node.max_items):
                self.add(path, _length(node.min_items, node.max_items, "items"))
            if node.items is not None:
                for i, item in enumerate(value):
                    if self.full:
                        return
                    self.full_value(node.items, item, f"{path}[{i}]")
        elif node.type == "object":
            assert isinstance(value, Mapping)
            for key in node.required:
                if key not in value:
                    self.add(join_path(path, key), "is required")
            if node.max_properties is not None and len(value) > node.max_properties:
                self.add(path, f"must have at most {node.max_properties} keys")
            self.keys(node, value, path, partial=False)

    def keys(self, node: SchemaNode, value: Mapping[Any, Any], path: str, *,
             partial: bool) -> None:
        for key, item in value.items():
            if self.full:
                return
            sub = node.properties.get(key) if isinstance(key, str) else None
            where = join_path(path, key)
            if sub is None:
                if node.additional is False:
                    self.add(where, "is not a key the blueprint declares" + _declared(node))
                    continue
                if node.additional is True:
                    continue
                sub = node.additional
            if partial:
                self.level(sub, item, where)
            else:
                self.full_value(sub, item, where)

    def level(self, node: SchemaNode, value: object, path: str) -> None:
        if node.type == "object" and isinstance(value, Mapping):
            if node.enum is not None:
                self.full_value(node, value, path)  # an enum of maps compares whole values
            else:
                self.keys(node, value, path, partial=True)
        else:
            self.full_value(node, value, path)


def _declared(node: SchemaNode) -> str:
    names = sorted(node.properties)
    if not names:
        return " (it declares none here)"
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f" (declared: {shown})"


def _same(value: object, member: object) -> bool:
    """JSON equality: ``1`` is not ``true``, ``1`` equals ``1.0``."""
    if isinstance(value, bool) or isinstance(member, bool):
        return isinstance(value, bool) and isinstance(member, bool) and value == member
    return value == member


def validate(schema: SchemaNode, value: object, path: str) -> list[Violation]:
    """Every rule a complete ``value`` (e.g. merged values) breaks, at most
    :data:`MAX_VIOLATIONS`."""
    v = _Validator()
    v.full_value(schema, value, path)
    return v.out


def validate_level(schema: SchemaNode, level: Mapping[str, Any], path: str) -> list[Violation]:
    """The rules one partial level of values breaks (see the module docstring)."""
    v = _Validator()
    v.level(schema, level, path)
    return v.out


# ---------------------------------------------------------------- tenant keys


def leaf_paths(value: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of everything a level sets: non-map values and empty maps (a leaf of their own)."""
    out: list[tuple[str, ...]] = []
    for key, item in value.items():
        path = (*prefix, str(key))
        if isinstance(item, Mapping) and item:
            out.extend(leaf_paths(item, path))
        else:
            out.append(path)
    return out


def tenant_key_violations(
    tenant_keys: Iterable[str], level: Mapping[str, Any], path: str
) -> list[Violation]:
    """A violation for each leaf ``level`` sets that no tenant key covers: a leaf is covered by
    a dotted key that is its path or a prefix of it (``resources`` covers ``resources.cpu``)."""
    allowed = [tuple(k.split(".")) for k in tenant_keys]
    rule = (
        "may not be set by a GatewayConfig: the blueprint's spec.values.tenantKeys "
        + ("allow " + ", ".join(sorted(tenant_keys)) if allowed else "allow no keys")
    )
    out: list[Violation] = []
    for leaf in leaf_paths(level):
        if not any(leaf[: len(key)] == key for key in allowed):
            where = path
            for part in leaf:
                where = join_path(where, part)
            out.append(Violation(where, rule))
            if len(out) >= MAX_VIOLATIONS:
                break
    return out


def declares_path(schema: SchemaNode, dotted: str) -> bool:
    """Whether values may have a key at ``dotted`` (declared, or admitted by
    ``additionalProperties``) — a tenant key the schema can never admit is a mistake."""
    node: SchemaNode | None = schema
    for part in dotted.split("."):
        if node is None or node.type not in (None, "object"):
            return node is not None and node.type is None
        if node.type is None:
            return True
        sub = node.properties.get(part)
        if sub is None:
            if node.additional is False:
                return False
            if node.additional is True:
                return True
            sub = node.additional
        node = sub
    return True


def format_violations(violations: Sequence[Violation]) -> str:
    """``a: rule; b: rule`` — for a condition message."""
    return "; ".join(str(v) for v in violations)
