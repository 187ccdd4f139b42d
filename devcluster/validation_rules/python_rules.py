"""CEL rules as Python functions that can prove a value passes them, so the validator's fast path
needs no call into the ``cel`` package for the common case: a new value whose rules all hold.

Handing a value to ``cel`` and evaluating there costs far more than the rules' logic: each
string, list and map is converted through a chain of failed type extractions, and in a busy
server (cold caches) one call with a Gateway's listeners costs ~90 us. Most CRD rules use a
small part of CEL (field selection, ``has``, comparisons, ``size``, string tests, the
comprehension macros), which this module translates into Python source, evaluated on the same
view of the value that CEL gets (:mod:`.values`, :func:`translate`), or - where the node's
schema shows that CEL sees every field the rules reach as it is stored - on the stored JSON
itself, with no view to build (:func:`translate_raw`).

The translation only ever *proves* success. A translated rule returns ``True`` only where the
CEL rule evaluates to ``true``; anything it is not sure of - a type other than the expected one,
a missing key, an out-of-range index, an int64 overflow, an error inside ``||``/``&&``/a macro
(which CEL may absorb), a NaN - raises :class:`Unsure`, and the validator then evaluates the
rules with ``cel`` as before, for the exact result and error. A rule that uses anything outside
the subset (``oldSelf``, other functions, doubles, bytes, map literals, escapes beyond
``\\\\ \\' \\" \\n \\r \\t``) is not translated at all (:func:`translate` returns None).

The subset, with CEL's semantics on the values a view holds (str, int, bool, None, float,
list, dict, and timestamps/durations/bytes, which no translated operation accepts):

* literals: decimal and hex ints, strings (quoted, raw - where a backslash is only a
  backslash -, triple-quoted), ``true``, ``false``, ``null``, lists;
* ``x.f``, ``x[i]`` (list index, map key), ``has(x.f)``;
* ``!``, unary ``-``, ``&&``, ``||``, ``?:``, ``==``, ``!=`` and ``in`` on operands of one
  scalar type, ``<``/``<=``/``>``/``>=`` on two ints, strings or doubles, ``+``/``-`` on ints
  (overflow raises), ``+`` on strings;
* ``size`` of an ASCII string, a list or a map; ``startsWith``, ``endsWith``, ``contains``,
  ``matches`` (the library's RE2 ``matches``, as the ``cel`` path calls it);
* ``all``, ``exists``, ``exists_one`` (two-argument form) over a list's items or a map's keys,
  ``filter`` and ``map`` over a list's items (a map's keys come in no defined order).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from devcluster.validation_rules import library as cel_library
from devcluster.validation_rules.values import CONVERTED_FORMATS, escape

__all__ = ["Unsure", "translate", "translate_raw"]

Schema = dict[str, Any]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class Unsure(Exception):
    """The translated rule cannot tell that the CEL rule is true for this value."""


class _Untranslatable(Exception):
    """The rule uses something outside the subset."""


# -------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>(?:[rR])?(?:'''|\"\"\"|'|"))
  | (?P<bytes>[bB][rR]?['"]|[rR][bB]['"])
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[uU]?|\.[0-9]+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])
    """,
    re.VERBOSE,
)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_RESERVED = frozenset(
    {
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let",
        "loop", "package", "namespace", "return", "var", "void", "while",
    }
)  # fmt: skip

Token = tuple[str, Any]  # ("ident", name) | ("op", text) | ("int", value) | ("str", value)


def _tokens(source: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise _Untranslatable(source[pos:])
        kind = m.lastgroup
        if kind == "space":
            pos = m.end()
        elif kind == "string":
            value, pos = _string(source, m.start(), m.group("string"))
            out.append(("str", value))
        elif kind == "bytes":
            raise _Untranslatable("bytes")
        elif kind == "number":
            text = m.group("number")
            if text[-1] in "uU" or not re.fullmatch(r"0[xX][0-9a-fA-F]+|[0-9]+", text):
                raise _Untranslatable(text)  # uints and doubles
            number = int(text, 16) if text[:2] in ("0x", "0X") else int(text)
            out.append(("int", number))
            pos = m.end()
        elif kind == "ident":
            out.append(("ident", m.group("ident")))
            pos = m.end()
        else:
            out.append(("op", m.group("op")))
            pos = m.end()
    out.append(("end", None))
    return out


def _string(source: str, start: int, opening: str) -> tuple[str, int]:
    """The string literal at ``start`` (``opening`` is its prefix and quote) and where it ends."""
    raw = opening[0] in "rR"
    quote = opening[1:] if raw else opening
    i = start + len(opening)
    chars: list[str] = []
    while True:
        if i >= len(source):
            raise _Untranslatable("unterminated string")
        if source.startswith(quote, i):
            return "".join(chars), i + len(quote)
        c = source[i]
        if c == "\\" and not raw:
            nxt = source[i + 1 : i + 2]
            if nxt not in _ESCAPES:
                raise _Untranslatable(f"escape \\{nxt}")
            chars.append(_ESCAPES[nxt])
            i += 2
            continue
        if c in "\r\n" and len(quote) == 1:
            raise _Untranslatable("newline in string")
        chars.append(c)
        i += 1


# -------------------------------------------------------------------------------- parsing

Node = tuple[Any, ...]
"""("lit", value) | ("var", name) | ("list", [items]) | ("select", x, name) | ("has", x, name)
| ("index", x, i) | ("call", name, receiver or None, [args]) | ("macro", name, x, var, body)
| ("not", x) | ("neg", x) | ("and", a, b) | ("or", a, b) | ("cond", c, a, b)
| ("rel", op, a, b) | ("arith", op, a, b)"""

_MACROS = frozenset({"all", "exists", "exists_one", "filter", "map"})
_METHODS = frozenset({"size", "startsWith", "endsWith", "contains", "matches"})


class _Parser:
    """CEL's grammar (cel-spec ``langdef.md``), for the subset."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.pos += 1
            return True
        return False

    def expect(self, op: str) -> None:
        if not self.accept(op):
            raise _Untranslatable(f"expected {op}")

    def parse(self) -> Node:
        node = self.expr()
        if self.peek()[0] != "end":
            raise _Untranslatable("trailing input")
        return node

    def expr(self) -> Node:
        cond = self.disjunction()
        if self.accept("?"):
            then = self.disjunction()
            self.expect(":")
            return ("cond", cond, then, self.expr())
        return cond

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.accept("||"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.relation()
        while self.accept("&&"):
            node = ("and", node, self.relation())
        return node

    def relation(self) -> Node:
        node = self.addition()
        while True:
            token = self.peek()
            if token[0] == "op" and token[1] in ("==", "!=", "<", "<=", ">", ">="):
                self.pos += 1
                node = ("rel", token[1], node, self.addition())
            elif token == ("ident", "in"):
                self.pos += 1
                node = ("rel", "in", node, self.addition())
            else:
                return node

    def addition(self) -> Node:
        node = self.multiplication()
        while True:
            token = self.peek()
            if token[0] == "op" and token[1] in ("+", "-"):
                self.pos += 1
                node = ("arith", token[1], node, self.multiplication())
            else:
                return node

    def multiplication(self) -> Node:
        node = self.unary()
        token = self.peek()
        if token[0] == "op" and token[1] in ("*", "/", "%"):
            raise _Untranslatable(token[1])
        return node

    def unary(self) -> Node:
        if self.accept("!"):
            return ("not", self.unary())
        if self.accept("-"):
            operand = self.unary()
            if operand[0] == "lit" and type(operand[1]) is int:
                return ("lit", -operand[1])  # -9223372036854775808 is a literal
            return ("neg", operand)
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.accept("."):
                kind, name = self.take()
                if kind != "ident":
                    raise _Untranslatable("member")
                node = self.method(node, name) if self.accept("(") else ("select", node, name)
            elif self.accept("["):
                index = self.expr()
                self.expect("]")
                node = ("index", node, index)
            else:
                return node

    def method(self, receiver: Node, name: str) -> Node:
        if name in _MACROS:
            kind, var = self.take()
            if kind != "ident" or not self.accept(","):
                raise _Untranslatable("macro")
            body = self.expr()
            self.expect(")")
            return ("macro", name, receiver, var, body)
        if name not in _METHODS:
            raise _Untranslatable(name)
        return ("call", name, receiver, self.arguments())

    def arguments(self) -> list[Node]:
        args: list[Node] = []
        if self.accept(")"):
            return args
        while True:
            args.append(self.expr())
            if self.accept(")"):
                return args
            self.expect(",")

    def primary(self) -> Node:
        kind, value = self.take()
        if kind in ("int", "str"):
            return ("lit", value)
        if kind == "ident":
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "null":
                return ("lit", None)
            if value in _RESERVED or value == "in":
                raise _Untranslatable(value)
            if self.accept("("):
                if value == "has":
                    arg = self.expr()
                    self.expect(")")
                    if arg[0] != "select":
                        raise _Untranslatable("has")
                    return ("has", arg[1], arg[2])
                if value != "size":
                    raise _Untranslatable(value)
                args = self.arguments()
                if len(args) != 1:
                    raise _Untranslatable("size")
                return ("call", "size", None, args)
            return ("var", value)
        if (kind, value) == ("op", "("):
            node = self.expr()
            self.expect(")")
            return node
        if (kind, value) == ("op", "["):
            items: list[Node] = []
            while not self.accept("]"):
                items.append(self.expr())
                if not self.accept(","):
                    self.expect("]")
                    break
            return ("list", items)
        raise _Untranslatable(f"{kind} {value}")


# -------------------------------------------------------------------------------- Python source


class _Writer:
    """Python source for a parsed rule; CEL variables become ``v_<name>``. The most frequent
    checks are written inline, with an assignment expression (``t<n>``) holding the value
    checked: a CEL field selection is a subscript (in a view only a dict takes a string
    subscript; a missing key or another type raises), a bool or a comparison with a literal
    tests the type in place."""

    def __init__(self) -> None:
        self.bound: set[str] = {"self"}
        self.temps = 0

    def temp(self) -> str:
        self.temps += 1
        return f"t{self.temps}"

    def typed(self, left: Node, type_name: str, test: str) -> str:
        """``left <test>`` (a comparison with literals of type ``type_name``), when ``left`` is
        of that type too."""
        t = self.temp()
        return f"({t} {test} if type({t} := {self.emit(left)}) is {type_name} else _unsure())"

    def presence(self, receiver: str, key: str) -> str:
        """``has(receiver.key)``: the key is in a map."""
        t = self.temp()
        return f"({key!r} in {t} if type({t} := {receiver}) is dict else _unsure())"

    def boolean(self, node: Node) -> str:
        """``node``'s value, which must be a bool (checked unless it can only be one)."""
        if node[0] in _BOOLEAN_KINDS or (node[0] == "lit" and type(node[1]) is bool):
            return self.emit(node)
        if node[0] in ("call", "macro") and node[1] not in ("size", "filter", "map"):
            return self.emit(node)
        t = self.temp()
        return f"({t} if type({t} := {self.emit(node)}) is bool else _unsure())"

    def emit(self, node: Node) -> str:
        kind = node[0]
        if kind == "lit":
            value = node[1]
            if type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
                raise _Untranslatable("int literal out of range")
            return repr(value)
        if kind == "var":
            if node[1] not in self.bound:
                raise _Untranslatable(node[1])  # oldSelf, or a name CEL resolves otherwise
            return f"v_{node[1]}"
        if kind == "list":
            return "[" + "".join(f"{self.emit(i)}, " for i in node[1]) + "]"
        if kind == "select":
            return f"{self.emit(node[1])}[{node[2]!r}]"
        if kind == "has":
            return self.presence(self.emit(node[1]), node[2])
        if kind == "index":
            return f"_index({self.emit(node[1])}, {self.emit(node[2])})"
        if kind == "not":
            return f"(not {self.boolean(node[1])})"
        if kind == "neg":
            return f"_neg({self.emit(node[1])})"
        if kind == "and":
            return f"({self.boolean(node[1])} and {self.boolean(node[2])})"
        if kind == "or":
            return f"({self.boolean(node[1])} or {self.boolean(node[2])})"
        if kind == "cond":
            return f"({self.emit(node[2])} if {self.boolean(node[1])} else {self.emit(node[3])})"
        if kind == "rel":
            return self.relation(node[1], node[2], node[3])
        if kind == "arith":
            return f"{_ARITHMETIC[node[1]]}({self.emit(node[2])}, {self.emit(node[3])})"
        if kind == "call":
            name, receiver, args = node[1], node[2], node[3]
            operands = ([receiver] if receiver is not None else []) + args
            expected = 1 if name == "size" else 2
            if len(operands) != expected:
                raise _Untranslatable(name)
            if name == "size":  # a list's or map's in place, a string's by _size
                t = self.temp()
                operand = self.emit(operands[0])
                return f"(len({t}) if type({t} := {operand}) in _COUNTABLE else _size({t}))"
            return f"{_FUNCTIONS[name]}({', '.join(self.emit(o) for o in operands)})"
        if kind == "macro":
            name, receiver, var, body = node[1:]
            outer = set(self.bound)
            target = self.emit(receiver)
            self.bound.add(var)
            try:
                predicate = self.emit(body)
            finally:
                self.bound = outer
            return f"{_MACRO_HELPERS[name]}({target}, lambda v_{var}: {predicate})"
        raise _Untranslatable(kind)

    def relation(self, op: str, left: Node, right: Node) -> str:
        literal = _literal_type(right)
        if literal is not None and (op in ("==", "!=") or literal != "bool"):
            # ints and strings order alike in CEL and Python (strings by code point)
            return self.typed(left, literal, f"{op} {self.emit(right)}")
        if op == "in" and right[0] == "list" and right[1]:
            types = {_literal_type(item) for item in right[1]}
            if len(types) == 1 and None not in types:
                items = "".join(f"{self.emit(item)}, " for item in right[1])
                return self.typed(left, str(types.pop()), f"in ({items})")
        return f"{_RELATIONS[op]}({self.emit(left)}, {self.emit(right)})"


_BOOLEAN_KINDS = frozenset({"has", "not", "and", "or", "rel"})
"""Nodes whose written form yields a bool or raises."""


def _literal_type(node: Node) -> str | None:
    """The Python type name of a str, int or bool literal (None for anything else)."""
    if node[0] != "lit":
        return None
    return {str: "str", int: "int", bool: "bool"}.get(type(node[1]))


_RELATIONS = {
    "==": "_eq",
    "!=": "_ne",
    "<": "_lt",
    "<=": "_le",
    ">": "_gt",
    ">=": "_ge",
    "in": "_in",
}
_ARITHMETIC = {"+": "_add", "-": "_sub"}
_FUNCTIONS = {
    "size": "_size",
    "startsWith": "_starts_with",
    "endsWith": "_ends_with",
    "contains": "_contains",
    "matches": "_matches",
}
_MACRO_HELPERS = {
    "all": "_all",
    "exists": "_exists",
    "exists_one": "_exists_one",
    "filter": "_filter",
    "map": "_map",
}


# -------------------------------------------------------------------------------- runtime

_SCALARS = (str, int, bool, type(None))
_COUNTABLE = (list, dict)


def _unsure() -> Any:
    raise Unsure


def _bool(x: Any) -> bool:
    if type(x) is bool:
        return x
    raise Unsure


def _index(x: Any, i: Any) -> Any:
    if type(x) is list and type(i) is int and 0 <= i < len(x):
        return x[i]
    if type(x) is dict and type(i) is str and i in x:
        return x[i]
    raise Unsure


def _scalar_pair(a: Any, b: Any) -> None:
    if type(a) is not type(b) or type(a) not in _SCALARS:
        raise Unsure


def _eq(a: Any, b: Any) -> bool:
    _scalar_pair(a, b)
    return bool(a == b)


def _ne(a: Any, b: Any) -> bool:
    _scalar_pair(a, b)
    return bool(a != b)


def _ordered(a: Any, b: Any) -> None:
    t = type(a)
    if t is not type(b) or t not in (int, str, float):
        raise Unsure
    if t is float and (math.isnan(a) or math.isnan(b)):
        raise Unsure


def _lt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a >= b)


def _in(x: Any, items: Any) -> bool:
    if type(items) is not list or type(x) not in _SCALARS:
        raise Unsure
    t = type(x)
    for item in items:
        if type(item) is not t:
            raise Unsure
    return x in items


def _int64(value: int) -> int:
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    raise Unsure


def _add(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        return _int64(a + b)
    if type(a) is str and type(b) is str:
        return a + b
    raise Unsure


def _sub(a: Any, b: Any) -> int:
    if type(a) is int and type(b) is int:
        return _int64(a - b)
    raise Unsure


def _neg(a: Any) -> int:
    if type(a) is int:
        return _int64(-a)
    raise Unsure


def _size(x: Any) -> int:
    if type(x) is str and x.isascii():
        return len(x)  # the cel package counts a string's UTF-8 bytes, cel-go its code points
    if type(x) in (list, dict):
        return len(x)
    raise Unsure


def _strings(a: Any, b: Any) -> None:
    if type(a) is not str or type(b) is not str:
        raise Unsure


def _starts_with(a: Any, b: Any) -> bool:
    _strings(a, b)
    return bool(a.startswith(b))


def _ends_with(a: Any, b: Any) -> bool:
    _strings(a, b)
    return bool(a.endswith(b))


def _contains(a: Any, b: Any) -> bool:
    _strings(a, b)
    return b in a


def _matches(a: Any, b: Any) -> bool:
    _strings(a, b)
    try:
        return bool(cel_library.FUNCTIONS["__matches"](a, b))
    except (ValueError, UnicodeError):  # an illegal pattern, a lone surrogate
        raise Unsure from None


def _iterated(x: Any) -> list[Any]:
    if type(x) is list:
        return x
    if type(x) is dict:
        return list(x)
    raise Unsure


def _all(x: Any, predicate: Callable[[Any], Any]) -> bool:
    return all(_bool(predicate(v)) for v in _iterated(x))


def _exists(x: Any, predicate: Callable[[Any], Any]) -> bool:
    return any(_bool(predicate(v)) for v in _iterated(x))


def _exists_one(x: Any, predicate: Callable[[Any], Any]) -> bool:
    count = 0
    for v in _iterated(x):
        if _bool(predicate(v)):
            count += 1
    return count == 1


def _listed(x: Any) -> list[Any]:
    """A list's items in order (the keys of a CEL map come in no defined order, so a list made
    from them may differ from the ``cel`` package's)."""
    if type(x) is list:
        return x
    raise Unsure


def _filter(x: Any, predicate: Callable[[Any], Any]) -> list[Any]:
    return [v for v in _listed(x) if _bool(predicate(v))]


def _map(x: Any, transform: Callable[[Any], Any]) -> list[Any]:
    return [transform(v) for v in _listed(x)]


_RUNTIME: dict[str, Any] = {
    name: value for name, value in globals().items() if name.startswith("_") and callable(value)
}
_RUNTIME["_COUNTABLE"] = _COUNTABLE


# -------------------------------------------------------------------------------- stored values


class _RawWriter(_Writer):
    """Python source for a rule evaluated on the stored JSON value rather than its CEL view
    (no view to build). Every field the rule reaches is followed through the node's schema,
    which must show that the JSON there is what CEL sees: a property is reached by its JSON
    name (``__namespace__`` is ``namespace``), a map entry by its key; no ``type: number``
    (CEL sees a double), converted string formats, embedded resources or the root's
    ``metadata``; ``size``, macros and indexes only on strings, lists and maps (an object's view
    may hide properties)."""

    def __init__(self, schema: Schema, resource_root: bool) -> None:
        super().__init__()
        self.schemas: dict[str, Schema | None] = {"self": schema}
        self.resource_root = resource_root

    def emit(self, node: Node) -> str:
        kind = node[0]
        if kind == "var":
            self.schema_of(node)
        elif kind == "select":
            self.schema_of(node)
            name, _ = self.member(node[1], node[2])
            return f"{self.emit(node[1])}[{name!r}]"
        elif kind == "has":
            name, _ = self.member(node[1], node[2])
            return self.presence(self.emit(node[1]), name)
        elif kind == "index":
            self.schema_of(node)
        elif kind == "call" and node[1] == "size":
            operands = ([node[2]] if node[2] is not None else []) + node[3]
            if len(operands) == 1 and operands[0][0] in _FIELDS:
                s = self.schema_of(operands[0])
                if s.get("type") != "string" and _collection(s) is None:
                    raise _Untranslatable("size of an object")
        elif kind == "rel" and node[1] == "in" and node[3][0] in _FIELDS:
            if _collection(self.schema_of(node[3])) is None:
                raise _Untranslatable("in an object")
        elif kind == "macro":
            return self.macro(node)
        return super().emit(node)

    def macro(self, node: Node) -> str:
        name, receiver, var, body = node[1:]
        element = None
        if receiver[0] in _FIELDS:
            over = self.schema_of(receiver)
            element = _collection(over)
            if element is None:
                raise _Untranslatable("macro over an object")
            if "items" not in over:
                element = _KEY  # a macro over a map binds its keys
        outer_bound, outer_schemas = set(self.bound), dict(self.schemas)
        target = self.emit(receiver)
        self.bound.add(var)
        self.schemas[var] = element
        try:
            predicate = self.emit(body)
        finally:
            self.bound, self.schemas = outer_bound, outer_schemas
        return f"{_MACRO_HELPERS[name]}({target}, lambda v_{var}: {predicate})"

    def schema_of(self, node: Node) -> Schema:
        """The schema of a field expression (a variable, a selection, an index), which must
        be one whose JSON value CEL sees unchanged."""
        kind = node[0]
        s: Schema | None = None
        if kind == "var":
            s = self.schemas.get(node[1])
        elif kind == "select":
            s = self.member(node[1], node[2])[1]
        elif kind == "index":
            s = _collection(self.schema_of(node[1]))
        if s is None or not _unchanged(s):
            raise _Untranslatable("a field CEL does not see as stored")
        return s

    def member(self, receiver: Node, cel_name: str) -> tuple[str, Schema]:
        """The JSON name and schema of ``receiver.cel_name``."""
        s = self.schema_of(receiver)
        if receiver == ("var", "self") and self.resource_root and cel_name == "metadata":
            raise _Untranslatable("the root's metadata")
        props = s.get("properties")
        if isinstance(props, dict) and props:
            for json_name, sub in props.items():
                if isinstance(sub, dict) and escape(json_name) == cel_name:
                    return json_name, sub
            raise _Untranslatable(cel_name)
        if _collection(s) is not None and "items" not in s:
            return cel_name, s["additionalProperties"]
        raise _Untranslatable(cel_name)


_FIELDS = frozenset({"var", "select", "index"})
_KEY: Schema = {"type": "string"}


def _collection(s: Schema) -> Schema | None:
    """What a macro over (or an index into) a value of ``s`` reaches: a list's items, a map's
    keys for a macro and values for an index; None for anything else."""
    if isinstance(s.get("items"), dict):
        return s["items"]  # type: ignore[no-any-return]
    ap = s.get("additionalProperties")
    if isinstance(ap, dict) and not s.get("properties"):
        return ap
    return None


def _unchanged(s: Schema, depth: int = 0) -> bool:
    """Whether CEL sees a JSON value of ``s`` as it is stored (objects aside: their fields are
    checked one by one as the rule reaches them)."""
    if depth > 32 or s.get("x-kubernetes-embedded-resource"):
        return False
    if s.get("x-kubernetes-int-or-string"):
        return True
    t = s.get("type")
    if t == "number" or (t == "string" and s.get("format") in CONVERTED_FORMATS):
        return False
    inner = _collection(s)
    return inner is None or _unchanged(inner, depth + 1)


def translate_raw(
    sources: tuple[str, ...], schema: Schema, resource_root: bool
) -> Callable[[Any], bool] | None:
    """The rules as one function of the stored value at schema node ``schema`` (see
    :class:`_RawWriter`) that returns ``True`` only when every CEL rule is true for its view,
    or None when one of them is outside the subset or reaches what CEL sees otherwise."""
    try:
        trees = [_parse(source) for source in sources]
        bodies = [_RawWriter(schema, resource_root).emit(t) for t in trees if t is not None]
    except (_Untranslatable, RecursionError, ValueError):
        return None
    if len(bodies) != len(sources):
        return None
    return _conjunction(bodies)


def _conjunction(bodies: list[str]) -> Callable[[Any], bool] | None:
    if not bodies:
        return None
    conjunction = " and ".join(f"(({b}) is True)" for b in bodies)
    try:
        code = compile(f"lambda v_self: {conjunction}", "<validation rules>", "eval")
    except (SyntaxError, RecursionError, ValueError):
        return None
    function: Callable[[Any], bool] = eval(code, dict(_RUNTIME))  # noqa: S307 - our own source
    return function


@lru_cache(maxsize=4096)
def _parse(source: str) -> Node | None:
    """The rule's syntax tree (shared, never changed), or None when it is outside the
    subset's syntax."""
    try:
        return _Parser(_tokens(source)).parse()
    except (_Untranslatable, RecursionError, ValueError):
        return None


@lru_cache(maxsize=4096)
def _body(source: str) -> str | None:
    tree = _parse(source)
    if tree is None:
        return None
    try:
        return _Writer().emit(tree)
    except (_Untranslatable, RecursionError, ValueError):
        return None


@lru_cache(maxsize=1024)
def translate(*sources: str) -> Callable[[Any], bool] | None:
    """The rules as one function of ``self``'s view that returns ``True`` only when every
    CEL rule is true for it (see the module docstring; it stops at the first rule that is not
    shown true), or None when one of them is outside the subset."""
    bodies = [_body(source) for source in sources]
    if any(b is None for b in bodies):
        return None
    return _conjunction([b for b in bodies if b is not None])
