"""The ``gateway-exists-finalizer.gateway.networking.k8s.io`` finalizer on bifrost's GatewayClasses.

The Gateway API asks implementations to put this finalizer on a GatewayClass while any Gateway of
that class exists, so that deleting a class in use leaves it ``Terminating`` (its Gateways keep a
class to be reconciled and torn down by) instead of pulling it from under them. bifrost does it
for the classes whose ``spec.controllerName`` is its own, and for no other:

- a class of ours with at least one Gateway of it in the informers' cache — Gateways being
  deleted count too, they still need their class — gets the finalizer;
- the finalizer is removed once no Gateway of the class is left, so a class deleted while in use
  goes away when its last Gateway does;
- a class already being deleted never gets it added (the API server refuses new finalizers on an
  object being deleted; a class deleted before bifrost saw a Gateway of it is simply gone).

The decision reads only the cache (``Cache.gateways_of_class``: an index, no API list); the write
is a merge patch of ``metadata.finalizers`` carrying the cached ``resourceVersion``, so it is
refused (409) when the cached class is stale and the class is observed again. Gateway events
reach it through :func:`class_keys_for_gateway` (a Gateway created or deleted enqueues its class
when the class's finalizer is no longer right, so a fleet's status writes enqueue nothing); the
class a Gateway moved away from (``spec.gatewayClassName`` changed) is not named by the event and
is re-checked by the resync, which observes every class.
"""

from __future__ import annotations

from bifrost.api.objects import Obj, meta
from bifrost.controller.informers import (
    GATEWAY_API_VERSION,
    Cache,
    WorkKey,
    class_key,
    gateway_class_name,
)
from bifrost.kube.ports import KubeWriter

__all__ = [
    "GATEWAY_EXISTS_FINALIZER",
    "ClassFinalizer",
    "class_keys_for_gateway",
    "wanted_finalizers",
]

GATEWAY_EXISTS_FINALIZER = "gateway-exists-finalizer.gateway.networking.k8s.io"


def _finalizers(obj: Obj) -> list[str]:
    value = meta(obj).get("finalizers")
    return [str(f) for f in value] if isinstance(value, list) else []


def wanted_finalizers(gateway_class: Obj, *, in_use: bool) -> list[str] | None:
    """The class's ``metadata.finalizers`` as they should be, or ``None`` when they already are
    (or the finalizer cannot be added: the class is being deleted)."""
    current = _finalizers(gateway_class)
    has = GATEWAY_EXISTS_FINALIZER in current
    if in_use and not has:
        if meta(gateway_class).get("deletionTimestamp"):
            return None
        return [*current, GATEWAY_EXISTS_FINALIZER]
    if not in_use and has:
        return [f for f in current if f != GATEWAY_EXISTS_FINALIZER]
    return None


def _in_use(cache: Cache, name: str) -> bool:
    return bool(cache.gateways_of_class(name))


def class_keys_for_gateway(cache: Cache, gateway: Obj) -> set[WorkKey]:
    """The class of ``gateway`` (an object of a Gateway event, after the cache took it) when it
    is ours and its finalizer is no longer right — so that a fleet's status writes enqueue
    nothing."""
    name = gateway_class_name(gateway)
    gateway_class = cache.get("GatewayClass", "", name) if name else None
    if gateway_class is None or not cache.is_ours(gateway_class):
        return set()
    if wanted_finalizers(gateway_class, in_use=_in_use(cache, name)) is None:
        return set()
    return {class_key(name)}


class ClassFinalizer:
    """Adds or removes the finalizer on one class of ours (see the module docstring)."""

    def __init__(self, *, cache: Cache, kube: KubeWriter) -> None:
        self.cache = cache
        self.kube = kube

    def sync(self, gateway_class: Obj) -> str | None:
        """Write the class's finalizers if they are not right: ``"class-finalizer-added"`` or
        ``"class-finalizer-removed"``, else ``None``. Raises ``Conflict`` (stale cache) and
        ``NotFound`` (the class is gone) from the patch."""
        name = str(meta(gateway_class).get("name") or "")
        finalizers = wanted_finalizers(gateway_class, in_use=_in_use(self.cache, name))
        if finalizers is None:
            return None
        added = GATEWAY_EXISTS_FINALIZER in finalizers
        version = str(meta(gateway_class).get("resourceVersion") or "")
        self.kube.patch(
            GATEWAY_API_VERSION, "GatewayClass", name, None,
            {"metadata": {"finalizers": finalizers, "resourceVersion": version}},
        )
        return "class-finalizer-added" if added else "class-finalizer-removed"
