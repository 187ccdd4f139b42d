"""An HTTPS listener whose certificate the blueprint provides (``tls.options``
``gateway.bifrost.dev/certificate: blueprint``, no certificateRefs — e.g. an ACM certificate on a
cloud load balancer, examples/cloud-edge) resolves; without the option, or with another value,
it is still ``InvalidCertificateRef``; certificateRefs, when present, are checked as always."""

from __future__ import annotations

from typing import Any

import pytest
from status_builders import gateway, listener

from bifrost.status.listeners import (
    CERTIFICATE_FROM_BLUEPRINT,
    CERTIFICATE_OPTION,
    evaluate_listeners,
)


def https_with(tls: dict[str, Any]) -> dict[str, Any]:
    out = listener("https", port=443, protocol="HTTPS", hostname="shop.example.com")
    out["tls"] = tls
    return out


def test_the_option_stands_in_for_certificate_refs() -> None:
    tls = {"mode": "Terminate", "options": {CERTIFICATE_OPTION: CERTIFICATE_FROM_BLUEPRINT}}
    [verdict] = evaluate_listeners(gateway(https_with(tls)), secrets={}, grants=[])
    assert verdict.resolved_refs and verdict.resolved_reason == "ResolvedRefs"
    assert verdict.blueprint_certificate and verdict.usable and verdict.valid
    assert verdict.valid_certificates == ()


@pytest.mark.parametrize(
    "tls",
    [
        {"mode": "Terminate"},
        {"mode": "Terminate", "options": {CERTIFICATE_OPTION: "secret"}},
        {"mode": "Terminate", "options": {"example.com/certificate": "blueprint"}},
    ],
    ids=["no-option", "other-value", "other-key"],
)
def test_without_the_option_no_certificate_refs_is_still_invalid(tls: dict[str, Any]) -> None:
    [verdict] = evaluate_listeners(gateway(https_with(tls)), secrets={}, grants=[])
    assert not verdict.resolved_refs
    assert verdict.resolved_reason == "InvalidCertificateRef"
    assert not verdict.usable and not verdict.blueprint_certificate


def test_certificate_refs_win_over_the_option() -> None:
    tls = {
        "mode": "Terminate",
        "certificateRefs": [{"kind": "Secret", "group": "", "name": "missing"}],
        "options": {CERTIFICATE_OPTION: CERTIFICATE_FROM_BLUEPRINT},
    }
    [verdict] = evaluate_listeners(gateway(https_with(tls)), secrets={}, grants=[])
    assert not verdict.resolved_refs and "not found" in verdict.resolved_message
    assert not verdict.blueprint_certificate and not verdict.usable


def test_the_option_means_nothing_on_an_http_listener() -> None:
    plain = listener("http", port=80, protocol="HTTP")
    plain["tls"] = {"options": {CERTIFICATE_OPTION: CERTIFICATE_FROM_BLUEPRINT}}
    [verdict] = evaluate_listeners(gateway(plain), secrets={}, grants=[])
    assert verdict.usable and not verdict.blueprint_certificate
