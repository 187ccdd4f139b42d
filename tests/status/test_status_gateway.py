"""Gateway status: Accepted / Programmed, addresses, observedGeneration, change detection."""

from __future__ import annotations

from typing import Any

import pytest
from status_builders import LATER, NOW, brief, gateway, https, listener, secrets, tls_secret

from bifrost.status import Readiness, gateway_status, status_changed
from bifrost.status.gateway import normalize_addresses

READY = Readiness(programmed=True)
ADDR = [{"value": "10.0.0.1"}]


def compute(
    gw: dict[str, Any],
    *,
    readiness: Readiness = READY,
    addresses: list[dict[str, str]] | None = None,
    now: Any = NOW,
    accept_partial: bool = True,
    secret_list: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    return gateway_status(
        gw,
        secrets=secrets(*secret_list),
        grants=(),
        attached_routes={},
        readiness=readiness,
        addresses=ADDR if addresses is None else addresses,
        now=now,
        accept_partial=accept_partial,
    )


# (id, listeners, readiness, addresses, accept_partial, Accepted, Programmed)
CASES: list[tuple[str, list[dict[str, Any]], Readiness, list[dict[str, str]], bool, Any, Any]] = [
    (
        "all valid, ready",
        [listener()],
        READY,
        ADDR,
        True,
        ("True", "Accepted"),
        ("True", "Programmed"),
    ),
    (
        "children not ready",
        [listener()],
        Readiness(programmed=False),
        ADDR,
        True,
        ("True", "Accepted"),
        ("False", "Pending"),
    ),
    (
        "caller's reason",
        [listener()],
        Readiness(programmed=False, reason="Invalid", message="child x: template error"),
        ADDR,
        True,
        ("True", "Accepted"),
        ("False", "Invalid"),
    ),
    (
        "no address",
        [listener()],
        READY,
        [],
        True,
        ("True", "Accepted"),
        ("False", "AddressNotAssigned"),
    ),
    (
        "one of two listeners invalid: partial acceptance",
        [listener(), listener("tcp", protocol="TCP", port=9000)],
        READY,
        ADDR,
        True,
        ("True", "ListenersNotValid"),
        ("True", "Programmed"),
    ),
    (
        "one of two listeners invalid, strict",
        [listener(), listener("tcp", protocol="TCP", port=9000)],
        READY,
        ADDR,
        False,
        ("False", "ListenersNotValid"),
        ("False", "Invalid"),
    ),
    (
        "every listener invalid",
        [listener("tcp", protocol="TCP", port=9000)],
        READY,
        ADDR,
        True,
        ("False", "ListenersNotValid"),
        ("False", "Invalid"),
    ),
    (
        "all listeners conflicted",
        [listener("a"), listener("b")],
        READY,
        ADDR,
        True,
        ("False", "ListenersNotValid"),
        ("False", "Invalid"),
    ),
    (
        "a listener with unresolved refs",
        [listener(), https()],
        READY,
        ADDR,
        True,
        ("True", "ListenersNotValid"),
        ("True", "Programmed"),
    ),
]


@pytest.mark.parametrize(
    ("listeners", "readiness", "addresses", "accept_partial", "accepted", "programmed"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_gateway_conditions(
    listeners: list[dict[str, Any]],
    readiness: Readiness,
    addresses: list[dict[str, str]],
    accept_partial: bool,
    accepted: tuple[str, str],
    programmed: tuple[str, str],
) -> None:
    status = compute(
        gateway(*listeners), readiness=readiness, addresses=addresses, accept_partial=accept_partial
    )
    assert brief(status["conditions"], "Accepted") == accepted
    assert brief(status["conditions"], "Programmed") == programmed


def test_listeners_not_valid_message_names_listeners() -> None:
    status = compute(gateway(listener("web"), listener("a", port=81), listener("b", port=81)))
    msg = status["conditions"][0]["message"]
    assert "a: Accepted=False (HostnameConflict)" in msg
    assert "b: Accepted=False (HostnameConflict)" in msg
    assert "served listeners: web" in msg


def test_listeners_not_valid_message_agrees_with_listeners_accepted_true() -> None:
    """Issue #14 item 6: HTTPS listeners without a valid certificate report Accepted=True on
    their own entries; the Gateway's message must not call them "accepted listeners: none"."""
    status = compute(gateway(https("a"), https("b", hostname="b.example.com")))
    accepted = status["conditions"][0]
    assert (accepted["status"], accepted["reason"]) == ("False", "ListenersNotValid")
    for entry in status["listeners"]:
        assert brief(entry["conditions"], "Accepted") == ("True", "Accepted")
    msg = accepted["message"]
    assert "accepted listeners" not in msg
    assert "a: Accepted=True, ResolvedRefs=False (InvalidCertificateRef)" in msg
    assert "b: Accepted=True, ResolvedRefs=False (InvalidCertificateRef)" in msg
    assert msg.endswith("no listener can be served, so the Gateway is not accepted")


def test_addresses_written_and_typed() -> None:
    status = compute(
        gateway(),
        addresses=[{"value": "10.0.0.1"}, {"value": "lb.example.com"}, {"value": "10.0.0.1"}],
    )
    assert status["addresses"] == [
        {"type": "IPAddress", "value": "10.0.0.1"},
        {"type": "Hostname", "value": "lb.example.com"},
    ]
    assert "addresses" not in compute({**gateway(), "status": status}, addresses=[])


def test_normalize_addresses_keeps_explicit_type() -> None:
    assert normalize_addresses([{"type": "NamedAddress", "value": "x"}, {"value": ""}]) == [
        {"type": "NamedAddress", "value": "x"}
    ]


def test_observed_generation_follows_spec_changes() -> None:
    gw = gateway(listener(), generation=1)
    first = compute(gw)
    changed = gateway(
        listener(), listener("tcp", protocol="TCP", port=9000), generation=2, status=first
    )
    second = compute(changed, now=LATER)
    every = second["conditions"] + [c for item in second["listeners"] for c in item["conditions"]]
    assert {c["observedGeneration"] for c in every} == {2}
    # Accepted stayed True (partial): its transition time is kept; the reason moved on.
    accepted = second["conditions"][0]
    assert (accepted["reason"], accepted["lastTransitionTime"]) == (
        "ListenersNotValid",
        "2026-01-01T12:00:00Z",
    )


def test_last_transition_time_kept_when_unchanged_and_no_write_needed() -> None:
    gw = gateway(https())
    first = compute(gw, secret_list=(tls_secret(),))
    again = compute({**gw, "status": first}, now=LATER, secret_list=(tls_secret(),))
    assert again == first
    assert not status_changed(first, again)


def test_last_transition_time_moves_on_flip() -> None:
    gw = gateway(listener())
    first = compute(gw, readiness=Readiness(programmed=False))
    second = compute({**gw, "status": first}, now=LATER)
    assert status_changed(first, second)
    prog = second["conditions"][1]
    assert prog["status"] == "True" and prog["lastTransitionTime"] == "2026-01-01T13:00:00Z"
    assert second["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_certificate_fixed_flips_listener_resolved_refs() -> None:
    gw = gateway(https())
    broken = compute(gw)
    fixed = compute({**gw, "status": broken}, now=LATER, secret_list=(tls_secret(),))
    conds = fixed["listeners"][0]["conditions"]
    assert brief(conds, "ResolvedRefs") == ("True", "ResolvedRefs")
    assert brief(fixed["conditions"], "Accepted") == ("True", "Accepted")
    # Listener Accepted never changed: time kept.
    assert conds[0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_other_writers_conditions_and_fields_kept() -> None:
    op = {
        "type": "gateway.bifrost.dev/Operation",
        "status": "True",
        "reason": "Running",
        "message": "provision: apply-children",
        "lastTransitionTime": "2025-12-31T00:00:00Z",
        "observedGeneration": 1,
    }
    status = compute(gateway(status={"conditions": [op], "custom": {"x": 1}}))
    assert status["conditions"][0] == op
    assert [c["type"] for c in status["conditions"]] == [
        "gateway.bifrost.dev/Operation",
        "Accepted",
        "Programmed",
    ]
    assert status["custom"] == {"x": 1}


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        (None, {"conditions": []}, False),
        ({"addresses": []}, {}, False),
        ({"a": None}, {}, False),
        ({"listeners": [{"attachedRoutes": 0}]}, {"listeners": [{"attachedRoutes": 0}]}, False),
        ({"listeners": [{"attachedRoutes": 0}]}, {"listeners": [{"attachedRoutes": 1}]}, True),
        ({}, {"addresses": [{"value": "1.2.3.4"}]}, True),
    ],
)
def test_status_changed(old: dict[str, Any] | None, new: dict[str, Any], changed: bool) -> None:
    assert status_changed(old, new) is changed
