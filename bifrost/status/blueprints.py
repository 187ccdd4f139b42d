"""GatewayClassBlueprint status: is the blueprint valid, and does a bifrost GatewayClass use it?

A platform engineer who writes a blueprint sees the verdict on the blueprint itself, before any
Gateway of its class fails to render. Two conditions, as the CRD's printer columns show them:

- ``Valid``: the spec parses (the same checks ``Observer.resolve_class`` makes before a class is
  accepted: schema, unique ids, sound ``dependsOn``, and the typed values of ``spec.values`` — a
  supported, bounded values schema whose patterns compile, tenant keys it can admit, and the
  blueprint's own ``defaults``/``overrides`` obeying it; see
  :class:`bifrost.api.blueprint.BlueprintValues`) *and* everything ``bifrost.render`` compiles
  compiles — every child template (Jinja syntax, no ``include``/``import``, and only the
  sandbox's filters and tests and the template's own inputs: ``bifrost.render.compile_check``),
  every ``readyWhen``, ``spec.addresses`` and the TLS expressions (CEL syntax), every
  ``children.<id>`` a template reads names a known child, the dependencies (explicit and
  inferred) have no cycle, and a certificate template sets no ``renewBefore`` that would let
  cert-manager renew before bifrost rotates (``bifrost.api.cert_manager``). False with the
  first problem's reason (``Invalid``, ``InvalidTemplate``, ``InvalidExpression``,
  ``UnknownDependency``, ``DependencyCycle``, ``ChildNotConfined`` — a template whose literal
  ``kind``/``namespace`` ``spec.confinement`` refuses, see ``bifrost.render.confinement``) and a
  message naming each problem's child and field.
- ``Accepted``: the controller uses it — it is valid and a GatewayClass bifrost manages refers to
  it in ``spec.parametersRef``. False with the ``Valid`` reason and message while it is invalid,
  else ``NotReferenced``.

Checks are static: nothing is rendered with real values (a template that fails only for some
Gateway's values shows up on that Gateway's ``Programmed`` condition). A GatewayClass whose
blueprint has a problem is ``Accepted=False``/``InvalidParameters`` with :func:`class_message`
(``bifrost.controller.classes``); :class:`BlueprintVerdicts` keeps each blueprint version's
verdict so neither the class nor its Gateways compile it again per reconcile.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bifrost.api.blueprint import GatewayClassBlueprint
from bifrost.api.cert_manager import renewal_conflict
from bifrost.api.conditions import BlueprintConditionType, BlueprintReason, condition
from bifrost.api.errors import InvalidResourceError, parse_resource
from bifrost.render.compile_check import (
    CERTIFICATE_INPUTS,
    CHILD_INPUTS,
    ROUTE_CHILD_INPUTS,
    unknown_names,
)
from bifrost.render.confinement import static_violations
from bifrost.render.errors import BLUEPRINT, RenderError
from bifrost.render.expressions import check_addresses, check_ready_when, compile_expression
from bifrost.render.model import Blueprint, RenderChild
from bifrost.render.ordering import child_dependencies, topological_order
from bifrost.render.templates import compile_child
from bifrost.status._util import Obj, generation, get_map, merge_conditions

__all__ = [
    "VERDICTS",
    "BlueprintProblem",
    "BlueprintVerdicts",
    "blueprint_problems",
    "blueprint_status",
    "class_message",
]

TLS_CERTIFICATE_TEMPLATE = "spec.tls.certificateTemplate"
_MESSAGE_LIMIT = 32768


@dataclass(frozen=True)
class BlueprintProblem:
    """One thing wrong with a blueprint: the condition reason and what to fix, where."""

    reason: BlueprintReason
    message: str


def _describe(exc: RenderError) -> str:
    if exc.child_id == BLUEPRINT:
        where = exc.source if exc.line is None else f"{exc.source}, line {exc.line}"
        return f"{where}: {exc.message}"
    return str(exc)


def _problem(reason: BlueprintReason, exc: RenderError) -> BlueprintProblem:
    return BlueprintProblem(reason, _describe(exc))


def _reason(value: str) -> BlueprintReason:
    try:
        return BlueprintReason(value)
    except ValueError:
        return BlueprintReason.INVALID


def _children_problems(bp: Blueprint) -> list[BlueprintProblem]:
    problems: list[BlueprintProblem] = []
    gateway_ids = frozenset(c.id for c in bp.children)
    all_ids = gateway_ids | {c.id for c in bp.route_children}
    graph: dict[str, tuple[str, ...]] = {}
    ordered: list[RenderChild] = []
    entries = [(c, gateway_ids) for c in bp.children] + [(c, all_ids) for c in bp.route_children]
    for child, known in entries:
        try:
            compile_child(child)
        except RenderError as exc:
            problems.append(_problem(BlueprintReason.INVALID_TEMPLATE, exc))
            continue
        unknown = unknown_names(
            child.template, child_id=child.id, field=child.field_path("template"),
            inputs=ROUTE_CHILD_INPUTS if child.list_name == "routeChildren" else CHILD_INPUTS)
        problems += [_problem(BlueprintReason.INVALID_TEMPLATE, e) for e in unknown]
        try:
            check_ready_when(child)
        except RenderError as exc:
            problems.append(_problem(BlueprintReason.INVALID_EXPRESSION, exc))
        try:
            graph[child.id] = child_dependencies(child, known)
        except RenderError as exc:
            self_reference = "cannot depend on itself" in exc.message
            problems.append(_problem(
                BlueprintReason.DEPENDENCY_CYCLE if self_reference
                else BlueprintReason.UNKNOWN_DEPENDENCY, exc,
            ))
            continue
        ordered.append(child)
    try:
        topological_order(ordered, graph)
    except RenderError as exc:
        problems.append(_problem(BlueprintReason.DEPENDENCY_CYCLE, exc))
    return problems


def _tls_problems(parsed: GatewayClassBlueprint) -> list[BlueprintProblem]:
    tls = parsed.spec.tls
    if tls is None:
        return []
    problems: list[BlueprintProblem] = []
    try:
        compile_child(RenderChild(id="certificate", template=tls.certificate_template,
                                  list_name="tls"))
    except RenderError as exc:
        problems.append(_problem(BlueprintReason.INVALID_TEMPLATE, RenderError(
            BLUEPRINT, exc.message, exc.line, TLS_CERTIFICATE_TEMPLATE)))
    else:
        problems += [
            _problem(BlueprintReason.INVALID_TEMPLATE, e) for e in unknown_names(
                tls.certificate_template, child_id=BLUEPRINT, field=TLS_CERTIFICATE_TEMPLATE,
                inputs=CERTIFICATE_INPUTS)
        ]
    conflict = renewal_conflict(tls.certificate_template, tls.renew_before)
    if conflict is not None:
        problems.append(BlueprintProblem(BlueprintReason.INVALID_TEMPLATE, conflict))
    expressions = [("spec.tls.readyWhen", tls.ready_when), ("spec.tls.secretName", tls.secret_name)]
    if tls.verify is not None:
        expressions.append(("spec.tls.verify.expression", tls.verify.expression))
    for field, source in expressions:
        if not source:
            continue
        try:
            compile_expression(source, child_id=BLUEPRINT, field=field)
        except RenderError as exc:
            problems.append(_problem(BlueprintReason.INVALID_EXPRESSION, exc))
    return problems


def _confinement_problems(bp: Blueprint, parsed: GatewayClassBlueprint) -> list[BlueprintProblem]:
    """Children whose literal kind/namespace ``spec.confinement`` refuses (the rest is checked
    when they render; see ``bifrost.render.confinement.static_violations``)."""
    templates = [(c.id, c.field_path("template"), c.template)
                 for c in (*bp.children, *bp.route_children)]
    found = static_violations(templates, bp.confinement)
    tls = parsed.spec.tls
    if tls is not None:  # the certificate always lands in the Gateway's namespace
        found += static_violations([("certificate", TLS_CERTIFICATE_TEMPLATE,
                                     tls.certificate_template)],
                                   bp.confinement, namespace_forced=True)
    return [BlueprintProblem(BlueprintReason.CHILD_NOT_CONFINED, v.message) for v in found]


def blueprint_problems(blueprint: Obj) -> list[BlueprintProblem]:
    """Everything statically wrong with ``blueprint`` (an API object), in spec order; empty when
    it is valid (see the module docstring)."""
    try:
        parsed = parse_resource(GatewayClassBlueprint, blueprint)
    except InvalidResourceError as exc:
        return [BlueprintProblem(_reason(exc.reason), str(exc))]
    bp = Blueprint.from_api(parsed.spec)
    problems = _children_problems(bp)
    try:
        check_addresses(bp.addresses)
    except RenderError as exc:
        problems.append(_problem(BlueprintReason.INVALID_EXPRESSION, exc))
    return problems + _tls_problems(parsed) + _confinement_problems(bp, parsed)


class BlueprintVerdicts:
    """:func:`blueprint_problems` remembered per blueprint version, so a fleet of Gateways (and
    every resync) costs one compile of a blueprint per spec change, not one per reconcile.

    The key is (name, uid, ``metadata.generation``): the API server bumps the generation on every
    spec change and on nothing else (a status write does not). An object without a generation
    (not from an API server) is keyed by its ``resourceVersion``. The spec is kept with the
    verdict and compared (a dict comparison, no serialization) before it is reused, so an object
    that reuses a key with another spec (a test's, a restored one's) is checked again, never
    given a stale verdict. At most ``size`` versions are kept (least recently used go first).
    Thread-safe: the controller's workers share one.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._verdicts: OrderedDict[
            tuple[str, str, str], tuple[Any, tuple[BlueprintProblem, ...]]] = OrderedDict()
        #: How many times a blueprint was actually checked (the rest were cache hits).
        self.compiles = 0

    def problems(self, blueprint: Obj) -> tuple[BlueprintProblem, ...]:
        m = get_map(blueprint, "metadata")
        gen = m.get("generation")
        version = f"g{gen}" if isinstance(gen, int) else f"rv{m.get('resourceVersion') or ''}"
        key = (str(m.get("name") or ""), str(m.get("uid") or ""), version)
        spec = blueprint.get("spec")
        with self._lock:
            found = self._verdicts.get(key)
            if found is not None and found[0] == spec:
                self._verdicts.move_to_end(key)
                return found[1]
        verdict = tuple(blueprint_problems(blueprint))
        with self._lock:
            self.compiles += 1
            self._verdicts[key] = (copy.deepcopy(spec), verdict)
            self._verdicts.move_to_end(key)
            while len(self._verdicts) > self._size:
                self._verdicts.popitem(last=False)
        return verdict


#: The controller's verdicts (class acceptance and blueprint status share them).
VERDICTS = BlueprintVerdicts()


def class_message(blueprint_name: str, problems: Sequence[BlueprintProblem]) -> str:
    """The one line a GatewayClass (and its Gateways) says when its blueprint is not valid:
    the blueprint, the first problem (its field path and line) and the fix."""
    first = " ".join(problems[0].message.split())
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return (f'GatewayClassBlueprint "{blueprint_name}" is not valid: {first}{more} — fix the '
            f"blueprint; its Valid condition lists every problem "
            f"(kubectl describe gatewayclassblueprint {blueprint_name})")


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def blueprint_status(
    blueprint: Obj,
    *,
    problems: Sequence[BlueprintProblem],
    classes: Iterable[str],
    now: datetime,
) -> dict[str, Any]:
    """The ``status`` to write on ``blueprint``: ``Accepted`` and ``Valid`` merged into the
    existing conditions, and ``observedGeneration``.

    ``problems`` is :func:`blueprint_problems`'s verdict; ``classes`` the GatewayClasses bifrost
    manages whose ``parametersRef`` names the blueprint.
    """
    gen = generation(blueprint)
    used_by = sorted(set(classes))
    if problems:
        reason = problems[0].reason
        message = "\n".join(p.message for p in problems)[:_MESSAGE_LIMIT]
        valid = condition(BlueprintConditionType.VALID, False, reason=reason, message=message,
                          generation=gen, now=now)
        accepted = condition(BlueprintConditionType.ACCEPTED, False, reason=reason,
                             message=message, generation=gen, now=now)
    else:
        valid = condition(
            BlueprintConditionType.VALID, True, reason=BlueprintReason.VALID,
            message="templates and expressions compile and the dependencies are sound",
            generation=gen, now=now,
        )
        if used_by:
            noun = "GatewayClass" if len(used_by) == 1 else "GatewayClasses"
            accepted = condition(
                BlueprintConditionType.ACCEPTED, True, reason=BlueprintReason.ACCEPTED,
                message=f"used by {noun} {_quoted(used_by)}"[:_MESSAGE_LIMIT],
                generation=gen, now=now,
            )
        else:
            accepted = condition(
                BlueprintConditionType.ACCEPTED, False, reason=BlueprintReason.NOT_REFERENCED,
                message="no GatewayClass managed by bifrost refers to it in spec.parametersRef",
                generation=gen, now=now,
            )
    status: dict[str, Any] = dict(get_map(blueprint, "status"))
    status["conditions"] = merge_conditions(status.get("conditions"), [accepted, valid])
    if gen is not None:
        status["observedGeneration"] = gen
    return status
