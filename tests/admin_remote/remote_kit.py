"""What the admin-remote tests share beside their fixtures (conftest.py): ServiceAccounts with
tokens bound to roles, the admin API served over a fleet's store, and the ClusterRoles of
deploy/ that grant ``gateways/operations``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from support.admin_fleet import Fleet
from typer.testing import Result

from bifrost.admin.server import AdminApi, AdminApiServer, Gatekeeper
from bifrost.kube import KubeClient

REPO = Path(__file__).resolve().parents[2]
ADMIN_ROLES = REPO / "deploy" / "base" / "rbac-admin.yaml"

#: ``bifrost-admin --server URL [--token TOKEN] ARGS...`` in-process (the ``remote`` fixture).
Remote = Callable[..., Result]


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
