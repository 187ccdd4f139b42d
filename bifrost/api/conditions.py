"""Status conditions: the ``metav1.Condition`` model, the condition vocabulary, and pure helpers.

Every status bifrost writes — on GatewayClasses, Gateways, listeners, HTTPRoute parents and its
own CRDs — is a list of ``metav1.Condition`` keyed by ``type``. The Gateway API defines the exact
types and reasons (``apis/v1/*_types.go`` of Gateway API v1.6.1, summarised in the descriptions
of the CRDs under ``shared/gateway-api/v1.6.1``); they are constants here so that no reason string
is ever typed twice and a typo is a name error, not a silent interoperability bug.

The helpers are pure (the clock is an argument) so status computation stays testable:

- :func:`condition` builds a condition for an object at a generation;
- :func:`set_condition` merges one into a list the way the Gateway API asks implementations to:
  merge by type, keep the position and the conditions of other writers, keep
  ``lastTransitionTime`` while the status is unchanged, and never overwrite a condition that a
  newer generation already produced. When nothing changes it returns an equal tuple, so callers
  can skip the status write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_serializer, field_validator

from bifrost.api.base import ApiModel, format_time

__all__ = [
    "OPERATION_CONDITION",
    "BlueprintConditionType",
    "BlueprintReason",
    "Condition",
    "ConditionStatus",
    "GatewayClassConditionType",
    "GatewayClassReason",
    "GatewayConditionType",
    "GatewayReason",
    "ListenerConditionType",
    "ListenerReason",
    "PolicyConditionType",
    "PolicyReason",
    "RouteConditionType",
    "RouteReason",
    "condition",
    "find_condition",
    "parse_conditions",
    "remove_condition",
    "set_condition",
]

# metav1.Condition validation, exactly as in the CRDs (apimachinery's kubebuilder markers).
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

#: Domain-prefixed condition on a Gateway naming the operation and step in flight (DESIGN §2).
OPERATION_CONDITION = "gateway.bifrost.dev/Operation"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


# ---------------------------------------------------------------- Gateway API v1.6.1 vocabulary


class GatewayClassConditionType(StrEnum):
    ACCEPTED = "Accepted"
    SUPPORTED_VERSION = "SupportedVersion"


class GatewayClassReason(StrEnum):
    ACCEPTED = "Accepted"
    INVALID_PARAMETERS = "InvalidParameters"
    PENDING = "Pending"
    UNSUPPORTED = "Unsupported"
    SUPPORTED_VERSION = "SupportedVersion"
    UNSUPPORTED_VERSION = "UnsupportedVersion"


class GatewayConditionType(StrEnum):
    ACCEPTED = "Accepted"
    PROGRAMMED = "Programmed"
    RESOLVED_REFS = "ResolvedRefs"
    INSECURE_FRONTEND_VALIDATION_MODE = "InsecureFrontendValidationMode"


class GatewayReason(StrEnum):
    # Accepted
    ACCEPTED = "Accepted"
    LISTENERS_NOT_VALID = "ListenersNotValid"
    INVALID = "Invalid"
    INVALID_PARAMETERS = "InvalidParameters"
    UNSUPPORTED_ADDRESS = "UnsupportedAddress"
    PENDING = "Pending"
    # Programmed
    PROGRAMMED = "Programmed"
    NO_RESOURCES = "NoResources"
    ADDRESS_NOT_ASSIGNED = "AddressNotAssigned"
    ADDRESS_NOT_USABLE = "AddressNotUsable"
    # ResolvedRefs
    RESOLVED_REFS = "ResolvedRefs"
    REF_NOT_PERMITTED = "RefNotPermitted"
    INVALID_CLIENT_CERTIFICATE_REF = "InvalidClientCertificateRef"
    LISTENERS_NOT_RESOLVED = "ListenersNotResolved"
    # InsecureFrontendValidationMode
    CONFIGURATION_CHANGED = "ConfigurationChanged"


class ListenerConditionType(StrEnum):
    ACCEPTED = "Accepted"
    PROGRAMMED = "Programmed"
    RESOLVED_REFS = "ResolvedRefs"
    CONFLICTED = "Conflicted"
    OVERLAPPING_TLS_CONFIG = "OverlappingTLSConfig"


class ListenerReason(StrEnum):
    # Accepted
    ACCEPTED = "Accepted"
    PORT_UNAVAILABLE = "PortUnavailable"
    UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
    NO_VALID_CA_CERTIFICATE = "NoValidCACertificate"
    UNSUPPORTED_VALUE = "UnsupportedValue"
    PENDING = "Pending"
    # Programmed
    PROGRAMMED = "Programmed"
    INVALID = "Invalid"
    # ResolvedRefs
    RESOLVED_REFS = "ResolvedRefs"
    INVALID_CERTIFICATE_REF = "InvalidCertificateRef"
    INVALID_ROUTE_KINDS = "InvalidRouteKinds"
    REF_NOT_PERMITTED = "RefNotPermitted"
    INVALID_CA_CERTIFICATE_REF = "InvalidCACertificateRef"
    INVALID_CA_CERTIFICATE_KIND = "InvalidCACertificateKind"
    # Conflicted
    HOSTNAME_CONFLICT = "HostnameConflict"
    PROTOCOL_CONFLICT = "ProtocolConflict"
    NO_CONFLICTS = "NoConflicts"
    # OverlappingTLSConfig
    OVERLAPPING_HOSTNAMES = "OverlappingHostnames"
    OVERLAPPING_CERTIFICATES = "OverlappingCertificates"


class RouteConditionType(StrEnum):
    ACCEPTED = "Accepted"
    RESOLVED_REFS = "ResolvedRefs"
    PARTIALLY_INVALID = "PartiallyInvalid"


class RouteReason(StrEnum):
    # Accepted
    ACCEPTED = "Accepted"
    NOT_ALLOWED_BY_LISTENERS = "NotAllowedByListeners"
    NO_MATCHING_LISTENER_HOSTNAME = "NoMatchingListenerHostname"
    NO_MATCHING_PARENT = "NoMatchingParent"
    UNSUPPORTED_VALUE = "UnsupportedValue"
    PENDING = "Pending"
    INCOMPATIBLE_FILTERS = "IncompatibleFilters"
    # ResolvedRefs
    RESOLVED_REFS = "ResolvedRefs"
    REF_NOT_PERMITTED = "RefNotPermitted"
    INVALID_KIND = "InvalidKind"
    BACKEND_NOT_FOUND = "BackendNotFound"
    UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"


# ---------------------------------------------------------------- bifrost's own CRDs


class BlueprintConditionType(StrEnum):
    #: The controller uses this blueprint (a bifrost GatewayClass points at it).
    ACCEPTED = "Accepted"
    #: Templates and expressions compile and the child dependency graph is sound.
    VALID = "Valid"


class BlueprintReason(StrEnum):
    ACCEPTED = "Accepted"
    #: No GatewayClass handled by bifrost refers to this blueprint.
    NOT_REFERENCED = "NotReferenced"
    VALID = "Valid"
    INVALID = "Invalid"
    INVALID_TEMPLATE = "InvalidTemplate"
    INVALID_EXPRESSION = "InvalidExpression"
    UNKNOWN_DEPENDENCY = "UnknownDependency"
    DEPENDENCY_CYCLE = "DependencyCycle"
    #: A child template puts a literal kind/namespace where spec.confinement does not allow it.
    CHILD_NOT_CONFINED = "ChildNotConfined"


class PolicyConditionType(StrEnum):
    ACCEPTED = "Accepted"


class PolicyReason(StrEnum):
    """GEP-713 policy reasons (``Accepted`` condition of a policy)."""

    ACCEPTED = "Accepted"
    TARGET_NOT_FOUND = "TargetNotFound"
    CONFLICTED = "Conflicted"
    INVALID = "Invalid"


# ---------------------------------------------------------------- the model


class Condition(ApiModel):
    """``metav1.Condition``: one aspect of an object's current state."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="type of condition in CamelCase or in foo.example.com/CamelCase.",
    )
    status: ConditionStatus = Field(description="status of the condition: True, False, Unknown.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="metadata.generation the condition was computed from.",
    )
    last_transition_time: datetime = Field(
        description="When the status last changed (not when the condition was last written).",
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="CamelCase programmatic identifier of the reason for the last transition.",
    )
    message: str = Field(max_length=32768, description="Human-readable detail; may be empty.")

    @field_validator("last_transition_time")
    @classmethod
    def _aware_utc_seconds(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("lastTransitionTime must carry a timezone")
        # metav1.Time has second precision: keep what a round trip through the server keeps.
        return value.astimezone(UTC).replace(microsecond=0)

    @field_serializer("last_transition_time")
    def _rfc3339(self, value: datetime) -> str:
        return format_time(value)

    @property
    def is_true(self) -> bool:
        return self.status is ConditionStatus.TRUE


def condition(
    type: str,  # noqa: A002 - the API's word
    status: ConditionStatus | str | bool,
    *,
    reason: str,
    message: str = "",
    generation: int | None,
    now: datetime,
) -> Condition:
    """A condition computed at ``now`` for the object's ``metadata.generation``.

    ``status`` may be a bool (True/False). ``now`` is also the transition time;
    :func:`set_condition` keeps the previous one when the status did not change.
    """
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    return Condition(
        type=type,
        status=ConditionStatus(status),
        reason=str(reason),
        message=message,
        observed_generation=generation,
        last_transition_time=now,
    )


def find_condition(conditions: Iterable[Condition], type: str) -> Condition | None:  # noqa: A002
    """The condition of ``type``, or ``None``."""
    return next((c for c in conditions if c.type == type), None)


def set_condition(conditions: Sequence[Condition], new: Condition) -> tuple[Condition, ...]:
    """``conditions`` with ``new`` merged in by type (see the module docstring).

    - a new type is appended; an existing one is replaced in place, others are untouched;
    - if the status is unchanged the existing ``lastTransitionTime`` is kept, else ``new``'s;
    - if the existing condition was computed from a newer generation than ``new`` it is kept as
      is (the caller's copy of the object is stale; the Gateway API forbids the overwrite).
    """
    out: list[Condition] = []
    found = False
    for old in conditions:
        if old.type != new.type or found:
            out.append(old)
            continue
        found = True
        if (
            old.observed_generation is not None
            and new.observed_generation is not None
            and old.observed_generation > new.observed_generation
        ):
            out.append(old)
        elif old.status == new.status:
            out.append(new.model_copy(update={"last_transition_time": old.last_transition_time}))
        else:
            out.append(new)
    if not found:
        out.append(new)
    return tuple(out)


def remove_condition(conditions: Sequence[Condition], type: str) -> tuple[Condition, ...]:  # noqa: A002
    """``conditions`` without the condition of ``type`` (for negative-polarity conditions)."""
    return tuple(c for c in conditions if c.type != type)


def parse_conditions(raw: object) -> tuple[Condition, ...]:
    """Conditions from an API object's ``status.conditions`` (``None``/missing → empty)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("status.conditions must be a list")
    items: list[Any] = raw
    return tuple(Condition.model_validate(item) for item in items)
