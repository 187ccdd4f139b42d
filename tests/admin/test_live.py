"""``show --kubeconfig`` puts the live Gateway (from a real API server: the devcluster over HTTP)
beside what the store recorded, and an unreachable cluster is a one-line error."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.admin_fleet import Fleet

from bifrost.kube.client import KubeClient
from devcluster.kubeconfig import write_kubeconfig
from devcluster.server import DevCluster

GATEWAY_CRDS = Path(__file__).resolve().parents[2].parent / "shared" / "gateway-api" / "v1.6.1"
GW = "gateway.networking.k8s.io/v1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevCluster]:
    crds = sorted(GATEWAY_CRDS.glob("gateway.networking.k8s.io_*.yaml"))
    assert crds, f"Gateway API CRDs not found under {GATEWAY_CRDS}"
    devcluster = DevCluster(crd_paths=crds)
    devcluster.start()
    try:
        yield devcluster
    finally:
        devcluster.stop()


@pytest.fixture
def kubeconfig(cluster: DevCluster, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


def _live_gateway(kubeconfig: Path, namespace: str, name: str) -> str:
    """Create the Gateway with bifrost-like status; returns its uid."""
    with KubeClient.from_kubeconfig(kubeconfig) as kube:
        if kube.get("v1", "Namespace", namespace) is None:
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        created = kube.apply({
            "apiVersion": GW, "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": "public", "listeners": [
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "www.example.com",
                 "tls": {"certificateRefs": [{"name": "web-cert"}]}}]},
        })
        generation = created["metadata"]["generation"]
        programmed = {"type": "Programmed", "status": "False", "reason": "Pending",
                      "message": "waiting for the load balancer",
                      "lastTransitionTime": "2026-03-01T12:00:00Z",
                      "observedGeneration": generation}
        kube.patch_status(GW, "Gateway", name, namespace, {
            "conditions": [programmed],
            "addresses": [{"type": "IPAddress", "value": "203.0.113.7"}],
            "listeners": [{"name": "https", "attachedRoutes": 2, "supportedKinds": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                "conditions": [{**programmed, "type": "ResolvedRefs", "status": "True",
                                "reason": "ResolvedRefs", "message": ""}]}],
        })
        return str(created["metadata"]["uid"])


def test_show_with_kubeconfig_adds_the_live_conditions_listeners_and_addresses(
    sqlite_fleet: Fleet, kubeconfig: Path
) -> None:
    fleet = sqlite_fleet
    uid = _live_gateway(kubeconfig, "live-a", "web")
    fleet.store.upsert_gateway(uid=uid, namespace="live-a", name="web", now=fleet.clock.now())

    live = fleet.json("show", "live-a/web", "--kubeconfig", str(kubeconfig))["live"]
    assert live["found"] is True and live["uid"] == uid and live["store_uid_matches"] is True
    assert live["addresses"] == ["203.0.113.7"]
    [programmed] = live["conditions"]
    assert (programmed["type"], programmed["status"], programmed["reason"]) == (
        "Programmed", "False", "Pending")
    [listener] = live["listeners"]
    assert (listener["name"], listener["attached_routes"]) == ("https", 2)
    assert listener["conditions"][0]["type"] == "ResolvedRefs"

    table = fleet.ok("show", "live-a/web", "--kubeconfig", str(kubeconfig))
    section = table.split("Cluster (live from https://127.0.0.1:", 1)[1]
    assert f"uid {uid} (same as the store)" in section
    assert "addresses 203.0.113.7" in section
    assert any(line.split()[:3] == ["Programmed", "False", "Pending"]
               for line in section.splitlines())
    assert "Listener https (attached routes: 2)" in section
    # without --kubeconfig the store alone answers
    assert fleet.json("show", "live-a/web")["live"] is None


def test_show_with_kubeconfig_says_when_the_live_gateway_is_another_object_or_gone(
    sqlite_fleet: Fleet, kubeconfig: Path
) -> None:
    fleet = sqlite_fleet
    _live_gateway(kubeconfig, "live-b", "web")
    fleet.store.upsert_gateway(uid="old-uid", namespace="live-b", name="web",
                               now=fleet.clock.now())
    fleet.store.upsert_gateway(uid="gone-uid", namespace="live-b", name="gone",
                               now=fleet.clock.now())

    assert fleet.json("show", "live-b/web", "--kubeconfig", str(kubeconfig))["live"][
        "store_uid_matches"] is False
    assert "is NOT the store's old-uid: the Gateway was re-created" in fleet.ok(
        "show", "live-b/web", "--kubeconfig", str(kubeconfig))
    assert fleet.json("show", "live-b/gone", "--kubeconfig", str(kubeconfig))["live"][
        "found"] is False


def test_unreachable_cluster_or_missing_kubeconfig_is_a_one_line_error(
    sqlite_fleet: Fleet, tmp_path: Path
) -> None:
    fleet = sqlite_fleet
    fleet.gateway("infra", "web")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = write_kubeconfig(tmp_path / "dead", f"http://127.0.0.1:{port}")
    for kubeconfig, expected in ((dead, f"cluster at http://127.0.0.1:{port} did not answer "
                                        "for Gateway infra/web"),
                                 (tmp_path / "missing", "does not exist")):
        result = fleet.admin("show", "infra/web", "--kubeconfig", str(kubeconfig))
        assert result.exit_code == 1, result.stdout
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert expected in result.stderr
