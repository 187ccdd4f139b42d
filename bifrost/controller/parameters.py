"""A Gateway's ``spec.infrastructure.parametersRef``: the Gateway-level way to name the
``GatewayConfig`` whose values it is rendered with.

The Gateway API (v1.6.1) lets a Gateway name "a resource that contains the configuration
parameters corresponding to the Gateway", with the same semantics as a GatewayClass's
``parametersRef``; the merge with the class's parameters is implementation specific, and a
referent that "cannot be found, refers to an unsupported kind, or when the data within that
resource is malformed" rejects the Gateway with ``Accepted=False``/``InvalidParameters``.

bifrost accepts exactly one kind there: a ``GatewayConfig`` (group ``gateway.bifrost.dev``) in
the Gateway's namespace. A ConfigMap is *not* accepted: values are typed, checked against the
blueprint's ``spec.values`` and confined like every policy's, and a GatewayConfig carries them
with its own status; a second, untyped carrier would add nothing but a way around that.

The referenced GatewayConfig must also say where it applies the usual way — its
``spec.targetRef`` names this Gateway — so its own status (``attachedTo``) tells the truth. It
then takes the Gateway level of the value merge (:mod:`bifrost.api.policies`), in place of the
oldest GatewayConfig targeting the Gateway: an explicit reference wins over age. A referenced
config that does not parse, targets something else, or whose values break the blueprint's
``spec.values`` is *malformed data*: ``InvalidParameters`` too (the message names the field paths
and rules, never the values).

Pure apart from cache reads; the informers index Gateways by the config they name
(:meth:`bifrost.controller.informers.Cache.gateways_for_parameters`), so a referenced config
appearing, changing or going away re-reconciles the Gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

from bifrost.api import GatewayConfig
from bifrost.api.objects import Obj, meta
from bifrost.api.objects import spec as object_spec
from bifrost.api.policies import GATEWAY_CONFIG_KIND
from bifrost.controller.informers import BIFROST_GROUP, Cache
from bifrost.status.policies import ValuesRules, check_policy

__all__ = ["ACCEPTED_KINDS", "GatewayParameters", "gateway_parameters", "parameters_ref"]

#: The (group, kind) a Gateway's parametersRef may name.
ACCEPTED_KINDS: tuple[tuple[str, str], ...] = ((BIFROST_GROUP, GATEWAY_CONFIG_KIND),)


@dataclass(frozen=True)
class GatewayParameters:
    """The GatewayConfig a Gateway's parametersRef names (parsed), or why it is unusable.
    Both ``None``: the Gateway has no parametersRef."""

    config: GatewayConfig | None = None
    error: str | None = None


def parameters_ref(gateway: Obj) -> tuple[str, str, str] | None:
    """(group, kind, name) of ``spec.infrastructure.parametersRef``, if set."""
    infrastructure = object_spec(gateway).get("infrastructure")
    if not isinstance(infrastructure, dict):
        return None
    ref = infrastructure.get("parametersRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    return str(ref.get("group") or ""), str(ref.get("kind") or ""), str(ref["name"])


def gateway_parameters(
    cache: Cache, gateway: Obj, *, rules: ValuesRules | None, controller_namespace: str
) -> GatewayParameters:
    """Resolve the Gateway's parametersRef against ``cache`` (see the module docstring);
    ``rules`` are the blueprint's ``spec.values`` (``None``: no blueprint yet, values unchecked)."""
    ref = parameters_ref(gateway)
    if ref is None:
        return GatewayParameters()
    group, kind, name = ref
    ns, gw_name = str(meta(gateway).get("namespace")), str(meta(gateway).get("name"))
    where = "spec.infrastructure.parametersRef"
    if (group, kind) not in ACCEPTED_KINDS:
        return GatewayParameters(error=(
            f'{where} refers to {kind} "{name}" in group {group!r}, a kind bifrost does not '
            f"accept — bifrost accepts only {GATEWAY_CONFIG_KIND} (group {BIFROST_GROUP})"))
    raw = cache.get(GATEWAY_CONFIG_KIND, ns, name)
    if raw is None:
        return GatewayParameters(error=(
            f'{where}: {GATEWAY_CONFIG_KIND} "{ns}/{name}" not found — create it (with '
            f'spec.targetRef naming Gateway "{gw_name}") or fix the reference'))
    checked = check_policy(raw, controller_namespace=controller_namespace, rules=None)
    if checked.parsed is None or not isinstance(checked.parsed, GatewayConfig):
        return GatewayParameters(error=(
            f'{where}: {GATEWAY_CONFIG_KIND} "{ns}/{name}" is malformed: {checked.problem}'))
    config = checked.parsed
    target = config.spec.target_ref
    if target.kind != "Gateway" or target.name != gw_name:
        return GatewayParameters(error=(
            f'{where}: {GATEWAY_CONFIG_KIND} "{ns}/{name}" targets {target.kind} '
            f'"{target.name}", not this Gateway — set its spec.targetRef to '
            f'{{group: gateway.networking.k8s.io, kind: Gateway, name: {gw_name}}}'))
    if rules is not None:
        valued = check_policy(raw, controller_namespace=controller_namespace, rules=rules)
        if valued.problem is not None:
            return GatewayParameters(error=(
                f'{where}: the values of {GATEWAY_CONFIG_KIND} "{ns}/{name}" are invalid: '
                f"{valued.problem}"))
    return GatewayParameters(config=config)
