"""``bifrost demo``: a scripted tour of bifrost on the embedded default — the local devcluster
(with its simulated issuer, load balancer and TLS data plane) and the SQLite store under the data
directory.

It applies the in-cluster example (blueprint, class, namespace policy, Gateway) and lets the real
controller provision it through the engine until the Gateway is Programmed; rotates the Gateway's
certificate while a client makes verified TLS handshakes against the data plane; then deletes the
Gateway and watches the ordered teardown remove every child and the finalizer. It prints what
happened and exits 0 only when everything checked out.

The text is printed as the tour goes, part by part, each under its heading ("Part 1: provision",
"Part 2: certificate rotation", "Part 3: teardown"), so the rotation's live lines come under their
part. Each part's summary lines are formatted (``provision_lines``, ``rotation_lines``,
``teardown_lines``) from the same dict that ``--json`` prints, so the two carry the same data.
The store is SQLite in the state directory (``bifrost.settings``), never the working directory;
the last line says where.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from bifrost.clock import SystemClock
from bifrost.settings import Settings
from bifrost.shipped import shipped
from devcluster.bundle import UPSTREAM_CRDS

EXAMPLE_DIR = shipped("examples/in-cluster")


@contextmanager
def running_devcluster(workdir: Path) -> Iterator[Path]:
    """The devcluster with the shared CRDs, bifrost's own and all peers; yield the kubeconfig."""
    from bifrost.cli.dev import default_crd_dirs, devcluster_running

    if not default_crd_dirs():
        raise DemoError(
            "the Gateway API and cert-manager CRDs bifrost ships are missing from "
            f"{UPSTREAM_CRDS}; reinstall bifrost"
        )
    kubeconfig = workdir / "kubeconfig"
    with devcluster_running(kubeconfig, crds=[shipped("deploy/crds")]):
        yield kubeconfig


class DemoError(Exception):
    """An expected failure of the tour: one line for the user."""


PART_1 = "Part 1: provision (examples/in-cluster/)"
PART_2 = "Part 2: certificate rotation under verified TLS handshakes"
PART_3 = "Part 3: teardown"


def rotation_tour(kube: Any, store: Any, uid: str, *, deadline: float,
                  progress: Callable[[str], None]) -> dict[str, Any]:
    """Part 1b: rotate the Gateway's certificate the way ``bifrost-admin renew`` does, while a
    client makes verified TLS handshakes against the data plane every 20 ms; report the live
    count of handshakes and failures at every step."""
    import base64
    import time

    from bifrost.machines.rotation import rotation_spec
    from bifrost.triggers.rotation import start_rotation
    from devcluster.handshakes import HandshakeLoop, Target

    if not uid:
        return {"ok": False, "error": "the Gateway never became Programmed"}
    attached = [c for c in store.list_certificates(gateway_uid=uid) if c.attached]
    if not attached:
        return {"ok": False, "error": "no attached certificate to rotate"}
    old = attached[0]
    child = kube.get("gateway.networking.k8s.io/v1", "Gateway", "edge-child", "apps") or {}
    port = int(((child.get("metadata") or {}).get("annotations") or {})
               .get("devcluster.bifrost.dev/dataplane-port") or 0)
    secret = kube.get("v1", "Secret", old.secret_name, "apps") or {}
    ca_pem = base64.b64decode((secret.get("data") or {}).get("ca.crt") or b"").decode()
    targets = [Target("127.0.0.1", port, h) for h in old.dns_names]
    start = start_rotation(store, rotation_spec(), old, reason="bifrost demo",
                           clock=SystemClock(), actor="bifrost-demo")
    if start.operation is None:
        return {"ok": False, "error": f"the Gateway {start.not_renewable}"}
    op = start.operation
    progress(f"rotating {old.object_name} (operation {op.id}); handshaking with "
             + ", ".join(f"{t.server_name}@127.0.0.1:{t.port}" for t in targets))
    seen = ""
    with HandshakeLoop(targets, ca_pem=ca_pem, interval=0.02) as loop:
        while time.monotonic() < deadline:
            op = store.get_operation(op.id)
            where = f"{op.state}/{op.step or '-'}"
            if where != seen:
                seen = where
                r = loop.report()
                progress(f"  {where:<28} handshakes {r.handshakes:>5}  failures {r.failures}")
            if op.status.terminal:
                break
            time.sleep(0.05)
        report = loop.report()
    new = [c for c in store.list_certificates(gateway_uid=uid) if c.attached]
    progress(f"  {op.status.value}: {report.handshakes} handshakes, {report.failures} failures,"
             f" leaves served {len(report.fingerprints)}")
    return {
        "ok": op.status.value == "succeeded" and report.failures == 0
        and len(new) == 1 and new[0].object_name != old.object_name,
        "operation": op.id,
        "status": op.status.value,
        "last_error": op.last_error,
        "old": old.object_name,
        "new": [c.object_name for c in new],
        "handshakes": report.handshakes,
        "failures": report.failures,
        "errors": report.errors[:5],
        "longest_gap_ms": round(report.longest_gap * 1000, 1),
        "fingerprints_served": len(report.fingerprints),
    }


def controller_tour(kube: Any, store: Any, *, timeout: float,
                    progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """The controller. Apply the in-cluster example (blueprint, class, namespace policy,
    Gateway), let ``bifrost run``'s Controller provision it through the engine until the Gateway
    is Programmed, then delete the Gateway and watch the ordered teardown remove every child and
    the finalizer."""
    import time

    import yaml

    from bifrost.controller.manager import Controller, ControllerOptions

    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bifrost-system"}})
    controller = Controller(
        kube,
        store,
        options=ControllerOptions(
            lease_namespace="bifrost-system",
            lease_duration=5,
            renew_deadline=4,
            retry_period=1,
            runner_idle=timedelta(milliseconds=100),
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    applied: list[str] = []
    progress(PART_1)
    try:
        for path in sorted(EXAMPLE_DIR.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                kube.apply(doc)
                meta = doc["metadata"]
                where = f"{meta['namespace']}/" if meta.get("namespace") else ""
                applied.append(f"{doc['kind']} {where}{meta['name']}")
                progress(f"  applied {applied[-1]}")
        deadline = time.monotonic() + timeout
        gateway: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            gateway = kube.get("gateway.networking.k8s.io/v1", "Gateway", "edge", "apps")
            conditions = ((gateway or {}).get("status") or {}).get("conditions") or []
            if any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions):
                break
            stop.wait(0.1)
        gclass = kube.get("gateway.networking.k8s.io/v1", "GatewayClass", "bifrost-in-cluster")
        uid = (gateway or {}).get("metadata", {}).get("uid", "")
        children = (
            [
                {
                    "id": c.child_id,
                    "api_version": c.api_version,
                    "kind": c.kind,
                    "namespace": c.namespace,
                    "name": c.name,
                    "ready": c.ready,
                }
                for c in store.list_children(uid)
            ]
            if uid
            else []
        )
        programmed_status = dict((gateway or {}).get("status") or {})
        settings = kube.get("v1", "ConfigMap", "edge-settings", "apps")
        replicas = ((settings or {}).get("data") or {}).get("replicas")
        for line in provision_lines({"children": children, "gateway_status": programmed_status,
                                     "replicas_from_policy": replicas}):
            progress(line)
        progress(PART_2)
        rotation = rotation_tour(kube, store, uid, deadline=deadline, progress=progress)
        for line in rotation_lines(rotation):
            progress(line)
        progress(PART_3)
        kube.delete("gateway.networking.k8s.io/v1", "Gateway", "edge", "apps")
        gone = False
        while time.monotonic() < deadline:
            if kube.get("gateway.networking.k8s.io/v1", "Gateway", "edge", "apps") is None:
                gone = True
                break
            stop.wait(0.1)
        # The Gateway goes as soon as remove_finalizer patches it, before that step's outcome
        # is committed: let the teardown operation finish before reading the operations.
        while uid and time.monotonic() < deadline and not all(
                o.status.terminal for o in store.list_operations(gateway_uid=uid)):
            stop.wait(0.1)
        leftovers = [
            f"{c['kind']} {c['name']}"
            for c in children
            if kube.get(c["api_version"], c["kind"], c["name"], c["namespace"]) is not None
        ]
        operations = (
            [
                {
                    "id": o.id,
                    "machine": o.machine,
                    "status": o.status.value,
                    "state": o.state,
                    "last_error": o.last_error,
                }
                for o in sorted(store.list_operations(gateway_uid=uid), key=lambda o: o.id)
            ]
            if uid
            else []
        )
    finally:
        stop.set()
        thread.join(timeout=15)
    conditions = programmed_status.get("conditions") or []
    ok = (
        any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)
        and len(children) == 3
        and gone
        and not leftovers
        and [(o["machine"], o["status"]) for o in operations] == [
            ("provision", "succeeded"), ("rotate_certificate", "succeeded"),
            ("teardown", "succeeded")]
        and rotation["ok"]
    )
    report = {
        "ok": ok,
        "applied": applied,
        "gatewayclass_conditions": ((gclass or {}).get("status") or {}).get("conditions"),
        "gateway_status": programmed_status,
        "replicas_from_policy": replicas,
        "children": children,
        "rotation": rotation,
        "operations": operations,
        "deleted": gone,
        "children_left_after_teardown": leftovers,
    }
    for line in teardown_lines(report):
        progress(line)
    return report


def run_demo(*, database_url: str, timeout: float = 60.0,
             progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Run the tour; return its report (what ``--json`` prints)."""
    from bifrost.kube import KubeClient
    from bifrost.store import migrate, open_store
    from bifrost.store.sql.backend import safe_url

    migrate.upgrade(database_url)
    store = open_store(database_url)
    with (
        tempfile.TemporaryDirectory(prefix="bifrost-demo-") as tmp,
        running_devcluster(Path(tmp)) as kubeconfig,
        KubeClient.from_kubeconfig(kubeconfig) as kube,
    ):
        controller_report = controller_tour(kube, store, timeout=timeout, progress=progress)
    store.close()
    return {
        "ok": controller_report["ok"],
        "controller": controller_report,
        "database": safe_url(database_url),
    }


def provision_lines(c: dict[str, Any]) -> list[str]:
    """Part 1's summary (after the applied objects): the children, the Gateway's conditions and
    the value the namespace policy set — from the report's ``controller`` dict."""
    lines = [
        f"  child {child['id']}: {child['kind']} {child['namespace'] or ''}/{child['name']}"
        f" ready={child['ready']}"
        for child in c["children"]
    ]
    lines += [
        f"  Gateway apps/edge {cond['type']}={cond['status']} ({cond['reason']})"
        f" observedGeneration={cond.get('observedGeneration')}"
        for cond in c["gateway_status"].get("conditions") or []
    ]
    lines.append(f"  replicas from the namespace policy: {c['replicas_from_policy']}")
    return lines


def rotation_lines(r: dict[str, Any]) -> list[str]:
    """Part 2's summary, after its live lines — from the report's ``controller.rotation``."""
    return [
        f"  certificate rotation (operation {r.get('operation')}): {r.get('status')}, "
        f"{r.get('old')} -> {', '.join(r.get('new') or [])}; {r.get('handshakes')} TLS "
        f"handshakes, {r.get('failures')} failures (longest gap {r.get('longest_gap_ms')} ms)"
    ]


def teardown_lines(c: dict[str, Any]) -> list[str]:
    """Part 3's summary: every operation, and what the teardown left — from the report's
    ``controller`` dict."""
    lines = [f"  operation {op['id']} {op['machine']}: {op['status']} ({op['state']})"
             for op in c["operations"]]
    lines.append(f"  deleted: {c['deleted']}; children left after teardown: "
                 f"{len(c['children_left_after_teardown'])}")
    return lines


def verdict_lines(report: dict[str, Any]) -> list[str]:
    """The last lines: the verdict and where the store was written."""
    verdict = "OK" if report["ok"] else "FAILED"
    url = str(report["database"])
    where = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    return [f"{verdict}; history: bifrost-admin history apps/edge",
            f"store written to {where}"]


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url",
                envvar="BIFROST_DATABASE_URL",
                help="Store URL (default: SQLite in BIFROST_DATA_DIR, else the XDG state dir).",
            ),
        ] = None,
        timeout: Annotated[
            float | None,
            typer.Option(help="Give up after this many seconds (default: 60; 180 with "
                         "--in-cluster).", show_default=False),
        ] = None,
        in_cluster: Annotated[
            bool,
            typer.Option("--in-cluster",
                         help="Instead: install dist/install.yaml on the devcluster with its "
                         "local kubelet (bifrost runs as the Deployment's Pod), apply "
                         "examples/in-cluster, wait for apps/edge Programmed, print the Pods, "
                         "the Gateway and the Pod's first log lines."),
        ] = False,
    ) -> None:
        """Run the scripted tour on the devcluster and SQLite; exit 0 when it checked out."""
        from bifrost.store import StoreError

        if in_cluster:
            _in_cluster(as_json=as_json, timeout=timeout or 180.0)
            return
        timeout = timeout or 60.0

        url = database_url or Settings().resolved_database_url()
        try:
            report = run_demo(database_url=url, timeout=timeout,
                              progress=lambda line: typer.echo(line, err=as_json))
        except (DemoError, StoreError, OSError) as e:
            typer.echo("error: " + " ".join(str(e).split()), err=True)
            raise typer.Exit(1) from None
        for line in verdict_lines(report):  # on stderr with --json, like the live lines
            typer.echo(line, err=as_json)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        if not report["ok"]:
            raise typer.Exit(1)


def _in_cluster(*, as_json: bool, timeout: float) -> None:
    """``bifrost demo --in-cluster`` (:mod:`bifrost.cli.demo_in_cluster`): progress and tables
    on stdout (stderr with ``--json``, whose report is then the only stdout)."""
    from bifrost.cli.demo_in_cluster import (
        InClusterError,
        report_json,
        report_lines,
        run_in_cluster_demo,
    )

    try:
        report = run_in_cluster_demo(timeout=timeout,
                                     progress=lambda line: typer.echo(line, err=as_json))
    except InClusterError as e:
        if as_json:
            typer.echo(json.dumps({"ok": False, "error": " ".join(str(e).split())}, indent=2))
        typer.echo("error: " + " ".join(str(e).split()), err=True)
        raise typer.Exit(1) from None
    for line in report_lines(report):
        typer.echo(line, err=as_json)
    if as_json:
        typer.echo(report_json(report))
