"""Whether a Gateway's merged values may be provisioned: the blueprint's ``spec.values``.

Pure: the caller (``Observer.values_verdict``) brings the winning policy of each level and the
policies left out because their values break the blueprint's rules; this merges the levels
(DESIGN §2, :func:`bifrost.render.merge.explain_values`) and checks the result against the whole
schema (``required`` included). Messages name policies, levels and field paths — never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bifrost.api.blueprint import GatewayClassBlueprintSpec
from bifrost.api.values_schema import compiled_schema, join_path, validate
from bifrost.render.merge import (
    BLUEPRINT_DEFAULTS,
    BLUEPRINT_OVERRIDES,
    CLASS_DEFAULTS,
    CLASS_OVERRIDES,
    GATEWAY_DEFAULTS,
    GATEWAY_OVERRIDES,
    LEVEL_WRITERS,
    NAMESPACE_DEFAULTS,
    NAMESPACE_OVERRIDES,
    MergedValues,
    deep_merge,
    explain_values,
)
from bifrost.status.policies import ValuesRules

__all__ = ["ValuesVerdict", "judge_values"]


@dataclass(frozen=True)
class ValuesVerdict:
    """A Gateway's merged values and what is wrong with them (see
    :meth:`Observer.values_verdict`)."""

    merged: MergedValues
    #: Policies not merged because their values break the blueprint's ``spec.values``.
    left_out: tuple[str, ...] = ()
    #: How the merged values break ``spec.values.schema`` (field paths, rules and levels).
    problem: str | None = None

    @property
    def values(self) -> dict[str, Any]:
        return self.merged.values

    def hold(self, *, provisioned: bool) -> str | None:
        """Why no provision may start with these values (``None``: it may). ``provisioned``:
        the Gateway was provisioned before (so it has last good children to keep)."""
        if self.problem is not None:
            return self.problem
        if self.left_out and provisioned:
            return "; ".join(self.left_out)
        return None


def _policy_writers(class_policy: Any, ns_class: Any, ns_gateway: Any,
                    gw: Any) -> dict[str, str]:
    """Level → the policies that wrote it, by kind and name (for messages)."""

    def named(*policies: Any, part: str) -> str | None:
        names = [f'{p.kind} "{p.metadata.namespace}/{p.metadata.name}" spec.{part}'
                 for p in policies if p is not None]
        return " and ".join(names) or None

    levels = {
        CLASS_DEFAULTS: named(class_policy, part="default"),
        NAMESPACE_DEFAULTS: named(ns_class, ns_gateway, part="default"),
        GATEWAY_DEFAULTS: named(gw, part="default"),
        GATEWAY_OVERRIDES: named(gw, part="override"),
        NAMESPACE_OVERRIDES: named(ns_class, ns_gateway, part="override"),
        CLASS_OVERRIDES: named(class_policy, part="override"),
    }
    return {k: v for k, v in levels.items() if v is not None}


def _set_by(path: str, merged: MergedValues, writers: Mapping[str, str]) -> str:
    """Who set the value at the printed ``path`` (or above or below it), for a message."""
    found: list[str] = []
    for keys, level in merged.provenance.items():
        printed = "values"
        for key in keys:
            printed = join_path(printed, key)
        related = any(
            a == b or a.startswith(b + ".") or a.startswith(b + "[")
            for a, b in ((path, printed), (printed, path))
        )
        if related and level not in found:
            found.append(level)
    if not found:
        return "no level sets it"
    order = [BLUEPRINT_DEFAULTS, CLASS_DEFAULTS, NAMESPACE_DEFAULTS, GATEWAY_DEFAULTS,
             GATEWAY_OVERRIDES, NAMESPACE_OVERRIDES, CLASS_OVERRIDES, BLUEPRINT_OVERRIDES]
    found.sort(key=order.index)
    return "set by " + ", ".join(writers.get(level, level) for level in found)


def judge_values(
    spec: GatewayClassBlueprintSpec,
    rules: ValuesRules,
    left_out: list[str],
    *,
    class_policy: Any,
    ns_class_policy: Any,
    ns_gateway_policy: Any,
    gw_policy: Any,
) -> ValuesVerdict:
    """Merge the blueprint's and the winning policies' values; what breaks ``spec.values``."""

    def level(*policies: Any, part: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for policy in policies:
            if policy is not None:
                out = deep_merge(out, getattr(policy.spec, part))
        return out

    merged = explain_values(
        blueprint_defaults=spec.defaults,
        class_defaults=level(class_policy, part="default"),
        namespace_defaults=level(ns_class_policy, ns_gateway_policy, part="default"),
        gateway_defaults=level(gw_policy, part="default"),
        gateway_overrides=level(gw_policy, part="override"),
        namespace_overrides=level(ns_class_policy, ns_gateway_policy, part="override"),
        class_overrides=level(class_policy, part="override"),
        blueprint_overrides=spec.overrides,
    )
    problem = None
    if spec.values is not None and spec.values.schema_ is not None:
        broken = validate(compiled_schema(spec.values.schema_), merged.values, "values")
        if broken:
            writers = {
                **LEVEL_WRITERS,
                **_policy_writers(class_policy, ns_class_policy, ns_gateway_policy, gw_policy),
            }
            problem = "; ".join(
                f"{v} ({_set_by(v.path, merged, writers)})" for v in broken
            ) + f' — the merged values break GatewayClassBlueprint "{rules.blueprint}"' \
                " spec.values.schema; fix the level named"
    return ValuesVerdict(merged, tuple(left_out), problem)
