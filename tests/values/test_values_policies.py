"""Typed values in policy acceptance and in the values the controller merges, pure (the cache is
filled by hand, no API server): a GatewayConfig may set only tenant keys, every policy's values
must obey the blueprint's schema, a policy that does not is ``Accepted=False``/``Invalid`` naming
the field and the rule (never the value) and is not merged; the merged values are checked whole
and a provisioned Gateway is held rather than re-provisioned with bad or partial values; a
blueprint without ``spec.values`` accepts anything; a blueprint with a bad schema or defaults is
``Valid=False``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from bifrost.api.blueprint import BlueprintValues
from bifrost.api.conditions import PolicyReason
from bifrost.clock import ManualClock
from bifrost.controller.informers import Cache
from bifrost.controller.ledger import MemoryLedger
from bifrost.controller.observe import Observer
from bifrost.kube.client import KubeClient
from bifrost.machines.registry import MachineRegistry
from bifrost.status.blueprints import blueprint_problems, blueprint_status
from bifrost.status.policies import ValuesRules, decide_policy, winner
from bifrost.store.interface import OperationStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OURS = "gateway.bifrost.dev/bifrost"
GROUP = "gateway.networking.k8s.io"
API = "gateway.bifrost.dev/v1alpha1"
T0, T1 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["replicas", "childClass"],
    "properties": {
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
        "childClass": {"type": "string", "pattern": "^[a-z0-9-]+$"},
        "tier": {"type": "string", "enum": ["gold", "silver"]},
    },
}
VALUES = {"schema": SCHEMA, "tenantKeys": ["replicas"]}
RULES = ValuesRules("edge-bp", BlueprintValues.model_validate(VALUES))
UNTYPED = ValuesRules("old-bp", None)


def pol(kind: str, ns: str, name: str, target_kind: str, target: str, *,
        default: dict[str, Any] | None = None, override: dict[str, Any] | None = None,
        created: str = T0) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": kind,
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created,
                     "generation": 1, "uid": f"uid-{ns}-{name}", "resourceVersion": "1"},
        "spec": {
            "targetRef": {"group": "" if target_kind == "Namespace" else GROUP,
                          "kind": target_kind, "name": target},
            "default": default or {},
            "override": override or {},
        },
    }


def gwc(name: str, bp: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "GatewayClass",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"},
            "spec": {"controllerName": OURS, "parametersRef": {
                "group": "gateway.bifrost.dev", "kind": "GatewayClassBlueprint", "name": bp}}}


def gw(ns: str, name: str, cls: str = "edge") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}",
                         "generation": 1, "resourceVersion": "1"},
            "spec": {"gatewayClassName": cls,
                     "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}


def bp(name: str, *, values: dict[str, Any] | None = None,
       defaults: dict[str, Any] | None = None,
       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "defaults": defaults if defaults is not None else {"replicas": 2, "childClass": "edge"},
        "overrides": overrides or {},
        "children": [{"id": "config", "template": "apiVersion: v1\nkind: ConfigMap\n"
                      "metadata: {name: x}\ndata: {replicas: '{{ values.replicas }}'}\n"}],
    }
    if values is not None:
        spec["values"] = values
    return {"apiVersion": API, "kind": "GatewayClassBlueprint",
            "metadata": {"name": name, "generation": 1, "uid": f"uid-{name}",
                         "resourceVersion": "1"},
            "spec": spec}


# ---------------------------------------------------------------- policy acceptance


NS = {"kind": "Namespace", "metadata": {"name": "shop"}}
GW = gw("shop", "a")
CLASS = gwc("edge", "edge-bp")


@pytest.mark.parametrize(
    ("policy", "target", "rules", "accepted", "reason", "says"),
    [
        # a tenant may set a tenant key to a valid value, at namespace or gateway level
        (pol("GatewayConfig", "shop", "t", "Namespace", "shop", default={"replicas": 3}),
         NS, [RULES], True, PolicyReason.ACCEPTED, "namespace level"),
        (pol("GatewayConfig", "shop", "t", "Gateway", "a", override={"replicas": 10}),
         GW, [RULES], True, PolicyReason.ACCEPTED, "gateway level"),
        # ... but no other key, even a valid one
        (pol("GatewayConfig", "shop", "t", "Gateway", "a", default={"childClass": "x"}),
         GW, [RULES], False, PolicyReason.INVALID,
         "spec.default.childClass: may not be set by a GatewayConfig: the blueprint's "
         "spec.values.tenantKeys allow replicas"),
        # a tenant key with a value the schema refuses
        (pol("GatewayConfig", "shop", "t", "Namespace", "shop", default={"replicas": 11}),
         NS, [RULES], False, PolicyReason.INVALID,
         "spec.default.replicas: must be an integer ≥ 1 and ≤ 10"),
        (pol("GatewayConfig", "shop", "t", "Gateway", "a", override={"replicas": "3"}),
         GW, [RULES], False, PolicyReason.INVALID,
         "spec.override.replicas: must be an integer, not a string"),
        # the platform's GatewayClassConfig may set any declared key, typed
        (pol("GatewayClassConfig", "bifrost-system", "p", "GatewayClass", "edge",
             default={"childClass": "edge-2", "tier": "gold"}),
         CLASS, [RULES], True, PolicyReason.ACCEPTED, "class-wide level"),
        (pol("GatewayClassConfig", "bifrost-system", "p", "GatewayClass", "edge",
             override={"tier": "bronze"}),
         CLASS, [RULES], False, PolicyReason.INVALID,
         'spec.override.tier: must be one of "gold", "silver"'),
        (pol("GatewayClassConfig", "shop", "p", "Namespace", "shop",
             default={"undeclared": 1}),
         NS, [RULES], False, PolicyReason.INVALID,
         "spec.default.undeclared: is not a key the blueprint declares"),
        # untyped blueprint: anything goes, tenants included (backward compatible)
        (pol("GatewayConfig", "shop", "t", "Gateway", "a", default={"anything": {"x": [1]}}),
         GW, [UNTYPED], True, PolicyReason.ACCEPTED, "gateway level"),
        # a namespace policy is judged against every blueprint of the namespace's Gateways
        (pol("GatewayConfig", "shop", "t", "Namespace", "shop", default={"anything": 1}),
         NS, [UNTYPED, RULES], False, PolicyReason.INVALID,
         'spec.default.anything: may not be set by a GatewayConfig'),
    ],
)
def test_policy_acceptance(policy: dict[str, Any], target: dict[str, Any],
                           rules: list[ValuesRules], accepted: bool, reason: PolicyReason,
                           says: str) -> None:
    verdict = decide_policy(policy, target=target,
                            target_class=CLASS if target is GW else None,
                            competitors=[policy], rules=rules)
    assert (verdict.accepted, verdict.reason) == (accepted, reason), verdict.message
    assert says in verdict.message
    if not accepted:
        assert 'GatewayClassBlueprint "edge-bp"' in verdict.message
        assert "not applied" in verdict.message
        assert not verdict.attached_to


def test_rejection_names_the_field_never_the_value() -> None:
    hostile = '3"\nkind: Secret\nmetadata: {namespace: kube-system}'
    for part in ("default", "override"):
        policy = pol("GatewayConfig", "shop", "t", "Gateway", "a", **{part: {
            "replicas": hostile, "childClass": hostile}})
        verdict = decide_policy(policy, target=GW, target_class=CLASS, competitors=[policy],
                                rules=[RULES])
        assert verdict.reason is PolicyReason.INVALID
        assert f"spec.{part}.replicas: must be an integer, not a string" in verdict.message
        assert f"spec.{part}.childClass: may not be set" in verdict.message
        assert "Secret" not in verdict.message and hostile[:3] not in verdict.message


def test_an_invalid_policy_does_not_win_a_conflict() -> None:
    older_bad = pol("GatewayConfig", "shop", "old", "Gateway", "a", created=T0,
                    default={"replicas": 99})
    newer_good = pol("GatewayConfig", "shop", "new", "Gateway", "a", created=T1,
                     default={"replicas": 4})
    both = [older_bad, newer_good]
    best = winner(both, "GatewayConfig", rules=RULES)
    assert best is not None and best.raw is newer_good
    # without a schema the older one wins, as before
    best = winner(both, "GatewayConfig", rules=UNTYPED)
    assert best is not None and best.raw is older_bad
    good = decide_policy(newer_good, target=GW, target_class=CLASS, competitors=both,
                         rules=[RULES])
    assert good.accepted, good.message
    bad = decide_policy(older_bad, target=GW, target_class=CLASS, competitors=both,
                        rules=[RULES])
    assert (bad.accepted, bad.reason) == (False, PolicyReason.INVALID)


# ---------------------------------------------------------------- blueprint Valid


@pytest.mark.parametrize(
    ("values", "defaults", "overrides", "says"),
    [
        ({"schema": {"type": "object", "properties": {"r": {"type": "integer",
                                                            "pattern": "x"}}},
          "tenantKeys": []}, None, None,
         "spec.values: schema.properties.r.pattern: only applies to type string, not integer"),
        ({"schema": {"type": "object", "propertys": {}}, "tenantKeys": []}, None, None,
         "unknown keyword 'propertys'"),
        ({"schema": SCHEMA, "tenantKeys": ["replicaz"]}, None, None,
         "tenantKeys[0]: the schema admits no key 'replicaz'"),
        ({"schema": SCHEMA, "tenantKeys": ["replicas"]}, {"replicas": 0}, None,
         "spec: defaults.replicas: must be an integer ≥ 1 and ≤ 10"),
        ({"schema": SCHEMA, "tenantKeys": ["replicas"]}, None, {"extra": True},
         "spec: overrides.extra: is not a key the blueprint declares"),
        ({"tenantKeys": ["a", "a"]}, None, None, "tenantKeys"),
        ({"schema": SCHEMA}, None, None, "spec.values.tenantKeys: required"),
    ],
)
def test_a_blueprint_with_bad_values_is_not_valid(
    values: dict[str, Any], defaults: dict[str, Any] | None,
    overrides: dict[str, Any] | None, says: str,
) -> None:
    raw = bp("edge-bp", values=values, defaults=defaults, overrides=overrides)
    problems = blueprint_problems(raw)
    assert problems and says in problems[0].message, problems
    status = blueprint_status(raw, problems=problems, classes=["edge"], now=NOW)
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "Invalid")
    assert says in valid["message"]


def test_a_blueprint_with_good_values_is_valid() -> None:
    assert blueprint_problems(bp("edge-bp", values=VALUES)) == []
    # defaults are a partial level: required keys may come from a policy
    assert blueprint_problems(bp("edge-bp", values=VALUES, defaults={})) == []


# ---------------------------------------------------------------- merged values (observe)


@pytest.fixture
def cache() -> Cache:
    c = Cache()
    c.apply("GatewayClass", "ADDED", gwc("edge", "edge-bp"))
    c.apply("GatewayClassBlueprint", "ADDED", bp("edge-bp", values=VALUES))
    c.apply("GatewayClass", "ADDED", gwc("old", "old-bp"))
    c.apply("GatewayClassBlueprint", "ADDED", bp("old-bp"))
    c.apply("Gateway", "ADDED", gw("shop", "a"))
    c.apply("Gateway", "ADDED", gw("shop", "b", "old"))
    return c


@pytest.fixture
def observer(cache: Cache) -> Observer:
    return Observer(cache=cache, kube=cast(KubeClient, None), store=cast(OperationStore, None),
                    registry=MachineRegistry(), clock=ManualClock(NOW), actor="test",
                    ledger=MemoryLedger())


def _verdict(cache: Cache, observer: Observer, name: str = "a", cls: str = "edge") -> Any:
    res = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", cls)))
    return observer.values_verdict(cast(dict[str, Any], cache.get("Gateway", "shop", name)), res)


def test_an_invalid_policy_is_merged_as_if_it_did_not_exist(cache: Cache,
                                                            observer: Observer) -> None:
    cache.apply("GatewayConfig", "ADDED", pol("GatewayConfig", "shop", "ns", "Namespace", "shop",
                                              default={"replicas": 5}))
    verdict = _verdict(cache, observer)
    assert verdict.values == {"replicas": 5, "childClass": "edge"}
    assert verdict.left_out == () and verdict.problem is None
    assert verdict.hold(provisioned=True) is None
    # the Gateway's own policy sets a key tenants may not: left out, the namespace one applies
    cache.apply("GatewayConfig", "ADDED", pol("GatewayConfig", "shop", "mine", "Gateway", "a",
                                              override={"replicas": 6, "childClass": "evil"}))
    verdict = _verdict(cache, observer)
    assert verdict.values == {"replicas": 5, "childClass": "edge"}
    [left] = verdict.left_out
    assert left.startswith('GatewayConfig "shop/mine": spec.override.childClass: may not be set')
    assert "evil" not in left
    # a Gateway never provisioned gets the valid levels; a provisioned one keeps its children
    assert verdict.hold(provisioned=False) is None
    assert verdict.hold(provisioned=True) == left
    # the same namespace policy on a Gateway of an untyped blueprint applies as it is
    cache.apply("GatewayConfig", "ADDED", pol("GatewayConfig", "shop", "b-pol", "Gateway", "b",
                                              override={"childClass": "evil"}))
    untyped = _verdict(cache, observer, "b", "old")
    assert untyped.values["childClass"] == "evil" and untyped.hold(provisioned=True) is None


def test_merged_values_that_break_the_schema_are_held_naming_the_level(
    cache: Cache, observer: Observer
) -> None:
    # every level is valid on its own, but nobody sets a required key
    cache.apply("GatewayClassBlueprint", "MODIFIED",
                bp("edge-bp", values=VALUES, defaults={"replicas": 2}))
    verdict = _verdict(cache, observer)
    assert verdict.left_out == ()
    assert verdict.problem is not None
    assert verdict.problem.startswith("values.childClass: is required (no level sets it)")
    assert 'GatewayClassBlueprint "edge-bp"' in verdict.problem
    assert verdict.hold(provisioned=False) == verdict.problem  # never provisioned with it
    # the class-wide policy supplies it: fine again
    cache.apply("GatewayClassConfig", "ADDED", pol(
        "GatewayClassConfig", "bifrost-system", "wide", "GatewayClass", "edge",
        default={"childClass": "edge-x"}))
    verdict = _verdict(cache, observer)
    assert verdict.problem is None and verdict.values["childClass"] == "edge-x"


def test_the_merged_break_names_the_policies_that_set_it(cache: Cache,
                                                        observer: Observer) -> None:
    # Each level is valid on its own (a map is checked key by key), but merged the map has
    # more keys than maxProperties allows: the message names both policies.
    labels = {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2}
    wider = {**VALUES, "schema": {**SCHEMA, "properties": {**SCHEMA["properties"],
                                                           "labels": labels}}}
    cache.apply("GatewayClassBlueprint", "MODIFIED", bp("edge-bp", values=wider))
    cache.apply("GatewayClassConfig", "ADDED", pol(
        "GatewayClassConfig", "bifrost-system", "wide", "GatewayClass", "edge",
        default={"labels": {"a": "1", "b": "2"}}))
    assert _verdict(cache, observer).problem is None
    cache.apply("GatewayClassConfig", "ADDED", pol(
        "GatewayClassConfig", "shop", "platform", "Namespace", "shop",
        default={"labels": {"c": "3"}}))
    verdict = _verdict(cache, observer)
    assert verdict.left_out == ()
    assert verdict.problem == (
        'values.labels: must have at most 2 keys (set by GatewayClassConfig '
        '"bifrost-system/wide" spec.default, GatewayClassConfig "shop/platform" spec.default)'
        ' — the merged values break GatewayClassBlueprint "edge-bp" spec.values.schema; fix the'
        " level named"
    )
    assert verdict.hold(provisioned=True) == verdict.problem


def test_a_policy_broken_by_a_narrower_schema_is_left_out(cache: Cache,
                                                          observer: Observer) -> None:
    cache.apply("GatewayClassConfig", "ADDED", pol(
        "GatewayClassConfig", "bifrost-system", "wide", "GatewayClass", "edge",
        override={"tier": "gold"}))
    assert _verdict(cache, observer).values["tier"] == "gold"
    narrower = {**VALUES, "schema": {**SCHEMA, "properties": {
        **SCHEMA["properties"], "tier": {"type": "string", "enum": ["silver"]}}}}
    cache.apply("GatewayClassBlueprint", "MODIFIED", bp("edge-bp", values=narrower))
    verdict = _verdict(cache, observer)
    assert verdict.problem is None
    [left] = verdict.left_out
    assert left.startswith('GatewayClassConfig "bifrost-system/wide": spec.override.tier: '
                           'must be one of "silver"')
    assert "tier" not in verdict.values


# ---------------------------------------------------------------- who is re-judged when


def test_policies_are_re_judged_when_their_blueprint_or_namespace_gateways_change(
    cache: Cache,
) -> None:
    on_class = pol("GatewayClassConfig", "bifrost-system", "wide", "GatewayClass", "edge")
    on_gw = pol("GatewayConfig", "shop", "mine", "Gateway", "a")
    on_ns = pol("GatewayConfig", "shop", "ns", "Namespace", "shop")
    elsewhere = pol("GatewayConfig", "other", "ns", "Namespace", "other")
    for p in (on_class, on_gw, on_ns, elsewhere):
        cache.apply(p["kind"], "ADDED", p)
    keys = cache.apply("GatewayClassBlueprint", "MODIFIED", bp("edge-bp", values=VALUES))
    judged = {(k.kind, k.namespace, k.name) for k in keys if k.kind in (
        "GatewayClassConfig", "GatewayConfig")}
    assert judged == {("GatewayClassConfig", "bifrost-system", "wide"),
                      ("GatewayConfig", "shop", "mine"), ("GatewayConfig", "shop", "ns")}
    # a new Gateway in the namespace may bring another blueprint: the namespace's policies
    keys = cache.apply("Gateway", "ADDED", gw("shop", "c", "old"))
    assert ("GatewayConfig", "shop", "ns") in {(k.kind, k.namespace, k.name) for k in keys}
    assert ("GatewayConfig", "other", "ns") not in {(k.kind, k.namespace, k.name) for k in keys}
