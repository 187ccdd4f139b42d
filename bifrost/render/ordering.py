"""Which child depends on which, the order to apply them in, and the order to delete them in.

A child depends on another when it lists it in ``dependsOn`` or when its template reads that
child's live state (``children.<id>``, ``children["<id>"]`` or ``children.get("<id>")``). The
inferred part is found by walking the Jinja AST, not by a regex over the text, so comments, string
literals and look-alike names (``my_children.x``) do not create dependencies. A dynamic access
(``children[some_var]``) cannot be inferred: the template then sees only its known dependencies and
fails with a message that says to add ``dependsOn``.

Apply order is a topological order that is stable — among children that are free at the same time,
the blueprint's order wins — so the same blueprint always applies in the same order. Rendering then
needs one pass: each child's dependencies come before it.

Delete order: children are grouped by ``deleteOrder`` (default 0), the higher group first; within a
group, reverse dependency order (dependents before what they depend on). With no ``deleteOrder``
anywhere this is plain reverse dependency order, as DESIGN §4 asks.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from jinja2 import nodes

from bifrost.render.errors import RenderError
from bifrost.render.model import RenderChild
from bifrost.render.templates import compile_child, compile_source

CHILDREN_VARIABLE = "children"


def inferred_dependencies(child: RenderChild) -> tuple[str, ...]:
    """Ids whose live state ``child``'s template reads with a literal id, in first-use order."""
    compile_child(child)  # syntax errors name the child
    return _inferred_for_source(child.template)


@lru_cache(maxsize=4096)
def _inferred_for_source(source: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_children_references(compile_source(source).ast)))


def _is_children(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == CHILDREN_VARIABLE and node.ctx == "load"


def _children_references(ast: nodes.Template) -> list[str]:
    found: list[tuple[int, int, str]] = []  # (line, order, id)
    method_nodes: set[int] = set()
    for call in ast.find_all(nodes.Call):
        target = call.node
        if isinstance(target, nodes.Getattr) and _is_children(target.node):
            method_nodes.add(id(target))
            if target.attr == "get" and call.args and isinstance(call.args[0], nodes.Const):
                value = call.args[0].value
                if isinstance(value, str):
                    found.append((call.lineno, len(found), value))
    for getattr_node in ast.find_all(nodes.Getattr):
        if _is_children(getattr_node.node) and id(getattr_node) not in method_nodes:
            found.append((getattr_node.lineno, len(found), getattr_node.attr))
    for getitem in ast.find_all(nodes.Getitem):
        if (
            _is_children(getitem.node)
            and isinstance(getitem.arg, nodes.Const)
            and isinstance(getitem.arg.value, str)
        ):
            found.append((getitem.lineno, len(found), getitem.arg.value))
    return [child_id for _, _, child_id in sorted(found)]


def dependency_graph(
    children: Sequence[RenderChild], *, known: Iterable[str] | None = None
) -> dict[str, tuple[str, ...]]:
    """Each child's dependencies (explicit first, then inferred), validated against ``known`` ids
    (default: the ids of ``children``; for route children, those plus the Gateway's children ids).
    Unknown ids and self-references raise ``RenderError``.
    """
    known_ids = frozenset(known) if known is not None else frozenset(c.id for c in children)
    return {c.id: child_dependencies(c, known_ids) for c in children}


def child_dependencies(child: RenderChild, known_ids: frozenset[str]) -> tuple[str, ...]:
    """One child's dependencies, checked against ``known_ids`` (``RenderError`` if unknown)."""
    explicit = child.depends_on
    inferred = inferred_dependencies(child)
    for dep, field in [(d, "dependsOn") for d in explicit] + [(d, "template") for d in inferred]:
        if dep == child.id:
            what = (
                "dependsOn names the child itself"
                if field == "dependsOn"
                else (f"the template reads children.{dep}, its own live state")
            )
            raise RenderError(
                child.id, f"{what}; a child cannot depend on itself", None, child.field_path(field)
            )
        if dep not in known_ids:
            raise RenderError(
                child.id, _unknown_message(dep, field, known_ids), None, child.field_path(field)
            )
    return tuple(dict.fromkeys((*explicit, *inferred)))


def _unknown_message(dep: str, field: str, known: frozenset[str]) -> str:
    what = (
        f"dependsOn names {dep!r}" if field == "dependsOn" else f"the template reads children.{dep}"
    )
    return f"{what}, but there is no child with that id (known ids: {sorted(known) or 'none'})"


def topological_order(
    children: Sequence[RenderChild], graph: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """Apply order: dependencies first, blueprint order among independent children.

    Raises ``RenderError`` naming the cycle when there is one.
    """
    graph = dependency_graph(children) if graph is None else graph
    position = {c.id: i for i, c in enumerate(children)}
    remaining = {cid: {d for d in graph[cid] if d in position} for cid in position}
    dependents: dict[str, list[str]] = {cid: [] for cid in position}
    for cid, deps in remaining.items():
        for dep in deps:
            dependents[dep].append(cid)
    ready = [position[cid] for cid, deps in remaining.items() if not deps]
    heapq.heapify(ready)
    ids = [c.id for c in children]
    order: list[str] = []
    while ready:
        cid = ids[heapq.heappop(ready)]
        order.append(cid)
        for dependent in dependents[cid]:
            remaining[dependent].discard(cid)
            if not remaining[dependent]:
                heapq.heappush(ready, position[dependent])
    if len(order) < len(ids):
        done = set(order)
        cycle = _find_cycle({cid: remaining[cid] for cid in ids if cid not in done}, ids)
        first = next(c for c in children if c.id == cycle[0])
        raise CycleError(first, tuple(cycle))
    return order


class CycleError(RenderError):
    """A dependency cycle; ``cycle`` lists its members from the earliest in the blueprint."""

    def __init__(self, first: RenderChild, cycle: tuple[str, ...]) -> None:
        super().__init__(
            first.id,
            "dependency cycle: "
            + " → ".join([*cycle, cycle[0]])
            + " (from dependsOn and children.<id> references in templates); break it",
            None,
            first.field_path("dependsOn"),
        )
        self.cycle = cycle


def _find_cycle(blocked: Mapping[str, set[str]], ids: Sequence[str]) -> list[str]:
    """One cycle among children that could not be ordered, starting at its earliest member."""
    start = next(cid for cid in ids if cid in blocked)
    path: list[str] = []
    seen: dict[str, int] = {}
    current = start
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = min((d for d in blocked[current] if d in blocked), key=ids.index)
    cycle = path[seen[current] :]
    pivot = min(range(len(cycle)), key=lambda i: ids.index(cycle[i]))
    return cycle[pivot:] + cycle[:pivot]


def delete_order(
    children: Sequence[RenderChild], graph: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """Teardown order (see the module docstring): higher ``deleteOrder`` first, then reverse
    dependency order.
    """
    apply_order = topological_order(children, graph)
    rank = {cid: i for i, cid in enumerate(apply_order)}
    by_id = {c.id: c for c in children}
    return sorted(
        apply_order,
        key=lambda cid: (-(by_id[cid].delete_order or 0), -rank[cid]),
    )
