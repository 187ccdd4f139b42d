"""Must show: ``bifrost-admin --server URL renew NS/NAME --wait`` against a devcluster with its
simulated peers (issuer, load balancer, TLS data plane) and a running controller follows a
real certificate rotation to success — through the admin API, as a ServiceAccount that RBAC
lets update ``gateways/operations`` (the ``edit`` role, by aggregation) — printing each state
the rotation passes through."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from remote_kit import ADMIN_ROLES, Accounts
from support.builders import gateway_class
from support.inprocess import running_controller, sqlite_store
from support.peers_cluster import peers_cluster
from support.waiting import wait_for
from typer.testing import CliRunner

from bifrost.admin.server import AdminApi, AdminApiServer, Gatekeeper
from bifrost.cli.admin import AdminEnv, app
from bifrost.kube import KubeClient

REPO = Path(__file__).resolve().parents[2]
GATEWAY_API = "gateway.networking.k8s.io/v1"

@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with peers_cluster(tmp_path_factory.mktemp("kube"), seed=11) as running:
        yield running.kubeconfig


def _blueprint(name: str) -> dict[str, Any]:
    example = REPO / "examples" / "in-cluster" / "10-blueprint.yaml"
    doc = copy.deepcopy(yaml.safe_load(example.read_text()))
    doc["metadata"] = {"name": name}
    doc["spec"]["tls"]["drainSeconds"] = 0
    return dict(doc)


def _gateway(namespace: str, name: str, class_name: str) -> dict[str, Any]:
    listener = {"name": "https-0", "protocol": "HTTPS", "port": 443, "hostname": "w.example.com",
                "tls": {"certificateRefs": [{"name": f"{name}-user-tls"}]}}
    return {"apiVersion": GATEWAY_API, "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": class_name, "listeners": [listener]}}


def _programmed(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        gw = kube.get(GATEWAY_API, "Gateway", name, namespace) or {}
        for c in (gw.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Programmed" and c.get("status") == "True":
                return gw
        return None

    return dict(wait_for(check, timeout=60, what=f"Gateway {namespace}/{name} Programmed"))


def test_renew_wait_follows_a_real_rotation_to_success(peers: Path, tmp_path: Path) -> None:
    kube = KubeClient.from_kubeconfig(peers)
    try:
        for doc in yaml.safe_load_all(ADMIN_ROLES.read_text()):
            kube.apply(doc)
        accounts = Accounts(peers, kube)
        ns = accounts.home
        suffix = uuid.uuid4().hex[:6]
        kube.apply(_blueprint(f"bp-{suffix}"))
        kube.apply(gateway_class(f"gc-{suffix}", f"bp-{suffix}"))
        with sqlite_store(tmp_path) as store, \
                running_controller(kube, store, name="admin-remote") as controller:
            kube.apply(_gateway(ns, "edge", f"gc-{suffix}"))
            uid = _programmed(kube, ns, "edge")["metadata"]["uid"]
            (old,) = [c for c in store.list_certificates(gateway_uid=uid) if c.attached]
            editor = accounts.token("editor", role="edit", namespace=ns)
            wait_for(lambda: "update" in str(kube.get("rbac.authorization.k8s.io/v1",
                                                      "ClusterRole", "edit")),
                     timeout=10, what="bifrost-operations-edit aggregated into edit")

            api = AdminApi(store, registry=controller.registry, clock=controller.clock,
                           gatekeeper=Gatekeeper(kube))
            server = AdminApiServer(api, "127.0.0.1", 0)
            server.start()
            try:
                result = CliRunner().invoke(
                    app,
                    ["--server", f"http://127.0.0.1:{server.port}", "--token", editor,
                     "renew", f"{ns}/edge", "--wait", "--timeout", "90"],
                    obj=AdminEnv(wait_interval=0.1),
                )
            finally:
                server.stop()
            assert result.exit_code == 0, (result.stdout, result.stderr)
            lines = result.stdout.splitlines()
            assert lines[0].startswith("started rotation #")
            assert f"as {accounts.user('editor')}" in lines[0]
            states = [m.group(1) for line in lines
                      if (m := re.search(r", state (\w+)", line)) and line.startswith("[")]
            assert len(set(states)) >= 3, lines  # it showed the rotation moving on
            assert re.match(r"operation #\d+ rotate_certificate succeeded in state \w+ after ",
                            lines[-1]), lines[-1]

            (new,) = [c for c in store.list_certificates(gateway_uid=uid) if c.attached]
            assert new.object_name != old.object_name
            assert new.fingerprint_sha256 != old.fingerprint_sha256
        accounts.close()
    finally:
        kube.close()


