"""Blueprint code, evaluated out of process under hard limits.

The functions here have the signatures of their ``bifrost.render`` namesakes and are what the
steps and the controller call: each one runs in a sandbox worker process (``pool``), so a
template or CEL expression that overruns its time budget is stopped by killing its worker, and
one that exhausts memory fails alone — the controller's other threads (Lease renewal, health,
other Gateways) never wait on it. A breach comes back as the same ``RenderError`` the render
functions raise, naming the child and the limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bifrost import render
from bifrost.render import (
    BLUEPRINT,
    AddressesResult,
    Blueprint,
    Readiness,
    RenderChild,
    RenderError,
    RenderResult,
)
from bifrost.render.expressions import ADDRESSES_FIELD, READY_WHEN
from bifrost.render.model import as_blueprint
from bifrost.sandbox.pool import (
    Sandbox,
    SandboxFailure,
    SandboxSettings,
    SandboxTimeout,
    configure,
    default_sandbox,
)

__all__ = [
    "Sandbox",
    "SandboxFailure",
    "SandboxSettings",
    "SandboxTimeout",
    "configure",
    "default_sandbox",
    "evaluate_addresses",
    "evaluate_expression",
    "evaluate_ready",
    "render_certificate",
    "render_gateway",
    "render_route_children",
]

TLS_CERTIFICATE_TEMPLATE = "spec.tls.certificateTemplate"


def _breach(exc: Exception, what: str, limit: float) -> str:
    if isinstance(exc, SandboxTimeout):
        return (f"over budget: {what} ran longer than {limit:g} s and was stopped "
                "(sandbox time limit)")
    return f"{what} failed in the sandbox: {exc}"


def _render(name: str, field: str, blueprint: Blueprint | Mapping[str, Any],
            **kwargs: Any) -> RenderResult:
    try:  # parsed here: the worker gets the view and needs no API models (bifrost.render.model)
        view = as_blueprint(blueprint)
    except RenderError as exc:
        return RenderResult(errors=(exc,))
    box = default_sandbox()
    limit = box.settings.render_seconds
    try:
        result = box.call(name, view, timeout=limit, **kwargs)
    except (SandboxTimeout, SandboxFailure) as exc:
        at = exc.at if isinstance(exc, SandboxTimeout) else None
        child, where = at if at is not None else (BLUEPRINT, field)
        return RenderResult(errors=(
            RenderError(child, _breach(exc, "rendering the children", limit), None, where),
        ))
    assert isinstance(result, RenderResult)
    return result


def render_gateway(
    blueprint: Blueprint | Mapping[str, Any],
    *,
    gateway: Mapping[str, Any],
    values: Mapping[str, Any],
    live_children: Mapping[str, Mapping[str, Any] | None],
    certificates: Sequence[Mapping[str, Any]] = (),
) -> RenderResult:
    """``bifrost.render.render_gateway`` in the sandbox."""
    return _render("render_gateway", "spec.children", blueprint, gateway=gateway,
                   values=values, live_children=live_children,
                   certificates=[dict(c) for c in certificates])


def render_route_children(
    blueprint: Blueprint | Mapping[str, Any],
    *,
    gateway: Mapping[str, Any],
    route: Mapping[str, Any],
    values: Mapping[str, Any],
    live_children: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> RenderResult:
    """``bifrost.render.render_route_children`` in the sandbox."""
    return _render("render_route_children", "spec.routeChildren", blueprint, gateway=gateway,
                   route=route, values=values, live_children=live_children)


def render_certificate(source: str, *, context: Mapping[str, Any]) -> dict[str, Any]:
    """``bifrost.render.render_certificate`` in the sandbox."""
    box = default_sandbox()
    limit = box.settings.render_seconds
    try:
        result = box.call("render_certificate", source, context=context, timeout=limit)
    except (SandboxTimeout, SandboxFailure) as exc:
        raise RenderError("certificate", _breach(exc, "rendering the certificate", limit), None,
                          TLS_CERTIFICATE_TEMPLATE) from None
    assert isinstance(result, dict)
    return result


def evaluate_ready(child: RenderChild, live: Mapping[str, Any] | None) -> Readiness:
    """``bifrost.render.evaluate_ready`` in the sandbox (no round trip when there is nothing to
    evaluate)."""
    if live is None or child.ready_when is None:
        return render.evaluate_ready(child, live)
    box = default_sandbox()
    limit = box.settings.expression_seconds
    try:
        result = box.call("evaluate_ready", child, live, timeout=limit)
    except (SandboxTimeout, SandboxFailure) as exc:
        raise RenderError(child.id, _breach(exc, "readyWhen", limit), None,
                          child.field_path(READY_WHEN)) from None
    assert isinstance(result, Readiness)
    return result


def evaluate_expression(source: str, variables: Mapping[str, Any], *, field: str) -> Any:
    """``bifrost.render.evaluate_expression`` in the sandbox."""
    box = default_sandbox()
    limit = box.settings.expression_seconds
    try:
        return box.call("evaluate_expression", source, variables, field=field, timeout=limit)
    except (SandboxTimeout, SandboxFailure) as exc:
        raise RenderError(BLUEPRINT, _breach(exc, "the expression", limit), None,
                          field) from None


def evaluate_addresses(
    expression: str | None,
    *,
    children: Mapping[str, Mapping[str, Any] | None],
    gateway: Mapping[str, Any] | None = None,
) -> AddressesResult:
    """``bifrost.render.evaluate_addresses`` in the sandbox."""
    if expression is None:
        return AddressesResult((), "the blueprint derives no addresses")
    box = default_sandbox()
    limit = box.settings.expression_seconds
    try:
        result = box.call("evaluate_addresses", expression, children=children, gateway=gateway,
                          timeout=limit)
    except (SandboxTimeout, SandboxFailure) as exc:
        raise RenderError(BLUEPRINT, _breach(exc, "addresses", limit), None,
                          ADDRESSES_FIELD) from None
    assert isinstance(result, AddressesResult)
    return result
