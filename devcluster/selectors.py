"""Label and field selectors, parsed the way the API server parses them.

Lists and watches filter by these; a watch also uses them to turn an object moving into (out of)
the selection into ADDED (DELETED), so matching must be a pure function of one object.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["SelectorError", "parse_field_selector", "parse_label_selector"]

Matcher = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """A selector that does not parse (400 BadRequest)."""


_SET_RE = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*")
_CMP_RE = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s,()]*)\s*")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*")
_LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


def _in(key: str, values: set[str], negate: bool) -> Matcher:
    def match(o: dict[str, Any]) -> bool:
        return (_labels(o).get(key) in values) != negate

    return match


def _eq(key: str, value: str, negate: bool) -> Matcher:
    def match(o: dict[str, Any]) -> bool:
        return (_labels(o).get(key) == value) != negate

    return match


def _exists(key: str, negate: bool) -> Matcher:
    def match(o: dict[str, Any]) -> bool:
        return (key in _labels(o)) != negate

    return match


def _field_eq(path: str, value: str, negate: bool) -> Matcher:
    def match(o: dict[str, Any]) -> bool:
        return (_field_value(o, path) == value) != negate

    return match


def parse_label_selector(text: str | None) -> Matcher | None:
    """``a=b,c!=d,e in (f,g),h notin (i),j,!k`` -> predicate over objects (None: everything)."""
    if not text or not text.strip():
        return None
    reqs: list[Matcher] = []
    rest = text
    while rest.strip():
        m = _SET_RE.match(rest)
        if m:
            key, op, vals = m.group(1), m.group(2), m.group(3)
            values = {v.strip() for v in vals.split(",") if v.strip()}
            _check_key(key, text)
            reqs.append(_in(key, values, op == "notin"))
        else:
            m = _CMP_RE.match(rest)
            if m:
                key, op, val = m.group(1), m.group(2), m.group(3)
                _check_key(key, text)
                reqs.append(_eq(key, val, op == "!="))
            else:
                m = _EXISTS_RE.match(rest)
                if not m or not m.group(2):
                    raise SelectorError(f"unable to parse requirement: {text!r}")
                neg, key = m.group(1), m.group(2)
                _check_key(key, text)
                reqs.append(_exists(key, bool(neg)))
        rest = rest[m.end() :]
        if rest.strip():
            if not rest.lstrip().startswith(","):
                raise SelectorError(f"unable to parse requirement: found '{rest.strip()}'")
            rest = rest.lstrip()[1:]
    return lambda o: all(r(o) for r in reqs)


def _check_key(key: str, text: str) -> None:
    if not _LABEL_KEY_RE.match(key):
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r} in selector {text!r}"
        )


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text: str | None) -> Matcher | None:
    """``metadata.name=x,metadata.namespace!=y`` (``=``, ``==``, ``!=``; any dotted path)."""
    if not text or not text.strip():
        return None
    reqs: list[Matcher] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "!=" in part:
            f, v = part.split("!=", 1)
            reqs.append(_field_eq(f.strip(), v.strip(), True))
        elif "==" in part:
            f, v = part.split("==", 1)
            reqs.append(_field_eq(f.strip(), v.strip(), False))
        elif "=" in part:
            f, v = part.split("=", 1)
            reqs.append(_field_eq(f.strip(), v.strip(), False))
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return lambda o: all(r(o) for r in reqs)
