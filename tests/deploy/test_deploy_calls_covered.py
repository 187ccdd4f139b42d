"""The RBAC in deploy/ covers what the controller really does — enforced by the API server.

The rendered ``deploy/overlays/sqlite`` RBAC (ServiceAccount, ClusterRoles, bindings, the
leader-election Role) and both examples' aggregated ClusterRoles are applied to the devcluster,
which authorizes every request with Kubernetes' RBAC. ``bifrost run``'s Controller runs
in-process **as the ServiceAccount** (a TokenRequest token from ``kubectl create token``), on a
``KubeClient`` whose every HTTP request is recorded. It provisions both examples to
``Programmed``, rotates the in-cluster Gateway's certificate (new Secret issued, old certificate
and Secret deleted) and tears everything down; not one request may be refused with 403. The
Secret informer must have asked for metadata only, and no Secret data may be in the controller's
cache afterwards except the Secrets listeners reference.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from rbac_kit import (
    CONTROLLER_NAMESPACE,
    DEPLOY,
    DISCOVERY_PREFIXES,
    ApiRequest,
    RequestRecorder,
    example_documents,
    kubectl,
    kustomize,
)
from support.builders import namespace_object
from support.waiting import wait_for

from bifrost.cli.dev import default_crd_dirs, devcluster_running
from bifrost.clock import SystemClock
from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.engine import start_operation
from bifrost.kube import KubeClient
from bifrost.kube.client import LAST_APPLIED, METADATA_ACCEPT, METADATA_LIST_ACCEPT
from bifrost.machines.rotation import RotationContext, rotation_spec
from bifrost.store import SqlStore, migrate, open_store

REPO = Path(__file__).resolve().parents[2]
GATEWAY_API = "gateway.networking.k8s.io/v1"
TIMEOUT = 90.0
#: A Secret no Gateway references, applied as ``kubectl apply`` would (its data copied into the
#: last-applied annotation): the controller must never hold its data.
UNRELATED = {
    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
    "metadata": {"name": "unrelated", "namespace": "apps", "annotations": {
        LAST_APPLIED: '{"data":{"password":"c2VjcmV0"}}'}},
    "data": {"password": "c2VjcmV0"},
}


def programmed(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    gw = kube.get(GATEWAY_API, "Gateway", name, namespace)
    for cond in ((gw or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Programmed" and cond.get("status") == "True":
            return gw
    return None


#: What the controller's ServiceAccount is given by deploy/ (applied before it starts).
RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
              "RoleBinding")


@dataclass
class Run:
    requests: list[ApiRequest]
    other: list[str]
    cached_secrets: list[dict[str, Any]]
    secrets_read: int
    whoami: str


def service_account_kubeconfig(admin_kubeconfig: Path, out: Path) -> Path:
    """A copy of the admin kubeconfig whose user is the controller's ServiceAccount (a token
    from the TokenRequest API, as a Pod's projected token would be)."""
    token = subprocess.run(
        [kubectl(), "--kubeconfig", str(admin_kubeconfig), "create", "token", "bifrost",
         "-n", CONTROLLER_NAMESPACE, "--duration", "2h"],
        capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    config = yaml.safe_load(admin_kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out


def whoami(kubeconfig: Path) -> str:
    done = subprocess.run([kubectl(), "--kubeconfig", str(kubeconfig), "auth", "whoami", "-o",
                           "jsonpath={.status.userInfo.username}"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def aggregated(admin: KubeClient, name: str, wanted: list[dict[str, Any]]) -> bool:
    """Whether ClusterRole ``name`` holds every rule of the ClusterRoles ``wanted``."""
    role = admin.get("rbac.authorization.k8s.io/v1", "ClusterRole", name) or {}
    rules = role.get("rules") or []
    return all(rule in rules for doc in wanted for rule in doc.get("rules") or [])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if not default_crd_dirs():
        pytest.skip("the Gateway API and cert-manager CRDs are not in ../shared/")
    workdir = tmp_path_factory.mktemp("calls")
    url = f"sqlite:///{(workdir / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store: SqlStore = open_store(url)  # type: ignore[assignment]
    examples = [d for e in ("in-cluster", "cloud-edge") for d in example_documents(e)]
    gateways = [(d["metadata"]["namespace"], d["metadata"]["name"])
                for d in examples if d["kind"] == "Gateway"]
    rbac = [d for d in kustomize(DEPLOY / "overlays" / "sqlite") if d["kind"] in RBAC_KINDS]
    with devcluster_running(workdir / "kubeconfig", crds=[REPO / "deploy" / "crds"]) as cluster:
        admin = KubeClient.from_kubeconfig(workdir / "kubeconfig")
        admin.apply(namespace_object("apps"))
        admin.apply(UNRELATED)
        for doc in [*rbac, *(d for d in examples if d["kind"] in RBAC_KINDS)]:
            admin.apply(doc)
        # every example's rules: the aggregation controller passes as the roles arrive, so
        # bifrost-children may hold the first example's rules before the second's
        example_roles = [d for d in examples if d["kind"] == "ClusterRole"
                         and (d["metadata"].get("labels") or {}).get(
                             "gateway.bifrost.dev/aggregate-to-controller") == "true"]
        assert len(example_roles) == 2
        wait_for(lambda: aggregated(admin, "bifrost-children", example_roles),
                 what="the examples' rules aggregated into bifrost-children", timeout=TIMEOUT)
        as_sa = service_account_kubeconfig(workdir / "kubeconfig", workdir / "sa-kubeconfig")
        kube = KubeClient.from_kubeconfig(as_sa)
        recorder = RequestRecorder(kube)
        controller = Controller(kube, store, options=ControllerOptions(
            identity="rbac-test", lease_namespace=CONTROLLER_NAMESPACE,
            controller_namespace=CONTROLLER_NAMESPACE, lease_duration=5, renew_deadline=4,
            retry_period=0.5, runner_idle=timedelta(milliseconds=50)))
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
        thread.start()
        try:
            for doc in examples:
                admin.apply(doc)
            uids = {}
            for ns, name in gateways:
                try:
                    gw = wait_for(lambda ns=ns, name=name: programmed(admin, ns, name),
                                  what=f"Gateway {ns}/{name} Programmed", timeout=TIMEOUT)
                except AssertionError as exc:
                    denied = sorted({str(r) for r in recorder.snapshot()[0] if r.status == 403})
                    raise AssertionError(f"{exc}; forbidden: {denied}") from exc
                uids[(ns, name)] = gw["metadata"]["uid"]
            # a rotation of the in-cluster Gateway's certificate: issue, attach, delete the old
            (cert,) = [c for c in store.list_certificates(gateway_uid=uids[("apps", "edge")])
                       if c.attached]
            gw_record = store.get_gateway(cert.gateway_uid)
            op = start_operation(store, rotation_spec(), gateway_uid=gw_record.uid,
                                 namespace=gw_record.namespace, name=gw_record.name,
                                 context=RotationContext.for_renewal(cert, reason="rbac test"),
                                 clock=SystemClock(), actor="test")
            done = wait_for(lambda: (o := store.get_operation(op.id)).status.terminal and o,
                            what="the rotation to finish", timeout=TIMEOUT)
            assert done.status.value == "succeeded", done.last_error
            cached = controller.cache.objects("Secret")
            read = controller.cache.secrets_read()
            for ns, name in gateways:
                admin.delete(GATEWAY_API, "Gateway", name, ns)
            for ns, name in gateways:
                wait_for(lambda ns=ns, name=name: admin.get(GATEWAY_API, "Gateway", name, ns)
                         is None, what=f"Gateway {ns}/{name} torn down", timeout=TIMEOUT)
        finally:
            stop.set()
            thread.join(timeout=30)
        requests, other = recorder.snapshot()
        yield Run(requests, other, cached, read, whoami(as_sa))
        admin.close()
        kube.close()
        store.close()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"


def test_the_controller_ran_as_its_service_account(run: Run) -> None:
    assert run.whoami == f"system:serviceaccount:{CONTROLLER_NAMESPACE}:bifrost"


def test_no_controller_request_was_forbidden_by_deploy_rbac(run: Run) -> None:
    denied = sorted({str(r) for r in run.requests if r.status == 403})
    assert not denied, "requests the deploy/ RBAC forbade:\n" + "\n".join(denied)
    assert run.requests and all(r.status != 401 for r in run.requests)
    assert all(p.startswith(DISCOVERY_PREFIXES) for p in run.other), run.other


def test_the_scenario_exercised_what_the_rbac_is_about(run: Run) -> None:
    """Guard against a vacuous pass: the run made the calls the permissions exist for."""
    seen = {(r.verb, r.group, r.resource + (f"/{r.subresource}" if r.subresource else ""))
            for r in run.requests}
    for call in [
        ("watch", "", "secrets"), ("list", "", "secrets"), ("get", "", "secrets"),
        ("delete", "", "secrets"),
        ("create", "coordination.k8s.io", "leases"), ("update", "coordination.k8s.io", "leases"),
        ("patch", "gateway.networking.k8s.io", "gateways"),
        ("patch", "gateway.networking.k8s.io", "gateways/status"),
        ("patch", "cert-manager.io", "certificates"), ("delete", "cert-manager.io", "certificates"),
        ("patch", "", "configmaps"), ("delete", "", "configmaps"),
        # the children's informers (drift, event-driven waits)
        ("watch", "", "configmaps"), ("list", "", "configmaps"),
        ("watch", "cert-manager.io", "certificates"),
        ("patch", "elbv2.aws.upbound.io", "lbs"), ("delete", "route53.aws.upbound.io", "records"),
        ("create", "events.k8s.io", "events"),
    ]:
        assert call in seen, call
    assert any(r.apply and r.status == 201 for r in run.requests)


def test_leases_only_in_the_controller_namespace(run: Run) -> None:
    leases = [r for r in run.requests if r.resource == "leases"]
    assert leases and {r.namespace for r in leases} == {CONTROLLER_NAMESPACE}


def test_secrets_are_listed_and_watched_as_metadata_only(run: Run) -> None:
    listed = [r for r in run.requests if r.resource == "secrets" and r.verb in ("list", "watch")]
    assert listed
    for r in listed:
        assert r.accept == (METADATA_LIST_ACCEPT if r.verb == "list" else METADATA_ACCEPT), r
    # Secrets are read one at a time, by name
    assert all(r.name for r in run.requests if r.resource == "secrets" and r.verb == "get")


def test_the_cache_holds_secret_metadata_only_and_reads_only_referenced_ones(run: Run) -> None:
    """Every Secret the informer saw is metadata (no data, no last-applied copy of it); the data
    of a Secret no Gateway references is never requested; the ones read are few (the
    certificates' Secrets and the listeners' references)."""
    names = {(s["metadata"].get("namespace"), s["metadata"]["name"]) for s in run.cached_secrets}
    assert ("apps", "unrelated") in names
    for secret in run.cached_secrets:
        assert set(secret) <= {"apiVersion", "kind", "metadata"}, secret["metadata"]["name"]
        assert LAST_APPLIED not in (secret["metadata"].get("annotations") or {})
        assert "managedFields" not in secret["metadata"]
    assert not [r for r in run.requests if r.resource == "secrets" and r.name == "unrelated"]
    assert 0 < run.secrets_read < len(run.cached_secrets)
