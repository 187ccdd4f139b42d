"""CRD validation rules (``x-kubernetes-validations``), evaluated as a Kubernetes v1.31 API server
does (``apiextensions-apiserver/pkg/apiserver/schema/cel/validation.go``).

:func:`check` walks the schema and the object together and evaluates, at every schema node that
carries rules (the root, objects, list items, map values, ``allOf`` branches), each rule with
``self`` bound to the value there, seen through the node's schema (:mod:`.values`)
and with the Kubernetes function library (:mod:`.library`). A node absent from the
object, or null, is not evaluated.

Updates (``old`` given):

* a *transition rule* (one that uses ``oldSelf``) runs only where an old value exists at the same
  place: object properties and map values correlate by key, items of an
  ``x-kubernetes-list-type: map`` list by their map keys; items of ``set``/``atomic`` lists do not
  correlate. With ``optionalOldSelf: true`` it always runs, ``oldSelf`` being an optional.
* ratcheting (``CRDValidationRatcheting``, on by default since v1.30): a rule that is not a
  transition rule does not fail a value equal to its old value (or inside an unchanged list
  item). The real server evaluates it and turns a failure into a warning; here it is not
  evaluated at all, which gives the same answer (the value passed these rules when it was
  written) without the work - a status update re-checks only what changed.

The errors read as the real server's (``FieldError`` causes of a 422):

* a false rule: ``spec.listeners[0].tls: Invalid value: "object": <message>``: the node's schema
  type as the value (v1.31 shows the type, not the value), the rule's ``message``, else the
  evaluated ``messageExpression`` (falling back to ``message`` when it fails, is not a non-empty
  single-line string, or is over 5 KiB), else ``failed rule: <rule>``. ``reason``
  ``FieldValueForbidden``/``FieldValueRequired``/``FieldValueDuplicate`` give ``Forbidden: …``,
  ``Required value: …``, ``Duplicate value: "object"``. ``fieldPath`` (``.a.b`` or ``['a']``,
  relative to the node) moves the error. A rule on the root reports the field ``<nil>``.
* a rule that fails to evaluate: ``… Invalid value: "object": no such key: mode evaluating rule:
  <message>`` (``'no such overload': call arguments did not match …`` for a type error) - never
  a server error. A rule that does not compile: ``rule compile error: compilation failed: …``.

Budget: upstream counts CEL cost (a per-call limit of 1,000,000 and 10,000,000 per object); the
``cel`` package counts nothing and cannot be interrupted. So each evaluation is charged, before it
runs, the estimate of :mod:`.cost` (comprehension macros times the widest list or
map they can iterate, to the power of their nesting). A rule whose estimate is over the per-call
limit is not run (``'operation cancelled: actual cost limit exceeded': no further validation
rules will be run due to call cost exceeds limit for rule: …``); when the object's estimates pass
the per-object budget, or :data:`MAX_EVALUATIONS` evaluations, or :data:`DEADLINE_SECONDS` of
evaluation, the walk stops with ``validation failed due to running out of cost budget, no further
validation rules will be run``. Regular expressions are linear time (RE2, :mod:`.library`), so a
rule cannot hang on a crafted string.

Speed: rules are compiled once per text, the validator once per schema (a schema without rules
costs one lookup). Handing a value to the ``cel`` package is what costs (every string, list and
map is converted, ~50-90 us per call in a busy server), so the common case - every rule of a node
holds - is proven without it where possible, and ``cel`` decides everything else, rule by rule,
for the exact errors. At each node, in this order:

* on a create, the rules translated to Python read the stored JSON through the schema
  (:func:`.python_rules.translate_raw`); True proves they all hold;
* otherwise the node remembers the outcome of its rules for the last views it saw (the rules are
  pure functions of what they see; the view leaves out the fields no rule of the node can
  observe and shows placeholders for those whose size or presence only they test,
  :mod:`.fields`), so the hundredth similar value is not evaluated again;
* for a new view, the rules translated to Python read the view (:func:`.python_rules.translate`);
  then ``cel`` runs them as one program, in a context holding only the library functions they
  call (the package registers a context's functions again after each new ``self``); only when
  one fails, errs or is over the per-call limit are they run one by one.

Not reproduced: warnings for ratcheted errors; cel-go's static type checking (a rule that refers
to an undeclared field is only found when evaluated); which error wins when both sides of
``||``/``&&`` fail (cel-go reports the left one, the ``cel`` package the right one); the
order-insensitive equality of ``set`` and ``map`` lists (see :mod:`.values`).
"""

from __future__ import annotations

import contextlib
import marshal
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cel

from devcluster.schema import FieldError, StructuralSchema, format_value
from devcluster.validation_rules import cost as cel_cost
from devcluster.validation_rules import fields as cel_fields
from devcluster.validation_rules import library as cel_library
from devcluster.validation_rules import python_rules
from devcluster.validation_rules import source as cel_source
from devcluster.validation_rules.cost import Width
from devcluster.validation_rules.values import Shape, Shapes, to_cel

__all__ = [
    "DEADLINE_SECONDS",
    "MAX_EVALUATIONS",
    "PER_CALL_LIMIT",
    "RUNTIME_BUDGET",
    "check",
    "compile_error",
    "has_rules",
    "rule_errors",
]

Schema = dict[str, Any]

PER_CALL_LIMIT = 1_000_000
"""Largest estimated cost of one evaluation (upstream ``celconfig.PerCallLimit``)."""
RUNTIME_BUDGET = 10_000_000
"""Estimated cost allowed per object (upstream ``celconfig.RuntimeCELCostBudget``)."""
MAX_EVALUATIONS = 100_000
"""Rule evaluations allowed per object (bounds a huge list with per-item rules)."""
DEADLINE_SECONDS = 2.0
"""Evaluation time allowed per object."""
MAX_MESSAGE_BYTES = 5 * 1024
"""Longest evaluated ``messageExpression`` (upstream ``MaxEvaluatedMessageExpressionSizeBytes``)."""

_BUDGET_EXHAUSTED = (
    "validation failed due to running out of cost budget, no further validation rules will be run"
)
_BLOCKED = (
    "some validation rules were not checked because the object was invalid; correct the existing "
    "errors to complete validation"
)
_BLOCKING_REASONS = frozenset(
    {
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    }
)


# -------------------------------------------------------------------------------- compiling


@dataclass(frozen=True)
class _Compiled:
    """One rule text, compiled (``program`` is None when it does not compile)."""

    program: cel.Program | None
    error: str | None
    uses_old_self: bool
    macros: int
    depth: int
    functions: frozenset[str] = frozenset()
    """The library functions the program may call (see :func:`.library.reachable`)."""


def _is_operator(name: str) -> bool:
    return not name[:1].isalpha()


@lru_cache(maxsize=4096)
def _compile(source: str) -> _Compiled:
    try:
        program = cel.compile(cel_source.route_matches(source))
    except Exception as exc:  # the parser raises ValueError; anything else is also "invalid"
        text = str(exc)
        at = text.find("ERROR:")
        detail = text[at:] if at >= 0 else text
        return _Compiled(None, f"compilation failed: {detail.strip()}", False, 0, 0)
    code = cel_source.code_only(source)
    refs = program.references()
    bound = cel_source.macro_variables(code)
    for name in refs["variables"]:
        if name not in cel_library.KNOWN_NAMES and name not in bound:
            return _Compiled(None, _undeclared(name), False, 0, 0)
    for name in refs["functions"]:
        if not _is_operator(name) and name not in cel_library.KNOWN_FUNCTIONS:
            return _Compiled(None, _undeclared(name), False, 0, 0)
    macros, depth = cel_source.macro_shape(code)
    functions = cel_library.reachable(refs["functions"])
    return _Compiled(program, None, "oldSelf" in refs["variables"], macros, depth, functions)


def _undeclared(name: str) -> str:
    return f"compilation failed: ERROR: <input>: undeclared reference to '{name}' (in container '')"


def compile_error(source: str) -> str | None:
    """Why a rule (or messageExpression) does not compile, or ``None`` when it does."""
    return _compile(source).error


# -------------------------------------------------------------------------------- the validator


@dataclass(frozen=True)
class _Rule:
    """One ``x-kubernetes-validations`` entry of a schema node."""

    source: str
    compiled: _Compiled
    message: str
    message_program: cel.Program | None
    message_source: str
    message_uses_old_self: bool
    reason: str
    field_path: str
    optional_old_self: bool

    def describe(self) -> str:
        """``ruleErrorString``: the message, else the rule."""
        return self.message or self.source.strip()


_MISSING_SHAPE = object()


@dataclass
class _Node:
    """The rules of one schema node and the nodes below it that have rules."""

    rules: tuple[_Rule, ...]
    type_name: str
    shapes: Shapes
    """The validator's shapes, from which :meth:`shape` is made on first use."""
    uses_old_self: bool
    properties: dict[str, _Node] = field(default_factory=dict)
    items: _Node | None = None
    additional: _Node | None = None
    all_of: tuple[_Node, ...] = ()
    map_keys: tuple[str, ...] | None = None
    width: Width | None = None
    """How wide ``self`` can be, for the cost of rules with macros (None when there are none)."""
    schema: Schema = field(default_factory=dict)
    """The node's schema (the structure; rules may come from an ``allOf`` branch)."""
    resource_root: bool = False
    skip_unchanged: bool = False
    """Whether an unchanged value needs no look at all: no transition rule and no ``allOf``
    rules here or below (ratcheting would forgive every other failure)."""
    view_shape: Shape | None | object = field(default=_MISSING_SHAPE)
    """What CEL sees of a value here (:func:`_shape`), once made."""
    memo: OrderedDict[bytes | str, tuple[_Outcome, ...]] = field(default_factory=OrderedDict)
    """Recent outcomes by value (see :func:`_outcomes_memoized`)."""
    plans: dict[tuple[bool, bool], _Plan | None] = field(default_factory=dict)
    """How the rules run together, by (old value given, unchanged) (see :func:`_all_pass`)."""

    def shape(self) -> Shape | None:
        """What CEL sees of a value here, made on first use (a create whose rules are proven
        on the stored value never needs it); under the lock, as shapes are built in place."""
        shape = self.view_shape
        if shape is _MISSING_SHAPE:
            with _lock:
                shape = self.view_shape
                if shape is _MISSING_SHAPE:
                    shape = _shape(self.rules, self.schema, self.resource_root, self.shapes)
                    self.view_shape = shape
        return shape  # type: ignore[return-value]


def _build(
    v: Schema, s: Schema, resource_root: bool, shapes: Shapes, active: frozenset[int] = frozenset()
) -> _Node | None:
    """The validator for the rules of ``v`` over values of node schema ``s`` (``v`` is ``s``
    except under ``allOf``, whose branches carry rules but not the structure). ``active`` holds
    the schemas being built above: a schema that contains itself (a built-in kind's recursive
    type) is walked once."""
    if id(v) in active:
        return None
    active = active | {id(v)}
    declared = v.get("x-kubernetes-validations") or ()
    rules = tuple(_rule(r, s) for r in declared if isinstance(r, dict))
    properties: dict[str, _Node] = {}
    node_props = s.get("properties") or {}
    for name, vsub in (v.get("properties") or {}).items():
        ssub = node_props.get(name)
        if isinstance(vsub, dict) and isinstance(ssub, dict):
            embedded = bool(ssub.get("x-kubernetes-embedded-resource"))
            child = _build(vsub, ssub, embedded, shapes, active)
            if child is not None:
                properties[name] = child
    items = None
    if isinstance(v.get("items"), dict) and isinstance(s.get("items"), dict):
        sub = s["items"]
        items = _build(
            v["items"], sub, bool(sub.get("x-kubernetes-embedded-resource")), shapes, active
        )
    additional = None
    if isinstance(v.get("additionalProperties"), dict) and isinstance(
        s.get("additionalProperties"), dict
    ):
        sub = s["additionalProperties"]
        embedded = bool(sub.get("x-kubernetes-embedded-resource"))
        additional = _build(v["additionalProperties"], sub, embedded, shapes, active)
    all_of = tuple(
        n
        for n in (
            _build(branch, s, resource_root, shapes, active)
            for branch in v.get("allOf") or ()
            if isinstance(branch, dict)
        )
        if n is not None
    )
    if not (rules or properties or items or additional or all_of):
        return None
    map_keys = None
    if s.get("x-kubernetes-list-type") == "map":
        map_keys = tuple(str(k) for k in s.get("x-kubernetes-list-map-keys") or ())
    return _Node(
        rules=rules,
        schema=s,
        resource_root=resource_root,
        type_name=str(s.get("type") or ""),
        shapes=shapes,
        uses_old_self=any(r.compiled.uses_old_self for r in rules),
        properties=properties,
        items=items,
        additional=additional,
        all_of=all_of,
        map_keys=map_keys,
        width=Width.of(s) if any(r.compiled.macros for r in rules) else None,
        skip_unchanged=not all_of
        and not any(r.compiled.uses_old_self or r.optional_old_self for r in rules)
        and all(c.skip_unchanged for c in (*properties.values(), items, additional) if c),
    )


def _shape(
    rules: tuple[_Rule, ...], s: Schema, resource_root: bool, shapes: Shapes
) -> Shape | None:
    """What the rules see of a value at ``s``: without the fields they cannot observe, and
    placeholders for those they only count (see :mod:`.fields`)."""
    sources = [r.source for r in rules if r.compiled.program is not None]
    sources += [r.message_source for r in rules if r.message_program is not None]
    seen = cel_fields.observed(sources, s)
    if seen is None:
        return shapes.of(s, resource_root=resource_root)
    return shapes.of(s, resource_root=resource_root, keep=seen.names, counted=seen.counted)


def _rule(r: dict[str, Any], s: Schema) -> _Rule:
    source = str(r.get("rule") or "")
    compiled = _compile(source) if source.strip() else _Compiled(None, None, False, 0, 0)
    message = _compile(str(r.get("messageExpression") or "").strip() or "false")
    path = r.get("fieldPath")
    return _Rule(
        source=source,
        compiled=compiled,
        message=str(r.get("message") or "").strip(),
        message_program=message.program if r.get("messageExpression") else None,
        message_source=str(r.get("messageExpression") or ""),
        message_uses_old_self=message.uses_old_self,
        reason=str(r.get("reason") or "FieldValueInvalid"),
        field_path=_normalize_field_path(path, s) if isinstance(path, str) and path else "",
        optional_old_self=bool(r.get("optionalOldSelf")),
    )


_FIELD_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]")


def _normalize_field_path(path: str, s: Schema) -> str:
    """A rule's ``fieldPath`` (``.a.b``, ``['a.b']``) as a field path relative to the node:
    properties are ``.name``, map keys ``[key]``. Unusable paths are ignored (the real server
    refuses them when the CRD is written)."""
    out = ""
    pos = 0
    node: Schema | None = s
    while pos < len(path):
        m = _FIELD_PATH_TOKEN.match(path, pos)
        if m is None or node is None:
            return ""
        name = m.group(1) if m.group(1) is not None else re.sub(r"\\(.)", r"\1", m.group(2))
        props = node.get("properties")
        if isinstance(props, dict) and props:
            if name not in props:
                return ""
            out = f"{out}.{name}" if out else name
            node = props[name] if isinstance(props[name], dict) else None
        elif isinstance(node.get("additionalProperties"), dict):
            out = f"{out}[{name}]"
            node = node["additionalProperties"]
        else:
            return ""
        pos = m.end()
    return out


class _Validator:
    """The compiled rules of one schema (``root`` is None when it has none)."""

    def __init__(self, schema: Schema) -> None:
        self.shapes = Shapes()
        self.root = _build(schema, schema, True, self.shapes)


_validators: weakref.WeakKeyDictionary[StructuralSchema, _Validator] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _validator(schema: StructuralSchema) -> _Validator:
    v = _validators.get(schema)
    if v is None:
        with _lock:
            v = _validators.get(schema)
            if v is None:
                v = _Validator(schema.schema)
                _validators[schema] = v
    return v


def has_rules(schema: StructuralSchema) -> bool:
    """Whether the schema has any validation rule (else :func:`check` does nothing)."""
    return _validator(schema).root is not None


# -------------------------------------------------------------------------------- evaluating


@dataclass(frozen=True)
class _Plan:
    """The rules of a node that run for one kind of call (an old value given or not, the value
    unchanged or not), and how to tell at once that they all pass."""

    sources: tuple[str, ...]
    own_program: cel.Program | None
    """The program of the one rule, when there is one."""
    functions: frozenset[str]
    plain_cost: int
    """The cost of the rules without macros (1 each)."""
    macro_shapes: tuple[tuple[int, int], ...]
    """(macros, depth) of each rule with macros, whose cost depends on the value's width."""
    raw: Callable[[Any], bool] | None = None
    """The rules translated to Python (:func:`.python_rules.translate_raw`) on the stored
    value (no view to build), when the schema shows CEL sees what the rules reach as it is
    stored: True proves they all pass."""
    passed: tuple[_Outcome, ...] | None = None
    """The outcome of them all passing, when its cost does not depend on the value (no
    macros, or only over lists and maps with declared bounds)."""

    @property
    def count(self) -> int:
        return len(self.sources)

    def program(self) -> cel.Program | None:
        """One ``cel`` program for them all: the one rule's own, or the list of the rules'
        results (None when that does not compile). Compiled on first use."""
        return self.own_program if self.count == 1 else _compile_list(self.sources)

    def python(self) -> Callable[[Any], bool] | None:
        """The rules translated to Python on the view (:func:`.python_rules.translate`): True
        proves they all pass, without a call into ``cel``. Translated on first use."""
        return python_rules.translate(*self.sources)


_NO_PLAN = _Plan((), None, frozenset(), 0, ())


def _plan(node: _Node, has_old: bool, unchanged: bool) -> _Plan | None:
    """The rules of ``node`` that run when all pass, or None when the node needs the rule by
    rule evaluation of :func:`_outcomes` whatever the value (a rule that does not compile, an
    ``optionalOldSelf`` rule, rules that do not compile together)."""
    chosen: list[_Rule] = []
    for rule in node.rules:
        c = rule.compiled
        if c.error is not None:
            return None
        if c.program is None:
            continue
        if c.uses_old_self and not has_old and not rule.optional_old_self:
            continue
        if unchanged and not c.uses_old_self:
            continue
        if rule.optional_old_self:
            return None
        chosen.append(rule)
    if not chosen:
        return _NO_PLAN
    plain_cost = sum(1 for r in chosen if not r.compiled.macros)
    macro_shapes = tuple((r.compiled.macros, r.compiled.depth) for r in chosen if r.compiled.macros)
    passed = None
    if not macro_shapes or (node.width is not None and not node.width.probes):
        widest = node.width.declared if node.width is not None else 0
        costs = [cel_cost.estimate(m, d, widest) for m, d in macro_shapes]
        if all(c <= PER_CALL_LIMIT for c in costs):
            passed = (_Outcome(plain_cost + sum(costs), len(chosen)),)
    sources = tuple(r.source for r in chosen)
    return _Plan(
        sources=sources,
        own_program=chosen[0].compiled.program,
        functions=frozenset().union(*(r.compiled.functions for r in chosen)),
        plain_cost=plain_cost,
        macro_shapes=macro_shapes,
        raw=python_rules.translate_raw(sources, node.schema, node.resource_root),
        passed=passed,
    )


@lru_cache(maxsize=1024)
def _compile_list(sources: tuple[str, ...]) -> cel.Program | None:
    """One program giving the list of the rules' results (None if it does not compile). Each
    rule ends on its own line, so a trailing ``//`` comment cannot swallow the rest."""
    text = ", ".join(f"({cel_source.route_matches(src)}\n)" for src in sources)
    try:
        return cel.compile(f"[{text}]")
    except Exception:  # noqa: BLE001 - then the rules run one by one
        return None


def _fast_context(functions: frozenset[str]) -> cel.Context:
    """This thread's context with exactly ``functions`` of the library."""
    cache: dict[frozenset[str], cel.Context] | None = getattr(_contexts, "by_functions", None)
    if cache is None:
        cache = {}
        _contexts.by_functions = cache
    ctx = cache.get(functions)
    if ctx is None:
        ctx = cel_library.new_context(functions)
        cache[functions] = ctx
    return ctx


_MISSING: Any = object()


def _plan_for(node: _Node, has_old: bool, unchanged: bool) -> _Plan | None:
    """The node's :class:`_Plan` for such calls (made on first use)."""
    key = (has_old, unchanged)
    plan = node.plans.get(key, _MISSING)
    if plan is _MISSING:
        plan = _plan(node, has_old, unchanged)
        node.plans[key] = plan
    return plan  # type: ignore[no-any-return]


def _cost(plan: _Plan, node: _Node, value: Any, old: Any) -> int | None:
    """The estimated cost of the plan's rules on ``value`` (and ``old``), or None when one of
    them is over the per-call limit."""
    cost = plan.plain_cost
    if plan.macro_shapes:
        widest = 0
        if node.width is not None:
            widest = node.width.measure(value)
            if old is not None:
                widest = max(widest, node.width.measure(old))
        for macros, depth in plan.macro_shapes:
            one = cel_cost.estimate(macros, depth, widest)
            if one > PER_CALL_LIMIT:
                return None
            cost += one
    return cost


def _stored_pass(node: _Node, value: Any) -> tuple[_Outcome, ...] | None:
    """The outcome of the node's rules on a new value when its stored JSON shows them all
    true (:func:`.python_rules.translate_raw`: no view, no memory); None when it does not."""
    plan = _plan_for(node, False, False)
    if plan is None or plan.raw is None:
        return None
    passed = plan.passed
    if passed is None:
        cost = _cost(plan, node, value, None)
        if cost is None:
            return None
        passed = (_Outcome(cost, plan.count),)
    try:
        if plan.raw(value):
            return passed
    except Exception:  # noqa: BLE001, S110 - not shown to pass: the view decides
        pass
    return None


def _all_pass(
    node: _Node, value: Any, old: Any, view: Any, old_view: Any, unchanged: bool
) -> tuple[_Outcome, ...] | None:
    """The outcome of the node's rules when every one of them passes, from one evaluation of
    its :class:`_Plan`; None when one fails, errs or is over the per-call limit (or the node
    has no plan): then :func:`_outcomes` evaluates them one by one, for the exact errors."""
    has_old = old is not None
    plan = _plan_for(node, has_old, unchanged)
    if plan is None:
        return None
    if not plan.count:
        return ()
    passed = plan.passed
    if passed is None:
        cost = _cost(plan, node, value, old)
        if cost is None:
            return None
        passed = (_Outcome(cost, plan.count),)
    python = plan.python()
    if python is not None:
        try:
            if python(view):
                return passed
        except Exception:  # noqa: BLE001, S110 - not shown to pass: cel decides
            pass
    program = plan.program()
    if program is None:
        return None
    ctx = _fast_context(plan.functions)
    ctx.add_variable("self", view)
    if has_old:
        ctx.add_variable("oldSelf", old_view)
    try:
        result = program.execute(ctx)
    except Exception:  # noqa: BLE001 - the rules run one by one for the error
        return None
    if plan.count == 1:
        ok = result is True
    else:
        ok = isinstance(result, list) and all(r is True for r in result)
    return passed if ok else None


class _Stop(Exception):
    """The budget is spent: no further rules are evaluated."""


class _Correlation:
    """A value and its old value, for ratcheting: equal is computed only when a rule fails."""

    __slots__ = ("_equal", "old", "value")

    def __init__(self, value: Any, old: Any) -> None:
        self.value = value
        self.old = old
        self._equal: bool | None = None

    def equal(self) -> bool:
        if self._equal is None:
            self._equal = bool(self.value == self.old)
        return self._equal


class _Run:
    """The state of one :func:`check`: errors and budget."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.remaining = RUNTIME_BUDGET
        self.evaluations = 0
        self.deadline = time.monotonic() + DEADLINE_SECONDS

    def within_budget(self) -> bool:
        return (
            self.remaining > 0
            and self.evaluations < MAX_EVALUATIONS
            and time.monotonic() <= self.deadline
        )

    def charge(self, cost: int, count: int) -> bool:
        """Take ``cost`` of ``count`` evaluations from the budget; False when it is spent (the
        deadline is checked per node, by :meth:`within_budget`)."""
        self.remaining -= cost
        self.evaluations += count
        return self.remaining >= 0 and self.evaluations <= MAX_EVALUATIONS


def _field(path: str) -> str:
    return path or "<nil>"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _invalid_message(type_name: str, detail: str) -> str:
    return f"Invalid value: {format_value(type_name)}: {detail}"


def _invalid(path: str, type_name: str, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", _invalid_message(type_name, detail), _field(path))


def _failed(path: str, type_name: str, detail: str, reason: str) -> FieldError:
    if reason == "FieldValueForbidden":
        return FieldError(reason, f"Forbidden: {detail}", _field(path))
    if reason == "FieldValueRequired":
        return FieldError(reason, f"Required value: {detail}", _field(path))
    if reason == "FieldValueDuplicate":
        return FieldError(reason, f"Duplicate value: {format_value(type_name)}", _field(path))
    return _invalid(path, type_name, detail)


_FUNCTION_FAILED = re.compile(
    r"Python function call failed: (\w+): (.*?)\.? Check function arguments", re.DOTALL
)
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")


def _evaluation_error(exc: Exception, rule: _Rule, path: str, type_name: str) -> FieldError:
    """A rule that raised, reported as the real server reports CEL runtime errors."""
    text = str(exc)
    kind = type(exc).__name__
    inner = _FUNCTION_FAILED.search(text)
    if inner is not None:
        kind, text = inner.group(1), inner.group(2)
    if kind == "TypeError":
        return _invalid(
            path,
            type_name,
            "'no such overload': call arguments did not match a supported operator, function or "
            f"macro signature for rule: {rule.describe()}",
        )
    undefined = _UNDEFINED.search(text)
    if undefined is not None:
        return _invalid(path, type_name, f"rule compile error: {_undeclared(undefined.group(1))}")
    if kind == "KeyError":
        detail = f"no such key: {text.strip(chr(39))}"
    elif kind == "OverflowError":
        detail = "integer overflow"
    elif kind == "ZeroDivisionError":
        modulus = "remainder" in text or "modulo" in text
        detail = "modulus by zero" if modulus else "division by zero"
    else:
        detail = text
    return _invalid(path, type_name, f"{detail} evaluating rule: {rule.describe()}")


def _message(rule: _Rule, ctx: cel.Context, has_old: bool) -> str:
    """The error detail: the evaluated messageExpression, else the message, else the rule.
    (A messageExpression that uses ``oldSelf`` where the node has none cannot evaluate.)"""
    if rule.message_program is not None and (has_old or not rule.message_uses_old_self):
        try:
            text = rule.message_program.execute(ctx)
        except Exception:  # upstream logs it and falls back to the message
            text = None
        if isinstance(text, str):
            text = text.strip()
            if text and "\n" not in text and len(text.encode()) <= MAX_MESSAGE_BYTES:
                return text
    return rule.message or f"failed rule: {rule.source.strip()}"


_contexts = threading.local()


def _context(optional: bool) -> cel.Context:
    """This thread's CEL context (plain or with an optional ``oldSelf``), reused across checks:
    registering the library's functions costs more than evaluating most rules. ``self`` (and
    ``oldSelf`` where a node uses it) is set before every use."""
    ctx: cel.Context | None = getattr(_contexts, "optional" if optional else "plain", None)
    if ctx is None:
        ctx = cel_library.new_context()
        setattr(_contexts, "optional" if optional else "plain", ctx)
    return ctx


@dataclass(frozen=True)
class _Outcome:
    """What rules did to a value: the cost charged for ``count`` evaluations, and the error of
    the last one (field path relative to the node, reason, message) if it failed; ``stop`` when
    it was over the per-call limit. Consecutive passing rules share one outcome."""

    cost: int
    count: int = 1
    error: tuple[str, str, str] | None = None
    stop: bool = False


_MEMO_ENTRIES = 64
_MEMO_KEY_BYTES = 4096


def _memo_key(views: tuple[Any, Any, bool]) -> bytes | str:
    """Bytes telling apart everything CEL can (1, 1.0 and true; key order aside): marshal
    (version 2 writes equal values alike, without back-references), or repr for values it
    cannot write (timestamps, durations)."""
    try:
        return marshal.dumps(views, 2)
    except ValueError:
        return repr(views)


def _evaluate(
    node: _Node, value: Any, old: Any, path: str, corr: _Correlation | None, run: _Run
) -> None:
    """Run the node's rules on ``value`` and account for them in ``run``."""
    has_old = old is not None and node.uses_old_self
    # Ratcheting: a rule that is not a transition rule cannot fail a value that did not change
    # (upstream evaluates it and turns a false into a warning; the value passed these rules when
    # it was written, so skipping it gives the same answer without the work).
    unchanged = corr is not None and corr.equal()
    if not run.within_budget():
        run.errors.append(_invalid(path, node.type_name, _BUDGET_EXHAUSTED))
        raise _Stop
    _account(
        node, _outcomes_memoized(node, value, old if has_old else None, unchanged, run), path, run
    )


def _account(node: _Node, outcomes: tuple[_Outcome, ...], path: str, run: _Run) -> None:
    """Charge the outcomes of the node's rules at ``path`` to ``run``, and record their
    errors."""
    for o in outcomes:
        if not o.stop and not run.charge(o.cost, o.count):
            run.errors.append(_invalid(path, node.type_name, _BUDGET_EXHAUSTED))
            raise _Stop
        if o.error is not None:
            suffix, reason, message = o.error
            target = _join(path, suffix) if suffix else path
            run.errors.append(FieldError(reason, message, _field(target)))
        if o.stop:
            raise _Stop


def _outcomes_memoized(
    node: _Node, value: Any, old: Any, unchanged: bool, run: _Run
) -> tuple[_Outcome, ...]:
    """:func:`_outcomes`, remembered per node for recently seen values: the rules are pure
    functions of what they see of ``self`` and ``oldSelf`` (the view, without the fields they
    cannot observe), and many objects look the same there (listeners, route rules, backend
    refs that differ in names only), so the hundredth similar object is not evaluated again.
    The costs charged are those of the first value with that view."""
    shape = node.shape()
    view = to_cel(value, shape)
    old_view = to_cel(old, shape) if old is not None else None
    key = _memo_key((view, old_view, unchanged))
    if len(key) > _MEMO_KEY_BYTES:
        return _outcomes(node, value, old, view, old_view, unchanged, run)
    memo = node.memo
    hit = memo.get(key)
    if hit is not None:
        return hit
    outcomes = _outcomes(node, value, old, view, old_view, unchanged, run)
    if len(memo) >= _MEMO_ENTRIES:
        with contextlib.suppress(KeyError):  # another thread emptied it meanwhile
            memo.popitem(last=False)
    memo[key] = outcomes
    return outcomes


def _outcomes(
    node: _Node, value: Any, old: Any, view: Any, old_view: Any, unchanged: bool, run: _Run
) -> tuple[_Outcome, ...]:
    """Evaluate the node's rules (``old`` is None unless a rule of the node uses ``oldSelf``
    and there is an old value; ``view``/``old_view`` are what CEL sees of them): all at once
    when they all pass (:func:`_all_pass`), else one by one."""
    fast = _all_pass(node, value, old, view, old_view, unchanged)
    if fast is not None:
        return fast
    ready: dict[bool, cel.Context] = {}
    has_old = old is not None
    widest: int | None = None
    out: list[_Outcome] = []
    passed_cost = passed = 0

    def add(cost: int, error: tuple[str, str, str], stop: bool = False) -> None:
        nonlocal passed_cost, passed
        if passed:
            out.append(_Outcome(passed_cost, passed))
            passed_cost = passed = 0
        out.append(_Outcome(cost, 1, error, stop))

    def context(optional: bool) -> cel.Context:
        ctx = ready.get(optional)
        if ctx is None:
            ctx = _context(optional)
            ctx.add_variable("self", view)
            if optional:
                ctx.add_variable(
                    "oldSelf",
                    cel.OptionalValue.of(old_view) if has_old else cel.OptionalValue.none(),
                )
            elif has_old:
                ctx.add_variable("oldSelf", old_view)
            ready[optional] = ctx
        return ctx

    for rule in node.rules:
        c = rule.compiled
        if c.error is not None:
            message = _invalid_message(node.type_name, f"rule compile error: {c.error}")
            add(0, ("", "FieldValueInvalid", message))
            continue
        if c.program is None:
            continue
        if c.uses_old_self and not has_old and not rule.optional_old_self:
            continue
        if unchanged and not c.uses_old_self:
            continue
        if c.macros and widest is None and node.width is not None:
            widest = node.width.measure(value)
            if has_old:
                widest = max(widest, node.width.measure(old))
        cost = cel_cost.estimate(c.macros, c.depth, widest or 0)
        if cost > PER_CALL_LIMIT:
            message = _invalid_message(
                node.type_name,
                "'operation cancelled: actual cost limit exceeded': no further validation rules "
                f"will be run due to call cost exceeds limit for rule: {rule.describe()}",
            )
            add(cost, ("", "FieldValueInvalid", message), stop=True)
            return tuple(out)
        try:
            result = c.program.execute(context(rule.optional_old_self))
        except Exception as exc:  # every CEL runtime error is the rule's, never a 500
            error = _evaluation_error(exc, rule, "", node.type_name)
            add(cost, ("", error.reason, error.message))
            continue
        if result is True:
            passed_cost += cost
            passed += 1
            continue
        detail = _message(rule, context(False), has_old)
        error = _failed("", node.type_name, detail, rule.reason)
        add(cost, (rule.field_path, error.reason, error.message))
    if passed:
        out.append(_Outcome(passed_cost, passed))
    return tuple(out)


def _map_key(item: Any, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    if not isinstance(item, dict):
        return None
    key = tuple(item.get(k) for k in keys)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _walk(
    node: _Node,
    value: Any,
    old: Any,
    path: str,
    corr: _Correlation | None,
    parent_corr: _Correlation | None,
    run: _Run,
) -> None:
    if value is None:
        return
    if node.skip_unchanged and corr is not None and corr.equal():
        return  # unchanged, and nothing here or below could fail it (ratcheting)
    if node.rules:
        _evaluate(node, value, old, path, corr, run)
    for branch in node.all_of:
        # upstream does not ratchet allOf errors on the node itself, only through its parent
        _walk(branch, value, old, path, parent_corr, parent_corr, run)
    if isinstance(value, dict):
        old_map = old if isinstance(old, dict) else None
        if node.additional is not None:
            for k, v in value.items():
                _child(node.additional, v, old_map, k, f"{path}[{k}]", corr, run)
        for k, sub in node.properties.items():
            if k in value:
                _child(sub, value[k], old_map, k, _join(path, k), corr, run)
    elif isinstance(value, list) and node.items is not None:
        old_items: dict[tuple[Any, ...], Any] = {}
        if node.map_keys is not None and isinstance(old, list):
            for item in old:
                key = _map_key(item, node.map_keys)
                if key is not None:
                    old_items.setdefault(key, item)
        for i, v in enumerate(value):
            old_v = None
            if old_items and node.map_keys is not None:
                key = _map_key(v, node.map_keys)
                old_v = old_items.get(key) if key is not None else None
            child_corr = _Correlation(v, old_v) if old_v is not None else corr
            _walk(node.items, v, old_v, f"{path}[{i}]", child_corr, corr, run)


def _child(
    node: _Node,
    value: Any,
    old_map: dict[str, Any] | None,
    key: str,
    path: str,
    corr: _Correlation | None,
    run: _Run,
) -> None:
    old = old_map.get(key) if old_map is not None else None
    child_corr = _Correlation(value, old) if old is not None else corr
    _walk(node, value, old, path, child_corr, corr, run)


def check(
    schema: StructuralSchema, obj: dict[str, Any], old: dict[str, Any] | None
) -> list[FieldError]:
    """The rules ``obj`` breaks (``old`` is the object before an update, for transition rules
    and ratcheting); empty when it breaks none or the schema has no rules."""
    root = _validator(schema).root
    if root is None:
        return []
    run = _Run()
    with contextlib.suppress(_Stop):
        if old is None:
            _walk_new(root, obj, "", run)
        else:
            _walk(root, obj, old, "", _Correlation(obj, old), None, run)
    return run.errors


def _walk_new(node: _Node, value: Any, path: str, run: _Run) -> None:
    """:func:`_walk` for a value that has no old value anywhere (a create): nothing to
    correlate or ratchet, so less to do at each node."""
    if node.rules:
        if not run.within_budget():
            run.errors.append(_invalid(path, node.type_name, _BUDGET_EXHAUSTED))
            raise _Stop
        outcomes = _stored_pass(node, value)
        if outcomes is None:
            outcomes = _outcomes_memoized(node, value, None, False, run)
        _account(node, outcomes, path, run)
    for branch in node.all_of:
        _walk_new(branch, value, path, run)
    if isinstance(value, dict):
        if node.additional is not None:
            for k, v in value.items():
                if v is not None:
                    _walk_new(node.additional, v, f"{path}[{k}]", run)
        for k, sub in node.properties.items():
            v = value.get(k)
            if v is not None:
                _walk_new(sub, v, f"{path}.{k}" if path else k, run)
    elif isinstance(value, list) and node.items is not None:
        items = node.items
        for i, v in enumerate(value):
            if v is not None:
                _walk_new(items, v, f"{path}[{i}]", run)


def rule_errors(
    schema: StructuralSchema,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    structural: list[FieldError],
) -> list[FieldError]:
    """What the real server adds to the structural errors ``structural``: the rules' errors, or,
    when a structural error would make the rules meaningless (a missing, mistyped, unsupported,
    too long or too large value), one ``<nil>: Invalid value: "null": some validation rules were
    not checked ...`` error instead (only for a schema that has rules)."""
    if not has_rules(schema):
        return []
    if any(e.reason in _BLOCKING_REASONS for e in structural):
        return [FieldError("FieldValueInvalid", f'Invalid value: "null": {_BLOCKED}', "<nil>")]
    return check(schema, obj, old)
