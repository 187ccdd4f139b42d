"""cert-manager renews after bifrost rotates: the ``renewBefore``/``renewBeforePercentage``
bifrost sets on the Certificates it renders (half of its own margin), checked against both
renewal clocks — bifrost's (``bifrost.certificates.renewal.renewal_time``) and cert-manager's as
the devcluster issuer computes it — and the static check of a template that sets its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bifrost.api.blueprint import RenewBefore, parse_duration
from bifrost.api.cert_manager import issuer_renewal, renewal_conflict, with_issuer_renewal
from bifrost.certificates.renewal import renewal_time
from devcluster.peers.issuer import renewal_time as cert_manager_renewal_time

START = datetime(2026, 3, 1, tzinfo=UTC)
CERT = "cert-manager.io/v1"


def _cert(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": CERT, "kind": "Certificate", "metadata": {"name": "c"},
            "spec": {"secretName": "c-tls", **spec}}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, {"renewBeforePercentage": 16}),
        (RenewBefore(percentage=33), {"renewBeforePercentage": 16}),
        (RenewBefore(percentage=50), {"renewBeforePercentage": 25}),
        (RenewBefore(percentage=1), {"renewBeforePercentage": 1}),
        (RenewBefore(duration="720h"), {"renewBefore": "360h"}),
        (RenewBefore(duration="1h30m"), {"renewBefore": "45m"}),
    ],
)
def test_issuer_renewal_is_half_of_bifrosts_margin(
    policy: RenewBefore | None, expected: dict[str, Any]
) -> None:
    assert issuer_renewal(policy) == expected


@pytest.mark.parametrize("lifetime", [timedelta(days=90), timedelta(days=47), timedelta(hours=2)])
@pytest.mark.parametrize(
    "policy",
    [None, RenewBefore(percentage=10), RenewBefore(percentage=66), RenewBefore(duration="1h"),
     RenewBefore(duration="9999h")],
)
def test_cert_manager_renews_after_bifrost(
    lifetime: timedelta, policy: RenewBefore | None
) -> None:
    body = with_issuer_renewal(_cert(duration=f"{int(lifetime.total_seconds() // 3600)}h"),
                               policy)
    spec = body["spec"]
    not_after = START + lifetime
    ours = renewal_time(not_before=START, not_after=not_after, renew_before=policy).at
    theirs = cert_manager_renewal_time(
        START, not_after,
        parse_duration(spec["renewBefore"]) if "renewBefore" in spec else None,
        spec.get("renewBeforePercentage"))
    assert ours < theirs < not_after, (spec, ours, theirs)


def test_with_issuer_renewal_leaves_other_objects_and_explicit_values_alone() -> None:
    other = {"apiVersion": "acm.aws.upbound.io/v1beta1", "kind": "Certificate", "spec": {}}
    assert with_issuer_renewal(other, None) == {**other, "spec": {}}
    explicit = _cert(renewBefore="24h")
    assert with_issuer_renewal(explicit, None)["spec"] == {"secretName": "c-tls",
                                                           "renewBefore": "24h"}
    assert with_issuer_renewal(_cert(), RenewBefore(percentage=40))["spec"][
        "renewBeforePercentage"] == 20


TEMPLATE = "apiVersion: cert-manager.io/v1\nkind: Certificate\nspec:\n  secretName: x\n"


@pytest.mark.parametrize(
    ("extra", "policy", "conflict"),
    [
        ("", None, None),
        ("  renewBefore: 240h\n", None, None),  # 10 days of a 90-day default: after bifrost
        ("  renewBefore: 720h\n", None, "renewBefore: 720h"),  # 30 days: cert-manager first
        ("  renewBeforePercentage: 10\n", RenewBefore(percentage=20), None),
        ("  renewBeforePercentage: 20\n", RenewBefore(percentage=20),
         "renewBeforePercentage: 20"),
        ("  duration: 48h\n  renewBeforePercentage: 30\n", RenewBefore(duration="12h"),
         "renewBeforePercentage: 30"),
        ("  duration: 48h\n  renewBefore: 6h\n", RenewBefore(percentage=25), None),
        ("  renewBefore: {{ values.margin | to_json }}\n", None, "from an expression"),
        ("  renewBeforePercentage: lots\n", None, "not a whole percentage"),
    ],
)
def test_renewal_conflict(extra: str, policy: RenewBefore | None, conflict: str | None) -> None:
    found = renewal_conflict(TEMPLATE + extra, policy)
    if conflict is None:
        assert found is None
    else:
        assert found is not None and conflict in found
        assert found.startswith("spec.tls.certificateTemplate sets ")
        assert "remove it" in found
