"""Pydantic models of the resources bifrost reads and writes.

bifrost's own CRDs (``deploy/crds``, group ``gateway.bifrost.dev``, version ``v1alpha1``) are
modelled field for field — :mod:`bifrost.api.blueprint` and :mod:`bifrost.api.policies` — together
with the status vocabulary of the Gateway API and of bifrost (:mod:`bifrost.api.conditions`) and
user-facing validation messages (:mod:`bifrost.api.errors`). This package is the bottom layer:
it imports nothing else from bifrost.
"""

from bifrost.api.base import ApiModel, ModelCheckError, ObjectMeta
from bifrost.api.blueprint import (
    API_VERSION,
    BlueprintTLS,
    CertificateVerify,
    ChildTemplate,
    GatewayClassBlueprint,
    GatewayClassBlueprintSpec,
    GatewayClassBlueprintStatus,
    MaintenanceWindow,
    RenewBefore,
    VerifyMode,
    Weekday,
)
from bifrost.api.conditions import (
    OPERATION_CONDITION,
    BlueprintConditionType,
    BlueprintReason,
    Condition,
    ConditionStatus,
    GatewayClassConditionType,
    GatewayClassReason,
    GatewayConditionType,
    GatewayReason,
    ListenerConditionType,
    ListenerReason,
    PolicyConditionType,
    PolicyReason,
    RouteConditionType,
    RouteReason,
    condition,
    find_condition,
    parse_conditions,
    remove_condition,
    set_condition,
)
from bifrost.api.errors import InvalidResourceError, format_validation_error, parse_resource
from bifrost.api.policies import (
    GatewayClassConfig,
    GatewayClassConfigSpec,
    GatewayClassConfigTargetRef,
    GatewayConfig,
    GatewayConfigSpec,
    GatewayConfigTargetRef,
    PolicyAttachment,
    PolicyStatus,
)

__all__ = [
    "API_VERSION",
    "OPERATION_CONDITION",
    "ApiModel",
    "BlueprintConditionType",
    "BlueprintReason",
    "BlueprintTLS",
    "CertificateVerify",
    "ChildTemplate",
    "Condition",
    "ConditionStatus",
    "GatewayClassBlueprint",
    "GatewayClassBlueprintSpec",
    "GatewayClassBlueprintStatus",
    "GatewayClassConditionType",
    "GatewayClassConfig",
    "GatewayClassConfigSpec",
    "GatewayClassConfigTargetRef",
    "GatewayClassReason",
    "GatewayConditionType",
    "GatewayConfig",
    "GatewayConfigSpec",
    "GatewayConfigTargetRef",
    "GatewayReason",
    "InvalidResourceError",
    "ListenerConditionType",
    "ListenerReason",
    "MaintenanceWindow",
    "ModelCheckError",
    "ObjectMeta",
    "PolicyAttachment",
    "PolicyConditionType",
    "PolicyReason",
    "PolicyStatus",
    "RenewBefore",
    "RouteConditionType",
    "RouteReason",
    "VerifyMode",
    "Weekday",
    "condition",
    "find_condition",
    "format_validation_error",
    "parse_conditions",
    "parse_resource",
    "remove_condition",
    "set_condition",
]
