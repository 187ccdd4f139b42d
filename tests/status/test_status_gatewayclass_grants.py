"""GatewayClass status and the ReferenceGrant rule."""

from __future__ import annotations

from typing import Any

import pytest
from status_builders import GROUP, LATER, NOW, brief, grant

from bifrost.status import gatewayclass_status, permitted, status_changed


def gatewayclass(generation: int = 1, status: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": "bifrost", "generation": generation},
        "spec": {"controllerName": "gateway.bifrost.dev/bifrost"},
    }
    if status is not None:
        out["status"] = status
    return out


FEATURES = ["HTTPRoute", "Gateway", "ReferenceGrant", "Gateway"]


def test_accepted() -> None:
    status = gatewayclass_status(gatewayclass(), error=None, supported_features=FEATURES, now=NOW)
    assert brief(status["conditions"], "Accepted") == ("True", "Accepted")
    assert status["conditions"][0]["observedGeneration"] == 1
    assert status["supportedFeatures"] == [
        {"name": "Gateway"},
        {"name": "HTTPRoute"},
        {"name": "ReferenceGrant"},
    ]


@pytest.mark.parametrize(
    "error",
    [
        'GatewayClassBlueprint "edge" not found',
        'GatewayClassBlueprint "edge": template "lb": unknown dependency',
    ],
)
def test_invalid_parameters(error: str) -> None:
    status = gatewayclass_status(gatewayclass(), error=error, supported_features=[], now=NOW)
    assert brief(status["conditions"], "Accepted") == ("False", "InvalidParameters")
    assert status["conditions"][0]["message"] == error


def test_blueprint_fixed_then_unchanged() -> None:
    bad = gatewayclass_status(gatewayclass(), error="missing", supported_features=FEATURES, now=NOW)
    good = gatewayclass_status(
        gatewayclass(2, bad), error=None, supported_features=FEATURES, now=LATER
    )
    assert good["conditions"][0]["lastTransitionTime"] == "2026-01-01T13:00:00Z"
    again = gatewayclass_status(
        gatewayclass(2, good), error=None, supported_features=FEATURES, now=LATER
    )
    assert not status_changed(good, again)


G = GROUP
# (id, from (group, kind, ns), to (group, kind, ns, name), grants, permitted)
GRANTS: list[tuple[str, tuple[str, str, str], tuple[str, str, str, str], list[Any], bool]] = [
    ("same namespace needs none", (G, "Gateway", "a"), ("", "Secret", "a", "s"), [], True),
    ("cross without grant", (G, "Gateway", "a"), ("", "Secret", "b", "s"), [], False),
    (
        "grant for all secrets",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="b", from_ns="a")],
        True,
    ),
    (
        "grant naming it",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="b", from_ns="a", to_name="s")],
        True,
    ),
    (
        "grant naming another",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="b", from_ns="a", to_name="t")],
        False,
    ),
    (
        "grant in source namespace",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="a", from_ns="a")],
        False,
    ),
    (
        "grant from another namespace",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="b", from_ns="c")],
        False,
    ),
    (
        "grant for another from kind",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="b", from_ns="a", from_kind="HTTPRoute")],
        False,
    ),
    (
        "grant for another from group",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="b", from_ns="a", from_group="x.io")],
        False,
    ),
    (
        "grant for another to kind",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="b", from_ns="a", to_kind="Service")],
        False,
    ),
    (
        "grant for another to group",
        (G, "Gateway", "a"),
        ("", "Secret", "b", "s"),
        [grant(ns="b", from_ns="a", to_group="x.io")],
        False,
    ),
    (
        "entries are ORed",
        (G, "HTTPRoute", "a"),
        ("", "Service", "b", "svc"),
        [
            {
                "metadata": {"name": "g", "namespace": "b"},
                "spec": {
                    "from": [
                        {"group": G, "kind": "Gateway", "namespace": "a"},
                        {"group": G, "kind": "HTTPRoute", "namespace": "a"},
                    ],
                    "to": [
                        {"group": "", "kind": "Secret"},
                        {"group": "", "kind": "Service", "name": "svc"},
                    ],
                },
            }
        ],
        True,
    ),
    (
        "from and to come from the same grant",
        (G, "HTTPRoute", "a"),
        ("", "Service", "b", "svc"),
        [
            grant(ns="b", from_ns="a", from_kind="HTTPRoute", to_kind="Secret", name="g1"),
            grant(ns="b", from_ns="a", from_kind="Gateway", to_kind="Service", name="g2"),
        ],
        False,
    ),
]


@pytest.mark.parametrize(
    ("src", "dst", "grants", "want"), [c[1:] for c in GRANTS], ids=[c[0] for c in GRANTS]
)
def test_permitted(
    src: tuple[str, str, str], dst: tuple[str, str, str, str], grants: list[Any], want: bool
) -> None:
    got = permitted(
        from_group=src[0],
        from_kind=src[1],
        from_namespace=src[2],
        to_group=dst[0],
        to_kind=dst[1],
        to_namespace=dst[2],
        to_name=dst[3],
        grants=grants,
    )
    assert got is want
