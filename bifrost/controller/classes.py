"""GatewayClasses: which blueprint a class of ours points at (:func:`resolve_class`), the
class's status and its gateway-exists finalizer (:class:`ClassStatus`).

A class is usable when its ``spec.parametersRef`` names a GatewayClassBlueprint that exists, parses
and is valid — every template and expression compiles, the same verdict the blueprint's own
``Valid`` condition shows (:func:`bifrost.status.blueprints.blueprint_problems`, cached per
blueprint generation in :data:`~bifrost.status.blueprints.VERDICTS`); otherwise
:class:`ClassResolution` carries a one-line message naming the object, the field and what to do,
which becomes the class's ``Accepted=False``/``InvalidParameters`` condition and the Gateways'
``Accepted=False``. A class with an invalid blueprint resolves no blueprint: none of its Gateways
is provisioned (they keep the children they have), a Gateway being deleted is still torn down.
"""

from __future__ import annotations

from dataclasses import dataclass

from bifrost.api import GatewayClassBlueprint, InvalidResourceError, parse_resource
from bifrost.api.objects import Obj, meta, spec
from bifrost.clock import Clock
from bifrost.controller.class_finalizer import ClassFinalizer
from bifrost.controller.informers import (
    BIFROST_GROUP,
    BLUEPRINT_KIND,
    GATEWAY_API_VERSION,
    Cache,
)
from bifrost.controller.observation import Observation
from bifrost.kube import Conflict, NotFound
from bifrost.kube.ports import Kube
from bifrost.status import gatewayclass_status, status_changed
from bifrost.status.blueprints import VERDICTS, class_message

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
    problems = VERDICTS.problems(raw)
    if problems:
        return ClassResolution(gateway_class, bp_name, None, class_message(bp_name, problems))
    return ClassResolution(gateway_class, bp_name, blueprint, None)


class ClassStatus:
    """Keeps the GatewayClasses bifrost is responsible for: their
    ``gateway-exists-finalizer`` (:mod:`bifrost.controller.class_finalizer`) and their status,
    each written only when it changed."""

    def __init__(self, *, cache: Cache, kube: Kube, clock: Clock) -> None:
        self.cache = cache
        self.kube = kube
        self.clock = clock
        self.finalizer = ClassFinalizer(cache=cache, kube=kube)

    def observe(self, name: str) -> Observation:
        gateway_class = self.cache.get("GatewayClass", "", name)
        if gateway_class is None or not self.cache.is_ours(gateway_class):
            return Observation()
        try:
            written = self.finalizer.sync(gateway_class)
        except Conflict:
            return Observation(("class-finalizer-conflict",), requeue_after=1.0)
        except NotFound:
            return Observation()
        if written is not None:
            # The watch brings the class back (new resourceVersion) and observes it again:
            # its status is written then, against the object as it is now.
            return Observation((written,))
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
