"""Fixtures for bifrost-admin against the admin API: a devcluster with RBAC enforced (its
default) and bifrost's admin ClusterRoles from deploy/ applied and aggregated, ServiceAccount
tokens (``accounts``, see ``remote_kit.Accounts``), a fleet's store, and the admin API served
over it (``server``) with ``remote`` to run ``bifrost-admin --server`` in-process.

The server reviews callers through the cluster admin's client (as the controller does through
its own ServiceAccount, which deploy/base/rbac.yaml lets create the two reviews)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from remote_kit import ADMIN_ROLES, Accounts, Remote, serving
from support import inprocess
from support.admin_fleet import Fleet, make_fleet
from support.waiting import wait_for
from typer.testing import CliRunner, Result

from bifrost.cli.admin import AdminEnv, app
from bifrost.kube import KubeClient
from bifrost.store import migrate

# the devcluster and its kubeconfig: the shared module fixtures
cluster = inprocess.cluster
kubeconfig = inprocess.kubeconfig


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


@pytest.fixture
def server(fleet: Fleet, kube: KubeClient) -> Iterator[str]:
    with serving(fleet, kube) as url:
        yield url


@pytest.fixture
def remote(fleet: Fleet, server: str) -> Remote:
    """``bifrost-admin --server URL --token TOKEN ARGS...`` in-process."""

    def run(token: str | None, *args: str, env: AdminEnv | None = None) -> Result:
        given = ["--server", server] + (["--token", token] if token is not None else [])
        return CliRunner().invoke(app, [*given, *args], obj=env or fleet.env())

    return run
