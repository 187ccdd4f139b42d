"""What compiling a template cannot catch but reading it can: unknown filters, tests and inputs.

Jinja reports an unknown filter at compile time only where it is used unconditionally; inside
an ``{% if %}`` (or any other block) it defers the error to the render that reaches it, and an
unknown *test* (``is nosuch``) or a misspelt input (``valuez.size``, ``gatway.metadata``) is
never a compile error at all. Each would reach a Gateway's ``Programmed=False`` — for some
Gateways, some day — instead of the blueprint's ``Valid=False`` now. So after
:func:`bifrost.render.templates.compile_child` accepts a template, :func:`unknown_names` walks
its syntax tree once and names every filter and test the sandbox does not have and every
top-level variable that is not one of the template's inputs (nor a global, nor assigned anywhere
in the template by a ``{% set %}``, a ``{% for %}`` or a ``{% with %}``: a name assigned in one
branch and read in another is not reported — no false alarm on a valid blueprint).

Nothing is rendered and no value is seen, so there is no time or size budget to spend here: the
source was already parsed by ``compile_child`` (cached per text) and the walk is linear in it.
The error names the child, the field and the line, like every ``RenderError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from jinja2 import nodes

from bifrost.render.errors import RenderError
from bifrost.render.templates import ENVIRONMENT

__all__ = [
    "CERTIFICATE_INPUTS",
    "CHILD_INPUTS",
    "ROUTE_CHILD_INPUTS",
    "unknown_names",
]

#: What a ``spec.children`` template sees (``bifrost.render.render_gateway``).
CHILD_INPUTS: frozenset[str] = frozenset({"gateway", "values", "children", "certificates"})
#: What a ``spec.routeChildren`` template sees (``bifrost.render.render_route_children``).
ROUTE_CHILD_INPUTS: frozenset[str] = frozenset({"gateway", "values", "children", "route"})
#: What ``spec.tls.certificateTemplate`` sees (``bifrost.steps.tls.request_certificate``).
CERTIFICATE_INPUTS: frozenset[str] = frozenset(
    {"gateway", "values", "listener", "certificate", "source"}
)


#: Names Jinja defines itself inside blocks (``loop`` in a ``for``; the rest where allowed).
_IMPLICIT = frozenset({"loop", "self", "super", "caller", "varargs", "kwargs"})


@lru_cache(maxsize=4096)
def _names(source: str) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...],
                                  frozenset[str]]:
    """(filters used, tests used, undeclared variables) of ``source``, each filter/test with
    the line of its first use."""
    tree = ENVIRONMENT.parse(source)
    filters: dict[str, int] = {}
    for node in tree.find_all(nodes.Filter):
        filters.setdefault(node.name, node.lineno)
    tests: dict[str, int] = {}
    for test in tree.find_all(nodes.Test):
        tests.setdefault(test.name, test.lineno)
    names = list(tree.find_all(nodes.Name))
    stored = {n.name for n in names if n.ctx in ("store", "param")}
    loaded = {n.name for n in names if n.ctx == "load"}
    return tuple(filters.items()), tuple(tests.items()), frozenset(loaded - stored - _IMPLICIT)


def _first_line(source: str, name: str) -> int | None:
    for number, text in enumerate(source.splitlines(), start=1):
        if name in text:
            return number
    return None


def unknown_names(
    source: str, *, child_id: str, field: str, inputs: Iterable[str]
) -> list[RenderError]:
    """Every unknown filter, test and input of ``source`` (a template ``compile_child``
    accepted), as ``RenderError`` naming ``child_id``, ``field`` and the line; ``[]`` when it
    uses only what it has."""
    filters, tests, variables = _names(source)
    known_inputs = frozenset(inputs)
    errors: list[RenderError] = []
    for name, line in filters:
        if name not in ENVIRONMENT.filters:
            errors.append(RenderError(
                child_id, f"no filter named {name!r} in the sandbox — use one of its filters "
                "(docs/blueprints.md lists them)", line, field))
    for name, line in tests:
        if name not in ENVIRONMENT.tests:
            errors.append(RenderError(
                child_id, f"no test named {name!r} in the sandbox — use one of Jinja's "
                "tests (defined, none, string, mapping, ...)", line, field))
    for name in sorted(variables - known_inputs - set(ENVIRONMENT.globals)):
        errors.append(RenderError(
            child_id, f"{name!r} is not an input of this template: it sees only "
            f"{', '.join(sorted(known_inputs))}", _first_line(source, name), field))
    return errors
