"""What a Gateway's provision depends on, gathered from the informers' cache: its merged values
(the winning policy of each level, judged against the blueprint's ``spec.values`` by
:mod:`bifrost.controller.values_verdict`), the HTTPRoutes attached to it, and the input hash
:mod:`bifrost.triggers.provision` decides on.

Reads the cache only; writes nothing. The policies merged into a Gateway's values are picked by
:func:`bifrost.status.policies.winner`, the same choice their status reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bifrost.api import GatewayClassConfig, GatewayConfig
from bifrost.api.objects import Obj, meta, namespaced_name
from bifrost.controller.classes import ClassResolution
from bifrost.controller.informers import Cache, CachedNamespaceLabels, gateway_secrets
from bifrost.controller.parameters import GatewayParameters, gateway_parameters
from bifrost.controller.values_verdict import ValuesVerdict, judge_values
from bifrost.status import route_attachments
from bifrost.status.policies import ValuesRules, check_policy, precedence, winner
from bifrost.steps.ownership import GATEWAY_UID_LABEL
from bifrost.triggers.provision import input_hash

__all__ = ["GatewayInputs"]


class GatewayInputs:
    """A Gateway's merged values, attached routes and input hash, from ``cache``."""

    def __init__(self, cache: Cache, *, controller_namespace: str) -> None:
        self.cache = cache
        self.controller_namespace = controller_namespace

    # ---- values ---------------------------------------------------------------------------

    def _winner(self, policies: list[Obj], kind: str, model: Any, rules: ValuesRules,
                left_out: list[str]) -> Any:
        """The oldest valid, well-placed policy of ``kind`` (creationTimestamp, then name) whose
        values obey ``rules`` — :func:`bifrost.status.policies.winner`, the same choice the
        policies' status reports. Each policy that would have won but for its values is added
        to ``left_out`` (kind, name and what it breaks — field paths and rules, no values)."""
        best = winner(policies, kind, controller_namespace=self.controller_namespace,
                      rules=rules)
        for raw in policies:
            if raw.get("kind") != kind or (best is not None and raw is best.raw) or (
                    best is not None and precedence(raw) >= precedence(best.raw)):
                continue
            if not check_policy(raw, controller_namespace=self.controller_namespace).eligible:
                continue  # unparsable or misplaced: never a candidate, whatever its values
            checked = check_policy(raw, controller_namespace=self.controller_namespace,
                                   rules=rules)
            if checked.problem is not None:
                m = meta(raw)
                left_out.append(f'{kind} "{m.get("namespace")}/{m.get("name")}": '
                                f"{checked.problem}")
        if best is None:
            return None
        assert isinstance(best.parsed, model)
        return best.parsed

    def merged_values(self, gateway: Obj, resolution: ClassResolution) -> dict[str, Any]:
        """The values the Gateway's children are rendered with (:meth:`values_verdict`)."""
        return self.values_verdict(gateway, resolution).values

    def values_verdict(self, gateway: Obj, resolution: ClassResolution) -> ValuesVerdict:
        """DESIGN §2: blueprint → class-wide → namespace → gateway defaults, overrides reversed.
        Within the namespace level the GatewayClassConfig applies first, the GatewayConfig on
        top (as :mod:`bifrost.api.policies` documents). The Gateway level is the GatewayConfig
        the Gateway's ``spec.infrastructure.parametersRef`` names, when it names a usable one
        (:meth:`parameters`), else the winner among those targeting the Gateway.

        Typed values (the blueprint's ``spec.values``, :class:`bifrost.api.blueprint.
        BlueprintValues`): a policy whose values break them is not merged — the values are
        computed as if it did not exist (its status says ``Accepted=False``/``Invalid``) — and
        is listed in ``left_out``; the merged values are then checked against the whole schema
        (``required`` included), a break named by field path and the level(s) that set it in
        ``problem``. The observer does not provision merged values with a ``problem``, nor —
        once the Gateway was provisioned — while a policy is left out: the Gateway keeps its
        last good children (a Gateway never provisioned gets the values of the valid levels).
        A blueprint without ``spec.values`` accepts any values, as before.
        """
        assert resolution.blueprint is not None
        ns, name = str(meta(gateway)["namespace"]), str(meta(gateway)["name"])
        class_name = str(meta(resolution.gateway_class).get("name"))
        spec = resolution.blueprint.spec
        rules = ValuesRules(resolution.blueprint_name or "", spec.values)
        left_out: list[str] = []
        class_policy = self._winner(
            self.cache.policies_for("GatewayClass", "", class_name), "GatewayClassConfig",
            GatewayClassConfig, rules, left_out,
        )
        ns_policies = self.cache.policies_for("Namespace", "", ns)
        ns_class_policy = self._winner(ns_policies, "GatewayClassConfig", GatewayClassConfig,
                                       rules, left_out)
        ns_gateway_policy = self._winner(ns_policies, "GatewayConfig", GatewayConfig, rules,
                                         left_out)
        # spec.infrastructure.parametersRef names the Gateway level's GatewayConfig outright
        # (bifrost.controller.parameters); otherwise the oldest one targeting the Gateway.
        named = self.parameters(gateway, resolution).config
        gw_policy = named if named is not None else self._winner(
            self.cache.policies_for("Gateway", ns, name), "GatewayConfig", GatewayConfig,
            rules, left_out,
        )

        return judge_values(spec, rules, left_out, class_policy=class_policy,
                            ns_class_policy=ns_class_policy,
                            ns_gateway_policy=ns_gateway_policy, gw_policy=gw_policy)

    def parameters(self, gateway: Obj, resolution: ClassResolution | None) -> GatewayParameters:
        """The GatewayConfig the Gateway's ``spec.infrastructure.parametersRef`` names, or why
        it is unusable (:func:`bifrost.controller.parameters.gateway_parameters`); its values
        are checked against the blueprint's ``spec.values`` when the class has a blueprint."""
        blueprint = resolution.blueprint if resolution is not None else None
        rules = (ValuesRules(resolution.blueprint_name or "", blueprint.spec.values)
                 if resolution is not None and blueprint is not None else None)
        return gateway_parameters(self.cache, gateway, rules=rules,
                                  controller_namespace=self.controller_namespace)

    # ---- routes ---------------------------------------------------------------------------

    def attached_routes(self, gateway: Obj, resolution: ClassResolution) -> list[Obj]:
        """The HTTPRoutes attached to the Gateway — accepted by at least one listener, decided
        by :func:`bifrost.status.route_attachments` exactly as the status writer decides
        ``attachedRoutes`` and ``status.parents`` — sorted by namespace/name; routes being
        deleted are left out, and so are the Gateway's own route children (a shadow route
        attached back to this Gateway would otherwise beget shadows of itself). Empty when the
        blueprint has no ``routeChildren`` (routes then do not matter to provisioning)."""
        blueprint = resolution.blueprint
        if blueprint is None or not blueprint.spec.route_children:
            return []
        m = meta(gateway)
        key = (str(m.get("namespace")), str(m.get("name")))
        labels = CachedNamespaceLabels(self.cache)
        out = []
        uid = str(m.get("uid") or "")
        for route in self.cache.routes_for_gateway(*key):
            route_meta = meta(route)
            if route_meta.get("deletionTimestamp") \
                    or (route_meta.get("labels") or {}).get(GATEWAY_UID_LABEL) == uid:
                continue
            attachments = route_attachments(route, {key: gateway}, namespace_labels=labels)
            if any(a.accepted for a in attachments):
                out.append(route)
        return sorted(out, key=namespaced_name)

    # ---- the input hash -------------------------------------------------------------------

    def input_hash(
        self,
        gateway: Obj,
        resolution: ClassResolution,
        values: Mapping[str, Any],
        routes: list[Obj] | None = None,
    ) -> str:
        """:func:`bifrost.triggers.provision.input_hash` of the Gateway as the cache has it: its
        generation, the blueprint's, the merged values (policies included), the
        resourceVersions of referenced Secrets and — when the blueprint has ``routeChildren``
        — the attached routes (``routes``, default :meth:`attached_routes`) with their
        generations, so attaching, detaching or editing a route re-provisions."""
        if routes is None:
            routes = self.attached_routes(gateway, resolution)
        secrets = []
        for ns, name in sorted(gateway_secrets(gateway)):
            secret = self.cache.get("Secret", ns, name)
            rv = str(meta(secret).get("resourceVersion") or "") if secret else ""
            secrets.append((ns, name, rv))
        blueprint = resolution.blueprint
        return input_hash(
            gateway, blueprint_name=resolution.blueprint_name,
            blueprint_generation=blueprint.metadata.generation if blueprint else None,
            values=values, secrets=secrets, routes=routes,
        )
