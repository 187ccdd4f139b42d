"""Which fields of ``self`` a node's rules can observe, so the value handed to CEL can leave the
others out.

Handing a value to the ``cel`` package costs about a microsecond per field, and a list rule sees
every item whole (a Gateway's listeners with their routes' namespaces and certificate refs, an
HTTPRoute's rules with all their filters), while the rules read a few named fields. Leaving out
the fields no rule names cannot change a rule's result *as long as no rule observes an object
as a whole* - compares it, takes its size, passes it to a function - because a rule can only
reach a field of an object by naming it.

:func:`observed_fields` reads the rules' text (strings skipped) and follows every chain of
field selections and indexes that starts at ``self`` or at a variable a macro binds, through the
node's schema:

* ``x.f`` names ``f``; ``has(x.f)`` tests presence only;
* ``x.all(v, …)`` (and ``exists``, ``exists_one``, ``map``, ``filter``) iterates ``x`` and binds
  ``v`` to its items (or its keys);
* ``x.size()`` / ``size(x)`` of a list or map, and string functions of a string, are fine;
* any other use of a chain's value (``==``, ``in``, a function argument, the result) is fine when
  the value holds no object with properties (a string, a list of strings, a map of numbers).

Anything else - an object used whole, a chain the schema does not describe, a variable bound to
two different things, ``oldSelf`` - and the answer is ``None``: the value is handed over whole.

:func:`observed` also tells which of those fields are only *counted*: every chain that ends at
such a field takes the size of a list or map there (``x.f.size()``, ``size(x.f)``) or tests its
presence (``has(x.f)``), and none looks inside. The view may show such a list or map as one of
the same size with placeholder items (:mod:`.values`), so values that differ only inside it
look the same to the rules (an HTTPRoute's ``self[0].matches.size()``, a listener's
``size(self.certificateRefs) > 0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from devcluster.validation_rules import source as cel_source
from devcluster.validation_rules.values import escape

__all__ = ["Observed", "observed", "observed_fields"]

Schema = dict[str, Any]

_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_STRING_FUNCTIONS = frozenset(
    {
        "matches", "startsWith", "endsWith", "contains", "split", "lowerAscii", "upperAscii",
        "trim", "indexOf", "lastIndexOf", "substring", "replace", "charAt", "find", "findAll",
        "size",
    }
)  # fmt: skip
_SCALARS = frozenset({"string", "integer", "number", "boolean"})
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_]\w*)")
_FIELD = re.compile(r"\s*\.\s*([A-Za-z_]\w*)")
_MACRO_VARIABLE = re.compile(r"\s*([A-Za-z_]\w*)\s*,")


class _Unsafe(Exception):
    """A rule may observe an object whole: no field can be left out."""


@dataclass(frozen=True)
class Observed:
    """What the rules of a node observe of ``self`` (CEL-escaped field names)."""

    names: frozenset[str]
    """The fields they name; every other field may be left out of the view."""
    counted: frozenset[str]
    """Those of ``names`` whose value they only count or test for presence (see the module
    docstring); a list or map there may be shown as placeholders of the same size."""


def observed(sources: list[str], s: Schema) -> Observed | None:
    """What the rules ``sources`` at schema node ``s`` can observe, or None when they may
    observe more than named fields."""
    names: set[str] = set()
    looked_into: set[str] = set()
    try:
        for source in sources:
            _scan(cel_source.code_only(source), s, names, looked_into)
    except _Unsafe:
        return None
    return Observed(frozenset(names), frozenset(names - looked_into))


def observed_fields(sources: list[str], s: Schema) -> frozenset[str] | None:
    """The (CEL-escaped) field names the rules ``sources`` at schema node ``s`` can observe, or
    None when they may observe more than named fields."""
    seen = observed(sources, s)
    return None if seen is None else seen.names


def _scan(code: str, s: Schema, names: set[str], looked_into: set[str]) -> None:
    variables: dict[str, Schema] = {"self": s}
    for m in _IDENTIFIER.finditer(code):
        name = m.group(1)
        if name == "oldSelf":
            raise _Unsafe
        if name not in variables or _MACRO_BINDING.search(code, 0, m.start()):
            continue
        _chain(code, m.start(), m.end(), variables[name], variables, names, looked_into)
    if cel_source.macro_variables(code) - variables.keys():
        raise _Unsafe  # a macro over something not followed here (the result of another macro)


_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*$")


def _chain(
    code: str,
    start: int,
    pos: int,
    schema: Schema | None,
    variables: dict[str, Schema],
    names: set[str],
    looked_into: set[str],
) -> None:
    """Follow the selections and indexes after a variable; decide whether its use is safe.
    ``looked_into`` gets the fields whose value is read beyond its size or presence."""
    last: str | None = None  # the field the chain is at (None: the variable itself)
    while True:
        m = _FIELD.match(code, pos)
        if m is not None:
            name = m.group(1)
            if code[m.end() :].lstrip().startswith("("):
                if not (name == "size" and _is_counted(schema)):
                    _look_into(last, looked_into)
                _call(code, code.index("(", m.end()), name, schema, variables)
                return
            _look_into(last, looked_into)
            names.add(name)
            last = name
            schema = _member(schema, name)
            pos = m.end()
            continue
        if code[pos:].lstrip().startswith("["):
            _look_into(last, looked_into)
            pos = _closing(code, code.index("[", pos)) + 1
            schema = _element(schema)
            continue
        break
    before = code[:start].rstrip()
    after = code[pos:].lstrip()
    if before.endswith("has(") and after.startswith(")"):
        return  # a presence test: nothing is read
    if re.search(r"(?<![\w.])size\($", before) and after.startswith(")") and _is_collection(schema):
        if not _is_counted(schema):
            _look_into(last, looked_into)
        return
    _look_into(last, looked_into)
    _whole(schema)


def _look_into(name: str | None, looked_into: set[str]) -> None:
    if name is not None:
        looked_into.add(name)


def _is_counted(schema: Schema | None) -> bool:
    """Whether a value of ``schema`` whose size is taken can be shown as placeholders (a list
    or a map; a string's size needs the string)."""
    return schema is not None and (
        isinstance(schema.get("items"), dict)
        or isinstance(schema.get("additionalProperties"), dict)
    )


def _call(
    code: str, open_at: int, method: str, receiver: Schema | None, variables: dict[str, Schema]
) -> None:
    """``receiver.method(`` with the ``(`` at ``open_at``."""
    if method in _MACROS:
        m = _MACRO_VARIABLE.match(code, open_at + 1)
        if m is None:
            raise _Unsafe
        bound = _iterated(receiver)
        previous = variables.get(m.group(1))
        if previous is not None and previous is not bound:
            raise _Unsafe
        variables[m.group(1)] = bound
        if method in ("map", "filter"):
            # a new list: only its size may be taken
            rest = code[_closing(code, open_at, "(", ")") + 1 :].lstrip()
            if not re.match(r"\.\s*size\s*\(\s*\)", rest):
                raise _Unsafe
        return
    if method in _STRING_FUNCTIONS and _is_string(receiver):
        return
    if method == "size" and _is_collection(receiver):
        return
    _whole(receiver)


def _whole(schema: Schema | None) -> None:
    """The value is used as a whole: safe only if leaving fields out cannot change it."""
    if schema is None or _has_objects(schema):
        raise _Unsafe


def _member(schema: Schema | None, name: str) -> Schema:
    if schema is None:
        raise _Unsafe
    props = schema.get("properties") or {}
    for json_name, sub in props.items():
        if isinstance(sub, dict) and escape(json_name) == name:
            return sub
    ap = schema.get("additionalProperties")
    if isinstance(ap, dict):
        return ap
    raise _Unsafe


def _element(schema: Schema | None) -> Schema:
    if schema is None:
        raise _Unsafe
    if isinstance(schema.get("items"), dict):
        return schema["items"]  # type: ignore[no-any-return]
    ap = schema.get("additionalProperties")
    if isinstance(ap, dict):
        return ap
    raise _Unsafe


def _iterated(schema: Schema | None) -> Schema:
    """What a macro over ``schema`` binds: list items, or map (and object) keys."""
    if schema is None:
        raise _Unsafe
    if isinstance(schema.get("items"), dict):
        return schema["items"]  # type: ignore[no-any-return]
    if schema.get("type") == "object":
        return _KEY
    raise _Unsafe


_KEY: Schema = {"type": "string"}


def _is_string(schema: Schema | None) -> bool:
    return schema is not None and (
        schema.get("type") == "string" or bool(schema.get("x-kubernetes-int-or-string"))
    )


def _is_collection(schema: Schema | None) -> bool:
    if schema is None:
        return False
    return (
        isinstance(schema.get("items"), dict)
        or isinstance(schema.get("additionalProperties"), dict)
        or schema.get("type") == "string"
    )


def _has_objects(schema: Schema) -> bool:
    """Whether a value of ``schema`` can hold an object with properties (which a view may trim),
    or anything the schema does not describe."""
    if schema.get("x-kubernetes-int-or-string") or schema.get("type") in _SCALARS:
        return False
    if schema.get("properties"):
        return True
    if isinstance(schema.get("items"), dict):
        return _has_objects(schema["items"])
    ap = schema.get("additionalProperties")
    if isinstance(ap, dict):
        return _has_objects(ap)
    return True


def _closing(code: str, open_at: int, opening: str = "[", closing: str = "]") -> int:
    depth = 0
    for i in range(open_at, len(code)):
        if code[i] == opening:
            depth += 1
        elif code[i] == closing:
            depth -= 1
            if depth == 0:
                return i
    raise _Unsafe
