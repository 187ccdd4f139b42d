"""Status computation for GatewayClasses, Gateways, listeners and HTTPRoutes — pure functions.

The Gateway API defines precisely what a controller must report; this package computes it from
the objects as the API returns them (plain dicts), the related objects the caller already
watches (Secrets, ReferenceGrants, namespace labels, Services), the children's readiness and an
explicit ``now``. No I/O and no ``kubernetes`` import, so every rule is a fast table test and
the controller only has to write what :func:`status_changed` says changed.
"""

from bifrost.status.gateway import gateway_status, status_changed
from bifrost.status.gatewayclass import gatewayclass_status
from bifrost.status.listeners import ListenerVerdict, Readiness, evaluate_listeners
from bifrost.status.referencegrants import permitted
from bifrost.status.routes import (
    DEFAULT_CONTROLLER_NAME,
    Attachment,
    attached_routes,
    route_attachments,
    route_status,
)

__all__ = [
    "DEFAULT_CONTROLLER_NAME",
    "Attachment",
    "ListenerVerdict",
    "Readiness",
    "attached_routes",
    "evaluate_listeners",
    "gateway_status",
    "gatewayclass_status",
    "permitted",
    "route_attachments",
    "route_status",
    "status_changed",
]
