"""Route children are confined too, and checked before the Gateway's children are applied: on the
real provision machine (the provision kit's ``Harness``, a devcluster with the cluster-scoped
``LB`` kind, SQLite), a route child that is a RoleBinding fails the operation with the route
child's key, and the Gateway's own (confined) ConfigMap is not applied either. With the
blueprint's opt-in the same pass applies both."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "provision"))

from provision_kit import CONFINEMENT, REPO, Harness  # noqa: E402
from support.builders import http_route  # noqa: E402
from support.devcluster import crd_paths  # noqa: E402

from bifrost.cli.dev import LB_KIND  # noqa: E402
from bifrost.kube import KubeClient  # noqa: E402
from bifrost.records import OperationStatus  # noqa: E402
from bifrost.store import migrate, open_store  # noqa: E402
from devcluster.server import DevCluster  # noqa: E402

CHILDREN = [{"id": "config", "template": (
    "apiVersion: v1\nkind: ConfigMap\n"
    'metadata: {name: "{{ gateway.metadata.name }}-config"}\ndata: {a: b}\n')}]
ROUTE_CHILDREN = [{"id": "grant", "template": (
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
    'metadata: {name: "{{ route.metadata.name }}-grant"}\n'
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\n"
    "subjects: [{kind: ServiceAccount, name: default}]\n")}]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, Path]]:
    dc = DevCluster(crd_paths=[*crd_paths(), REPO / "deploy" / "crds"], bookmark_interval=0.5)
    dc.start()
    try:
        group, version, kind, plural = LB_KIND
        dc.register_permissive(group=group, version=version, kind=kind, plural=plural,
                               namespaced=False)
        yield dc, dc.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"


@pytest.fixture
def harness(cluster: tuple[DevCluster, Path], tmp_path: Path) -> Iterator[Harness]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(cluster[1])
    namespace = f"r-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        yield Harness(cluster[0], kube, store, namespace, blueprint=f"bp-{namespace}")
    finally:
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
        store.close()


def _route(h: Harness, name: str) -> dict[str, Any]:
    return h.kube.create(http_route(h.namespace, name, parent="edge"))


def test_a_route_child_violation_applies_nothing_of_the_pass(harness: Harness) -> None:
    h = harness
    h.set_blueprint(CHILDREN, ROUTE_CHILDREN)
    gw = h.create_gateway()
    uid = gw["metadata"]["uid"]
    _route(h, "r1")
    op = h.drive(h.start_provision(gw, routes=(f"{h.namespace}/r1",)).id)
    assert op.status is OperationStatus.FAILED
    assert op.last_error == (
        f"GatewayClassBlueprint {h.blueprint!r}: children not confined, nothing applied: "
        f"child 'grant@{h.namespace}/r1' (RoleBinding.rbac.authorization.k8s.io in the "
        "Gateway's namespace) is RBAC, refused unless the blueprint opts in to the kind: add "
        "{group: rbac.authorization.k8s.io, kind: RoleBinding} to spec.confinement.allow")
    assert h.kube.get("v1", "ConfigMap", "edge-config", h.namespace) is None
    assert h.kube.get("rbac.authorization.k8s.io/v1", "RoleBinding", "r1-grant",
                      h.namespace) is None
    assert h.store.list_children(uid) == []


def test_the_opt_in_lets_the_route_child_through(harness: Harness,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    allow = {"allow": [*CONFINEMENT["allow"],
                       {"group": "rbac.authorization.k8s.io", "kind": "RoleBinding"}]}
    monkeypatch.setattr("provision_kit.CONFINEMENT", allow)
    h.set_blueprint(CHILDREN, ROUTE_CHILDREN)
    gw = h.create_gateway()
    _route(h, "r1")
    op = h.drive(h.start_provision(gw, routes=(f"{h.namespace}/r1",)).id)
    assert op.status is OperationStatus.SUCCEEDED, op.last_error
    assert h.kube.get("v1", "ConfigMap", "edge-config", h.namespace) is not None
    binding = h.kube.get("rbac.authorization.k8s.io/v1", "RoleBinding", "r1-grant", h.namespace)
    assert binding is not None and binding["metadata"]["namespace"] == h.namespace
