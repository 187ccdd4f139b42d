"""Peers over the API: child Gateways get loopback addresses, and their TLS servers serve exactly
the certificates they attach, swapping within a second of a change.

Everything goes through the emulated API server with the real Gateway API and cert-manager CRDs:
the test writes objects with ``bifrost.kube``, the peers react to watch events, and the test does
real TLS handshakes (SNI, CA trust root) against the port published on each child.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers_support import (
    HandshakeFailed,
    certificate,
    condition,
    crd_files,
    handshake,
    tls_secret,
    try_handshake,
)
from support.waiting import wait_for

from bifrost.kube.client import KubeClient
from devcluster.peers import PORT_ANNOTATION, IssuerOptions, LoadBalancerOptions, Peers
from devcluster.server import DevCluster

GW = "gateway.networking.k8s.io/v1"
CM = "cert-manager.io/v1"
LB = "elbv2.aws.upbound.io/v1beta1"
SWAP_BUDGET = 1.0  # seconds


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cluster = DevCluster(crd_paths=crd_files())
    cluster.start()
    cluster.register_permissive(
        group="elbv2.aws.upbound.io", version="v1beta1", kind="LB", plural="lbs", namespaced=False
    )
    path = tmp_path_factory.mktemp("peers") / "kubeconfig"
    cluster.write_kubeconfig(str(path))
    try:
        yield path
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def peers(kubeconfig: Path) -> Iterator[Peers]:
    p = Peers(
        kubeconfig,
        issuer_options=IssuerOptions(),
        lb_options=LoadBalancerOptions(child_gateway_classes=frozenset({"istio"})),
    ).start()
    yield p
    p.stop()


@pytest.fixture
def ns(kube: KubeClient) -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def gateway(ns: str, name: str, cls: str, listeners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": GW,
        "kind": "Gateway",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"gatewayClassName": cls, "listeners": listeners},
    }


def https(name: str, hostname: str | None, *secrets: str) -> dict[str, Any]:
    listener: dict[str, Any] = {
        "name": name,
        "port": 443,
        "protocol": "HTTPS",
        "tls": {"mode": "Terminate", "certificateRefs": [{"name": s} for s in secrets]},
    }
    if hostname:
        listener["hostname"] = hostname
    return listener


def port_of(kube: KubeClient, api_version: str, kind: str, name: str, ns: str | None) -> int:
    def read() -> int | None:
        obj = kube.get(api_version, kind, name, ns)
        value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(PORT_ANNOTATION)
        return int(value) if value else None

    return wait_for(read, what=f"{PORT_ANNOTATION} on {kind} {name}")


def issued_fingerprint(kube: KubeClient, peers: Peers, ns: str, secret: str) -> str:
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    obj = wait_for(lambda: kube.get("v1", "Secret", secret, ns), what=f"Secret {secret}")
    leaf = x509.load_pem_x509_certificates(base64.b64decode(obj["data"]["tls.crt"]))[0]
    return hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


def programmed(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        gw = kube.get(GW, "Gateway", name, ns)
        cond = condition(gw, "Programmed")
        if (
            gw
            and cond
            and cond["status"] == "True"
            and cond.get("observedGeneration") == gw["metadata"]["generation"]
        ):
            return gw
        return None

    return wait_for(check, what=f"Gateway {ns}/{name} Programmed")


def test_child_gateway_gets_a_loopback_address_and_status(
    kube: KubeClient, peers: Peers, ns: str
) -> None:
    kube.create(gateway(ns, "child", "istio", [https("web", "web.example.com", "missing")]))
    kube.create(gateway(ns, "parent", "bifrost", [https("web", "web.example.com", "missing")]))
    gw = programmed(kube, ns, "child")
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert condition(gw, "Accepted")["status"] == "True"  # type: ignore[index]
    [listener] = gw["status"]["listeners"]
    resolved = {c["type"]: c for c in listener["conditions"]}["ResolvedRefs"]
    assert (resolved["status"], resolved["reason"]) == ("False", "InvalidCertificateRef")
    port = port_of(kube, GW, "Gateway", "child", ns)
    assert peers.port(GW, "Gateway", ns, "child") == port
    # The Secret appearing resolves the reference.
    body = tls_secret(ns, "missing", peers.ca.issue(["web.example.com"]))
    del body["metadata"]["resourceVersion"]
    kube.apply(body, field_manager="test")

    def resolved_now() -> bool:
        obj = kube.get(GW, "Gateway", "child", ns) or {}
        conds = {c["type"]: c for c in obj["status"]["listeners"][0]["conditions"]}
        return conds["ResolvedRefs"]["status"] == "True" and conds["Programmed"]["status"] == "True"

    wait_for(resolved_now, what="ResolvedRefs=True after the Secret appears")
    # A generation bump is reflected in observedGeneration.
    kube.patch(GW, "Gateway", "child", ns, {"spec": {"listeners": [https("web", None, "missing")]}})
    gw = programmed(kube, ns, "child")
    assert gw["metadata"]["generation"] == 2
    # The parent (not a child class) is left alone: no address, no port.
    parent = kube.get(GW, "Gateway", "parent", ns) or {}
    assert not (parent.get("status") or {}).get("addresses")
    assert PORT_ANNOTATION not in ((parent.get("metadata") or {}).get("annotations") or {})
    assert peers.port(GW, "Gateway", ns, "parent") is None


def test_data_plane_serves_exactly_the_attached_certificates_and_swaps_fast(
    kube: KubeClient, peers: Peers, ns: str
) -> None:
    ca = peers.ca.cert_pem
    kube.create(certificate(ns, "old", "old-tls", ["app.example.com"], "any"))
    kube.create(certificate(ns, "new", "new-tls", ["app.example.com"], "any"))
    old_fp = issued_fingerprint(kube, peers, ns, "old-tls")
    new_fp = issued_fingerprint(kube, peers, ns, "new-tls")
    assert old_fp != new_fp
    kube.create(gateway(ns, "edge", "istio", [https("app", "app.example.com", "old-tls")]))
    port = port_of(kube, GW, "Gateway", "edge", ns)
    assert wait_for(lambda: try_handshake(port, "app.example.com", ca)) == old_fp
    with pytest.raises(HandshakeFailed):
        handshake(port, "unknown.example.com", ca, verify=False)

    latencies: dict[str, float] = {}

    def swap(label: str, refs: list[str], expect: str | None) -> None:
        t0 = time.monotonic()
        kube.patch(
            GW,
            "Gateway",
            "edge",
            ns,
            {"spec": {"listeners": [https("app", "app.example.com", *refs)]}},
        )
        if expect is None:
            wait_for(
                lambda: try_handshake(port, "app.example.com", ca) is None,
                timeout=SWAP_BUDGET,
                what=f"{label}: handshake refused",
            )
        else:
            wait_for(
                lambda: try_handshake(port, "app.example.com", ca) == expect,
                timeout=SWAP_BUDGET,
                what=f"{label}: new certificate served",
            )
        latencies[label] = time.monotonic() - t0

    # Rotation: attach beside the old (the newer one is served), detach the old, detach all.
    swap("attach new beside old", ["old-tls", "new-tls"], new_fp)
    swap("detach old", ["new-tls"], new_fp)
    swap("roll back to old", ["old-tls"], old_fp)
    # (an empty certificateRefs breaks the Gateway CRD's rule for mode Terminate: the listener
    # keeps one reference, to a Secret that does not exist)
    swap("detach all", ["no-such-secret"], None)
    # A Secret rewritten in place is served within the budget too.
    swap("re-attach", ["old-tls"], old_fp)
    replacement = peers.ca.issue(["app.example.com"])
    t0 = time.monotonic()
    body = tls_secret(ns, "old-tls", replacement)
    del body["metadata"]["resourceVersion"]
    kube.apply(body, field_manager="test")
    wait_for(
        lambda: try_handshake(port, "app.example.com", ca) == replacement.fingerprint_sha256,
        timeout=SWAP_BUDGET,
        what="rewritten Secret served",
    )
    latencies["Secret rewritten"] = time.monotonic() - t0
    for label, seconds in latencies.items():
        print(f"swap latency ({label}): {seconds * 1000:.1f} ms")
    assert max(latencies.values()) < SWAP_BUDGET


def test_each_child_has_its_own_port_closed_on_deletion(
    kube: KubeClient, peers: Peers, ns: str
) -> None:
    ca = peers.ca.cert_pem
    kube.create(certificate(ns, "a", "a-tls", ["a.example.com"], "any"))
    kube.create(certificate(ns, "b", "b-tls", ["b.example.com"], "any"))
    a_fp = issued_fingerprint(kube, peers, ns, "a-tls")
    b_fp = issued_fingerprint(kube, peers, ns, "b-tls")
    kube.create(gateway(ns, "ga", "istio", [https("a", None, "a-tls")]))
    kube.create(gateway(ns, "gb", "istio", [https("b", None, "b-tls")]))
    pa, pb = port_of(kube, GW, "Gateway", "ga", ns), port_of(kube, GW, "Gateway", "gb", ns)
    assert pa != pb
    assert wait_for(lambda: try_handshake(pa, "a.example.com", ca)) == a_fp
    assert wait_for(lambda: try_handshake(pb, "b.example.com", ca)) == b_fp
    assert try_handshake(pa, "b.example.com", ca) is None
    kube.delete(GW, "Gateway", "ga", ns)
    wait_for(lambda: peers.port(GW, "Gateway", ns, "ga") is None, what="ga's server stopped")
    # the data plane forgets the child's port before it stops its server (remove_child pops it,
    # then stops the serving thread and closes the socket): wait for the handshake to fail
    wait_for(lambda: try_handshake(pa, "a.example.com", ca) is None,
             what="ga's port no longer serving a.example.com")
    with pytest.raises(HandshakeFailed):
        handshake(pa, "a.example.com", ca)


def test_crossplane_load_balancer_gets_dns_name_conditions_and_a_port(
    kube: KubeClient, peers: Peers, ns: str
) -> None:
    name = f"lb-{ns}"
    kube.create(certificate(ns, "lb", "lb-tls", ["lb.example.com"], "any"))
    fp = issued_fingerprint(kube, peers, ns, "lb-tls")
    kube.create(
        {
            "apiVersion": LB,
            "kind": "LB",
            "metadata": {"name": name},
            "spec": {
                "forProvider": {
                    "region": "local",
                    "certificateSecretRefs": [{"name": "lb-tls", "namespace": ns}],
                }
            },
        }
    )

    def ready() -> dict[str, Any] | None:
        obj = kube.get(LB, "LB", name)
        r, s = condition(obj, "Ready"), condition(obj, "Synced")
        return obj if r and s and r["status"] == s["status"] == "True" else None

    obj = wait_for(ready, what="LB Ready and Synced")
    assert obj["status"]["atProvider"]["dnsName"] == "localhost"
    assert condition(obj, "Ready")["reason"] == "Available"  # type: ignore[index]
    port = port_of(kube, LB, "LB", name, None)
    assert wait_for(lambda: try_handshake(port, "lb.example.com", peers.ca.cert_pem)) == fp


def test_child_gateway_class_is_accepted(kube: KubeClient, peers: Peers) -> None:
    kube.create(
        {
            "apiVersion": GW,
            "kind": "GatewayClass",
            "metadata": {"name": "istio"},
            "spec": {"controllerName": "istio.io/gateway-controller"},
        }
    )

    def accepted() -> bool:
        cond = condition(kube.get(GW, "GatewayClass", "istio"), "Accepted")
        return bool(cond and cond["status"] == "True")

    wait_for(accepted, what="GatewayClass istio Accepted")


def test_ca_is_published_for_clients(kube: KubeClient, peers: Peers) -> None:
    cm = kube.get("v1", "ConfigMap", "devcluster-ca", "kube-public")
    assert cm is not None and cm["data"]["ca.crt"] == peers.ca.cert_pem.decode()


def test_without_a_data_plane_children_still_get_addresses_but_no_port(
    kube: KubeClient, kubeconfig: Path, peers: Peers, ns: str
) -> None:
    # A second set of peers for another child class; its issuer handles no Certificates.
    other = Peers(
        kubeconfig,
        issuer_options=IssuerOptions(issuer_names=frozenset()),
        lb_options=LoadBalancerOptions(child_gateway_classes=frozenset({"devcluster"})),
        dataplane=False,
        publish_ca=False,
    ).start()
    try:
        kube.create(gateway(ns, "plain", "devcluster", [https("web", None, "nothing")]))
        gw = programmed(kube, ns, "plain")
        assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
        annotations = gw["metadata"].get("annotations") or {}
        assert PORT_ANNOTATION not in annotations
        assert other.port(GW, "Gateway", ns, "plain") is None
        assert peers.port(GW, "Gateway", ns, "plain") is None
    finally:
        other.stop()
