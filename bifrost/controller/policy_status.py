"""Writes the status of bifrost's own objects: policies and blueprints.

For a ``GatewayClassConfig``/``GatewayConfig`` work key, :class:`OwnStatusWriter` reads the policy,
its target (for a Gateway also the Gateway's class) and the policies naming the same target from
the informer cache, lets :func:`bifrost.status.policies.decide_policy` say whether and where it is
attached, and writes ``status`` through ``/status``. For a ``GatewayClassBlueprint`` key it checks
the blueprint with :func:`bifrost.status.blueprints.blueprint_problems` and reports ``Accepted``/
``Valid``. The informers enqueue these keys when the object, a competing policy or a target
changes (see :mod:`bifrost.controller.informers`); the resync enqueues them all.

Like the Gateway status writer it compares before writing (:func:`bifrost.status.status_changed`),
so a converged resync makes no API writes; a write is conditional on the cached
``resourceVersion`` (a conflict means the cache is behind: the watch brings the newer object and
the key comes back).
"""

from __future__ import annotations

import logging
from typing import Any

from bifrost.api.blueprint import GatewayClassBlueprint
from bifrost.api.errors import InvalidResourceError, parse_resource
from bifrost.api.objects import Obj, meta, status
from bifrost.clock import Clock
from bifrost.controller.informers import (
    BLUEPRINT_API_VERSION,
    BLUEPRINT_KIND,
    POLICY_KINDS,
    Cache,
    WorkKey,
    blueprint_name,
    gateway_class_name,
)
from bifrost.controller.observation import Observation
from bifrost.controller.parameters import ACCEPTED_KINDS, parameters_ref
from bifrost.kube import Conflict, NotFound
from bifrost.kube.ports import KubeStatusWriter
from bifrost.status import status_changed
from bifrost.status.blueprints import VERDICTS, blueprint_status
from bifrost.status.policies import (
    TargetKey,
    ValuesRules,
    decide_policy,
    policy_status,
    target_key,
)

__all__ = ["OWN_STATUS_KINDS", "OwnStatusWriter"]

log = logging.getLogger(__name__)

#: Work key kinds this module observes.
OWN_STATUS_KINDS: frozenset[str] = frozenset({*POLICY_KINDS, BLUEPRINT_KIND})
#: Seconds before looking again after a write conflict (the watch usually comes first).
CONFLICT_RECHECK_SECONDS = 1.0

def _named_config(gateway: Obj) -> str | None:
    """The GatewayConfig a Gateway's ``spec.infrastructure.parametersRef`` names, if any."""
    ref = parameters_ref(gateway)
    if ref is None or (ref[0], ref[1]) not in ACCEPTED_KINDS:
        return None
    return ref[2]


class OwnStatusWriter:
    """Observes policy and blueprint work keys (see the module docstring)."""

    def __init__(
        self, *, cache: Cache, kube: KubeStatusWriter, clock: Clock, controller_namespace: str
    ) -> None:
        self.cache = cache
        self.kube = kube
        self.clock = clock
        self.controller_namespace = controller_namespace

    def observe(self, key: WorkKey) -> Observation:
        if key.kind in POLICY_KINDS:
            return self.observe_policy(key.kind, key.namespace, key.name)
        if key.kind == BLUEPRINT_KIND:
            return self.observe_blueprint(key.name)
        raise ValueError(f"not a policy or blueprint key: {key}")

    # ---- policies -----------------------------------------------------------------------

    def policy_status(self, policy: Obj) -> dict[str, Any]:
        """The status ``policy`` should have, from the cache."""
        target_ref = target_key(policy)
        target = target_class = None
        competitors: list[Obj] = []
        if target_ref is not None:
            target = self.cache.get(*target_ref)
            if target_ref[0] == "Gateway" and target is not None:
                target_class = self.cache.get("GatewayClass", "", gateway_class_name(target))
            competitors = self.cache.policies_for(*target_ref)
        verdict = decide_policy(
            policy, target=target, target_class=target_class, competitors=competitors,
            controller_name=self.cache.controller_name,
            controller_namespace=self.controller_namespace,
            rules=self.values_rules(target_ref) if target is not None else (),
            named=(_named_config(target) if target is not None and target_ref is not None
                   and target_ref[0] == "Gateway" else None),
        )
        return policy_status(policy, verdict, now=self.clock.now())

    def values_rules(self, target_ref: TargetKey | None) -> list[ValuesRules]:
        """The ``spec.values`` of the (valid) blueprints a policy on ``target_ref`` feeds: its
        GatewayClass's, its Gateway's class's, or those of the classes of the Gateways in its
        Namespace (see :mod:`bifrost.status.policies`)."""
        if target_ref is None:
            return []
        kind, ns, name = target_ref
        if kind == "GatewayClass":
            class_names = {name}
        elif kind == "Gateway":
            gateway = self.cache.get("Gateway", ns, name)
            class_names = {gateway_class_name(gateway)} if gateway is not None else set()
        else:
            class_names = {gateway_class_name(g) for g in self.cache.gateways_in(name)}
        out: dict[str, ValuesRules] = {}
        for class_name in sorted(class_names):
            gateway_class = self.cache.get("GatewayClass", "", class_name)
            if gateway_class is None or not self.cache.is_ours(gateway_class):
                continue
            bp_name = blueprint_name(gateway_class)
            raw = self.cache.get(BLUEPRINT_KIND, "", bp_name) if bp_name else None
            if bp_name is None or raw is None or bp_name in out:
                continue
            try:
                blueprint = parse_resource(GatewayClassBlueprint, raw)
            except InvalidResourceError:
                continue  # its own status says why; no Gateway of it is provisioned
            out[bp_name] = ValuesRules(bp_name, blueprint.spec.values)
        return list(out.values())

    def observe_policy(self, kind: str, namespace: str, name: str) -> Observation:
        policy = self.cache.get(kind, namespace, name)
        if policy is None or meta(policy).get("deletionTimestamp"):
            return Observation()
        return self._write(kind, namespace, name, policy, self.policy_status(policy),
                           action="policy-status")

    # ---- blueprints ---------------------------------------------------------------------

    def blueprint_status(self, blueprint: Obj) -> dict[str, Any]:
        """The status ``blueprint`` should have, from the cache."""
        name = str(meta(blueprint).get("name") or "")
        classes = [
            c for c in self.cache.classes_for_blueprint(name)
            if self.cache.is_ours(self.cache.get("GatewayClass", "", c))
        ]
        return blueprint_status(blueprint, problems=VERDICTS.problems(blueprint),
                                classes=classes, now=self.clock.now())

    def observe_blueprint(self, name: str) -> Observation:
        blueprint = self.cache.get(BLUEPRINT_KIND, "", name)
        if blueprint is None or meta(blueprint).get("deletionTimestamp"):
            return Observation()
        return self._write(BLUEPRINT_KIND, None, name, blueprint,
                           self.blueprint_status(blueprint), action="blueprint-status")

    # ---- writing ------------------------------------------------------------------------

    def _write(self, kind: str, namespace: str | None, name: str, obj: Obj,
               desired: dict[str, Any], *, action: str) -> Observation:
        if not status_changed(status(obj), desired):
            return Observation()
        try:
            self.kube.patch_status(
                BLUEPRINT_API_VERSION, kind, name, namespace, desired,
                resource_version=str(meta(obj).get("resourceVersion") or "") or None,
            )
        except Conflict:
            return Observation((f"{action}-conflict",), requeue_after=CONFLICT_RECHECK_SECONDS)
        except NotFound:
            return Observation()
        return Observation((action,))
