"""Fixtures for bifrost-admin against the admin API: a devcluster with RBAC enforced (its
default) and bifrost's admin ClusterRoles from deploy/, ServiceAccount tokens (TokenRequest)
bound to Kubernetes' user-facing roles, and the admin API served over a test fleet's store.

The server reviews callers through the cluster admin's client (as the controller does through
its own ServiceAccount, which deploy/base/rbac.yaml lets create the two reviews)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from support.admin_fleet import Fleet, make_fleet
from support.devcluster import crd_paths
from support.waiting import wait_for
from typer.testing import CliRunner, Result

from bifrost.admin.server import AdminApi, AdminApiServer, Gatekeeper
from bifrost.cli.admin import AdminEnv, app
from bifrost.kube import KubeClient
from bifrost.store import migrate
from devcluster.server import DevCluster

REPO = Path(__file__).resolve().parents[2]
ADMIN_ROLES = REPO / "deploy" / "base" / "rbac-admin.yaml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevCluster]:
    dc = DevCluster(crd_paths=[*crd_paths(), REPO / "deploy" / "crds"])
    dc.start()
    try:
        yield dc
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"


@pytest.fixture(scope="module")
def kubeconfig(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(scope="module")
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    kube = KubeClient.from_kubeconfig(kubeconfig)
    for doc in yaml.safe_load_all(ADMIN_ROLES.read_text()):
        kube.apply(doc)

    def aggregated(role: str) -> bool:
        rules = (kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", role) or {}).get("rules")
        return any("gateways/operations" in r.get("resources", []) for r in rules or [])

    # ClusterRole aggregation is a controller's work, as in a real cluster: wait for it.
    wait_for(lambda: all(aggregated(r) for r in ("view", "edit", "admin")), timeout=10,
             what="bifrost's admin roles aggregated into view, edit and admin")
    try:
        yield kube
    finally:
        kube.close()


class Accounts:
    """ServiceAccounts with a token each, bound (or not) to a role in a namespace."""

    def __init__(self, kubeconfig: Path, kube: KubeClient) -> None:
        self.api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
        self.kube = kube
        self.home = f"sa-{uuid.uuid4().hex[:6]}"
        self.namespace(self.home)

    def namespace(self, name: str) -> None:
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def token(self, name: str, *, role: str | None = None, namespace: str | None = None) -> str:
        """A TokenRequest token of ServiceAccount ``name``; with ``role``, a RoleBinding of
        that ClusterRole in ``namespace`` (a ClusterRoleBinding when ``namespace`` is None)."""
        core = k8s.CoreV1Api(self.api)
        core.create_namespaced_service_account(self.home, {"metadata": {"name": name}})
        if role is not None:
            subject = {"kind": "ServiceAccount", "name": name, "namespace": self.home}
            binding: dict[str, Any] = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
                "metadata": {"name": f"{self.home}-{name}",
                             **({"namespace": namespace} if namespace else {})},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": role},
                "subjects": [subject],
            }
            self.kube.apply(binding)
        answer = core.create_namespaced_service_account_token(
            name, self.home, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                              "spec": {}})
        return str(answer.status.token)

    def user(self, name: str) -> str:
        return f"system:serviceaccount:{self.home}:{name}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kube.delete("v1", "Namespace", self.home)
        self.api.close()


@pytest.fixture
def accounts(kubeconfig: Path, kube: KubeClient) -> Iterator[Accounts]:
    made = Accounts(kubeconfig, kube)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    made = make_fleet(url)
    try:
        yield made
    finally:
        made.store.close()


@contextlib.contextmanager
def serving(fleet: Fleet, kube: KubeClient) -> Iterator[str]:
    """The admin API over ``fleet``'s store, clock and machines; yields its URL."""
    api = AdminApi(fleet.store, registry=fleet.registry, clock=fleet.clock,
                   gatekeeper=Gatekeeper(kube))
    server = AdminApiServer(api, "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def server(fleet: Fleet, kube: KubeClient) -> Iterator[str]:
    with serving(fleet, kube) as url:
        yield url


Remote = Callable[..., Result]


@pytest.fixture
def remote(fleet: Fleet, server: str) -> Remote:
    """``bifrost-admin --server URL --token TOKEN ARGS...`` in-process."""

    def run(token: str | None, *args: str, env: AdminEnv | None = None) -> Result:
        given = ["--server", server] + (["--token", token] if token is not None else [])
        return CliRunner().invoke(app, [*given, *args], obj=env or fleet.env())

    return run
