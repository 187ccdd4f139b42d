"""Listener status: protocols, route kinds, certificates, ReferenceGrants, conflicts."""

from __future__ import annotations

from typing import Any

import pytest
from status_builders import (
    GROUP,
    NOW,
    brief,
    gateway,
    grant,
    https,
    listener,
    other_key,
    secrets,
    tls_secret,
)

from bifrost.status.listeners import (
    Readiness,
    check_tls_secret,
    evaluate_listeners,
    listener_statuses,
)

READY = Readiness(programmed=True)
HTTP_ROUTE = {"group": GROUP, "kind": "HTTPRoute"}
OK = ("True", "Accepted")
RESOLVED = ("True", "ResolvedRefs")
NO_CONFLICT = ("False", "NoConflicts")


def statuses(
    *listeners: dict[str, Any],
    secret_list: tuple[dict[str, Any], ...] = (),
    grants: tuple[dict[str, Any], ...] = (),
    readiness: Readiness = READY,
) -> dict[str, dict[str, Any]]:
    gw = gateway(*listeners)
    verdicts = evaluate_listeners(gw, secrets=secrets(*secret_list), grants=grants)
    out = listener_statuses(gw, verdicts, attached_routes={}, readiness=readiness, now=NOW)
    return {item["name"]: item for item in out}


# (id, listeners, secrets, grants, {listener: (Accepted, ResolvedRefs, Conflicted, Programmed)})
CASES: list[tuple[str, list[dict[str, Any]], tuple[Any, ...], tuple[Any, ...], dict[str, Any]]] = [
    (
        "plain http",
        [listener()],
        (),
        (),
        {"http": (OK, RESOLVED, NO_CONFLICT, ("True", "Programmed"))},
    ),
    (
        "https with a valid self-signed cert",
        [https()],
        (tls_secret(),),
        (),
        {"https": (OK, RESOLVED, NO_CONFLICT, ("True", "Programmed"))},
    ),
    *[
        (
            f"unsupported protocol {proto}",
            [listener("x", protocol=proto, port=9000)],
            (),
            (),
            {
                "x": (
                    ("False", "UnsupportedProtocol"),
                    RESOLVED,
                    NO_CONFLICT,
                    ("False", "Invalid"),
                )
            },
        )
        for proto in ("TLS", "TCP", "UDP")
    ],
    (
        "invalid route kind only",
        [listener(kinds=[{"kind": "TCPRoute"}])],
        (),
        (),
        {"http": (OK, ("False", "InvalidRouteKinds"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "invalid and valid route kinds",
        [listener(kinds=[{"kind": "FooRoute", "group": "foo.io"}, {"kind": "HTTPRoute"}])],
        (),
        (),
        {"http": (OK, ("False", "InvalidRouteKinds"), NO_CONFLICT, ("True", "Programmed"))},
    ),
    (
        "HTTPRoute in the core group is not a route kind",
        [listener(kinds=[{"kind": "HTTPRoute", "group": ""}])],
        (),
        (),
        {"http": (OK, ("False", "InvalidRouteKinds"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "certificate Secret missing",
        [https()],
        (),
        (),
        {"https": (OK, ("False", "InvalidCertificateRef"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "certificate Secret of the wrong type",
        [https()],
        (tls_secret(type_="Opaque"),),
        (),
        {"https": (OK, ("False", "InvalidCertificateRef"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "certificate Secret without tls.key",
        [https()],
        (tls_secret(drop="tls.key"),),
        (),
        {"https": (OK, ("False", "InvalidCertificateRef"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "certificate Secret without tls.crt",
        [https()],
        (tls_secret(drop="tls.crt"),),
        (),
        {"https": (OK, ("False", "InvalidCertificateRef"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "certificate Secret with unparseable PEM",
        [https()],
        (tls_secret(crt=b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"),),
        (),
        {"https": (OK, ("False", "InvalidCertificateRef"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "certificate ref of an unsupported kind",
        [listener("https", port=443, protocol="HTTPS", certs=[{"kind": "ConfigMap", "name": "x"}])],
        (),
        (),
        {"https": (OK, ("False", "InvalidCertificateRef"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "cross-namespace Secret without a ReferenceGrant",
        [https(ns="certs")],
        (tls_secret(ns="certs"),),
        (),
        {"https": (OK, ("False", "RefNotPermitted"), NO_CONFLICT, ("False", "Invalid"))},
    ),
    (
        "cross-namespace Secret with a ReferenceGrant",
        [https(ns="certs")],
        (tls_secret(ns="certs"),),
        (grant(ns="certs"),),
        {"https": (OK, RESOLVED, NO_CONFLICT, ("True", "Programmed"))},
    ),
    (
        "cross-namespace Secret with a ReferenceGrant naming it",
        [https(ns="certs")],
        (tls_secret(ns="certs"),),
        (grant(ns="certs", to_name="tls"),),
        {"https": (OK, RESOLVED, NO_CONFLICT, ("True", "Programmed"))},
    ),
    *[
        (
            f"cross-namespace Secret, grant not matching: {why}",
            [https(ns="certs")],
            (tls_secret(ns="certs"),),
            (g,),
            {"https": (OK, ("False", "RefNotPermitted"), NO_CONFLICT, ("False", "Invalid"))},
        )
        for why, g in [
            ("grant in the wrong namespace", grant(ns="infra")),
            ("other source namespace", grant(ns="certs", from_ns="elsewhere")),
            ("other source kind", grant(ns="certs", from_kind="HTTPRoute")),
            ("other target kind", grant(ns="certs", to_kind="Service")),
            ("other target name", grant(ns="certs", to_name="other")),
        ]
    ],
    (
        "same port, different protocols",
        [listener("a", port=8443), https("b", port=8443), listener("c", port=80)],
        (tls_secret(),),
        (),
        {
            name: (
                ("False", "ProtocolConflict"),
                RESOLVED,
                ("True", "ProtocolConflict"),
                ("False", "Invalid"),
            )
            for name in ("a", "b")
        }
        | {"c": (OK, RESOLVED, NO_CONFLICT, ("True", "Programmed"))},
    ),
    (
        "same port, protocol and hostname",
        [
            listener("a", hostname="a.example.com"),
            listener("b", hostname="a.example.com"),
            listener("c", hostname="c.example.com"),
        ],
        (),
        (),
        {
            name: (
                ("False", "HostnameConflict"),
                RESOLVED,
                ("True", "HostnameConflict"),
                ("False", "Invalid"),
            )
            for name in ("a", "b")
        }
        | {"c": (OK, RESOLVED, NO_CONFLICT, ("True", "Programmed"))},
    ),
    (
        "two listeners without hostname on one port conflict",
        [listener("a"), listener("b")],
        (),
        (),
        {
            name: (
                ("False", "HostnameConflict"),
                RESOLVED,
                ("True", "HostnameConflict"),
                ("False", "Invalid"),
            )
            for name in ("a", "b")
        },
    ),
    (
        "same hostname on different ports is distinct",
        [
            listener("a", hostname="a.example.com"),
            listener("b", port=8080, hostname="a.example.com"),
        ],
        (),
        (),
        {name: (OK, RESOLVED, NO_CONFLICT, ("True", "Programmed")) for name in ("a", "b")},
    ),
    (
        "unsupported protocol takes no part in conflicts",
        [listener("a"), listener("t", protocol="TCP")],
        (),
        (),
        {
            "a": (OK, RESOLVED, NO_CONFLICT, ("True", "Programmed")),
            "t": (("False", "UnsupportedProtocol"), RESOLVED, NO_CONFLICT, ("False", "Invalid")),
        },
    ),
]


@pytest.mark.parametrize(
    ("listeners", "secret_list", "grants", "want"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_listener_conditions(
    listeners: list[dict[str, Any]],
    secret_list: tuple[dict[str, Any], ...],
    grants: tuple[dict[str, Any], ...],
    want: dict[str, Any],
) -> None:
    got = statuses(*listeners, secret_list=secret_list, grants=grants)
    assert set(got) == {x["name"] for x in listeners}
    for name, (accepted, resolved, conflicted, programmed) in want.items():
        conds = got[name]["conditions"]
        assert [c["type"] for c in conds] == [
            "Accepted",
            "Programmed",
            "ResolvedRefs",
            "Conflicted",
        ]
        assert brief(conds, "Accepted") == accepted, name
        assert brief(conds, "ResolvedRefs") == resolved, name
        assert brief(conds, "Conflicted") == conflicted, name
        assert brief(conds, "Programmed") == programmed, name
        assert all(c["observedGeneration"] == 1 for c in conds)


@pytest.mark.parametrize(
    ("spec", "kinds"),
    [
        (listener(), [HTTP_ROUTE]),
        (https(), [HTTP_ROUTE]),
        (
            listener(kinds=[{"kind": "HTTPRoute"}, {"kind": "HTTPRoute", "group": GROUP}]),
            [HTTP_ROUTE],
        ),
        (listener(kinds=[{"kind": "GRPCRoute"}, {"kind": "HTTPRoute"}]), [HTTP_ROUTE]),
        (listener(kinds=[{"kind": "GRPCRoute"}]), []),
        (listener(protocol="TLS", port=443), []),
    ],
    ids=["http default", "https default", "duplicates", "valid only", "none valid", "tls"],
)
def test_supported_kinds(spec: dict[str, Any], kinds: list[dict[str, str]]) -> None:
    got = statuses(spec, secret_list=(tls_secret(),))
    assert got[spec["name"]]["supportedKinds"] == kinds


def test_messages_name_the_problem() -> None:
    got = statuses(https(ns="certs"), listener("x", port=81, protocol="UDP"))
    assert "certs/tls" in got["https"]["conditions"][2]["message"]
    assert "ReferenceGrant" in got["https"]["conditions"][2]["message"]
    assert "'UDP'" in got["x"]["conditions"][0]["message"]


def test_invalid_kinds_and_bad_certificate_reported_together() -> None:
    spec = https(kinds=[{"kind": "TCPRoute"}, {"kind": "HTTPRoute"}])
    conds = statuses(spec)["https"]["conditions"]
    assert brief(conds, "ResolvedRefs") == ("False", "InvalidRouteKinds")
    assert "not found" in conds[2]["message"]


def test_one_bad_of_two_certificates_keeps_the_listener_usable() -> None:
    spec = listener(
        "https",
        port=443,
        protocol="HTTPS",
        certs=[{"kind": "Secret", "name": "tls"}, {"kind": "Secret", "name": "gone"}],
    )
    conds = statuses(spec, secret_list=(tls_secret(),))["https"]["conditions"]
    assert brief(conds, "ResolvedRefs") == ("False", "InvalidCertificateRef")
    assert brief(conds, "Programmed") == ("True", "Programmed")


@pytest.mark.parametrize(
    ("readiness", "programmed"),
    [
        (Readiness(programmed=True), ("True", "Programmed")),
        (Readiness(programmed=False), ("False", "Pending")),
        (
            Readiness(programmed=False, reason="Invalid", message="child lb: rejected"),
            ("False", "Invalid"),
        ),
    ],
)
def test_programmed_follows_children(readiness: Readiness, programmed: tuple[str, str]) -> None:
    conds = statuses(listener(), readiness=readiness)["http"]["conditions"]
    assert brief(conds, "Programmed") == programmed
    assert conds[1]["message"] == readiness.message


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (tls_secret(), None),
        (tls_secret(type_="Opaque"), "not 'kubernetes.io/tls'"),
        (tls_secret(drop="tls.crt"), "has no tls.crt"),
        (tls_secret(drop="tls.key"), "has no tls.key"),
        (tls_secret(key=b"garbage"), "tls.key is not"),
        (tls_secret(crt=b"garbage"), "tls.crt is not a PEM certificate"),
        (tls_secret(key=other_key()), "does not match"),
        ({**tls_secret(), "data": {"tls.crt": "!!!", "tls.key": "!!!"}}, "not valid base64"),
    ],
    ids=["valid", "type", "no crt", "no key", "bad key", "bad crt", "mismatch", "base64"],
)
def test_check_tls_secret(secret: dict[str, Any], problem: str | None) -> None:
    got = check_tls_secret(secret)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got


def test_stale_listener_entries_dropped_and_attached_routes_reported() -> None:
    old = {
        "listeners": [{"name": "gone", "attachedRoutes": 3, "supportedKinds": [], "conditions": []}]
    }
    gw = gateway(listener(), status=old)
    verdicts = evaluate_listeners(gw, secrets={}, grants=())
    out = listener_statuses(gw, verdicts, attached_routes={"http": 2}, readiness=READY, now=NOW)
    assert [(x["name"], x["attachedRoutes"]) for x in out] == [("http", 2)]


def test_empty_tls_mode_means_terminate() -> None:
    spec = https()
    spec["tls"]["mode"] = ""
    conds = statuses(spec)["https"]["conditions"]
    assert brief(conds, "ResolvedRefs") == ("False", "InvalidCertificateRef")


def test_hostname_conflict_ignores_case_and_empty_hostname() -> None:
    got = statuses(listener("a", hostname="A.example.com"), listener("b", hostname="a.example.com"))
    assert brief(got["a"]["conditions"], "Conflicted") == ("True", "HostnameConflict")
    got = statuses(listener("a", hostname=""), listener("b"))
    assert brief(got["b"]["conditions"], "Conflicted") == ("True", "HostnameConflict")
