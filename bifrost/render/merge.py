"""Value merging across the policy levels (DESIGN §2, GEP-713 style).

A Gateway's values come from up to eight places. Defaults apply from the least to the most specific
(blueprint → class-wide → namespace → gateway), so the closest default wins; overrides then apply in
the reverse order (gateway → namespace → class-wide → blueprint), so the *most general* override
wins — a platform team's override cannot be undone by an application team's policy.

Merge rule: mappings deep-merge key by key; anything else (lists, scalars, ``None``) replaces what
was there. Lists replace rather than append so that a more specific level can remove entries; a
value that is a mapping on one level and not on another is replaced as a whole.

``explain_values`` also says which level set each leaf, for ``bifrost-admin``, for policy status
and for naming the level whose value breaks a blueprint's ``spec.values.schema``
(:mod:`bifrost.api.values_schema`; the controller checks each policy before merging it and the
merged values after, see ``Observer.values_verdict``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str, ...]

BLUEPRINT_DEFAULTS = "blueprint.defaults"
CLASS_DEFAULTS = "class.defaults"
NAMESPACE_DEFAULTS = "namespace.defaults"
GATEWAY_DEFAULTS = "gateway.defaults"
GATEWAY_OVERRIDES = "gateway.overrides"
NAMESPACE_OVERRIDES = "namespace.overrides"
CLASS_OVERRIDES = "class.overrides"
BLUEPRINT_OVERRIDES = "blueprint.overrides"

PRECEDENCE: tuple[str, ...] = (
    BLUEPRINT_DEFAULTS,
    CLASS_DEFAULTS,
    NAMESPACE_DEFAULTS,
    GATEWAY_DEFAULTS,
    GATEWAY_OVERRIDES,
    NAMESPACE_OVERRIDES,
    CLASS_OVERRIDES,
    BLUEPRINT_OVERRIDES,
)
"""Levels in the order they are applied: each one wins over all before it."""

#: Who writes each level, for messages (the controller names the policies too).
LEVEL_WRITERS: dict[str, str] = {
    BLUEPRINT_DEFAULTS: "the blueprint's spec.defaults",
    CLASS_DEFAULTS: "the class-wide GatewayClassConfig's spec.default",
    NAMESPACE_DEFAULTS: "the namespace policies' spec.default",
    GATEWAY_DEFAULTS: "the Gateway's GatewayConfig's spec.default",
    GATEWAY_OVERRIDES: "the Gateway's GatewayConfig's spec.override",
    NAMESPACE_OVERRIDES: "the namespace policies' spec.override",
    CLASS_OVERRIDES: "the class-wide GatewayClassConfig's spec.override",
    BLUEPRINT_OVERRIDES: "the blueprint's spec.overrides",
}


@dataclass(frozen=True)
class MergedValues:
    """Merged values and, for each leaf path, the level that set it."""

    values: dict[str, Any]
    provenance: Mapping[Path, str]

    def explain(self, path: str | Path) -> str | None:
        """The level that set ``path`` (dotted string or tuple), or ``None`` if nothing did."""
        key = tuple(path.split(".")) if isinstance(path, str) else path
        return self.provenance.get(key)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` merged over ``base``: mappings merge recursively, anything else in ``top`` replaces.

    Neither input is modified; the result shares no mutable values with them.
    """
    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in top.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = deep_merge(current, value)
        elif isinstance(value, Mapping):
            out[key] = deep_merge({}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def explain_values(
    *,
    blueprint_defaults: Mapping[str, Any] | None = None,
    class_defaults: Mapping[str, Any] | None = None,
    namespace_defaults: Mapping[str, Any] | None = None,
    gateway_defaults: Mapping[str, Any] | None = None,
    gateway_overrides: Mapping[str, Any] | None = None,
    namespace_overrides: Mapping[str, Any] | None = None,
    class_overrides: Mapping[str, Any] | None = None,
    blueprint_overrides: Mapping[str, Any] | None = None,
) -> MergedValues:
    """Merge all levels (see the module docstring) and record which level set each leaf."""
    levels: tuple[tuple[str, Mapping[str, Any] | None], ...] = (
        (BLUEPRINT_DEFAULTS, blueprint_defaults),
        (CLASS_DEFAULTS, class_defaults),
        (NAMESPACE_DEFAULTS, namespace_defaults),
        (GATEWAY_DEFAULTS, gateway_defaults),
        (GATEWAY_OVERRIDES, gateway_overrides),
        (NAMESPACE_OVERRIDES, namespace_overrides),
        (CLASS_OVERRIDES, class_overrides),
        (BLUEPRINT_OVERRIDES, blueprint_overrides),
    )
    values: dict[str, Any] = {}
    provenance: dict[Path, str] = {}
    for name, level in levels:
        if not level:
            continue
        values = deep_merge(values, level)
        for path, empty_map in _leaf_paths(level, ()):
            if empty_map and any(len(p) > len(path) and p[: len(path)] == path for p in provenance):
                continue  # an empty map merges into a non-empty one: nothing changes
            # A leaf replaces whatever was at its path, and a map replaces a leaf above it.
            for old in [p for p in provenance if _related(p, path)]:
                del provenance[old]
            provenance[path] = name
    return MergedValues(values=values, provenance=provenance)


def merge_values(
    *,
    blueprint_defaults: Mapping[str, Any] | None = None,
    class_defaults: Mapping[str, Any] | None = None,
    namespace_defaults: Mapping[str, Any] | None = None,
    gateway_defaults: Mapping[str, Any] | None = None,
    gateway_overrides: Mapping[str, Any] | None = None,
    namespace_overrides: Mapping[str, Any] | None = None,
    class_overrides: Mapping[str, Any] | None = None,
    blueprint_overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The values a Gateway's children are rendered with (see the module docstring)."""
    return explain_values(
        blueprint_defaults=blueprint_defaults,
        class_defaults=class_defaults,
        namespace_defaults=namespace_defaults,
        gateway_defaults=gateway_defaults,
        gateway_overrides=gateway_overrides,
        namespace_overrides=namespace_overrides,
        class_overrides=class_overrides,
        blueprint_overrides=blueprint_overrides,
    ).values


def _leaf_paths(value: Mapping[str, Any], prefix: Path) -> list[tuple[Path, bool]]:
    """Paths of non-mapping values and of empty mappings (flagged ``True``: a leaf of its own)."""
    out: list[tuple[Path, bool]] = []
    for key, item in value.items():
        path = (*prefix, str(key))
        if isinstance(item, Mapping) and item:
            out.extend(_leaf_paths(item, path))
        else:
            out.append((path, isinstance(item, Mapping)))
    return out


def _related(a: Path, b: Path) -> bool:
    """One path is a prefix of the other (or they are equal)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]
