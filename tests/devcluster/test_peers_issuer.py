"""The simulated issuer turns cert-manager Certificates into real TLS Secrets and status.

Runs against the emulated API server with the real cert-manager CRDs; the issuer is an ordinary
client over HTTP. Each test uses its own namespace and issuerRef name (the issuer under test only
handles that name), so issuers of different tests never act on each other's Certificates.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
from peers_support import certificate, condition, crd_files
from support.waiting import wait_for

from bifrost.clock import ManualClock
from bifrost.kube.client import KubeClient
from bifrost.kube.times import parse_time
from devcluster.client import Client
from devcluster.peers.issuer import Issuer, IssuerOptions, parse_duration, renewal_time
from devcluster.server import DevCluster

CM = "cert-manager.io/v1"


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cluster = DevCluster(crd_paths=crd_files())
    cluster.start()
    path = tmp_path_factory.mktemp("issuer") / "kubeconfig"
    cluster.write_kubeconfig(str(path))
    try:
        yield path
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    """The tests' own client (bifrost's), independent of the issuer's."""
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def issuer_client(kubeconfig: Path) -> Iterator[Client]:
    """The issuer's client (the devcluster's own)."""
    with Client.from_kubeconfig(kubeconfig) as client:
        yield client


@pytest.fixture
def ns(kube: KubeClient) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


IssuerFactory = Callable[..., Issuer]


@pytest.fixture
def make_issuer(issuer_client: Client, ns: str) -> Iterator[IssuerFactory]:
    started: list[Issuer] = []

    def make(clock: Any = None, **options: Any) -> Issuer:
        issuer = Issuer(
            issuer_client,
            options=IssuerOptions(issuer_names=frozenset({ns}), **options),
            clock=clock,
        )
        started.append(issuer.start())
        return issuer

    yield make
    for issuer in started:
        issuer.stop()


def ready_cert(kube: KubeClient, ns: str, name: str, revision: int = 1) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        cert = kube.get(CM, "Certificate", name, ns)
        ready = condition(cert, "Ready")
        if (
            cert
            and ready
            and ready["status"] == "True"
            and (cert.get("status") or {}).get("revision", 0) >= revision
        ):
            return cert
        return None

    return wait_for(check, timeout=10, what=f"Certificate {ns}/{name} revision {revision} Ready")


def leaf_of(secret: dict[str, Any]) -> x509.Certificate:
    return x509.load_pem_x509_certificates(base64.b64decode(secret["data"]["tls.crt"]))[0]


def test_issues_a_tls_secret_that_verifies_and_reports_ready(
    kube: KubeClient, ns: str, make_issuer: IssuerFactory
) -> None:
    issuer = make_issuer()
    kube.create(
        certificate(
            ns,
            "web",
            "web-tls",
            ["web.example.com", "www.example.com"],
            ns,
            duration="2h",
            renewBefore="30m",
            secretTemplate={"labels": {"team": "a"}},
        )
    )
    cert = ready_cert(kube, ns, "web")
    secret = kube.get("v1", "Secret", "web-tls", ns)
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    chain = x509.load_pem_x509_certificates(base64.b64decode(secret["data"]["tls.crt"]))
    leaf = chain[0]
    assert [c.serial_number for c in chain[1:]] == [issuer.ca.certificate.serial_number]
    assert base64.b64decode(secret["data"]["ca.crt"]) == issuer.ca.cert_pem
    assert base64.b64decode(secret["data"]["tls.key"]).startswith(b"-----BEGIN PRIVATE KEY-----")
    for name in ("web.example.com", "www.example.com"):
        PolicyBuilder().store(Store([issuer.ca.certificate])).build_server_verifier(
            x509.DNSName(name)
        ).verify(leaf, [])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == ["web.example.com", "www.example.com"]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=2)
    status = cert["status"]
    assert parse_time(status["notBefore"]) == leaf.not_valid_before_utc
    assert parse_time(status["notAfter"]) == leaf.not_valid_after_utc
    assert parse_time(status["renewalTime"]) == leaf.not_valid_after_utc - timedelta(minutes=30)
    assert status["revision"] == 1
    ready = condition(cert, "Ready")
    assert ready is not None
    assert (ready["reason"], ready["observedGeneration"]) == ("Ready", 1)
    assert condition(cert, "Issuing") is None
    ann = secret["metadata"]["annotations"]
    assert ann["cert-manager.io/certificate-name"] == "web"
    assert ann["cert-manager.io/issuer-name"] == ns
    assert ann["cert-manager.io/issuer-kind"] == "ClusterIssuer"
    assert ann["cert-manager.io/alt-names"] == "web.example.com,www.example.com"
    assert secret["metadata"]["labels"]["team"] == "a"
    assert [a.succeeded for a in issuer.attempts] == [True]


def test_default_lifetime_applies_and_renewal_is_a_third_before_expiry(
    kube: KubeClient, ns: str, make_issuer: IssuerFactory
) -> None:
    make_issuer(default_lifetime=timedelta(hours=3))
    kube.create(certificate(ns, "d", "d-tls", ["d.example.com"], ns))
    cert = ready_cert(kube, ns, "d")
    leaf = leaf_of(kube.get("v1", "Secret", "d-tls", ns) or {})
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=3)
    assert parse_time(cert["status"]["renewalTime"]) == leaf.not_valid_after_utc - timedelta(
        hours=1
    )


def test_changed_dns_names_and_deleted_secret_reissue(
    kube: KubeClient, ns: str, make_issuer: IssuerFactory
) -> None:
    make_issuer()
    kube.create(certificate(ns, "c", "c-tls", ["one.example.com"], ns))
    ready_cert(kube, ns, "c")
    first = leaf_of(kube.get("v1", "Secret", "c-tls", ns) or {})
    kube.patch(CM, "Certificate", "c", ns, {"spec": {"dnsNames": ["two.example.com"]}})
    cert = ready_cert(kube, ns, "c", revision=2)
    second = leaf_of(kube.get("v1", "Secret", "c-tls", ns) or {})
    assert second.serial_number != first.serial_number
    san = second.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["two.example.com"]
    assert condition(cert, "Ready")["observedGeneration"] == 2  # type: ignore[index]
    kube.delete("v1", "Secret", "c-tls", ns)
    ready_cert(kube, ns, "c", revision=3)
    third = leaf_of(
        wait_for(lambda: kube.get("v1", "Secret", "c-tls", ns), what="re-created Secret")
    )
    assert third.serial_number not in (first.serial_number, second.serial_number)


def _first_with_conditions(watcher: Client, created: dict[str, Any]) -> dict[str, Any]:
    """The first version of the Certificate ``created`` that has status conditions."""
    meta = created["metadata"]
    stream = watcher.watch(CM, "Certificate", resource_version=meta["resourceVersion"],
                           timeout_seconds=5)
    try:
        for event in stream:
            got = event.get("object") or {}
            if event.get("type") == "BOOKMARK" or got["metadata"].get("uid") != meta["uid"]:
                continue
            if (got.get("status") or {}).get("conditions"):
                return dict(got)
    finally:
        stream.close()
    raise AssertionError(f"no status conditions on Certificate {meta['name']} in its history")


def test_issuance_waits_for_the_configured_delay(
    kube: KubeClient, ns: str, make_issuer: IssuerFactory, issuer_client: Client
) -> None:
    issuer = make_issuer(issuance_delay=0.8)
    created = datetime.now(UTC)
    cert = kube.create(certificate(ns, "slow", "slow-tls", ["slow.example.com"], ns))
    ready_cert(kube, ns, "slow")
    # the first status said Issuing and not Ready: read from the watch history (polling for it
    # could miss a state that lasts the 0.8 s delay on a loaded machine)
    first = _first_with_conditions(issuer_client, cert)
    pending = condition(first, "Issuing")
    assert pending is not None and (pending["status"], pending["reason"]) == (
        "True", "DoesNotExist")
    ready = condition(first, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "DoesNotExist")
    [attempt] = issuer.attempts
    waited = (attempt.at - created).total_seconds()
    print(f"issued {waited:.2f}s after creation with a 0.8 s delay")
    assert waited >= 0.8


def test_failing_issuer_reports_failure_and_backs_off(
    kube: KubeClient, ns: str, make_issuer: IssuerFactory
) -> None:
    issuer = make_issuer(failure_rate=1.0, retry_interval=0.1)
    kube.create(certificate(ns, "f", "f-tls", ["f.example.com"], ns))

    def failed_three_times() -> dict[str, Any] | None:
        cert = kube.get(CM, "Certificate", "f", ns)
        if ((cert or {}).get("status") or {}).get("failedIssuanceAttempts", 0) >= 3:
            return cert
        return None

    cert = wait_for(failed_three_times, what="three failed attempts")
    issuing, ready = condition(cert, "Issuing"), condition(cert, "Ready")
    assert issuing is not None and (issuing["status"], issuing["reason"]) == ("False", "Failed")
    assert "simulated issuance failure" in issuing["message"]
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "DoesNotExist")
    assert cert["status"]["lastFailureTime"]
    assert kube.get("v1", "Secret", "f-tls", ns) is None
    attempts = issuer.attempts
    assert not any(a.succeeded for a in attempts)
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    # Exponential backoff: 0.1 s, 0.2 s, 0.4 s ... (no busy retry loop).
    for i, gap in enumerate(gaps[:3]):
        assert gap >= 0.1 * 2**i * 0.9, gaps


def test_failures_follow_the_seed(kube: KubeClient, ns: str, make_issuer: IssuerFactory) -> None:
    seed, rate = 7, 0.5

    def expected(name: str) -> list[bool]:
        """The documented draw: success sequence until the first success."""
        out = []
        for n in range(50):
            ok = random.Random(f"{seed}:{ns}/{name}:{n}").random() >= rate
            out.append(ok)
            if ok:
                return out
        raise AssertionError("no success in 50 draws")

    # The draws depend on the (random) namespace name: pick certificate names so that at least
    # one of them must fail first, instead of hoping the seed gives a failure, and none fails
    # more than 4 times (retries back off exponentially from 0.05 s: 4 failures wait 0.75 s in
    # all, 8 would wait 12.75 s, past ready_cert's deadline).
    candidates = [f"s{i}" for i in range(256) if len(expected(f"s{i}")) <= 5]
    failing = next(n for n in candidates if len(expected(n)) > 1)
    names = [failing, *[n for n in candidates if n != failing][:3]]
    want = {n: expected(n) for n in names}
    assert any(len(seq) > 1 for seq in want.values()), "the seed should produce some failures"
    issuer = make_issuer(failure_rate=rate, seed=seed, retry_interval=0.05)
    for n in names:
        kube.create(certificate(ns, n, f"{n}-tls", [f"{n}.example.com"], ns))
    for n in names:
        ready_cert(kube, ns, n)
    got: dict[str, list[bool]] = {n: [] for n in names}
    for attempt in issuer.attempts:
        got[attempt.name].append(attempt.succeeded)
    assert got == want


def test_renewal_follows_the_injected_clock(
    kube: KubeClient, ns: str, make_issuer: IssuerFactory
) -> None:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    issuer = make_issuer(clock=clock)
    kube.create(
        certificate(ns, "r", "r-tls", ["r.example.com"], ns, duration="1h", renewBefore="20m")
    )
    first = ready_cert(kube, ns, "r")
    renew_at = parse_time(first["status"]["renewalTime"])
    assert renew_at == parse_time(first["status"]["notAfter"]) - timedelta(minutes=20)
    clock.set(renew_at - timedelta(seconds=1))
    issuer.resync()
    assert kube.get(CM, "Certificate", "r", ns)["status"]["revision"] == 1  # type: ignore[index]
    clock.set(renew_at + timedelta(seconds=1))
    issuer.resync()
    second = ready_cert(kube, ns, "r", revision=2)
    assert parse_time(second["status"]["notBefore"]) == renew_at + timedelta(seconds=1)
    assert [a.trigger for a in issuer.attempts] == ["DoesNotExist", "Renewing"]


def test_manual_trigger_reissues(kube: KubeClient, ns: str, make_issuer: IssuerFactory) -> None:
    issuer = make_issuer()
    kube.create(certificate(ns, "m", "m-tls", ["m.example.com"], ns))
    cert = ready_cert(kube, ns, "m")
    conditions = cert["status"]["conditions"] + [
        {
            "type": "Issuing",
            "status": "True",
            "reason": "ManuallyTriggered",
            "message": "renew-now",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    kube.patch_status(CM, "Certificate", "m", ns, {"conditions": conditions})
    cert = ready_cert(kube, ns, "m", revision=2)
    assert condition(cert, "Issuing") is None
    assert [a.trigger for a in issuer.attempts] == ["DoesNotExist", "ManuallyTriggered"]


def test_unissuable_spec_is_reported(kube: KubeClient, ns: str, make_issuer: IssuerFactory) -> None:
    make_issuer()
    kube.create(certificate(ns, "bad", "bad-tls", [], ns))
    ready = wait_for(
        lambda: condition(kube.get(CM, "Certificate", "bad", ns), "Ready"), what="Ready"
    )
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")


def test_duration_and_renewal_arithmetic() -> None:
    assert parse_duration("2160h") == timedelta(days=90)
    assert parse_duration("1h30m0s") == timedelta(minutes=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    with pytest.raises(ValueError):
        parse_duration("10 minutes")
    nb = datetime(2026, 1, 1, tzinfo=UTC)
    na = nb + timedelta(hours=90)
    assert renewal_time(nb, na) == na - timedelta(hours=30)
    assert renewal_time(nb, na, timedelta(hours=1)) == na - timedelta(hours=1)
    assert renewal_time(nb, na, timedelta(hours=100)) == na - timedelta(hours=30)  # too long
    assert renewal_time(nb, na, None, 10) == na - timedelta(hours=9)
