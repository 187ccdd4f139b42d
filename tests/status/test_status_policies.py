"""Policy status (``bifrost.status.policies``): attached where, or why not — Invalid (does not
parse, wrong place), TargetNotFound (missing, or not bifrost's), Conflicted (loses the tie-break
to a named policy) — and the status dict written from it."""

from __future__ import annotations

from typing import Any

import pytest
from status_builders import LATER, NOW

from bifrost.api.conditions import PolicyReason
from bifrost.api.policies import PolicyAttachment
from bifrost.status import status_changed
from bifrost.status.policies import (
    decide_policy,
    policy_status,
    precedence,
    target_key,
    winner,
)

OURS = "gateway.bifrost.dev/bifrost"
GROUP = "gateway.networking.k8s.io"
SYSTEM = "bifrost-system"
T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"


def pol(
    kind: str, ns: str, name: str, target_kind: str, target: str, *, created: str = T0,
    generation: int = 1, group: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.bifrost.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created,
                     "generation": generation},
        "spec": {
            "targetRef": {
                "group": ("" if target_kind == "Namespace" else GROUP) if group is None else group,
                "kind": target_kind,
                "name": target,
            },
            "default": {"size": "small"},
        },
    }


def gwc(name: str, *, controller: str = OURS) -> dict[str, Any]:
    return {"kind": "GatewayClass", "metadata": {"name": name},
            "spec": {"controllerName": controller}}


def gw(ns: str, name: str, cls: str = "edge") -> dict[str, Any]:
    return {"kind": "Gateway", "metadata": {"name": name, "namespace": ns},
            "spec": {"gatewayClassName": cls, "listeners": []}}


def namespace(name: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name}}


CLASS_WIDE = pol("GatewayClassConfig", SYSTEM, "wide", "GatewayClass", "edge")
NS_CLASS = pol("GatewayClassConfig", "shop", "platform", "Namespace", "shop")
NS_GW = pol("GatewayConfig", "shop", "team", "Namespace", "shop")
ON_GW = pol("GatewayConfig", "shop", "tune", "Gateway", "a")


@pytest.mark.parametrize(
    ("policy", "kwargs", "accepted", "reason", "attached", "says"),
    [
        # attached: class-wide, namespace (both kinds), gateway
        (CLASS_WIDE, {"target": gwc("edge")}, True, PolicyReason.ACCEPTED,
         [PolicyAttachment(group=GROUP, kind="GatewayClass", name="edge")],
         'attached to GatewayClass "edge" (class-wide level)'),
        (NS_CLASS, {"target": namespace("shop")}, True, PolicyReason.ACCEPTED,
         [PolicyAttachment(group="", kind="Namespace", name="shop")],
         'attached to Namespace "shop" (namespace level)'),
        (NS_GW, {"target": namespace("shop")}, True, PolicyReason.ACCEPTED,
         [PolicyAttachment(group="", kind="Namespace", name="shop")], "namespace level"),
        (ON_GW, {"target": gw("shop", "a"), "target_class": gwc("edge")}, True,
         PolicyReason.ACCEPTED,
         [PolicyAttachment(group=GROUP, kind="Gateway", namespace="shop", name="a")],
         'attached to Gateway "shop/a" (gateway level)'),
        # Invalid: wrong place, wrong group for the kind
        (pol("GatewayClassConfig", "shop", "wide", "GatewayClass", "edge"),
         {"target": gwc("edge")}, False, PolicyReason.INVALID, [],
         "must live in namespace 'bifrost-system'"),
        (pol("GatewayConfig", "shop", "team", "Namespace", "blog"),
         {"target": namespace("blog")}, False, PolicyReason.INVALID, [],
         "create it in the namespace it targets"),
        (pol("GatewayConfig", "shop", "tune", "Gateway", "a", group=""),
         {"target": gw("shop", "a"), "target_class": gwc("edge")}, False, PolicyReason.INVALID,
         [], "spec.targetRef"),
        # TargetNotFound: missing, or not bifrost's
        (CLASS_WIDE, {"target": None}, False, PolicyReason.TARGET_NOT_FOUND, [],
         'GatewayClass "edge" not found'),
        (ON_GW, {"target": None}, False, PolicyReason.TARGET_NOT_FOUND, [],
         'Gateway "shop/a" not found — create it or fix spec.targetRef'),
        (NS_GW, {"target": None}, False, PolicyReason.TARGET_NOT_FOUND, [],
         'Namespace "shop" not found'),
        (CLASS_WIDE, {"target": gwc("edge", controller="example.com/other")}, False,
         PolicyReason.TARGET_NOT_FOUND, [],
         "GatewayClass \"edge\" is managed by controller 'example.com/other', not by bifrost"),
        (ON_GW, {"target": gw("shop", "a", "istio"),
                 "target_class": gwc("istio", controller="istio.io/gateway-controller")},
         False, PolicyReason.TARGET_NOT_FOUND, [],
         'Gateway "shop/a" is of GatewayClass "istio", which is managed by controller '
         "'istio.io/gateway-controller'"),
        (ON_GW, {"target": gw("shop", "a", "gone"), "target_class": None}, False,
         PolicyReason.TARGET_NOT_FOUND, [],
         'Gateway "shop/a" is of GatewayClass "gone", which does not exist'),
    ],
)
def test_decide_policy(
    policy: dict[str, Any], kwargs: dict[str, Any], accepted: bool, reason: PolicyReason,
    attached: list[PolicyAttachment], says: str,
) -> None:
    verdict = decide_policy(policy, controller_namespace=SYSTEM, **kwargs)
    assert (verdict.accepted, verdict.reason) == (accepted, reason)
    assert list(verdict.attached_to) == attached
    assert says in verdict.message


def _conflict(policies: list[dict[str, Any]], me: dict[str, Any]) -> tuple[str, str]:
    target = gw("shop", "a") if me["spec"]["targetRef"]["kind"] == "Gateway" else (
        gwc("edge") if me["spec"]["targetRef"]["kind"] == "GatewayClass" else namespace("shop"))
    verdict = decide_policy(me, target=target, target_class=gwc("edge"), competitors=policies,
                            controller_namespace=SYSTEM)
    return str(verdict.reason), verdict.message


@pytest.mark.parametrize(
    ("policies", "expected_winner"),
    [
        # the oldest wins
        ([pol("GatewayConfig", "shop", "b", "Gateway", "a", created=T0),
          pol("GatewayConfig", "shop", "a", "Gateway", "a", created=T1)], "b"),
        # same creationTimestamp: the name decides
        ([pol("GatewayConfig", "shop", "zeta", "Gateway", "a", created=T1),
          pol("GatewayConfig", "shop", "alpha", "Gateway", "a", created=T1)], "alpha"),
        # an invalid or misplaced policy never wins, however old
        ([pol("GatewayClassConfig", "shop", "old", "GatewayClass", "edge", created=T0),
          pol("GatewayClassConfig", SYSTEM, "new", "GatewayClass", "edge", created=T2)], "new"),
        # three of a kind: one winner, two losers naming it
        ([pol("GatewayConfig", "shop", "c", "Namespace", "shop", created=T2),
          pol("GatewayConfig", "shop", "b", "Namespace", "shop", created=T1),
          pol("GatewayConfig", "shop", "a", "Namespace", "shop", created=T2)], "b"),
    ],
)
def test_conflicts_follow_the_documented_tie_break(
    policies: list[dict[str, Any]], expected_winner: str
) -> None:
    kind = policies[0]["kind"]
    best = winner(policies, kind, controller_namespace=SYSTEM)
    assert best is not None and best.raw["metadata"]["name"] == expected_winner
    for p in policies:
        reason, message = _conflict(policies, p)
        name = p["metadata"]["name"]
        if name == expected_winner:
            assert reason == PolicyReason.ACCEPTED, message
        elif reason != PolicyReason.INVALID:
            assert reason == PolicyReason.CONFLICTED
            ns = best.raw["metadata"]["namespace"]
            assert f'{kind} "{ns}/{expected_winner}"' in message
            assert "creationTimestamp, then name" in message


def test_policies_of_another_kind_or_target_do_not_conflict() -> None:
    # A namespace's GatewayClassConfig and GatewayConfig both apply (platform, then team).
    others = [NS_CLASS, pol("GatewayConfig", "shop", "older", "Gateway", "a", created="1999")]
    verdict = decide_policy(NS_GW, target=namespace("shop"), competitors=[*others, NS_GW],
                            controller_namespace=SYSTEM)
    assert verdict.accepted
    assert winner([NS_CLASS, NS_GW], "GatewayConfig") is not None


def test_winner_ignores_other_kinds_and_returns_none_without_eligible_policies() -> None:
    assert winner([], "GatewayConfig") is None
    assert winner([NS_CLASS], "GatewayConfig") is None
    misplaced = pol("GatewayConfig", "shop", "x", "Namespace", "blog")
    assert winner([misplaced], "GatewayConfig") is None
    assert precedence(NS_GW) == (T0, "team")


def test_target_key() -> None:
    assert target_key(ON_GW) == ("Gateway", "shop", "a")
    assert target_key(NS_GW) == ("Namespace", "", "shop")
    assert target_key(CLASS_WIDE) == ("GatewayClass", "", "edge")
    assert target_key({"spec": {"targetRef": {"kind": "Service", "name": "x"}}}) is None
    assert target_key({"spec": {}}) is None


def test_unparseable_policy_is_invalid_with_the_field() -> None:
    broken = pol("GatewayConfig", "shop", "x", "Gateway", "a")
    broken["spec"]["sneaky"] = True
    verdict = decide_policy(broken, target=gw("shop", "a"), target_class=gwc("edge"))
    assert (verdict.accepted, verdict.reason) == (False, PolicyReason.INVALID)
    assert 'GatewayConfig "shop/x": spec.sneaky: unknown field' in verdict.message


def test_policy_status_dict_and_change_detection() -> None:
    verdict = decide_policy(ON_GW, target=gw("shop", "a"), target_class=gwc("edge"))
    status = policy_status(ON_GW, verdict, now=NOW)
    assert status["observedGeneration"] == 1
    assert status["attachedTo"] == [
        {"group": GROUP, "kind": "Gateway", "namespace": "shop", "name": "a"}
    ]
    [cond] = status["conditions"]
    assert cond["type"] == "Accepted" and cond["status"] == "True"
    assert cond["reason"] == "Accepted" and cond["observedGeneration"] == 1
    written = {**ON_GW, "status": status}
    # unchanged: nothing to write, even an hour later
    again = policy_status(written, verdict, now=LATER)
    assert not status_changed(written["status"], again)
    # the target goes away: Accepted False, attachedTo emptied, a new transition time
    gone = decide_policy(written, target=None)
    lost = policy_status(written, gone, now=LATER)
    assert status_changed(written["status"], lost)
    assert lost["attachedTo"] == []
    [cond] = lost["conditions"]
    assert (cond["status"], cond["reason"]) == ("False", "TargetNotFound")
    assert cond["lastTransitionTime"] == "2026-01-01T13:00:00Z"
    # a spec change: the new generation shows in both places
    edited = {**written, "metadata": {**ON_GW["metadata"], "generation": 2}}
    newer = policy_status(edited, verdict, now=LATER)
    assert newer["observedGeneration"] == 2
    assert newer["conditions"][0]["observedGeneration"] == 2
    assert newer["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_the_gateway_config_a_gateway_names_in_parameters_ref_wins_over_age() -> None:
    older = pol("GatewayConfig", "shop", "older", "Gateway", "a", created=T0)
    named = pol("GatewayConfig", "shop", "named", "Gateway", "a", created=T2)
    both = [older, named]

    def judge(me: dict[str, Any], name: str | None) -> tuple[str, str]:
        verdict = decide_policy(me, target=gw("shop", "a"), target_class=gwc("edge"),
                                competitors=both, controller_namespace=SYSTEM, named=name)
        return str(verdict.reason), verdict.message

    # no parametersRef: the oldest wins
    assert judge(older, None)[0] == PolicyReason.ACCEPTED
    assert judge(named, None)[0] == PolicyReason.CONFLICTED
    # the Gateway names the younger one: it wins, and the older one says why it lost
    reason, message = judge(named, "named")
    assert reason == PolicyReason.ACCEPTED and "parametersRef" in message
    reason, message = judge(older, "named")
    assert reason == PolicyReason.CONFLICTED
    assert '"shop/named"' in message and "parametersRef names it" in message
    # a name no GatewayConfig on the Gateway has changes nothing (the Gateway is
    # InvalidParameters on its own status)
    assert judge(older, "missing")[0] == PolicyReason.ACCEPTED
    assert judge(named, "missing")[0] == PolicyReason.CONFLICTED
