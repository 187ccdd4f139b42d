"""Budgets for evaluating blueprint code: how big, how long, how many.

A blueprint's templates and expressions run inside the controller and see tenant-supplied values,
so every way of spending memory or time has a limit, and a breach is a ``BudgetExceeded`` naming
the limit (the caller turns it into a ``RenderError`` naming the child). Two layers:

- **In the sandbox** (this module, in-process and cheap): every string-growing path a template
  can reach is checked *before* it allocates — ``*``, ``+``, ``~``, ``%`` formatting,
  ``str.format`` widths, ``ljust``/``rjust``/``center``/``zfill``/``expandtabs``, ``replace``,
  ``join`` and the ``indent``/``replace``/``join`` filters — and a wall-clock deadline is checked
  at every call, attribute access, loop iteration and output chunk.
- **Out of process** (``bifrost.sandbox``): rendering and CEL run in a worker process with an
  address-space limit and a hard wall-clock timeout after which the worker is killed. That is the
  backstop for what cannot be checked from Python (a CEL evaluation inside the Rust library holds
  the GIL; a single C call on a large input cannot be interrupted).

The numbers are data (``Budgets``), documented in ``docs/security.md``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Budgets:
    """Limits for one evaluation of blueprint code."""

    max_string: int = 1_048_576
    """Longest string or list a template may build, in characters or items (1 MiB)."""
    max_child_bytes: int = 1_048_576
    """Largest rendered output of one child (the API server's object limit is about 1.5 MiB)."""
    max_gateway_bytes: int = 4_194_304
    """Largest total rendered output for one Gateway's children (4 MiB)."""
    max_children: int = 256
    """Most children one Gateway may render (its own plus every route's)."""
    render_seconds: float = 2.0
    """Wall time for one render (one child template)."""
    max_exponent: int = 1_000
    max_cel_length: int = 4_096
    """Longest CEL expression (characters)."""
    max_cel_comprehension_depth: int = 2
    """Deepest nesting of CEL comprehension macros (``all``, ``exists``, ``map``, ``filter``…)."""


DEFAULT_BUDGETS = Budgets()


class BudgetExceeded(Exception):
    """A template or expression went over a budget; the message names the limit."""


@dataclass
class _Meter:
    budgets: Budgets
    deadline: float


_METER: ContextVar[_Meter | None] = ContextVar("bifrost_render_meter", default=None)


class metered:
    """Context manager: the budgets in force for the render running in this thread."""

    def __init__(self, budgets: Budgets = DEFAULT_BUDGETS) -> None:
        self._meter = _Meter(budgets, time.monotonic() + budgets.render_seconds)
        self._token: Any = None

    def __enter__(self) -> Budgets:
        self._token = _METER.set(self._meter)
        return self._meter.budgets

    def __exit__(self, *exc: object) -> None:
        _METER.reset(self._token)


def current() -> Budgets:
    meter = _METER.get()
    return meter.budgets if meter is not None else DEFAULT_BUDGETS


def check_deadline() -> None:
    meter = _METER.get()
    if meter is not None and time.monotonic() > meter.deadline:
        raise BudgetExceeded(
            f"rendering took longer than {meter.budgets.render_seconds:g} s (render time limit)"
        )


def check_size(size: int, what: str) -> None:
    limit = current().max_string
    if size > limit:
        raise BudgetExceeded(f"{what} would build {size} characters or items; the limit is {limit}")


def metered_iter(iterable: Iterable[T]) -> Iterator[T]:
    """Iterate, checking the deadline every 256 items (wraps every ``{% for %}``)."""
    for index, item in enumerate(iterable):
        if not index & 0xFF:
            check_deadline()
        yield item


_FORMAT_NUMBER = re.compile(r"\d+")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?[a-zA-Z%]")
_BRACE_SPEC = re.compile(r"\{[^{}]*\}|\{[^{}]*\{")


def check_percent_format(fmt: str, args: Any) -> None:
    """``fmt % args``: refuse widths/precisions beyond the string limit (``'%0999999999d'``)."""
    limit = current().max_string
    star = False
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for number in (width, precision):
            if number == "*":
                star = True
            elif number and int(number) > limit:
                raise BudgetExceeded(f"a % format width of {number} is over the limit of {limit}")
    if star:
        values = args if isinstance(args, tuple) else (args,)
        if any(isinstance(v, int) and abs(v) > limit for v in values):
            raise BudgetExceeded(f"a * format width is over the limit of {limit}")
    check_size(len(fmt) + sum(len(str(v)) for v in _as_tuple(args)), "a % format")


def check_brace_format(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """``fmt.format(...)``: refuse large widths and nested (value-chosen) widths."""
    limit = current().max_string
    for field in _BRACE_SPEC.findall(fmt):
        if field.count("{") > 1:
            raise BudgetExceeded("a format field with a nested width ('{:{}}') is not allowed")
        _, _, spec = field.partition(":")
        for number in _FORMAT_NUMBER.findall(spec):
            if int(number) > limit:
                raise BudgetExceeded(f"a format width of {number} is over the limit of {limit}")
    check_size(
        len(fmt) + sum(len(str(v)) for v in (*args, *kwargs.values())), "a str.format call"
    )


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, tuple):
        return value
    if isinstance(value, dict):
        return tuple(value.values())
    return (value,)


def check_str_method(text: str, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Check a string method call that can grow a string; returns the (possibly materialised)
    arguments to call it with."""
    if name in {"ljust", "rjust", "center", "zfill"} and args and isinstance(args[0], int):
        check_size(args[0], f"str.{name}")
    elif name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        check_size(len(text) + text.count("\t") * max(tab, 0), "str.expandtabs")
    elif name == "replace" and len(args) >= 2:
        check_replace(text, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        items = list(metered_iter(args[0]))
        check_size(len(items), "str.join")
        check_size(
            sum(len(i) if isinstance(i, str) else 0 for i in items)
            + len(text) * max(len(items) - 1, 0),
            "str.join",
        )
        return (items, *args[1:])
    return args


def check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    check_size(len(text) + found * max(len(new) - len(old), 0), "replace")


def bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Jinja filter so that it checks the deadline, and its growth where it can grow."""
    # A filter marked pass_context/pass_eval_context/pass_environment gets that object first.
    marker = getattr(function, "jinja_pass_arg", None)
    skip = 1 if marker is not None else 0

    def checked(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        values = args[skip:]
        if name == "indent" and values:
            text = str(values[0])
            width = values[1] if len(values) > 1 else kwargs.get("width", 4)
            width_len = len(width) if isinstance(width, str) else width
            if isinstance(width_len, int):
                check_size(len(text) + (text.count("\n") + 1) * width_len, "the indent filter")
        elif name == "replace" and len(values) >= 3:
            check_replace(values[0], values[1], values[2],
                          values[3] if len(values) > 3 else kwargs.get("count", -1))
        elif name == "join" and values:
            items = list(metered_iter(values[0]))
            check_size(len(items), "the join filter")
            check_size(sum(len(str(i)) for i in items), "the join filter")
            # the items were consumed (a generator, e.g. from map): join the list instead
            args = (*args[:skip], items, *values[1:])
        result = function(*args, **kwargs)
        if isinstance(result, str | list | tuple):
            check_size(len(result), f"the {name} filter")
        return result

    checked.__name__ = getattr(function, "__name__", name)
    if marker is not None:
        checked.jinja_pass_arg = marker  # type: ignore[attr-defined]
    return checked


def check_gateway_output(
    objects: Sequence[Mapping[str, Any]], budgets: Budgets = DEFAULT_BUDGETS
) -> str | None:
    """Why one Gateway's rendered children (its own and every route's) are over budget, or
    ``None``: the number of children and their total size as JSON."""
    if len(objects) > budgets.max_children:
        return (f"over budget: {len(objects)} children rendered (the Gateway's plus its routes'); "
                f"the limit is {budgets.max_children} per Gateway")
    total = 0
    for obj in objects:
        total += len(json.dumps(obj, separators=(",", ":")))
        if total > budgets.max_gateway_bytes:
            return (f"over budget: the rendered children are over {budgets.max_gateway_bytes} "
                    "bytes in total (output limit per Gateway)")
    return None


def cel_comprehension_depth(source: str) -> int:
    """How deeply CEL comprehension macros nest in ``source`` (string literals skipped)."""
    macros = re.compile(r"\.\s*(all|exists|exists_one|map|filter)\s*\(")
    stripped = _CEL_STRING.sub('""', source)
    depth = best = 0
    stack: list[bool] = []
    index = 0
    while index < len(stripped):
        char = stripped[index]
        found = macros.match(stripped, index)
        if found:
            stack.append(True)
            depth += 1
            best = max(best, depth)
            index = found.end()
            continue
        if char == "(":
            stack.append(False)
        elif char == ")" and stack and stack.pop():
            depth -= 1
        index += 1
    return best


_CEL_STRING = re.compile(r"""[rR]?("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')""")


def check_cel(source: str, budgets: Budgets = DEFAULT_BUDGETS) -> None:
    """The static part of the CEL cost limit: length and comprehension nesting."""
    if len(source) > budgets.max_cel_length:
        raise BudgetExceeded(
            f"the expression is {len(source)} characters long; the limit is "
            f"{budgets.max_cel_length}"
        )
    depth = cel_comprehension_depth(source)
    if depth > budgets.max_cel_comprehension_depth:
        raise BudgetExceeded(
            f"comprehension macros (all/exists/map/filter) nest {depth} deep; the limit is "
            f"{budgets.max_cel_comprehension_depth}"
        )
