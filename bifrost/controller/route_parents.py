"""bifrost's entries in HTTPRoutes' ``status.parents`` beyond what one Gateway's status write
does: removing them when their Gateway is gone or no longer bifrost's, and the per-route render
errors a Gateway's last provision recorded.

- :func:`forget_gateway`: after a Gateway is deleted (its teardown done, the finalizer gone) or
  once it is no longer bifrost's (another class, no finalizer of ours), no observation of it
  writes route status again — so the routes that still carry an entry of ours for it would keep
  saying ``Accepted=True`` forever. This removes exactly those entries (our ``controllerName``,
  a parentRef selecting that Gateway), through ``/status`` with the route's resourceVersion;
  other controllers' entries and other parents stay. The routes come from the informer cache's
  index of routes by the Gateways their parentRefs *or* our status entries name.
- :func:`route_render_errors`: why the last provision of the observed Gateway could not render a
  route's ``routeChildren`` (``ProvisionContext.route_errors``), in the shape
  :func:`bifrost.status.route_status` takes.

Kept apart from the status writer so that the Gateway's own status and these two cases evolve
independently; both only read the cache (and the operation record already loaded).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bifrost.api.objects import Obj, meta
from bifrost.controller.gateway_view import GatewayView
from bifrost.controller.informers import GATEWAY_API_VERSION, Cache
from bifrost.kube import Conflict, NotFound
from bifrost.kube.ports import KubeStatusWriter
from bifrost.status.routes import without_parent

__all__ = ["ForgetResult", "forget_gateway", "route_render_errors"]

log = logging.getLogger(__name__)


@dataclass
class ForgetResult:
    """How many routes were rewritten, and how many stale copies ask for another try."""

    written: int = 0
    conflicts: int = 0


def forget_gateway(
    cache: Cache, kube: KubeStatusWriter, namespace: str, name: str, *, controller_name: str
) -> ForgetResult:
    """Remove ``controller_name``'s ``status.parents`` entries for the Gateway
    ``namespace/name`` from every cached HTTPRoute that has one (module doc). A route whose
    cached copy is stale (409) counts as a conflict: its watch event brings the new copy, and
    the caller retries; a route that is gone is skipped."""
    out = ForgetResult()
    for route in cache.routes_for_gateway(namespace, name):
        parents = without_parent(route, (namespace, name), controller_name=controller_name)
        if parents is None:
            continue
        m = meta(route)
        try:
            kube.patch_status(
                GATEWAY_API_VERSION,
                "HTTPRoute",
                str(m.get("name")),
                str(m.get("namespace")),
                {"parents": parents},
                resource_version=str(m.get("resourceVersion") or "") or None,
            )
        except NotFound:
            continue
        except Conflict as exc:
            log.info("route %s/%s status: %s", m.get("namespace"), m.get("name"), exc)
            out.conflicts += 1
            continue
        out.written += 1
    return out


def route_render_errors(view: GatewayView, route: Obj) -> dict[tuple[str, str], str | None]:
    """``{(namespace, name) of the observed Gateway: why route's children did not render, or
    None}`` from its last provision; empty when that provision has not rendered routes yet (a
    running one before its apply step, or one that failed before it): the route keeps what its
    entry shows."""
    provision = view.provision
    context = provision.context if provision is not None else None
    errors = context.get("route_errors") if isinstance(context, Mapping) else None
    if not isinstance(errors, Mapping):
        return {}
    gm, rm = meta(view.gateway), meta(route)
    message = errors.get(f"{rm.get('namespace')}/{rm.get('name')}")
    return {
        (str(gm.get("namespace")), str(gm.get("name"))): str(message) if message else None
    }
