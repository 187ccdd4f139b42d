"""``GatewayClassConfig`` and ``GatewayConfig``: values policies in the GEP-713 style.

Platform and application teams tune what a blueprint renders without editing the blueprint: a
policy carries ``default`` and ``override`` values and a ``targetRef`` saying where they apply.

Levels (DESIGN §2), from least to most specific:

1. the blueprint's own ``defaults``/``overrides``;
2. *class-wide*: a ``GatewayClassConfig`` targeting a ``GatewayClass``. It must live in the
   controller's namespace (``bifrost-system`` by default): a GatewayClass is cluster-scoped and a
   class-wide value changes every tenant's Gateways of that class, so only whoever may write to
   the controller's namespace may set one (RBAC is the gate). One elsewhere is not attached
   (``Accepted=False``, reason ``Invalid``);
3. *namespace*: a ``GatewayClassConfig`` (platform team) or a ``GatewayConfig`` (application team)
   targeting a ``Namespace``; the policy must live in the namespace it targets (GEP-713 local
   reference). Within this level the GatewayClassConfig is applied first, the GatewayConfig on top;
4. *gateway*: a ``GatewayConfig`` targeting a ``Gateway`` in its own namespace.

Defaults apply from 1 to 4 (the most specific default wins), then overrides from 4 to 1 (the most
general override wins). Maps deep-merge; lists and scalars replace. Two policies of the same kind
at the same level on the same target conflict: the oldest (creationTimestamp, then name) wins and
the others report ``Accepted=False``/``Conflicted``. Every policy reports in ``status`` whether
and where it is attached.

The models mirror ``deploy/crds/gateway.bifrost.dev_gatewayclassconfigs.yaml`` and
``..._gatewayconfigs.yaml`` field for field (a test checks).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import ConfigDict, Field, model_validator

from bifrost.api.base import ApiModel, ObjectMeta, x_cel, x_kube
from bifrost.api.blueprint import API_VERSION
from bifrost.api.conditions import Condition

__all__ = [
    "CLASS_CONFIG_KIND",
    "CONTROLLER_NAMESPACE",
    "GATEWAY_API_GROUP",
    "GATEWAY_CONFIG_KIND",
    "GatewayClassConfig",
    "GatewayClassConfigSpec",
    "GatewayClassConfigTargetRef",
    "GatewayConfig",
    "GatewayConfigSpec",
    "GatewayConfigTargetRef",
    "PolicyAttachment",
    "PolicyStatus",
]

CLASS_CONFIG_KIND: Final = "GatewayClassConfig"
GATEWAY_CONFIG_KIND: Final = "GatewayConfig"
GATEWAY_API_GROUP: Final = "gateway.networking.k8s.io"
#: Where class-wide GatewayClassConfigs must live unless the controller is told otherwise.
CONTROLLER_NAMESPACE = "bifrost-system"

# CEL rule of both CRDs' targetRef (not evaluated by the devcluster; _check_group enforces it).
_TARGET_RULE = (
    "(self.kind == 'Namespace') == (self.group == '')",
    "group must be '' (core) for a Namespace and gateway.networking.k8s.io otherwise",
)
_VALUES = x_kube(preserve_unknown_fields=True)
_CLASS_TARGETS = {"GatewayClass": GATEWAY_API_GROUP, "Namespace": ""}
_GATEWAY_TARGETS = {"Gateway": GATEWAY_API_GROUP, "Namespace": ""}


def _check_group(kind: str, group: str, allowed: dict[str, str]) -> None:
    # Also a CEL rule in the CRDs; the devcluster does not evaluate CEL, so check here too.
    if allowed[kind] != group:
        want = f'"{allowed[kind]}"' if allowed[kind] else '"" (the core group)'
        raise ValueError(f"kind {kind} is in group {want}, not {group!r}")


class GatewayClassConfigTargetRef(ApiModel):
    """The GatewayClass (class-wide) or the Namespace (namespace level) the values apply to."""

    model_config = ConfigDict(json_schema_extra=x_cel(_TARGET_RULE))

    group: Literal["gateway.networking.k8s.io", ""]
    kind: Literal["GatewayClass", "Namespace"]
    name: str = Field(min_length=1, max_length=253)

    @model_validator(mode="after")
    def _group_matches_kind(self) -> GatewayClassConfigTargetRef:
        _check_group(self.kind, self.group, _CLASS_TARGETS)
        return self


class GatewayConfigTargetRef(ApiModel):
    """The Gateway (in the policy's namespace) or the policy's own Namespace."""

    model_config = ConfigDict(json_schema_extra=x_cel(_TARGET_RULE))

    group: Literal["gateway.networking.k8s.io", ""]
    kind: Literal["Gateway", "Namespace"]
    name: str = Field(min_length=1, max_length=253)

    @model_validator(mode="after")
    def _group_matches_kind(self) -> GatewayConfigTargetRef:
        _check_group(self.kind, self.group, _GATEWAY_TARGETS)
        return self


class PolicyAttachment(ApiModel):
    """An object the policy is attached to (GEP-713 ancestor-like)."""

    group: str = Field(max_length=253)
    kind: str = Field(min_length=1, max_length=63)
    namespace: str | None = Field(default=None, max_length=63)
    name: str = Field(min_length=1, max_length=253)


class PolicyStatus(ApiModel):
    conditions: tuple[Condition, ...] = Field(
        default=(),
        max_length=8,
        json_schema_extra=x_kube(list_type="map", list_map_keys=["type"]),
    )
    attached_to: tuple[PolicyAttachment, ...] = Field(
        default=(), max_length=16, json_schema_extra=x_kube(list_type="atomic")
    )
    observed_generation: int | None = Field(default=None, ge=0)


class GatewayClassConfigSpec(ApiModel):
    target_ref: GatewayClassConfigTargetRef
    default: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_VALUES)
    override: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_VALUES)


class GatewayConfigSpec(ApiModel):
    target_ref: GatewayConfigTargetRef
    default: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_VALUES)
    override: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_VALUES)


class GatewayClassConfig(ApiModel):
    """A namespaced ``gateway.bifrost.dev/v1alpha1`` GatewayClassConfig (platform policy)."""

    api_version: Literal["gateway.bifrost.dev/v1alpha1"] = API_VERSION
    kind: Literal["GatewayClassConfig"] = CLASS_CONFIG_KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GatewayClassConfigSpec
    status: PolicyStatus = Field(default_factory=PolicyStatus)

    def placement_error(self, controller_namespace: str = CONTROLLER_NAMESPACE) -> str | None:
        """Why this policy may not attach where it is (``None`` if it may); see module doc."""
        ref, ns = self.spec.target_ref, self.metadata.namespace
        if ref.kind == "GatewayClass" and ns != controller_namespace:
            return (
                f"a class-wide GatewayClassConfig must live in namespace {controller_namespace!r},"
                f" not {ns!r} — move it there"
            )
        if ref.kind == "Namespace" and ref.name != ns:
            return (
                f"spec.targetRef names namespace {ref.name!r} but the policy lives in {ns!r}"
                " — create it in the namespace it targets"
            )
        return None


class GatewayConfig(ApiModel):
    """A namespaced ``gateway.bifrost.dev/v1alpha1`` GatewayConfig (application policy)."""

    api_version: Literal["gateway.bifrost.dev/v1alpha1"] = API_VERSION
    kind: Literal["GatewayConfig"] = GATEWAY_CONFIG_KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GatewayConfigSpec
    status: PolicyStatus = Field(default_factory=PolicyStatus)

    def placement_error(self) -> str | None:
        """Why this policy may not attach where it is (``None`` if it may); see module doc."""
        ref, ns = self.spec.target_ref, self.metadata.namespace
        if ref.kind == "Namespace" and ref.name != ns:
            return (
                f"spec.targetRef names namespace {ref.name!r} but the policy lives in {ns!r}"
                " — create it in the namespace it targets"
            )
        return None
