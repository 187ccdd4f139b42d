"""``GatewayClassBlueprint``: what a platform team writes to say how a Gateway becomes children.

A GatewayClass selects a blueprint (like a StorageClass selects a provisioner). The blueprint holds
the default and override values, the child resource templates for a Gateway and for each attached
HTTPRoute (each with a stable ``id``, explicit dependencies, a readiness expression and a
deletion order), the expression that derives the Gateway's addresses from children, and the TLS
policy the certificate-rotation machine follows. The model mirrors
``deploy/crds/gateway.bifrost.dev_gatewayclassblueprints.yaml`` field for field (a test checks);
it only adds checks a structural schema cannot express, each noted where it is made.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bifrost.api.base import ApiModel, ModelCheckError, ObjectMeta, x_cel, x_kube
from bifrost.api.conditions import BlueprintReason, Condition
from bifrost.api.values_schema import (
    SchemaError,
    compiled_schema,
    declares_path,
    format_violations,
    validate_level,
)

__all__ = [
    "API_VERSION",
    "BLUEPRINT_KIND",
    "CHILD_ID_PATTERN",
    "BlueprintTLS",
    "BlueprintValues",
    "CertificateVerify",
    "ChildTemplate",
    "Confinement",
    "ConfinementRule",
    "EntryCheckError",
    "GatewayClassBlueprint",
    "GatewayClassBlueprintSpec",
    "GatewayClassBlueprintStatus",
    "MaintenanceWindow",
    "RenewBefore",
    "TLSSource",
    "VerifyMode",
    "Weekday",
    "parse_blueprint_spec",
    "parse_duration",
]

GROUP: Final = "gateway.bifrost.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "gateway.bifrost.dev/v1alpha1"
BLUEPRINT_KIND: Final = "GatewayClassBlueprint"

#: A child id is a DNS label: it ends up in child names and labels.
CHILD_ID_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: A Go duration as cert-manager writes ``renewBefore`` (e.g. ``720h``, ``1h30m``).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
#: Wall-clock time of day, 24 h.
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

# CEL rules of the CRD (not evaluated by the devcluster); the validators below enforce the same.
_VERIFY_RULE = (
    "self.mode != 'expression' || has(self.expression)",
    "verify.mode expression needs verify.expression",
)
_WINDOW_RULE = ("self.start != self.end", "start and end must differ")

#: Validation context key: ``False`` leaves out the ``dependsOn`` checks (``parse_blueprint_spec``).
_CHECK_DEPENDENCIES: Final = "checkDependencies"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class EntryCheckError(ModelCheckError):
    """A check beyond the CRD schema that blames one entry of a list.

    ``at`` continues pydantic's location of the error (the field or model the validator runs on)
    down to that entry, in the API's names: ``(1,)`` under ``spec.confinement.allow``,
    ``("routeChildren", 0, "id")`` under ``spec``.
    """

    def __init__(self, message: str, *, reason: str, at: tuple[str | int, ...]) -> None:
        super().__init__(message, reason=reason)
        self.at = at


def parse_duration(text: str) -> timedelta:
    """A Go-style duration (``DURATION_PATTERN``) as a ``timedelta``."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 720h or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


#: A field of a child, dotted (``spec.replicas``, ``data.extra``, ``spec.ports.0.port``); a key
#: with dots in it (an annotation) cannot be named.
FIELD_PATH_PATTERN = r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*"


class ChildTemplate(ApiModel):
    """One child resource rendered for a Gateway (or for each attached HTTPRoute)."""

    id: str = Field(min_length=1, max_length=63, pattern=CHILD_ID_PATTERN)
    template: str = Field(min_length=1)
    depends_on: tuple[str, ...] = Field(
        default=(),
        max_length=32,
        json_schema_extra=x_kube(list_type="set"),
    )
    ready_when: str | None = None
    # strict: the CRD's integer, never a string or a boolean that happens to convert
    delete_order: int | None = Field(default=None, ge=-1000, le=1000, strict=True)
    ignore_drift: tuple[str, ...] = Field(
        default=(),
        max_length=32,
        json_schema_extra=x_kube(list_type="set"),
    )

    @field_validator("ignore_drift")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not re.fullmatch(FIELD_PATH_PATTERN, path) or len(path) > 253:
                raise ValueError(f"{path!r} is not a field path like spec.replicas")
        if len(set(value)) != len(value):
            raise ValueError("duplicate entries")
        return value

    @field_validator("depends_on")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for dep in value:
            if not re.fullmatch(CHILD_ID_PATTERN, dep) or len(dep) > 63:
                raise ValueError(f"{dep!r} is not a child id")
        if len(set(value)) != len(value):
            raise ValueError("duplicate entries")
        return value


class VerifyMode(StrEnum):
    TLS_PROBE = "tlsProbe"
    EXPRESSION = "expression"
    NONE = "none"


class CertificateVerify(ApiModel):
    """How a newly attached certificate is proven to be served before the old one is detached."""

    model_config = ConfigDict(json_schema_extra=x_cel(_VERIFY_RULE))

    mode: VerifyMode = VerifyMode.TLS_PROBE
    expression: str | None = None
    endpoint: str | None = None
    timeout_seconds: int = Field(default=60, ge=1, le=3600)

    @model_validator(mode="after")
    def _expression_for_mode(self) -> CertificateVerify:
        # Also a CEL rule in the CRD; the devcluster does not evaluate CEL, so check here too.
        if self.mode is VerifyMode.EXPRESSION and not self.expression:
            raise ValueError("mode expression needs an expression")
        return self


class RenewBefore(ApiModel):
    """When to renew: a fixed duration before expiry, or a percentage of the lifetime."""

    # exactly one of the two, as the CRD says structurally
    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    duration: str | None = Field(default=None, pattern=DURATION_PATTERN)
    percentage: int | None = Field(default=None, ge=1, le=99)

    @model_validator(mode="after")
    def _exactly_one(self) -> RenewBefore:
        if (self.duration is None) == (self.percentage is None):
            raise ValueError("set exactly one of duration or percentage")
        return self

    def before(self, lifetime: timedelta) -> timedelta:
        """How long before notAfter to renew a certificate of ``lifetime``."""
        if self.duration is not None:
            return parse_duration(self.duration)
        assert self.percentage is not None
        return lifetime * self.percentage / 100


class Weekday(StrEnum):
    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"


class MaintenanceWindow(ApiModel):
    """A weekly window in which renewals may start; ``end`` before ``start`` crosses midnight."""

    model_config = ConfigDict(json_schema_extra=x_cel(_WINDOW_RULE))

    days: tuple[Weekday, ...] = Field(
        min_length=1, max_length=7, json_schema_extra=x_kube(list_type="set")
    )
    start: str = Field(pattern=CLOCK_PATTERN)
    end: str = Field(pattern=CLOCK_PATTERN)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # Semantic check beyond the CRD schema: the IANA database decides.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> MaintenanceWindow:
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty")
        return self


class TLSSource(StrEnum):
    """Where a listener's certificate comes from."""

    REQUEST = "Request"  # bifrost requests one (certificateTemplate, e.g. a cert-manager one)
    LISTENER_SECRET = "ListenerSecret"  # the user's Secret the listener names, passed through


class BlueprintTLS(ApiModel):
    """How Gateway listener certificates are requested, attached, verified, drained and renewed."""

    source: TLSSource = TLSSource.REQUEST
    certificate_template: str = Field(min_length=1)
    ready_when: str | None = None
    secret_name: str | None = None
    issue_timeout_seconds: int = Field(default=600, ge=1, le=86400)
    verify: CertificateVerify | None = None
    drain_seconds: int | None = Field(default=None, ge=0, le=86400)
    renew_before: RenewBefore | None = None
    maintenance_windows: tuple[MaintenanceWindow, ...] = Field(
        default=(), max_length=16, json_schema_extra=x_kube(list_type="atomic")
    )


#: A tenant key: a top-level key of the values or a dotted path of keys (``resources.limits``).
TENANT_KEY_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
TenantKey = Annotated[str, Field(min_length=1, max_length=253, pattern=TENANT_KEY_PATTERN)]


class BlueprintValues(ApiModel):
    """``spec.values``: the type of the values, and which keys application teams may set.

    ``schema`` is an OpenAPI v3 subset with root ``type: object`` (the keywords, their meaning and
    the bounds are in :mod:`bifrost.api.values_schema`). ``tenantKeys`` lists the top-level or
    dotted keys a ``GatewayConfig`` — the application team's policy, in its own namespace — may
    set (a key covers everything below it; ``[]``: none); every other key is set only by the
    platform team (the blueprint, ``GatewayClassConfig``). A policy that breaks either is
    ``Accepted=False``/``Invalid`` and not merged; merged values that break the schema are not
    provisioned (the Gateway keeps its children).

    Without ``spec.values`` a blueprint is untyped, as before this field existed: every level,
    tenants' included, may set any key (values are data to the templates, never syntax, so this
    is about *which* settings a tenant controls, not about injection). Declare it to take that
    choice away from tenants.
    """

    schema_: dict[str, Any] | None = Field(
        default=None, alias="schema", json_schema_extra=x_kube(preserve_unknown_fields=True)
    )
    tenant_keys: tuple[TenantKey, ...] = Field(
        max_length=64, json_schema_extra=x_kube(list_type="set")
    )

    @model_validator(mode="after")
    def _schema_compiles(self) -> BlueprintValues:
        # Beyond the CRD schema (which preserves the schema as data): it is a supported, bounded
        # schema, and every tenant key is one it can admit.
        if len(set(self.tenant_keys)) != len(self.tenant_keys):
            raise ModelCheckError("tenantKeys: duplicate entries", reason=BlueprintReason.INVALID)
        if self.schema_ is None:
            return self
        try:
            schema = compiled_schema(self.schema_, path="schema")
        except SchemaError as exc:
            raise ModelCheckError(str(exc), reason=BlueprintReason.INVALID) from None
        for i, key in enumerate(self.tenant_keys):
            if not declares_path(schema, key):
                raise ModelCheckError(
                    f"tenantKeys[{i}]: the schema admits no key {key!r} — declare it"
                    " under properties or remove it",
                    reason=BlueprintReason.INVALID,
                )
        return self


_CHILD_LIST = x_kube(list_type="map", list_map_keys=["id"])

#: An API group ("" for core), a kind name, a namespace name (as ``spec.confinement`` uses them).
GROUP_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$"
KIND_PATTERN = r"^[A-Za-z][A-Za-z0-9]*$"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE_PATTERN)]


class ConfinementRule(ApiModel):
    """One kind a blueprint allows beyond the default confinement (``spec.confinement.allow``).

    Naming a kind opts it in: a sensitive kind (RBAC, ServiceAccount, tokens and access reviews,
    admission webhooks, CRDs, APIServices, CertificateSigningRequests, Namespaces, Secrets of type
    ``kubernetes.io/service-account-token``) may then be applied in the Gateway's namespace.
    ``namespaces`` lists the other namespaces the kind may land in; ``clusterScoped: true`` lets a
    cluster-scoped kind be applied at all.
    """

    group: str = Field(max_length=253, pattern=GROUP_PATTERN)
    kind: str = Field(min_length=1, max_length=63, pattern=KIND_PATTERN)
    cluster_scoped: bool = Field(default=False, strict=True)  # true or false, not "yes"
    namespaces: tuple[Namespace, ...] = Field(
        default=(), max_length=32, json_schema_extra=x_kube(list_type="set")
    )


class Confinement(ApiModel):
    """``spec.confinement``: where a Gateway's children may land.

    Without it (or with an empty ``allow``) every namespaced child lands in its Gateway's
    namespace (a child that names none gets it; one that names another is refused),
    cluster-scoped children and sensitive kinds are refused. Each ``allow`` entry widens that for
    exactly one (group, kind)::

        confinement:
          allow:
            - {group: elbv2.aws.upbound.io, kind: LB, clusterScoped: true}
            - {group: "", kind: ConfigMap, namespaces: [bifrost-system]}
            - {group: "", kind: ServiceAccount}   # a sensitive kind, in the Gateway's namespace

    Violations are refused before anything of the pass is applied: on the Gateway's condition
    (and, where the template's kind and namespace are literal, on the blueprint's ``Valid``).
    """

    allow: tuple[ConfinementRule, ...] = Field(
        default=(), max_length=64,
        json_schema_extra=x_kube(list_type="map", list_map_keys=["group", "kind"]),
    )

    @field_validator("allow")
    @classmethod
    def _unique(cls, value: tuple[ConfinementRule, ...]) -> tuple[ConfinementRule, ...]:
        # The CRD's list-map keys say the same; checked here for objects not from the API.
        seen: set[tuple[str, str]] = set()
        for index, rule in enumerate(value):
            if (rule.group, rule.kind) in seen:
                raise EntryCheckError(
                    "each (group, kind) may be listed once", reason=BlueprintReason.INVALID,
                    at=(index,),
                )
            seen.add((rule.group, rule.kind))
        return value


class GatewayClassBlueprintSpec(ApiModel):
    defaults: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra=x_kube(preserve_unknown_fields=True)
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra=x_kube(preserve_unknown_fields=True)
    )
    values: BlueprintValues | None = None
    children: tuple[ChildTemplate, ...] = Field(max_length=64, json_schema_extra=_CHILD_LIST)
    route_children: tuple[ChildTemplate, ...] = Field(
        default=(), max_length=64, json_schema_extra=_CHILD_LIST
    )
    addresses: str | None = None
    tls: BlueprintTLS | None = None
    confinement: Confinement | None = None

    @model_validator(mode="after")
    def _typed_values(self) -> GatewayClassBlueprintSpec:
        # Beyond the CRD schema: the blueprint's own defaults and overrides obey spec.values.schema
        # (each as one partial level: required keys may come from a policy). Paths are relative
        # to spec (the error's location).
        if self.values is None or self.values.schema_ is None:
            return self
        schema = compiled_schema(self.values.schema_)
        for field, level in (("defaults", self.defaults), ("overrides", self.overrides)):
            broken = validate_level(schema, level, field)
            if broken:
                raise ModelCheckError(
                    f"{format_violations(broken)} (the rule is in spec.values.schema)",
                    reason=BlueprintReason.INVALID,
                )
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> GatewayClassBlueprintSpec:
        # The CRD makes ids unique per list (list-type map). Beyond the schema: ids are unique
        # across both lists (so dependsOn is unambiguous). The error points at the first repeat.
        ids = [c.id for c in (*self.children, *self.route_children)]
        seen: set[str] = set()
        for field, items in (("children", self.children), ("routeChildren", self.route_children)):
            for index, child in enumerate(items):
                if child.id in seen:
                    dup = sorted({i for i in ids if ids.count(i) > 1})
                    raise EntryCheckError(
                        f"duplicate child id(s) {', '.join(dup)} across children and "
                        "routeChildren",
                        reason=BlueprintReason.INVALID,
                        at=(field, index, "id"),
                    )
                seen.add(child.id)
        return self

    @model_validator(mode="after")
    def _dependencies(self, info: ValidationInfo) -> GatewayClassBlueprintSpec:
        # Beyond the schema: every dependsOn names a child, and there is no cycle. Left out for
        # a caller that checks them per child (see ``parse_blueprint_spec``).
        if isinstance(info.context, dict) and not info.context.get(_CHECK_DEPENDENCIES, True):
            return self
        gateway_ids = {c.id for c in self.children}
        for field, items, known in (
            ("children", self.children, gateway_ids),
            # a route child may depend on its siblings and on the Gateway's children
            (
                "routeChildren",
                self.route_children,
                gateway_ids | {c.id for c in self.route_children},
            ),
        ):
            for child in items:
                missing = [d for d in child.depends_on if d not in known]
                if missing:
                    raise ModelCheckError(
                        f"{field} {child.id!r} dependsOn unknown child id(s) {', '.join(missing)}",
                        reason=BlueprintReason.UNKNOWN_DEPENDENCY,
                    )
        cycle = _find_cycle({c.id: c.depends_on for c in (*self.children, *self.route_children)})
        if cycle:
            raise ModelCheckError(
                f"dependsOn cycle: {' -> '.join(cycle)}", reason=BlueprintReason.DEPENDENCY_CYCLE
            )
        return self


def parse_blueprint_spec(
    spec: Any, *, check_dependencies: bool = True
) -> GatewayClassBlueprintSpec:
    """``spec`` (a blueprint's ``spec`` as read from the API) as the model, or pydantic's
    ``ValidationError``.

    ``check_dependencies=False`` leaves out the blueprint-wide ``dependsOn`` checks (unknown ids,
    cycles), every other check still applies: the renderer reports those per child, so that one
    child's bad dependency does not stop its siblings, and it also sees the dependencies a
    template infers (``bifrost.render.ordering``).
    """
    return GatewayClassBlueprintSpec.model_validate(
        spec, context={_CHECK_DEPENDENCIES: check_dependencies}
    )


def _find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str]:
    """One dependency cycle as a path that ends where it starts, or ``[]``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


class GatewayClassBlueprintStatus(ApiModel):
    conditions: tuple[Condition, ...] = Field(
        default=(),
        max_length=8,
        json_schema_extra=x_kube(list_type="map", list_map_keys=["type"]),
    )
    observed_generation: int | None = Field(default=None, ge=0)


class GatewayClassBlueprint(ApiModel):
    """A cluster-scoped ``gateway.bifrost.dev/v1alpha1`` GatewayClassBlueprint."""

    api_version: Literal["gateway.bifrost.dev/v1alpha1"] = API_VERSION
    kind: Literal["GatewayClassBlueprint"] = BLUEPRINT_KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GatewayClassBlueprintSpec
    status: GatewayClassBlueprintStatus = Field(default_factory=GatewayClassBlueprintStatus)
