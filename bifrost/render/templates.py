"""Sandboxed Jinja2 templates that render one blueprint child into one Kubernetes object.

Blueprints are written by platform teams but evaluated inside the controller, which holds broad
cluster credentials, and they print values that tenants supply (namespace and Gateway policies,
Gateway and HTTPRoute fields) — so templates are treated as untrusted code and values as hostile:

- **Values are data, never syntax** (``bifrost.render.yaml_data``): every ``{{ … }}`` prints an
  opaque slot token; the author's text is parsed strictly (no duplicate keys, anchors, aliases,
  tags or merge keys) and then each slot is replaced by its value as data. A value cannot add a
  key or a document or change the kind, name or namespace the author wrote.
- ``ImmutableSandboxedEnvironment``: no access to dunder attributes, no mutation of the inputs,
  ``str.format`` sandboxed;
- **budgets** (``bifrost.render.budgets``): every string-growing operation is checked before it
  allocates, loops, calls and output check a wall-clock deadline, and the output of a child is
  capped;
- no loader and ``include``/``import``/``extends`` refused at parse time: a template sees nothing
  but its inputs (``gateway``, ``values``, ``children``, ``certificates``, and ``route`` for route
  children); macros, ``{% call %}``, ``{% filter %}`` blocks and block ``{% set %}`` are refused
  too (they would capture printed slots as text);
- no default globals (``lipsum``, ``cycler``, ``joiner``, ``namespace`` are gone; ``range`` and
  ``dict`` stay) and an allow-list of deterministic filters (no ``random``: the same inputs must
  always render the same object, or every resync would re-apply);
- printing ``None``, a map or a list is refused (``None`` would become the string "None");
  ``to_json``/``to_yaml`` say what is meant and insert the structure itself;
- strict undefined: a missing variable is an error naming the child and the line, never an empty
  string silently applied to the cluster. Attribute chains on a missing value are deferred (so
  ``values.waf.arn | default("")`` works) but any *use* of the missing value fails.

The output is one document (or none: the child is skipped, e.g. a template wrapped in
``{% if values.waf.enabled %}``), a mapping with ``apiVersion``, ``kind`` and ``metadata.name``,
made of JSON types only. Error messages name the child, the field and a position; they never
quote a value (values may be tenant input or come from a Secret).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

import jinja2
import yaml
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bifrost.render import budgets
from bifrost.render.budgets import DEFAULT_BUDGETS, BudgetExceeded, Budgets
from bifrost.render.errors import RenderError
from bifrost.render.model import RenderChild
from bifrost.render.yaml_data import OutputError, SlotTable, Structured, load_documents

_TEMPLATE_FILENAME = "<template>"

_BUILTIN_FILTERS = (
    "abs",
    "batch",
    "capitalize",
    "count",
    "d",
    "default",
    "dictsort",
    "first",
    "float",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "select",
    "selectattr",
    "slice",
    "sort",
    "string",
    "sum",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
)

_SLOTS: ContextVar[SlotTable | None] = ContextVar("bifrost_render_slots", default=None)

ON_CHILD: ContextVar[Callable[[str, str], None] | None] = ContextVar(
    "bifrost_render_on_child", default=None
)
"""Called with (child id, template field) as each child starts rendering: the sandbox worker
reports it, so that a render its supervisor has to kill is blamed on the right child."""


class StrictChainableUndefined(jinja2.ChainableUndefined, jinja2.StrictUndefined):
    """Strict about every use (print, test, iterate, compare) but lets ``a.b.c`` chain.

    ``path``: the variable path as the template wrote it (``gateway.spec.addresses[0].value``),
    set by :meth:`BlueprintEnvironment.getattr`/``getitem`` as a chain goes on past a missing
    value; ``None`` when unknown (a top-level name: Jinja's own message names it)."""

    __slots__ = ("_bifrost_path",)

    def __init__(self, *args: Any, path: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bifrost_path = path

    @property
    def path(self) -> str | None:
        return self._bifrost_path

    @property
    def _undefined_message(self) -> str:
        hint = str(super()._undefined_message)
        if self._bifrost_path is None:
            return hint
        return f"{self._bifrost_path} is undefined ({hint})"


_PATHS: ContextVar[_InputPaths | None] = ContextVar("bifrost_render_paths", default=None)


class _InputPaths:
    """Where each container of a render's inputs is (``values.waf``, ``route.spec.rules[0]``),
    by identity: built on first need (a missing value), once per render."""

    def __init__(self, context: Mapping[str, Any], source: str) -> None:
        self._context = context
        self._source = source
        self._paths: dict[int, str] | None = None

    def segment(self, path: str, key: Any) -> str:
        """``path`` followed by ``key``; a key the template does not spell is masked (computed
        from a value, it could be tenant input or Secret data)."""
        if isinstance(key, int) and not isinstance(key, bool):
            return f"{path}[{key}]"
        if not (isinstance(key, str) and key and key in self._source):
            return f"{path}[…]"
        if _IDENTIFIER.fullmatch(key):
            return f"{path}.{key}"
        return f"{path}[{json.dumps(key)}]"

    def of(self, obj: Any) -> str | None:
        if self._paths is None:
            self._paths = {}
            for name, value in self._context.items():
                self._walk(value, name, 0)
        return self._paths.get(id(obj))

    def _walk(self, value: Any, path: str, depth: int) -> None:
        if depth > 32 or len(self._paths or {}) > 100_000:
            return
        assert self._paths is not None
        if isinstance(value, Mapping):
            self._paths.setdefault(id(value), path)
            for key, item in value.items():
                if isinstance(item, Mapping | list | tuple):
                    self._walk(item, self.segment(path, key), depth + 1)
        elif isinstance(value, list | tuple):
            self._paths.setdefault(id(value), path)
            for index, item in enumerate(value):
                if isinstance(item, Mapping | list | tuple):
                    self._walk(item, f"{path}[{index}]", depth + 1)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_yaml(value: Any) -> str:
    """Block-style YAML without a trailing newline. Printed as a whole plain value it inserts the
    structure itself; inside a string or a block scalar, this text."""
    _fail_if_undefined(value)
    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=False).rstrip("\n")
    budgets.check_size(len(text), "to_yaml")
    return Structured(text, value)


def to_json(value: Any) -> str:
    """Compact, key-sorted JSON. Printed as a whole plain value it inserts the structure itself;
    inside a string (``'{{ x | to_json }}'``), this text."""
    _fail_if_undefined(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    budgets.check_size(len(text), "to_json")
    return Structured(text, value)


def _fail_if_undefined(value: Any, depth: int = 0) -> None:
    """An undefined value given to to_json/to_yaml — itself or inside a list or map — fails
    naming the variable (not with a serialisation error about the Undefined type)."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming what is missing
    if depth > 64:
        return
    if isinstance(value, Mapping):
        for item in value.values():
            _fail_if_undefined(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _fail_if_undefined(item, depth + 1)


def indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    """Jinja's ``indent``, keeping ``to_yaml``/``to_json`` structure (``| to_yaml | indent(4)``
    on its own line still inserts the structure)."""
    text = jinja2.filters.do_indent(str(value), width, first, blank)
    if isinstance(value, Structured):
        return Structured(text, value.data, value.original or str(value))
    return Structured(text, original=str(value))


def b64encode(value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode()
    return base64.b64encode(data).decode("ascii")


def sha256(value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode()
    return hashlib.sha256(data).hexdigest()


def dns_label(value: Any, max_length: int = 63) -> str:
    """A valid DNS label from ``value``: lower-cased, invalid runs replaced by ``-``, and when too
    long truncated with an 8-hex hash of the full value appended so distinct inputs stay distinct.
    """
    text = str(value)
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if label and len(label) <= max_length:
        return label
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = label[: max(max_length - len(digest) - 1, 0)].rstrip("-")
    return f"{head}-{digest}" if head else digest[:max_length]


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with ``~`` routed through a size check."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BlueprintEnvironment(ImmutableSandboxedEnvironment):
    """The only Jinja environment blueprints are rendered in."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budgets.check_deadline()
        limits = budgets.current()
        if operator == "**" and isinstance(right, int | float) and abs(right) > limits.max_exponent:
            raise SecurityError(f"exponent {right} is larger than {limits.max_exponent}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    budgets.check_size(len(seq) * times, "repeating a sequence")
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(
            right, str | list | tuple
        ):
            budgets.check_size(len(left) + len(right), "adding two sequences")
        if operator == "%" and isinstance(left, str):
            budgets.check_percent_format(left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja wraps ``str.format``/``format_map`` when they are looked up; check the widths
        before the sandboxed formatter runs."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__
        is_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            budgets.check_deadline()
            mapping = args[0] if is_map and args and isinstance(args[0], Mapping) else {}
            budgets.check_brace_format(fmt, () if is_map else args, {**kwargs, **mapping})
            return wrapped(*args, **kwargs)

        return checked

    def bounded_concat(self, parts: Iterable[Any]) -> str:
        budgets.check_deadline()
        texts = [str(p) for p in parts]
        budgets.check_size(sum(len(t) for t in texts), "the ~ operator")
        return "".join(texts)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budgets.check_deadline()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            args = budgets.check_str_method(owner, name, args)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str | list | tuple):
            budgets.check_size(len(result), f"calling {name or 'a function'}")
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        budgets.check_deadline()
        return _traced(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        budgets.check_deadline()
        return _traced(obj, argument, super().getitem(obj, argument))


def _traced(obj: Any, key: Any, result: Any) -> Any:
    """``result`` of ``obj.key``/``obj[key]``; when it is missing, an undefined that knows its
    path (``values.waf.arn``) so that its use names it."""
    if not isinstance(result, jinja2.Undefined) or isinstance(obj, ChildrenView):
        return result  # (a child that is not a dependency has its own message)
    paths = _PATHS.get()
    if paths is None:
        return result
    base = obj.path if isinstance(obj, StrictChainableUndefined) else paths.of(obj)
    if base is None:
        return result
    return StrictChainableUndefined(
        hint=result._undefined_hint,
        obj=result._undefined_obj,
        name=result._undefined_name,
        exc=result._undefined_exception,
        path=paths.segment(base, key),
    )


@jinja2.pass_context
def _finalize(context: Context, value: Any) -> Any:
    """Print a slot token for ``value`` (see ``yaml_data``); refuse values whose printed form
    is not what the author meant. ``pass_context`` keeps Jinja from folding constants at compile
    time, so every printed expression goes through here at render time."""
    if value is None:
        raise jinja2.TemplateRuntimeError(
            "printed a null value (it would render as the string 'None'); "
            "use | default(...) or test it with {% if ... is none %}"
        )
    if isinstance(value, Mapping | list | tuple):
        raise jinja2.TemplateRuntimeError(
            f"printed a {type(value).__name__} directly; "
            "use | to_json (inline) or | to_yaml (block)"
        )
    slots = _SLOTS.get()
    if slots is None:  # rendered outside render_child: plain text
        return value
    if not isinstance(value, str | int | float | bool):
        value = str(value)
    if isinstance(value, str):
        budgets.check_size(len(value), "a printed value")
    return slots.add(value)


def make_environment() -> BlueprintEnvironment:
    env = BlueprintEnvironment(
        finalize=_finalize,
        undefined=StrictChainableUndefined,
        autoescape=False,
        loader=None,
        keep_trailing_newline=True,
        cache_size=0,
        auto_reload=False,
    )
    env.globals.clear()
    env.globals.update({"range": _safe_range, "dict": dict})
    builtin = dict(env.filters)
    env.filters.clear()
    env.filters.update(
        {name: budgets.bounded_filter(name, builtin[name]) for name in _BUILTIN_FILTERS}
    )
    extra: dict[str, Callable[..., Any]] = {
        "to_yaml": to_yaml,
        "to_json": to_json,
        "indent": indent,
        "b64encode": b64encode,
        "sha256": sha256,
        "dns_label": dns_label,
    }
    env.filters.update({name: budgets.bounded_filter(name, f) for name, f in extra.items()})
    env.filters["_metered"] = budgets.metered_iter
    return env


def _safe_range(*args: int) -> range:
    budgets.check_deadline()
    rng = range(*args)
    budgets.check_size(len(rng), "range")
    return rng


ENVIRONMENT = make_environment()


@dataclass(frozen=True)
class CompiledTemplate:
    """A parsed and compiled child template (cached by source text)."""

    template: jinja2.Template
    ast: nodes.Template


_FORBIDDEN_NODES: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Include, "include"),
    (nodes.Import, "import"),
    (nodes.FromImport, "from … import"),
    (nodes.Extends, "extends"),
    (nodes.Macro, "macro"),
    (nodes.CallBlock, "call"),
    (nodes.FilterBlock, "filter block"),
    (nodes.AssignBlock, "block set"),
)


@lru_cache(maxsize=4096)
def compile_source(source: str) -> CompiledTemplate:
    """Parse and compile template text (cached); raises Jinja's own errors."""
    ast = ENVIRONMENT.parse(source)
    for node_type, word in _FORBIDDEN_NODES:
        for node in ast.find_all(node_type):
            raise _Forbidden(word, node.lineno)
    metered = ENVIRONMENT.parse(source)
    for loop in metered.find_all(nodes.For):  # every loop checks the deadline as it goes
        loop.iter = nodes.Filter(loop.iter, "_metered", [], [], None, None, lineno=loop.lineno)
    return CompiledTemplate(template=ENVIRONMENT.from_string(metered), ast=ast)


class _Forbidden(Exception):
    def __init__(self, word: str, line: int) -> None:
        super().__init__(word, line)
        self.word = word
        self.line = line


def compile_child(child: RenderChild) -> CompiledTemplate:
    """Parse and compile ``child.template``; ``RenderError`` on syntax or forbidden tags."""
    where = child.field_path("template")
    try:
        return compile_source(child.template)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            child.id, f"template syntax error: {exc.message}", exc.lineno, where
        ) from None
    except _Forbidden as exc:
        raise RenderError(
            child.id,
            f"'{exc.word}' is not allowed: a template can only use its inputs "
            "(gateway, values, children, certificates, route), not other files or "
            "captured blocks",
            exc.line,
            where,
        ) from None


def render_child(
    child: RenderChild, context: Mapping[str, Any], *, limits: Budgets = DEFAULT_BUDGETS
) -> dict[str, Any] | None:
    """Render ``child`` with ``context`` into one object, or ``None`` when it renders empty."""
    where = child.field_path("template")
    hook = ON_CHILD.get()
    if hook is not None:
        hook(child.id, where)
    compiled = compile_child(child)
    slots = SlotTable()
    token = _SLOTS.set(slots)
    paths_token = _PATHS.set(_InputPaths(context, child.template))
    try:
        with budgets.metered(limits):
            parts: list[str] = []
            size = 0
            for chunk in compiled.template.generate(**context):
                size += len(chunk)
                if size + slots.size > limits.max_child_bytes:
                    raise BudgetExceeded(
                        f"the rendered output is over {limits.max_child_bytes} bytes "
                        "(output limit per child)"
                    )
                budgets.check_deadline()
                parts.append(chunk)
            text = "".join(parts)
    except BudgetExceeded as exc:
        raise RenderError(
            child.id, f"over budget: {exc}", _template_line(exc.__traceback__), where
        ) from None
    except MemoryError as exc:
        raise RenderError(
            child.id, "over budget: the template ran out of memory building its output",
            _template_line(exc.__traceback__), where,
        ) from None
    except jinja2.UndefinedError as exc:
        raise RenderError(
            child.id,
            _describe_undefined(exc.message or str(exc), child.template),
            _template_line(exc.__traceback__),
            where,
        ) from None
    except SecurityError as exc:
        raise RenderError(
            child.id,
            f"refused by the template sandbox: {exc}",
            _template_line(exc.__traceback__),
            where,
        ) from None
    except jinja2.TemplateError as exc:
        raise RenderError(
            child.id,
            f"template error: {exc.message or type(exc).__name__}",
            _template_line(exc.__traceback__),
            where,
        ) from None
    except Exception as exc:  # a filter or an operator failed on the given values
        # The exception's own text may quote a value (tenant input, Secret-derived): name the
        # type and the line only.
        hint = _HINTS.get(type(exc), "check the values this line uses")
        raise RenderError(
            child.id,
            f"template failed: {type(exc).__name__} ({hint})",
            _template_line(exc.__traceback__),
            where,
        ) from None
    finally:
        _SLOTS.reset(token)
        _PATHS.reset(paths_token)
    return parse_output(child, text, slots)


_HINTS: dict[type[BaseException], str] = {
    TypeError: "an operator or filter got a value of the wrong type",
    ValueError: "a filter or method got a value it cannot use",
    KeyError: "a key is missing; use | default(...) or test it with 'in'",
    IndexError: "a list is shorter than the index",
    ZeroDivisionError: "division by zero",
    UnicodeError: "a value could not be encoded",
}


def parse_output(
    child: RenderChild, text: str, slots: SlotTable | None = None
) -> dict[str, Any] | None:
    """Parse rendered text as exactly one Kubernetes object (``None`` for an empty output),
    inserting the printed values as data (``bifrost.render.yaml_data``)."""
    where = child.field_path("template")
    try:
        documents = load_documents(text, slots or SlotTable())
    except OutputError as exc:
        raise RenderError(
            child.id,
            f"{exc.message}; printed values cannot cause this (they are inserted as data), so "
            "the template's own YAML needs fixing",
            exc.line,
            where,
        ) from None
    if not documents:
        return None
    if len(documents) > 1:
        raise RenderError(
            child.id,
            f"rendered {len(documents)} YAML documents; a child renders exactly one object "
            "(give each object its own child id)",
            None,
            where,
        )
    obj = documents[0]
    if not isinstance(obj, dict):
        raise RenderError(
            child.id,
            f"rendered a {type(obj).__name__}, not a Kubernetes object (a mapping)",
            None,
            where,
        )
    missing = [
        name
        for name in ("apiVersion", "kind")
        if not isinstance(obj.get(name), str) or not obj[name]
    ]
    metadata = obj.get("metadata")
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("name"), str)
        or not (metadata["name"])
    ):
        missing.append("metadata.name")
    if missing:
        raise RenderError(
            child.id,
            f"rendered object lacks {', '.join(missing)}: every child needs apiVersion, kind "
            "and metadata.name",
            None,
            where,
        )
    bad = _first_non_json(obj, ())
    if bad is not None:
        path, kind = bad
        raise RenderError(
            child.id,
            f"rendered value at {'.'.join(path) or '<root>'} is a {kind}, which Kubernetes "
            "cannot take; quote it",
            None,
            where,
        )
    return obj


def _first_non_json(value: Any, path: tuple[str, ...]) -> tuple[tuple[str, ...], str] | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (*path, str(key)), f"{type(key).__name__} key"
            found = _first_non_json(item, (*path, key))
            if found:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_non_json(item, (*path, f"[{index}]"))
            if found:
                return found
        return None
    if value is None or isinstance(value, str | bool | int | float):
        return None
    return path, type(value).__name__


def _template_line(tb: TracebackType | None) -> int | None:
    """The innermost template line in a traceback Jinja rewrote to template coordinates."""
    line: int | None = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class ChildrenView(dict[str, Any]):
    """The ``children`` a template sees: only the live state of the children it depends on."""


_QUOTED_NAME = re.compile(r"'[^'\n]*'")


def _describe_undefined(message: str, source: str) -> str:
    """Jinja's undefined message with every quoted name the template does not spell masked: a
    key computed from a value (``values[values.x]``) could be tenant input or Secret data."""
    found = re.search(r"ChildrenView object' has no (?:attribute|element) '?([^']*)'?", message)
    if found:
        name = f"children.{found.group(1)}" if found.group(1) in source else "children[…]"
        return (
            f"{name} is not available: a template can read the live state only "
            "of children it depends on; reference it with a literal id (children.<id> or "
            'children["<id>"]) or list it in dependsOn'
        )

    def mask(m: re.Match[str]) -> str:
        name = m.group(0)[1:-1]
        keep = name.endswith(" object") or (name and name in source)
        return m.group(0) if keep else "'…'"

    return (
        f"undefined value: {_QUOTED_NAME.sub(mask, message.split(chr(10), 1)[0])}; "
        f"{_UNDEFINED_FIX}"
    )


_UNDEFINED_FIX = (
    "give it a default with | default(...) or test it first with {% if ... is defined %}"
)
