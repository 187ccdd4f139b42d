"""Policy status: is a ``GatewayClassConfig``/``GatewayConfig`` attached, where, and if not, why.

DESIGN §2: "Every policy reports on its own status whether it is attached (and why not)". The
decision is made here, from the policy as the API returns it, its target (and, for a Gateway, the
Gateway's class) and the other policies naming the same target — all of which the controller
already holds in its informer cache. The same functions pick the policy whose values the
controller merges (:func:`winner`, used by ``Observer.merged_values``), so what a policy says on
its status is exactly what the controller does with it.

One ``Accepted`` condition (GEP-713), checked in this order:

1. ``Invalid`` — the policy does not parse, or it lives where it may not attach (a class-wide
   GatewayClassConfig outside the controller's namespace; a Namespace target other than the
   policy's own namespace; see :mod:`bifrost.api.policies`);
2. ``TargetNotFound`` — the target does not exist, or it is not bifrost's: a GatewayClass whose
   ``controllerName`` is another controller's, a Gateway whose class is not bifrost's;
3. ``Invalid`` — its values break the ``spec.values`` of a blueprint they would feed
   (:class:`ValuesRules`): a ``GatewayConfig`` (the application team's) sets a key outside
   ``tenantKeys``, or a value breaks the schema (any policy). The message names the policy's field
   path and the rule, never the value. Such a policy is not merged (:func:`winner` skips it, so
   the values are computed as if it did not exist; the controller then keeps an already
   provisioned Gateway as it is, see ``Observer.values_verdict``). A blueprint without
   ``spec.values`` accepts any values (backward compatible);
4. ``Conflicted`` — another valid policy of the same kind targets the same object and wins by the
   documented tie-break: the oldest ``creationTimestamp``, then the name. The message names it;
5. ``Accepted`` — attached; ``status.attachedTo`` lists the target.

Which blueprints a policy feeds: a class-wide policy, its GatewayClass's; a Gateway policy, the
Gateway's class's; a namespace policy, those of the classes of the Gateways in the namespace. A
namespace policy that suits one class and not another is judged per Gateway (applied to the
Gateways whose blueprint it suits) and reports ``Invalid`` naming the blueprint it breaks.

``attachedTo`` is empty unless the policy is attached. ``observedGeneration`` (of the status and
of the condition) is the policy's ``metadata.generation``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bifrost.api import objects
from bifrost.api.blueprint import BlueprintValues
from bifrost.api.conditions import PolicyConditionType, PolicyReason, condition
from bifrost.api.errors import InvalidResourceError, parse_resource
from bifrost.api.policies import (
    CLASS_CONFIG_KIND,
    CONTROLLER_NAMESPACE,
    GATEWAY_API_GROUP,
    GATEWAY_CONFIG_KIND,
    GatewayClassConfig,
    GatewayConfig,
    PolicyAttachment,
)
from bifrost.api.values_schema import (
    MAX_VIOLATIONS,
    Violation,
    compiled_schema,
    format_violations,
    tenant_key_violations,
    validate_level,
)
from bifrost.status._util import Obj, generation, get_map, merge_conditions
from bifrost.status.routes import DEFAULT_CONTROLLER_NAME

__all__ = [
    "CheckedPolicy",
    "Policy",
    "PolicyVerdict",
    "TargetKey",
    "ValuesRules",
    "check_policy",
    "decide_policy",
    "policy_status",
    "precedence",
    "target_key",
    "values_violations",
    "winner",
]

Policy = GatewayClassConfig | GatewayConfig
#: (kind, namespace or "", name) of a policy's target — a Gateway's namespace is the policy's.
TargetKey = tuple[str, str, str]

_MODELS: dict[str, type[GatewayClassConfig] | type[GatewayConfig]] = {
    CLASS_CONFIG_KIND: GatewayClassConfig,
    GATEWAY_CONFIG_KIND: GatewayConfig,
}
_LEVEL = {"GatewayClass": "class-wide", "Namespace": "namespace", "Gateway": "gateway"}


def _ns_name(obj: Obj) -> tuple[str, str]:
    meta = objects.meta(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def precedence(policy: Obj) -> tuple[str, str]:
    """The tie-break between policies of one kind on one target: the smallest wins — the oldest
    ``creationTimestamp`` (RFC 3339, so text order is time order), then the name."""
    meta = objects.meta(policy)
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def target_key(policy: Obj) -> TargetKey | None:
    """What the policy's ``spec.targetRef`` names (``None`` without a usable one)."""
    ref = get_map(policy, "spec", "targetRef")
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    if not name:
        return None
    if kind == "Gateway":
        return ("Gateway", _ns_name(policy)[0], name)
    if kind in ("GatewayClass", "Namespace"):
        return (kind, "", name)
    return None


@dataclass(frozen=True)
class ValuesRules:
    """The ``spec.values`` of the blueprint ``blueprint`` (``None``: untyped, anything goes)."""

    blueprint: str
    values: BlueprintValues | None


def values_violations(policy: Policy, values: BlueprintValues | None) -> list[Violation]:
    """What in ``policy``'s ``default``/``override`` breaks ``values``: keys a ``GatewayConfig``
    may not set (``tenantKeys``), then the schema (each part as one partial level, see
    :func:`bifrost.api.values_schema.validate_level`). Empty without ``values`` (untyped)."""
    if values is None:
        return []
    schema = compiled_schema(values.schema_) if values.schema_ is not None else None
    out: list[Violation] = []
    for part in ("default", "override"):
        level = getattr(policy.spec, part)
        path = f"spec.{part}"
        if isinstance(policy, GatewayConfig):
            out += tenant_key_violations(values.tenant_keys, level, path)
        if schema is not None:
            out += validate_level(schema, level, path)
    return out[:MAX_VIOLATIONS]


def _values_problem(policy: Policy, rules: ValuesRules) -> str | None:
    broken = values_violations(policy, rules.values)
    if not broken:
        return None
    return (
        f'{format_violations(broken)} (spec.values of GatewayClassBlueprint "{rules.blueprint}")'
        " — the policy is not applied; fix these fields"
    )


@dataclass(frozen=True)
class CheckedPolicy:
    """A policy as the API returned it, parsed, or the reason it cannot attach anywhere."""

    raw: Obj
    parsed: Policy | None
    problem: str | None

    @property
    def eligible(self) -> bool:
        return self.parsed is not None and self.problem is None


def check_policy(
    policy: Obj, *, controller_namespace: str = CONTROLLER_NAMESPACE,
    rules: ValuesRules | None = None,
) -> CheckedPolicy:
    """Parse ``policy`` and check where it lives (see :mod:`bifrost.api.policies`) and, with
    ``rules``, its values (see the module docstring)."""
    model = _MODELS.get(str(policy.get("kind") or ""))
    if model is None:
        return CheckedPolicy(policy, None, f"kind {policy.get('kind')!r} is not a bifrost policy")
    try:
        parsed: Policy = parse_resource(model, policy)
    except InvalidResourceError as exc:
        return CheckedPolicy(policy, None, str(exc))
    problem = (
        parsed.placement_error(controller_namespace)
        if isinstance(parsed, GatewayClassConfig)
        else parsed.placement_error()
    )
    if problem is None and rules is not None:
        problem = _values_problem(parsed, rules)
    return CheckedPolicy(policy, parsed, problem)


def winner(
    policies: Iterable[Obj], kind: str, *, controller_namespace: str = CONTROLLER_NAMESPACE,
    rules: ValuesRules | None = None,
) -> CheckedPolicy | None:
    """The policy of ``kind`` among ``policies`` (all naming one target) whose values apply: the
    eligible one (parsed, well placed, values valid against ``rules``) with the smallest
    :func:`precedence`; ``None`` if none is eligible."""
    best: CheckedPolicy | None = None
    for raw in policies:
        if raw.get("kind") != kind:
            continue
        checked = check_policy(raw, controller_namespace=controller_namespace, rules=rules)
        if checked.eligible and (best is None or precedence(raw) < precedence(best.raw)):
            best = checked
    return best


@dataclass(frozen=True)
class PolicyVerdict:
    """What a policy's ``Accepted`` condition and ``attachedTo`` say."""

    accepted: bool
    reason: PolicyReason
    message: str
    attached_to: tuple[PolicyAttachment, ...] = ()


def _describe(key: TargetKey) -> str:
    kind, ns, name = key
    return f'{kind} "{ns}/{name}"' if ns else f'{kind} "{name}"'


def _attachment(key: TargetKey) -> PolicyAttachment:
    kind, ns, name = key
    group = "" if kind == "Namespace" else GATEWAY_API_GROUP
    return PolicyAttachment(group=group, kind=kind, namespace=ns or None, name=name)


def _not_ours(owner: object, controller_name: str) -> str:
    return (
        f"managed by controller {str(owner or '')!r}, not by bifrost ({controller_name!r})"
        " — target a GatewayClass or Gateway bifrost manages"
    )


def _target_problem(
    key: TargetKey, target: Obj, target_class: Obj | None, controller_name: str
) -> str | None:
    """Why an existing target is not bifrost's (``None`` if it is, or is a Namespace)."""
    what = _describe(key)
    if key[0] == "GatewayClass":
        owner = get_map(target, "spec").get("controllerName")
        if owner != controller_name:
            return f"{what} is {_not_ours(owner, controller_name)}"
        return None
    if key[0] == "Gateway":
        class_name = str(get_map(target, "spec").get("gatewayClassName") or "")
        if target_class is None:
            return f'{what} is of GatewayClass "{class_name}", which does not exist'
        owner = get_map(target_class, "spec").get("controllerName")
        if owner != controller_name:
            return (
                f'{what} is of GatewayClass "{class_name}", which is '
                f"{_not_ours(owner, controller_name)}"
            )
    return None


def decide_policy(
    policy: Obj,
    *,
    target: Obj | None,
    target_class: Obj | None = None,
    competitors: Iterable[Obj] = (),
    controller_name: str = DEFAULT_CONTROLLER_NAME,
    controller_namespace: str = CONTROLLER_NAMESPACE,
    rules: Sequence[ValuesRules] = (),
    named: str | None = None,
) -> PolicyVerdict:
    """Whether ``policy`` is attached (see the module docstring).

    - ``target``: the object its targetRef names (``None`` if it does not exist);
    - ``target_class``: for a Gateway target, the Gateway's GatewayClass (``None`` if missing);
    - ``competitors``: the policies naming the same target (any kind; ``policy`` itself may be
      among them) — the conflict is decided among those of the policy's kind;
    - ``rules``: the ``spec.values`` of the blueprints the policy's values feed;
    - ``named``: for a GatewayConfig on a Gateway, the name of the GatewayConfig the Gateway's
      ``spec.infrastructure.parametersRef`` names: an explicit reference wins over age.
    """
    checked = check_policy(policy, controller_namespace=controller_namespace)
    if checked.parsed is None or checked.problem is not None:
        return PolicyVerdict(False, PolicyReason.INVALID, checked.problem or "invalid policy")
    key = target_key(policy)
    assert key is not None  # a parsed policy has a valid targetRef
    what = _describe(key)
    if target is None:
        return PolicyVerdict(
            False, PolicyReason.TARGET_NOT_FOUND,
            f"{what} not found — create it or fix spec.targetRef",
        )
    problem = _target_problem(key, target, target_class, controller_name)
    if problem is not None:
        return PolicyVerdict(False, PolicyReason.TARGET_NOT_FOUND, problem)
    assert checked.parsed is not None
    for rule in rules:
        broken = _values_problem(checked.parsed, rule)
        if broken is not None:
            return PolicyVerdict(False, PolicyReason.INVALID, broken)
    me = _ns_name(policy)
    rivals = [
        p for p in competitors
        if p.get("kind") == policy.get("kind") and target_key(p) == key and _ns_name(p) != me
    ]
    if named is not None and key[0] == "Gateway":
        if me[1] == named:
            return PolicyVerdict(
                True, PolicyReason.ACCEPTED,
                f"attached to {what} ({_LEVEL[key[0]]} level; named by the Gateway's "
                "spec.infrastructure.parametersRef)",
                (_attachment(key),),
            )
        if any(_ns_name(p)[1] == named for p in rivals):
            return PolicyVerdict(
                False, PolicyReason.CONFLICTED,
                f'{policy.get("kind")} "{key[1]}/{named}" also targets {what} and takes '
                "precedence: the Gateway's spec.infrastructure.parametersRef names it — merge "
                "this one's values into it, point the reference here, or delete one of them",
            )
    judged: Sequence[ValuesRules | None] = rules or (None,)
    for each in judged:
        best = winner([policy, *rivals], str(policy.get("kind")),
                      controller_namespace=controller_namespace, rules=each)
        if best is not None and _ns_name(best.raw) != me:
            break
    if best is not None and _ns_name(best.raw) != me:
        ns, name = _ns_name(best.raw)
        created = precedence(best.raw)[0] or "unknown"
        return PolicyVerdict(
            False, PolicyReason.CONFLICTED,
            f'{policy.get("kind")} "{ns}/{name}" (created {created}) also targets {what} and '
            f"takes precedence: of several {policy.get('kind')}s on one target the oldest "
            "(creationTimestamp, then name) applies — merge this one's values into it or "
            "delete one of them",
        )
    return PolicyVerdict(
        True, PolicyReason.ACCEPTED,
        f"attached to {what} ({_LEVEL[key[0]]} level)",
        (_attachment(key),),
    )


def policy_status(policy: Obj, verdict: PolicyVerdict, *, now: datetime) -> dict[str, Any]:
    """The ``status`` to write on ``policy`` for ``verdict`` (conditions merged into the
    existing ones, so ``lastTransitionTime`` survives an unchanged status)."""
    gen = generation(policy)
    new = condition(
        PolicyConditionType.ACCEPTED, verdict.accepted, reason=verdict.reason,
        message=verdict.message[:32768], generation=gen, now=now,
    )
    status: dict[str, Any] = dict(get_map(policy, "status"))
    status["conditions"] = merge_conditions(status.get("conditions"), [new])
    status["attachedTo"] = [a.to_api() for a in verdict.attached_to]
    if gen is not None:
        status["observedGeneration"] = gen
    return status
