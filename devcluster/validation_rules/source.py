"""The text of a CEL rule, read without a CEL parser: string literals told apart from code, the
comprehension macros and the variables they bind, and ``matches`` calls routed to the library.

The ``cel`` package compiles a rule but shows none of its syntax tree, so what celrules needs to
know about a rule's shape is read from its text. String literals (``'…'``, ``"…"``, triple-quoted,
raw ``r"…"``, bytes ``b"…"``) are skipped, so a macro name or ``self`` inside a string is not
taken for code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

__all__ = ["code_only", "macro_shape", "macro_variables", "route_matches"]

_MACRO_OPEN = re.compile(r"\.\s*(?:all|exists_one|exists|map|filter)\s*(\()")
_MACRO_VARIABLE = re.compile(
    r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)
_MATCHES_CALL = re.compile(r"\.(\s*)matches(\s*)\(")


def _pieces(source: str) -> Iterator[tuple[bool, str]]:
    """``source`` as (is a string literal, text) pieces, in order."""
    i, n, start = 0, len(source), 0
    while i < n:
        c = source[i]
        if c not in "'\"":
            i += 1
            continue
        prefix = source[max(0, i - 2) : i].lower()
        raw = prefix.endswith("r") or prefix == "rb"
        quote = source[i : i + 3] if source[i : i + 3] in ("'''", '"""') else c
        j = i + len(quote)
        while j < n and not source.startswith(quote, j):
            j += 2 if (not raw and source[j] == "\\") else 1
        end = min(n, j + len(quote))
        if start < i:
            yield False, source[start:i]
        yield True, source[i:end]
        i = start = end
    if start < n:
        yield False, source[start:]


@lru_cache(maxsize=4096)
def code_only(source: str) -> str:
    """``source`` with every string literal's content blanked (``""``)."""
    return "".join('""' if literal else text for literal, text in _pieces(source))


def macro_shape(code: str) -> tuple[int, int]:
    """(number of comprehension macros, their deepest nesting) in ``code`` (see
    :func:`code_only`)."""
    opens = {m.start(1) for m in _MACRO_OPEN.finditer(code)}
    stack: list[bool] = []
    depth = 0
    for i, c in enumerate(code):
        if c == "(":
            stack.append(i in opens)
            depth = max(depth, sum(stack))
        elif c == ")" and stack:
            stack.pop()
    return len(opens), depth


def macro_variables(code: str) -> set[str]:
    """The variables the comprehension macros in ``code`` bind (``l`` in ``self.all(l, …)``)."""
    return set(_MACRO_VARIABLE.findall(code))


def route_matches(source: str) -> str:
    """``source`` with every ``x.matches(…)`` call made ``x.__matches(…)`` (the library's RE2
    version); a field named ``matches`` (no call) is left alone."""
    return "".join(
        text if literal else _MATCHES_CALL.sub(r".\1__matches\2(", text)
        for literal, text in _pieces(source)
    )
