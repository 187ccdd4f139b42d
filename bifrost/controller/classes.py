"""GatewayClasses: which blueprint a class of ours points at (:func:`resolve_class`) and the
class's status (:class:`ClassStatus`).

A class is usable when its ``spec.parametersRef`` names a GatewayClassBlueprint that exists and
parses; otherwise :class:`ClassResolution` carries a message naming the object and what to do,
which becomes the class's ``Accepted=False`` condition and the Gateways' ``Accepted=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bifrost.api import GatewayClassBlueprint, InvalidResourceError, parse_resource
from bifrost.api.objects import Obj, meta, spec
from bifrost.clock import Clock
from bifrost.controller.informers import (
    BIFROST_GROUP,
    BLUEPRINT_KIND,
    GATEWAY_API_VERSION,
    Cache,
)
from bifrost.controller.observation import Observation
from bifrost.kube import Conflict, NotFound
from bifrost.kube.ports import KubeStatusWriter
from bifrost.status import gatewayclass_status, status_changed

__all__ = ["SUPPORTED_FEATURES", "ClassResolution", "ClassStatus", "resolve_class"]

#: What bifrost claims in ``GatewayClass.status.supportedFeatures``.
SUPPORTED_FEATURES: tuple[str, ...] = ("Gateway", "HTTPRoute", "ReferenceGrant")


@dataclass(frozen=True)
class ClassResolution:
    """A GatewayClass's blueprint, resolved: the parsed blueprint, or why it is unusable."""

    gateway_class: Obj
    blueprint_name: str | None
    blueprint: GatewayClassBlueprint | None
    error: str | None

    @property
    def accepted(self) -> bool:
        return self.error is None


def resolve_class(cache: Cache, gateway_class: Obj) -> ClassResolution:
    """The class's blueprint (read from ``cache``), or the problem with its ``parametersRef``
    (a message naming the object and what to do)."""
    name = str(meta(gateway_class).get("name"))
    ref = spec(gateway_class).get("parametersRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return ClassResolution(
            gateway_class, None, None,
            f'GatewayClass "{name}": spec.parametersRef is not set — point it at a '
            f"{BLUEPRINT_KIND} (group {BIFROST_GROUP})",
        )
    bp_name = str(ref["name"])
    if ref.get("group") != BIFROST_GROUP or ref.get("kind") != BLUEPRINT_KIND:
        return ClassResolution(
            gateway_class, None, None,
            f'GatewayClass "{name}": spec.parametersRef refers to {ref.get("kind")} '
            f'"{bp_name}" in group {ref.get("group")!r} — bifrost needs a '
            f"{BLUEPRINT_KIND} (group {BIFROST_GROUP})",
        )
    raw = cache.get(BLUEPRINT_KIND, "", bp_name)
    if raw is None:
        return ClassResolution(
            gateway_class, bp_name, None,
            f'{BLUEPRINT_KIND} "{bp_name}" not found — create it or fix '
            f'spec.parametersRef.name of GatewayClass "{name}"',
        )
    try:
        blueprint = parse_resource(GatewayClassBlueprint, raw)
    except InvalidResourceError as exc:
        return ClassResolution(gateway_class, bp_name, None, f"invalid {exc}")
    return ClassResolution(gateway_class, bp_name, blueprint, None)


class ClassStatus:
    """Writes the status of the GatewayClasses bifrost is responsible for, only when it
    changed."""

    def __init__(self, *, cache: Cache, kube: KubeStatusWriter, clock: Clock) -> None:
        self.cache = cache
        self.kube = kube
        self.clock = clock

    def observe(self, name: str) -> Observation:
        gateway_class = self.cache.get("GatewayClass", "", name)
        if gateway_class is None or not self.cache.is_ours(gateway_class):
            return Observation()
        resolution = resolve_class(self.cache, gateway_class)
        old_status = gateway_class.get("status")
        old = old_status if isinstance(old_status, dict) else {}
        desired = gatewayclass_status(
            gateway_class,
            error=None if resolution.error is None else resolution.error[:32768],
            supported_features=SUPPORTED_FEATURES, now=self.clock.now(),
        )
        if not status_changed(old, desired):
            return Observation()
        try:
            self.kube.patch_status(
                GATEWAY_API_VERSION, "GatewayClass", name, None, desired,
                resource_version=str(meta(gateway_class).get("resourceVersion") or "") or None,
            )
        except Conflict:
            # Our copy is stale; the watch brings the new one, which enqueues the class again.
            return Observation(("class-status-conflict",), requeue_after=1.0)
        except NotFound:
            return Observation()
        return Observation(("class-status",))
