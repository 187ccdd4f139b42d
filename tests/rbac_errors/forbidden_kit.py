"""What the RBAC-error scenarios share: the devcluster with dist/install.yaml's RBAC applied, a
kubeconfig whose token is bifrost's ServiceAccount's (TokenRequest), the in-cluster example,
and the in-process Controller run as that ServiceAccount."""

from __future__ import annotations

import contextlib
import copy
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.kube import KubeClient
from bifrost.store import SqlStore, migrate, open_store

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "bifrost-system"
RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
              "RoleBinding")
GATEWAY_API = "gateway.networking.k8s.io/v1"
RBAC_API = "rbac.authorization.k8s.io/v1"
IDENTITY = "ServiceAccount bifrost-system/bifrost"
USER = "system:serviceaccount:bifrost-system:bifrost"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def install_rbac() -> list[dict[str, Any]]:
    """dist/install.yaml's Namespace, ServiceAccount, roles and bindings."""
    return [d for d in documents(REPO / "dist" / "install.yaml") if d["kind"] in RBAC_KINDS]


def controller_role() -> dict[str, Any]:
    (role,) = [d for d in install_rbac()
               if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "bifrost"]
    return role


def in_cluster_example() -> list[dict[str, Any]]:
    """examples/in-cluster, in file order (its 05-rbac.yaml ClusterRole first)."""
    files = sorted((REPO / "examples" / "in-cluster").glob("*.yaml"))
    return [d for f in files for d in documents(f)]


def without_verb(role: dict[str, Any], resource: str, verb: str) -> dict[str, Any]:
    """``role`` with ``verb`` removed from every rule naming ``resource``."""
    out = copy.deepcopy(role)
    for rule in out["rules"]:
        if resource in rule.get("resources", []):
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    return out


def without_resource(role: dict[str, Any], resource: str) -> dict[str, Any]:
    """``role`` with ``resource`` removed from every rule (rules left empty are dropped)."""
    out = copy.deepcopy(role)
    for rule in out["rules"]:
        rule["resources"] = [r for r in rule.get("resources", []) if r != resource]
    out["rules"] = [r for r in out["rules"] if r["resources"]]
    return out


def service_account_kubeconfig(admin_kubeconfig: Path, out: Path) -> Path:
    """A copy of the admin kubeconfig whose user is bifrost's ServiceAccount, with a token from
    the TokenRequest API (as a Pod's projected token)."""
    api = k8s_config.new_client_from_config(config_file=str(admin_kubeconfig))
    try:
        answer = k8s.CoreV1Api(api).create_namespaced_service_account_token(
            "bifrost", SYSTEM, {"apiVersion": "authentication.k8s.io/v1",
                                "kind": "TokenRequest", "spec": {"expirationSeconds": 7200}})
    finally:
        api.close()
    config = yaml.safe_load(admin_kubeconfig.read_text())
    config["users"][0]["user"] = {"token": str(answer.status.token)}
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out


@contextlib.contextmanager
def sqlite_store(directory: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{(directory / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store: SqlStore = open_store(url)  # type: ignore[assignment]
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def controller_as_service_account(kubeconfig: Path, store: SqlStore) -> Iterator[Controller]:
    """bifrost run's Controller on a thread, its client the ServiceAccount's; not waited on
    (a forbidden informer keeps it from being ready). Its Lease is deploy's default,
    "bifrost-controller" (the leader-election Role names it). Stopped and joined on exit."""
    kube = KubeClient.from_kubeconfig(kubeconfig)
    name = f"rbac-{uuid.uuid4().hex[:6]}"
    controller = Controller(kube, store, options=ControllerOptions(
        identity=name, lease_namespace=SYSTEM, controller_namespace=SYSTEM,
        lease_duration=3.0, renew_deadline=2.0, retry_period=0.3, workers=2,
        runner_idle=timedelta(seconds=0.05), operation_poll=timedelta(seconds=0.2)))
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield controller
    finally:
        stop.set()
        thread.join(20)
        kube.close()
        assert not thread.is_alive(), "the controller thread did not stop"


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}
