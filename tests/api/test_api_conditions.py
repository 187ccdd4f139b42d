"""Condition helpers: Gateway API merge semantics, pure and with the clock passed in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from bifrost.api import (
    OPERATION_CONDITION,
    Condition,
    ConditionStatus,
    GatewayClassReason,
    GatewayConditionType,
    GatewayReason,
    ListenerReason,
    RouteReason,
    condition,
    find_condition,
    parse_conditions,
    remove_condition,
    set_condition,
)

T0 = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_condition_builds_metav1_condition() -> None:
    c = condition(
        "Programmed",
        False,
        reason=GatewayReason.ADDRESS_NOT_ASSIGNED,
        message="waiting",
        generation=3,
        now=T0,
    )
    assert c.status is ConditionStatus.FALSE and not c.is_true
    assert c.observed_generation == 3
    assert c.last_transition_time == T0.replace(microsecond=0)  # metav1.Time precision
    assert c.to_api() == {
        "type": "Programmed",
        "status": "False",
        "observedGeneration": 3,
        "lastTransitionTime": "2026-11-25T10:00:00Z",
        "reason": "AddressNotAssigned",
        "message": "waiting",
    }
    assert Condition.model_validate(c.to_api()) == c


def test_times_are_normalised_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    c = condition("Accepted", True, reason="Accepted", generation=1, now=T0.astimezone(cet))
    assert c.to_api()["lastTransitionTime"] == "2026-11-25T10:00:00Z"
    with pytest.raises(ValidationError):
        condition("Accepted", True, reason="Accepted", generation=1, now=datetime(2026, 1, 1))


def test_status_unchanged_keeps_transition_time_but_takes_the_rest() -> None:
    old = condition("Programmed", "True", reason="Programmed", message="ok", generation=1, now=T0)
    new = condition(
        "Programmed", "True", reason="Programmed", message="still ok", generation=2, now=T1
    )
    (merged,) = set_condition((old,), new)
    assert merged.last_transition_time == old.last_transition_time
    assert (merged.observed_generation, merged.message) == (2, "still ok")


def test_status_change_moves_transition_time() -> None:
    old = condition("Programmed", True, reason="Programmed", generation=1, now=T0)
    new = condition(
        "Programmed", False, reason="Invalid", message="bad child", generation=2, now=T1
    )
    (merged,) = set_condition((old,), new)
    assert merged == new and merged.last_transition_time == T1.replace(microsecond=0)


def test_identical_write_is_a_no_op() -> None:
    conds = (
        condition("Accepted", True, reason="Accepted", generation=4, now=T0),
        condition("Programmed", True, reason="Programmed", generation=4, now=T0),
    )
    again = condition("Programmed", True, reason="Programmed", generation=4, now=T1)
    assert set_condition(conds, again) == conds  # callers skip the status write


def test_order_and_foreign_conditions_are_preserved() -> None:
    foreign = Condition(
        type="example.com/Special",
        status=ConditionStatus.UNKNOWN,
        reason="Whatever",
        message="",
        last_transition_time=T0,
    )
    accepted = condition("Accepted", True, reason="Accepted", generation=1, now=T0)
    conds = (foreign, accepted)
    op = condition(
        OPERATION_CONDITION, True, reason="Provisioning", message="step apply", generation=1, now=T1
    )
    out = set_condition(
        set_condition(conds, op),
        condition("Accepted", False, reason="Invalid", generation=2, now=T1),
    )
    assert [c.type for c in out] == ["example.com/Special", "Accepted", OPERATION_CONDITION]
    assert out[0] is foreign
    assert find_condition(out, "Accepted") is not None and find_condition(out, "Nope") is None
    assert [c.type for c in remove_condition(out, OPERATION_CONDITION)] == [
        "example.com/Special",
        "Accepted",
    ]


def test_newer_generation_is_never_overwritten() -> None:
    newer = condition("Accepted", True, reason="Accepted", generation=7, now=T1)
    stale = condition("Accepted", False, reason="Invalid", generation=6, now=T1)
    assert set_condition((newer,), stale) == (newer,)


def test_validation_mirrors_metav1() -> None:
    with pytest.raises(ValidationError):
        condition("Accepted", True, reason="", generation=1, now=T0)  # reason may not be empty
    with pytest.raises(ValidationError):
        condition("Accepted", True, reason="not camel case", generation=1, now=T0)
    with pytest.raises(ValidationError):
        condition("bad type!", True, reason="Accepted", generation=1, now=T0)
    with pytest.raises(ValidationError):
        condition("Accepted", True, reason="Accepted", generation=-1, now=T0)
    with pytest.raises(ValueError):
        condition("Accepted", "Maybe", reason="Accepted", generation=1, now=T0)


def test_parse_conditions_from_api_status() -> None:
    raw = [
        {
            "type": "Accepted",
            "status": "Unknown",
            "reason": "Pending",
            "message": "Waiting for controller",
            "lastTransitionTime": "1970-01-01T00:00:00Z",
        }
    ]
    (c,) = parse_conditions(raw)
    assert c.status is ConditionStatus.UNKNOWN and c.observed_generation is None
    assert parse_conditions(None) == ()


def test_reason_constants_are_the_spec_strings() -> None:
    # spot checks against Gateway API v1.6.1 (apis/v1/*_types.go)
    assert GatewayConditionType.PROGRAMMED.value == "Programmed"
    assert GatewayReason.LISTENERS_NOT_VALID.value == "ListenersNotValid"
    assert ListenerReason.INVALID_CERTIFICATE_REF.value == "InvalidCertificateRef"
    assert ListenerReason.HOSTNAME_CONFLICT.value == "HostnameConflict"
    assert RouteReason.NO_MATCHING_LISTENER_HOSTNAME.value == "NoMatchingListenerHostname"
    assert RouteReason.BACKEND_NOT_FOUND.value == "BackendNotFound"
    assert f"{ListenerReason.UNSUPPORTED_PROTOCOL}" == "UnsupportedProtocol"


SHARED_CRDS = Path(__file__).resolve().parents[3] / "shared" / "gateway-api" / "v1.6.1"


@pytest.mark.skipif(not SHARED_CRDS.exists(), reason="shared Gateway API CRDs not present")
def test_reasons_named_in_the_gateway_api_crds_are_constants() -> None:
    known = {
        str(member)
        for enum in (GatewayClassReason, GatewayReason, ListenerReason, RouteReason)
        for member in enum
    }
    quoted: set[str] = set()
    for name in ("gatewayclasses", "gateways", "httproutes"):
        text = (SHARED_CRDS / f"gateway.networking.k8s.io_{name}.yaml").read_text()
        for line in text.splitlines():
            if "reason" in line.lower():
                quoted |= set(re.findall(r'"([A-Z][A-Za-z]+)"', line))
    quoted -= {"True", "False", "Unknown"}
    assert quoted, "no reasons found: the CRD text changed shape"
    assert quoted <= known, sorted(quoted - known)
