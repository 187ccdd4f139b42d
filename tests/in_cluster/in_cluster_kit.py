"""The devcluster with its local kubelet running bifrost's own Pods, for the in-cluster tests.

``local_cluster`` starts the devcluster (Gateway API and cert-manager CRDs, the cloud children's
kinds), maps the image ``bifrost:*`` to this environment's ``bifrost`` executable (as
``deploy/Dockerfile``'s ENTRYPOINT, CMD and ENV), starts the simulated peers (issuer, load
balancer, TLS data plane) and yields a :class:`LocalCluster`: ``kubectl`` as the admin over TLS,
a bifrost :class:`KubeClient`, and waits on what the Pods do. Everything the controller does
here it does from inside its Pods, authenticated by its ServiceAccount token.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.waiting import wait_for

from bifrost.cli.dev import bifrost_image_command, register_child_kinds
from bifrost.kube import KubeClient
from devcluster import DevCluster
from devcluster.bundle import upstream_crd_dirs
from devcluster.kubeconfig import write_kubeconfig
from devcluster.localpods import ImageCommand, LocalPodOptions
from devcluster.peers import Peers

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "dist" / "install.yaml"
EXAMPLE = REPO / "examples" / "in-cluster"
NAMESPACE = "bifrost-system"
GATEWAY_API = "gateway.networking.k8s.io/v1"


def bifrost_image() -> ImageCommand:
    """``bifrost:*`` is this environment's bifrost, run as the image runs it (what
    ``bifrost dev --kubelet`` maps)."""
    return bifrost_image_command()


def kubectl_path() -> str:
    return str(Path(sys.executable).parent / "kubectl")


def pod_processes(pod: str) -> list[int]:
    """The pids of the processes a local Pod runs (their environment names the Pod), oldest
    (lowest) first."""
    marker = f"POD_NAME={pod}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if environ.startswith(marker) or b"\0" + marker in environ:
            found.append(int(entry.name))
    return sorted(found)


def exec_in(pid: int, uid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside a local Pod's sandbox (its mount and user namespaces, as ``uid``)
    from its pid, without the API server (``kubectl exec`` is served too: devcluster/pod_exec)."""
    return subprocess.run(["nsenter", "-t", str(pid), "-U", "-m", "-S", str(uid), "-G",
                           str(uid), "--", *argv],
                          capture_output=True, text=True, timeout=30, check=False)


@dataclass
class LocalCluster:
    cluster: DevCluster
    admin: Path  # kubectl's kubeconfig (TLS, admin token)
    kube: KubeClient

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([kubectl_path(), "--kubeconfig", str(self.admin), *args],
                              capture_output=True, text=True, timeout=timeout, input=stdin,
                              check=False)
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}{done.stdout}"
        return done

    def pods(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        items, _ = self.kube.list("v1", "Pod", namespace,
                                  label_selector="app.kubernetes.io/name=bifrost")
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def lease_holder(self, name: str = "bifrost-controller") -> str | None:
        lease = self.kube.get("coordination.k8s.io/v1", "Lease", name, NAMESPACE)
        return ((lease or {}).get("spec") or {}).get("holderIdentity")

    def gateway_condition(self, namespace: str, name: str, kind: str) -> dict[str, Any] | None:
        gw = self.kube.get(GATEWAY_API, "Gateway", name, namespace)
        for c in ((gw or {}).get("status") or {}).get("conditions") or []:
            if c.get("type") == kind:
                return dict(c)
        return None

    def wait_programmed(self, namespace: str, name: str, *, timeout: float = 90) -> None:
        def check() -> bool:
            c = self.gateway_condition(namespace, name, "Programmed")
            return bool(c and c["status"] == "True")
        try:
            wait_for(check, timeout=timeout, what=f"Gateway {namespace}/{name} Programmed")
        except AssertionError as exc:
            gw = self.kube.get(GATEWAY_API, "Gateway", name, namespace) or {}
            logs = self.kubectl("logs", "-n", NAMESPACE, "deploy/bifrost", "--tail", "40",
                                check=False).stdout
            raise AssertionError(f"{exc}; status: {gw.get('status')}; controller log:\n"
                                 f"{logs}") from None


@contextmanager
def local_cluster(base: Path, *, backoff_base: float = 1.0,
                  extra_images: Sequence[ImageCommand] = ()) -> Iterator[LocalCluster]:
    cluster = DevCluster(
        crd_paths=[d for d in upstream_crd_dirs() if d.is_dir()],
        local_pods=LocalPodOptions(images=(bifrost_image(), *extra_images), root=base / "pods",
                                   backoff_base=backoff_base))
    cluster.start()
    peers: Peers | None = None
    kube: KubeClient | None = None
    try:
        register_child_kinds(cluster)
        admin = cluster.write_kubeconfig(base / "admin")
        plain = write_kubeconfig(base / "plain", cluster.url, context="devcluster",
                                 token=cluster.admin_token)
        peers = Peers(plain).start()
        kube = KubeClient.from_kubeconfig(plain)
        yield LocalCluster(cluster=cluster, admin=Path(admin), kube=kube)
    finally:
        if kube is not None:
            kube.close()
        if peers is not None:
            peers.stop()
        cluster.stop()
