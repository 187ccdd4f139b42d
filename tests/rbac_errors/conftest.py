"""The RBAC-error scenarios' devcluster (peers on, RBAC enforced) with dist/install.yaml's RBAC
and the in-cluster example's ClusterRole applied, and bifrost's ServiceAccount kubeconfig."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from forbidden_kit import REPO, install_rbac, service_account_kubeconfig

from bifrost.cli.dev import default_crd_dirs, devcluster_running
from bifrost.kube import KubeClient


@pytest.fixture(scope="module")
def admin_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not default_crd_dirs():
        pytest.skip("the Gateway API and cert-manager CRDs are not in ../shared/")
    workdir = tmp_path_factory.mktemp("rbac-errors")
    kubeconfig = workdir / "kubeconfig"
    with devcluster_running(kubeconfig, crds=[REPO / "deploy" / "crds"]):
        admin = KubeClient.from_kubeconfig(kubeconfig)
        try:
            for doc in install_rbac():
                admin.apply(doc)
        finally:
            admin.close()
        yield kubeconfig


@pytest.fixture(scope="module")
def admin(admin_kubeconfig: Path) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(admin_kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def sa_kubeconfig(admin_kubeconfig: Path) -> Path:
    return service_account_kubeconfig(admin_kubeconfig, admin_kubeconfig.with_name("sa-config"))
