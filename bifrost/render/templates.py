"""Sandboxed Jinja2 templates that render one blueprint child into one Kubernetes object.

Blueprints are written by platform teams but evaluated inside the controller, which holds broad
cluster credentials — so templates are treated as untrusted code:

- ``ImmutableSandboxedEnvironment``: no access to dunder attributes, no mutation of the inputs,
  ``str.format`` sandboxed; ``*``/``**`` are checked so a template cannot build huge strings;
- no loader and ``include``/``import``/``extends`` refused at parse time: a template sees nothing
  but its inputs (``gateway``, ``values``, ``children``, and ``route`` for route children);
- no default globals (``lipsum``, ``cycler``, ``joiner``, ``namespace`` are gone; ``range`` and
  ``dict`` stay) and an allow-list of deterministic filters (no ``random``: the same inputs must
  always render the same object, or every resync would re-apply);
- printing ``None``, a map or a list is refused (Python's repr is not the YAML the author meant:
  ``None`` would become the string "None"); ``to_json``/``to_yaml`` say what is meant;
- strict undefined: a missing variable is an error naming the child and the line, never an empty
  string silently applied to the cluster. Attribute chains on a missing value are deferred (so
  ``values.waf.arn | default("")`` works) but any *use* of the missing value fails.

The output is parsed with ``yaml.safe_load_all``: one document (or none: the child is skipped, e.g.
a template wrapped in ``{% if values.waf.enabled %}``), a mapping with ``apiVersion``, ``kind`` and
``metadata.name``, made of JSON types only (an unquoted date is refused rather than crashing the
API client later).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

import jinja2
import yaml
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bifrost.render.errors import RenderError
from bifrost.render.model import ChildTemplate

MAX_SEQUENCE_LENGTH = 1_000_000
"""Largest string/list a template may build with ``*``."""
MAX_EXPONENT = 1_000

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


class StrictChainableUndefined(jinja2.ChainableUndefined, jinja2.StrictUndefined):
    """Strict about every use (print, test, iterate, compare) but lets ``a.b.c`` chain."""

    __slots__ = ()


def to_yaml(value: Any) -> str:
    """Block-style YAML without a trailing newline (pair with ``indent``)."""
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=False).rstrip("\n")


def to_json(value: Any) -> str:
    """Compact, key-sorted JSON; also valid inline YAML."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


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


class BlueprintEnvironment(ImmutableSandboxedEnvironment):
    """The only Jinja environment blueprints are rendered in."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_SEQUENCE_LENGTH
                ):
                    raise SecurityError(
                        f"repeating a sequence would build more than {MAX_SEQUENCE_LENGTH} items"
                    )
        return super().call_binop(context, operator, left, right)


def _finalize(value: Any) -> Any:
    """Refuse printing values whose Python form is not the YAML the author meant."""
    if value is None:
        raise jinja2.TemplateRuntimeError(
            "printed a null value (it would render as the string 'None'); "
            "use | default(...) or test it with {% if ... is none %}"
        )
    if isinstance(value, Mapping | list | tuple):
        raise jinja2.TemplateRuntimeError(
            f"printed a {type(value).__name__} directly (it would render as a Python repr); "
            "use | to_json (inline) or | to_yaml | indent(n) (block)"
        )
    return value


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
    env.filters.update({name: builtin[name] for name in _BUILTIN_FILTERS})
    extra: dict[str, Callable[..., Any]] = {
        "to_yaml": to_yaml,
        "to_json": to_json,
        "b64encode": b64encode,
        "sha256": sha256,
        "dns_label": dns_label,
    }
    env.filters.update(extra)
    return env


def _safe_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_SEQUENCE_LENGTH:
        raise SecurityError(f"range is longer than {MAX_SEQUENCE_LENGTH} items")
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
)


@lru_cache(maxsize=4096)
def compile_source(source: str) -> CompiledTemplate:
    """Parse and compile template text (cached); raises Jinja's own errors."""
    ast = ENVIRONMENT.parse(source)
    for node_type, word in _FORBIDDEN_NODES:
        for node in ast.find_all(node_type):
            raise _Forbidden(word, node.lineno)
    return CompiledTemplate(template=ENVIRONMENT.from_string(source), ast=ast)


class _Forbidden(Exception):
    def __init__(self, word: str, line: int) -> None:
        super().__init__(word, line)
        self.word = word
        self.line = line


def compile_child(child: ChildTemplate) -> CompiledTemplate:
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
            "(gateway, values, children, route), not other files",
            exc.line,
            where,
        ) from None


def render_child(child: ChildTemplate, context: Mapping[str, Any]) -> dict[str, Any] | None:
    """Render ``child`` with ``context`` into one object, or ``None`` when it renders empty."""
    compiled = compile_child(child)
    where = child.field_path("template")
    try:
        text = compiled.template.render(**context)
    except jinja2.UndefinedError as exc:
        raise RenderError(
            child.id,
            _describe_undefined(exc.message or str(exc)),
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
            f"template error: {exc.message or exc}",
            _template_line(exc.__traceback__),
            where,
        ) from None
    except Exception as exc:  # a filter or an operator failed on the given values
        raise RenderError(
            child.id,
            f"template failed: {type(exc).__name__}: {exc}",
            _template_line(exc.__traceback__),
            where,
        ) from None
    return parse_output(child, text)


def parse_output(child: ChildTemplate, text: str) -> dict[str, Any] | None:
    """Parse rendered text as exactly one Kubernetes object (``None`` for an empty output)."""
    where = child.field_path("template")
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        snippet = ""
        if line is not None:
            lines = text.splitlines()
            if 0 < line <= len(lines):
                snippet = f": {lines[line - 1].strip()!r}"
        where_text = f" at line {line} of the rendered output{snippet}" if line else ""
        raise RenderError(
            child.id,
            f"rendered output is not valid YAML{where_text} ({problem}); "
            "quote values that contain ':' or start with special characters, or use | to_json",
            line,
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


def _describe_undefined(message: str) -> str:
    found = re.search(r"ChildrenView object' has no (?:attribute|element) '?([^']*)'?", message)
    if found:
        return (
            f"children.{found.group(1)} is not available: a template can read the live state only "
            "of children it depends on; reference it with a literal id (children.<id> or "
            'children["<id>"]) or list it in dependsOn'
        )
    return f"undefined value: {message}"
