"""The cost bound of a CRD validation rule, in place of cel-go's cost tracking.

The ``cel`` package neither counts cost nor can be interrupted, so a rule is bounded *before* it
runs: a comprehension macro (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) iterates at
most over the widest list or map under ``self``, and nested macros multiply. The estimate of one
evaluation is ``1 + macros * (n + 1) ** depth``: ``macros`` is how many macros the rule has,
``depth`` how deeply they nest, ``n`` the widest list or map.

``n`` comes from the schema where it can: the largest ``maxItems``/``maxProperties`` below the
node (what upstream's static estimate uses too). Lists and maps without such a bound, and values
under ``x-kubernetes-preserve-unknown-fields``, are measured in the value itself, by following
only the paths that lead to them (:class:`Width`), so a Gateway's bounded listeners cost no walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Width", "estimate"]

Schema = dict[str, Any]


def estimate(macros: int, depth: int, widest: int) -> int:
    """The cost charged for one evaluation."""
    if macros == 0:
        return 1
    return 1 + macros * int((widest + 1) ** depth)


Path = tuple[str, ...]
"""Property names, ``*`` for every list item, ``{}`` for every map value."""


_LENGTH = ""
_DEEP = "**"
Trie = dict[str, Any]


def _trie(probes: list[tuple[Path, bool]]) -> Trie:
    """The probes as a tree of path segments (shared prefixes are walked once); a node's
    :data:`_LENGTH` / :data:`_DEEP` entry marks a probe ending there."""
    root: Trie = {}
    for path, deep in probes:
        node = root
        for seg in path:
            node = node.setdefault(seg, {})
        node[_DEEP if deep else _LENGTH] = True
    return root


@dataclass(frozen=True)
class Width:
    """How wide the lists and maps under one schema node can be."""

    declared: int
    """The largest declared bound (``maxItems``/``maxProperties``) below the node."""
    probes: tuple[tuple[Path, bool], ...]
    """Paths to unbounded lists/maps (``False``) and to preserve-unknown-fields values, measured
    all the way down (``True``)."""
    trie: Trie
    """The same probes as a tree (see :func:`_trie`)."""

    @staticmethod
    def of(s: Schema) -> Width:
        probes: list[tuple[Path, bool]] = []
        declared = _collect(s, (), probes)
        return Width(declared, tuple(probes), _trie(probes))

    def measure(self, value: Any) -> int:
        """The widest list or map of ``value`` (a value at this node)."""
        if not self.probes:
            return self.declared
        return max(self.declared, _measure(value, self.trie))


def _collect(
    s: Schema, path: Path, probes: list[tuple[Path, bool]], active: frozenset[int] = frozenset()
) -> int:
    if id(s) in active:  # a schema containing itself: measure the value from here
        probes.append((path, True))
        return 0
    active = active | {id(s)}
    if s.get("x-kubernetes-preserve-unknown-fields"):
        probes.append((path, True))
        return 0
    widest = 0
    if s.get("type") == "array" or "items" in s:
        if isinstance(s.get("maxItems"), int):
            widest = int(s["maxItems"])
        else:
            probes.append((path, False))
        if isinstance(s.get("items"), dict):
            widest = max(widest, _collect(s["items"], (*path, "*"), probes, active))
    for name, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            widest = max(widest, _collect(sub, (*path, name), probes, active))
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        if isinstance(s.get("maxProperties"), int):
            widest = max(widest, int(s["maxProperties"]))
        else:
            probes.append((path, False))
        widest = max(widest, _collect(ap, (*path, "{}"), probes, active))
    return widest


def _measure(value: Any, trie: Trie) -> int:
    n = 0
    for seg, sub in trie.items():
        if seg == _LENGTH:
            if isinstance(value, list | dict):
                n = max(n, len(value))
        elif seg == _DEEP:
            n = max(n, _widest(value))
        elif seg == "*":
            if isinstance(value, list):
                for v in value:
                    n = max(n, _measure(v, sub))
        elif isinstance(value, dict):
            if seg == "{}":
                for v in value.values():
                    n = max(n, _measure(v, sub))
            elif seg in value:
                n = max(n, _measure(value[seg], sub))
    return n


def _widest(value: Any) -> int:
    """The largest list or map length anywhere in ``value``."""
    widest = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            widest = max(widest, len(v))
            stack.extend(c for c in v.values() if isinstance(c, dict | list))
        elif isinstance(v, list):
            widest = max(widest, len(v))
            stack.extend(c for c in v if isinstance(c, dict | list))
    return widest
