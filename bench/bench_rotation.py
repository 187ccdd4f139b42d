"""Certificate rotation at scale: N Gateways whose renewals all fall due at the same moment.

Figures (issue 5, "Benchmark"): N Gateways (one HTTPS listener each, the in-cluster example's
blueprint: a settings ConfigMap, a child Gateway served by the devcluster's TLS data plane and a
cert-manager Certificate) are provisioned; then every attached certificate's ``renewal_at`` is set
to the same moment in the store, so the controller's renewal scheduler (poll every
``--renewal-poll-seconds``, jitter ``--jitter-seconds``, default 0: no spreading) fires all N
rotations at once — "a fleet whose renewals all fall on the same minute". Measured until every
rotation ended:

- total time from the renewal time until the last rotation succeeded (and from the first
  rotation's start), per-rotation duration (p50 / p95 / max) and where it goes (per step);
- steps per second: journal rows with outcome ``done`` (a step finished) of the rotations divided
  by the rotation window (first rotation created → last finished); also the other rows (waits);
- API writes per rotation from the devcluster's request log (reset just before the trigger,
  read once no write but Lease renewals happened for 3 s after the last rotation ended), split
  into the controller's and the simulated peers' (issuer: Secrets and Certificate status; load
  balancer: child Gateway annotation and status) and broken down by verb and resource;
- TLS handshakes made against the data plane during the rotations and failures (must be 0): a
  set of :class:`~devcluster.handshakes.HandshakeLoop` threads handshakes with SNI and full
  verification (chain, name, validity) against every Gateway's child; with many targets no
  client on this machine reaches each one every 50 ms, so the longest gap between two handshakes
  on the same target is reported (and the mean per-target interval); every leaf served must be
  the old or the new certificate of that fleet, and after the rotations every target must serve
  its new one;
- what is left: exactly one certificate object, one Secret and one store record per Gateway;
- the controller's peak RSS during the rotations (``VmHWM`` after resetting it through
  ``/proc/PID/clear_refs``; the lifetime peak if that is not allowed) and CPU seconds per process.

Processes: the devcluster (API server; its request log tells parent from child Gateways), the
peers (issuer, load balancer, TLS data plane: ``devcluster.peers.Peers``, no Crossplane
provider), the controller (``python -m bifrost.cli.run`` on a fresh SQLite file) each run as
their own process — the first two are this script re-run with ``--serve cluster|peers``; this
process creates the objects, reads the controller's store (and writes the renewal times into it),
polls and handshakes.

Usage: ``python bench/bench_rotation.py [--gateways 200] [--drain-seconds 1]
[--handshake-threads 4] [--jitter-seconds 0] [--keep]`` (``--gateways 20`` for a quick run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NAMESPACE = "bench"
SYSTEM_NAMESPACE = "bifrost-system"
CLASS = "bench-rotation"
BLUEPRINT = "bench-rotation"
GW = "/apis/gateway.networking.k8s.io/v1"
CERTS = "/apis/cert-manager.io/v1"
LEASES = "leases.coordination.k8s.io"
PORT_ANNOTATION = "devcluster.bifrost.dev/dataplane-port"
CHILD_SUFFIX = "-child"
#: How the devcluster's request log in this benchmark names writes to child Gateways.
CHILD_RESOURCE = "gateways[child]"
WRITES = ("create", "update", "patch", "apply", "delete", "deletecollection")


# ---- the helper processes (this script with --serve) -----------------------------------------


def serve_cluster(workdir: Path) -> int:
    """The devcluster with the Gateway API, cert-manager and bifrost CRDs and the child kinds;
    its request log counts writes to child Gateways (``*-child``) as ``gateways[child]``."""
    from bifrost.cli.dev import register_child_kinds
    from devcluster.faults import Request, RequestLog
    from devcluster.server import DevCluster

    class ChildAwareLog(RequestLog):
        def record(self, req: Request, status: int) -> None:
            if req.resource == "gateways" and (req.name or "").endswith(CHILD_SUFFIX):
                req = replace(req, resource=CHILD_RESOURCE)
            super().record(req, status)

    crds = [SHARED / "gateway-api" / "v1.6.1", SHARED / "cert-manager", REPO / "deploy" / "crds"]
    missing = [str(d) for d in crds if not d.is_dir()]
    if missing:
        print(f"CRD directories not found: {missing}", file=sys.stderr)
        return 1
    cluster = DevCluster(crd_paths=crds)
    cluster.request_log = ChildAwareLog()
    cluster.start()
    register_child_kinds(cluster)
    cluster.write_kubeconfig(workdir / "kubeconfig")
    print(f"devcluster listening on {cluster.url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    cluster.stop()
    return 0


def serve_peers(workdir: Path) -> int:
    """The simulated issuer, load balancer and TLS data plane as one API client process."""
    import logging

    from devcluster.peers import Peers

    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    peers = Peers(workdir / "kubeconfig", crossplane=False).start()
    print("peers running", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    peers.stop()
    return 0


# ---- plumbing ----------------------------------------------------------------------------


class Api:
    """A raw keep-alive HTTP client (cheap, so the bench measures the controller)."""

    def __init__(self, url: str, kubeconfig: Path) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port
        # the devcluster authorizes every request: send the admin token of its kubeconfig
        import yaml

        user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
        self.auth = {"Authorization": f"Bearer {user['token']}"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        headers.update(self.auth)
        for attempt in range(2):
            try:
                self.conn.request(method, path, data, headers)
                r = self.conn.getresponse()
                payload = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        if r.status >= 300 and r.status not in ok:
            raise RuntimeError(f"{method} {path}: {r.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def helper(mode: str, workdir: Path, ready: str) -> tuple[subprocess.Popen[str], str]:
    """Start this script with ``--serve mode``; returns the process and its first line."""
    log = (workdir / f"{mode}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", mode,
         "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if ready not in line:
        sys.exit(f"{mode} did not start:\n{(workdir / f'{mode}.log').read_text()[-3000:]}")
    return proc, line.strip()


def start_controller(tmp: Path, db: Path, args: argparse.Namespace
                     ) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = tmp / "controller.log"
    env = {**os.environ, "POD_NAMESPACE": SYSTEM_NAMESPACE, "BIFROST_DATA_DIR": str(tmp),
           "BIFROST_RENEWAL_POLL_SECONDS": str(args.renewal_poll_seconds),
           "BIFROST_RENEWAL_JITTER_SECONDS": str(args.jitter_seconds)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bifrost.cli.run", "--kubeconfig", str(tmp / "kubeconfig"),
         "--database-url", f"sqlite:///{db}", "--workers", str(args.workers),
         "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=log_path.open("wb"), env=env, cwd=REPO,
    )
    return proc, log_path


def condition(obj: dict[str, Any], kind: str) -> bool:
    gen = obj["metadata"].get("generation")
    return any(
        c.get("type") == kind and c.get("status") == "True"
        and c.get("observedGeneration", gen) == gen
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def wait(pred: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def vm(pid: int, field: str) -> float:
    """A ``/proc/PID/status`` field in MB (``VmHWM`` peak RSS, ``VmRSS`` current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def writer(key: str) -> str:
    """Who made a write ("verb resource" from the request log): the simulated peers write
    Secrets (apply) and Certificate status (issuer), the child Gateways' port annotation and
    status (load balancer); everything else in this setup is the controller's."""
    verb, resource = key.split(" ", 1)
    if resource == LEASES:
        return "lease"
    if resource == "secrets" and verb != "delete":
        return "peers"
    if resource.startswith("certificates.cert-manager.io/") or resource.startswith(
            "certificaterequests."):
        return "peers"
    if resource.startswith(CHILD_RESOURCE) and verb == "patch":
        return "peers"
    return "controller"


def write_breakdown(snap: dict[str, Any]) -> Counter[str]:
    return Counter({k: n for k, n in snap["byVerbResource"].items()
                    if k.split(" ", 1)[0] in WRITES})


def pretty(key: str) -> str:
    return key.replace(f"{CHILD_RESOURCE}.gateway.networking.k8s.io",
                       "gateways.gateway.networking.k8s.io (child)")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---- the benchmark -----------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--gateways", type=int, default=200)
    p.add_argument("--drain-seconds", type=float, default=1.0,
                   help="spec.tls.drainSeconds of the blueprint (both certificates attached)")
    p.add_argument("--handshake-threads", type=int, default=4,
                   help="handshake loops, each cycling through its share of the targets")
    p.add_argument("--handshake-interval", type=float, default=0.02,
                   help="pause of each loop after a pass over its targets")
    p.add_argument("--jitter-seconds", type=float, default=0.0,
                   help="BIFROST_RENEWAL_JITTER_SECONDS (0: all renewals at the same instant)")
    p.add_argument("--renewal-poll-seconds", type=float, default=1.0,
                   help="BIFROST_RENEWAL_POLL_SECONDS: how soon the scheduler sees the new times")
    p.add_argument("--lead-seconds", type=float, default=3.0,
                   help="the renewal time is set this far ahead of the store writes")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--timeout", type=float, default=900.0,
                   help="give up provisioning / rotating after this many seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    p.add_argument("--serve", choices=("cluster", "peers"), help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve == "cluster":
        return serve_cluster(args.workdir)
    if args.serve == "peers":
        return serve_peers(args.workdir)

    from bifrost.clock import SystemClock
    from bifrost.machines.rotation import ROTATION_MACHINE
    from bifrost.records import JournalOutcome, OperationRecord
    from bifrost.store import open_store
    from devcluster.handshakes import HandshakeLoop, Target

    n = args.gateways
    clock = SystemClock()
    tmp = Path(tempfile.mkdtemp(prefix="bifrost-bench-rotation-"))
    db = tmp / "bifrost.db"
    procs: dict[str, subprocess.Popen[Any]] = {}
    loops: list[HandshakeLoop] = []
    cluster, line = helper("cluster", tmp, "listening on")
    procs["devcluster"] = cluster
    url = line.rsplit(" ", 1)[-1]
    try:
        api = Api(url, tmp / "kubeconfig")
        for ns in (SYSTEM_NAMESPACE, NAMESPACE):
            api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        procs["peers"], _ = helper("peers", tmp, "peers running")

        blueprint = yaml.safe_load((REPO / "examples" / "in-cluster" / "10-blueprint.yaml")
                                   .read_text())
        blueprint["metadata"] = {"name": BLUEPRINT}
        drain: float | int = (int(args.drain_seconds) if args.drain_seconds.is_integer()
                              else args.drain_seconds)
        blueprint["spec"]["tls"]["drainSeconds"] = drain
        api.request("POST", "/apis/gateway.bifrost.dev/v1alpha1/gatewayclassblueprints",
                    blueprint)
        api.request("POST", f"{GW}/gatewayclasses", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": CLASS},
            "spec": {"controllerName": "gateway.bifrost.dev/bifrost", "parametersRef": {
                "group": "gateway.bifrost.dev", "kind": "GatewayClassBlueprint",
                "name": BLUEPRINT}},
        })
        controller, log_path = start_controller(tmp, db, args)
        procs["controller"] = controller
        print(f"devcluster {url}; controller pid {controller.pid}; workdir {tmp}", flush=True)

        def alive() -> None:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    log = log_path if name == "controller" else tmp / f"{name}.log"
                    raise SystemExit(f"{name} exited:\n{log.read_text()[-3000:]}")

        def class_accepted() -> bool:
            alive()
            return condition(api.request("GET", f"{GW}/gatewayclasses/{CLASS}"), "Accepted")

        wait(class_accepted, 60, "the GatewayClass to be Accepted")
        store = open_store(f"sqlite:///{db}")

        # ---- provision ------------------------------------------------------------------
        names = [f"gw-{i:05d}" for i in range(n)]
        start = time.monotonic()
        for name in names:
            api.request("POST", f"{GW}/namespaces/{NAMESPACE}/gateways", {
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"gatewayClassName": CLASS, "listeners": [{
                    "name": "https", "protocol": "HTTPS", "port": 443,
                    "hostname": f"{name}.bench.example",
                    "tls": {"certificateRefs": [{"name": f"{name}-user-tls"}]}}]},
            })
        progress_at = time.monotonic()
        while True:
            alive()
            items = api.request("GET", f"{GW}/namespaces/{NAMESPACE}/gateways")["items"]
            parents = {g["metadata"]["name"]: g for g in items if g["metadata"]["name"] in
                       set(names)}
            attached = {c.gateway_uid for c in store.list_certificates()
                        if c.attached and c.fingerprint_sha256}
            ready = sum(1 for g in parents.values()
                        if condition(g, "Programmed") and g["metadata"]["uid"] in attached)
            if ready >= n:
                break
            if time.monotonic() - progress_at > 10:
                print(f"  provisioning {time.monotonic() - start:6.1f}s: {ready}/{n} Programmed "
                      "with a certificate", flush=True)
                progress_at = time.monotonic()
            if time.monotonic() - start > args.timeout:
                raise SystemExit(f"TIMEOUT: {ready}/{n} provisioned after {args.timeout:.0f}s")
            time.sleep(1.0)
        provision_secs = time.monotonic() - start
        print(f"  {n} Gateways Programmed with a certificate in {provision_secs:.1f}s",
              flush=True)

        # ---- targets and the handshake loops --------------------------------------------
        children = {g["metadata"]["name"][: -len(CHILD_SUFFIX)]: g for g in items
                    if g["metadata"]["name"].endswith(CHILD_SUFFIX)}
        uid_of = {name: parents[name]["metadata"]["uid"] for name in names}
        name_of = {uid: name for name, uid in uid_of.items()}
        old_records = {c.gateway_uid: c for c in store.list_certificates() if c.attached}
        assert len(old_records) == n, f"{len(old_records)} attached certificates for {n} gateways"
        targets = [Target("127.0.0.1",
                          int(children[name]["metadata"]["annotations"][PORT_ANNOTATION]),
                          f"{name}.bench.example") for name in names]
        ca_pem = api.request("GET", "/api/v1/namespaces/kube-public/configmaps/devcluster-ca"
                             )["data"]["ca.crt"]
        k = max(1, min(args.handshake_threads, n))
        loops = [HandshakeLoop(targets[i::k], ca_pem=ca_pem, interval=args.handshake_interval)
                 for i in range(k)]
        for loop in loops:
            loop.start()

        def handshakes() -> tuple[int, int, Counter[str], float, list[str]]:
            reports = [loop.report() for loop in loops]
            seen: Counter[str] = Counter()
            for r in reports:
                seen.update(r.fingerprints)
            return (sum(r.handshakes for r in reports), sum(r.failures for r in reports), seen,
                    max(r.longest_gap for r in reports),
                    [e for r in reports for e in r.errors])

        wait(lambda: handshakes()[0] >= 2 * n, 120, "two handshakes per target")
        warm = handshakes()
        if warm[1]:
            raise SystemExit(f"handshakes fail before any rotation: {warm[4][:5]}")

        # ---- trigger: every renewal falls due at the same moment ------------------------
        time.sleep(2.0)  # let the provisioning's trailing writes settle
        before_ids = {o.id for o in store.list_operations(limit=100_000)}
        pids = {name: proc.pid for name, proc in procs.items()} | {"bench": os.getpid()}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        rss_before = vm(controller.pid, "VmRSS")
        hwm_reset = reset_peak_rss(controller.pid)
        api.request("DELETE", "/devcluster/requests")
        hs0, t_hs0 = handshakes(), time.monotonic()
        t_written0 = time.monotonic()
        due = clock.now() + timedelta(seconds=args.lead_seconds)
        due_mono = t_written0 + args.lead_seconds
        for record in old_records.values():
            store.upsert_certificate(record.model_copy(update={"renewal_at": due}))
        write_secs = time.monotonic() - t_written0
        if write_secs > args.lead_seconds:
            print(f"  NOTE: the store writes took longer than --lead-seconds "
                  f"{args.lead_seconds:g}: the first renewals fired before the last was written")
        print(f"  renewal_at of {n} certificates set to {due.isoformat()} in {write_secs:.2f}s "
              f"(poll {args.renewal_poll_seconds:g}s, jitter {args.jitter_seconds:g}s)",
              flush=True)

        def rotations() -> list[OperationRecord]:
            return [o for o in store.list_operations(limit=100_000)
                    if o.id not in before_ids and o.machine == ROTATION_MACHINE]

        progress_at = time.monotonic()
        while True:
            alive()
            ops = rotations()
            ended = [o for o in ops if o.status.terminal]
            if len(ops) >= n and len(ended) >= len(ops):
                break
            if time.monotonic() - progress_at > 10:
                hs = handshakes()
                states = Counter(o.state for o in ops if not o.status.terminal)
                print(f"  rotating {time.monotonic() - due_mono:6.1f}s after due: "
                      f"{len(ops)}/{n} started, {len(ended)} ended; in flight {dict(states)}; "
                      f"handshakes {hs[0] - hs0[0]} ({hs[1] - hs0[1]} failed)", flush=True)
                progress_at = time.monotonic()
            if time.monotonic() - due_mono > args.timeout:
                print(f"TIMEOUT: {len(ended)}/{n} rotations ended after {args.timeout:.0f}s")
                break
            time.sleep(0.5)
        t_end_mono = time.monotonic()
        hs1, t_hs1 = handshakes(), time.monotonic()
        peak = vm(controller.pid, "VmHWM")

        # the end state: every target serves its Gateway's new certificate
        new_records = {c.gateway_uid: c for c in store.list_certificates() if c.attached}
        for loop in loops:
            loop.stop()
        wrong_final: list[str] = []
        for name, target in zip(names, targets, strict=True):
            want = new_records.get(uid_of[name])
            try:
                got = loops[0].handshake(target)
            except OSError as exc:
                wrong_final.append(f"{name}: {exc}")
                continue
            if want is None or got != want.fingerprint_sha256:
                wrong_final.append(f"{name}: serves {got[:12]}")

        # trailing writes (status, Events) belong to the rotations: wait for 3 quiet seconds
        last, quiet_since = -1, time.monotonic()
        while True:
            snap = api.request("GET", "/devcluster/requests")
            nonlease = snap["writes"] - sum(
                v for key, v in write_breakdown(snap).items() if writer(key) == "lease")
            if nonlease != last:
                last, quiet_since = nonlease, time.monotonic()
            if time.monotonic() - quiet_since >= 3.0 or time.monotonic() - t_end_mono > 60:
                break
            time.sleep(0.5)
        settle_secs = time.monotonic() - t_end_mono
        cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        rss_after = vm(controller.pid, "VmRSS")
        log_text = log_path.read_text(errors="replace")
        errors, warnings = log_text.count(" ERROR "), log_text.count(" WARNING ")

        # what is left in the cluster and the store
        cert_objs = api.request("GET", f"{CERTS}/namespaces/{NAMESPACE}/certificates")["items"]
        secrets = {s["metadata"]["name"] for s in
                   api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets")["items"]}
        all_records = store.list_certificates()
        ops = rotations()
        journal = [j for j in store.journal(limit=10_000_000)
                   if j.operation_id in {o.id for o in ops}]
    finally:
        for loop in loops:
            loop.stop()
        for name in ("controller", "peers", "devcluster"):
            proc = procs.get(name)
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    # ---- figures ------------------------------------------------------------------------
    succeeded = [o for o in ops if o.status.value == "succeeded"]
    failed = [o for o in ops if o.status.terminal and o.status.value != "succeeded"]
    created = [o.created_at for o in ops]
    finished = [o.finished_at for o in ops if o.finished_at is not None]
    first_created = min(created) if created else due
    last_finished = max(finished) if finished else clock.now()
    total = (last_finished - due).total_seconds()
    window = (last_finished - first_created).total_seconds()
    durations = [(o.finished_at - o.created_at).total_seconds() for o in ops if o.finished_at]
    outcomes = Counter(j.outcome.value for j in journal)
    done_steps = [j for j in journal if j.outcome is JournalOutcome.DONE and j.step]
    # per step: from the first row of the step (write-ahead 'started') to its 'done'
    first_row: dict[tuple[int, str], datetime] = {}
    for j in journal:
        if j.step:
            at = (j.operation_id, j.step)
            first_row[at] = min(first_row.get(at, j.started_at), j.started_at)
    step_secs: dict[str, list[float]] = {}
    step_order: list[str] = []
    for j in done_steps:
        assert j.step is not None
        end = j.finished_at or j.started_at
        if j.step not in step_secs:
            step_order.append(j.step)
        step_secs.setdefault(j.step, []).append(
            (end - first_row[(j.operation_id, j.step)]).total_seconds())
    steps_per_op = Counter(len([j for j in done_steps if j.operation_id == o.id]) for o in ops)

    writes = write_breakdown(snap)
    by_writer: Counter[str] = Counter()
    for key, v in writes.items():
        by_writer[writer(key)] += v
    raw = sum(writes.values())
    ctl = by_writer["controller"]

    hs_count, hs_fail = hs1[0] - hs0[0], hs1[1] - hs0[1]
    seen = hs1[2]
    old_fps = {r.fingerprint_sha256 for r in old_records.values()}
    new_fps = {r.fingerprint_sha256 for r in new_records.values()}
    unexpected = set(seen) - old_fps - new_fps
    hs_secs = t_hs1 - t_hs0
    per_target = hs_secs * n / hs_count if hs_count else float("nan")

    old_names = {r.object_name for r in old_records.values()}
    old_secrets = {r.secret_name for r in old_records.values()}
    cert_names = {c["metadata"]["name"] for c in cert_objs}
    new_names = {r.object_name for r in new_records.values()}
    per_gateway = Counter(r.gateway_uid for r in all_records)

    def row(label: str, value: str, target: str = "", verdict: str = "") -> None:
        print(f"  {label:50s} {value:>18s}  {target:>8s}  {verdict}")

    def ok(good: bool) -> str:
        return "ok" if good else "MISSED"

    print(f"\nbifrost rotation bench: {n} Gateways x 1 HTTPS listener, all renewals due at once "
          f"(renewal scheduler: poll {args.renewal_poll_seconds:g}s, jitter "
          f"{args.jitter_seconds:g}s); drain {args.drain_seconds:g}s, {args.workers} workers, "
          f"{k} handshake loops")
    row("figure", "value", "target")
    row("provisioning (N Gateways Programmed + certificate)", f"{provision_secs:.1f} s")
    row("rotations succeeded / failed / started", f"{len(succeeded)}/{len(failed)}/{len(ops)}",
        f"{n}/0/{n}", ok(len(succeeded) == n and not failed))
    row("total: renewal time -> last rotation done", f"{total:.1f} s")
    if created:
        row("  renewal time -> first / last rotation started",
            f"{(min(created) - due).total_seconds():.2f} / "
            f"{(max(created) - due).total_seconds():.2f} s")
    row("  first started -> last done (rotation window)", f"{window:.1f} s")
    row("  rotations per second", f"{len(succeeded) / window:.2f}" if window > 0 else "-")
    row("per rotation, created -> done: p50 / p95 / max",
        f"{pct(durations, .5):.1f} / {pct(durations, .95):.1f} / {max(durations or [0]):.1f} s")
    row("steps done (journal 'done' rows)", str(len(done_steps)))
    row("  steps per rotation", ", ".join(f"{s}x{c}" for s, c in sorted(steps_per_op.items())))
    row("steps per second (done rows / window)",
        f"{len(done_steps) / window:.1f}" if window > 0 else "-")
    row("journal rows of the rotations", str(len(journal)))
    row("  by outcome", " ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    row("API writes in the window (all clients)", str(raw))
    row("API writes per rotation, all", f"{raw / n:.2f}")
    row("  controller (without Lease renewals)", f"{ctl / n:.2f}")
    row("  peers (issuer, load balancer)", f"{by_writer['peers'] / n:.2f}")
    row("  Lease renewals in the window (excluded)", str(by_writer["lease"]))
    row("API requests total (incl. reads/watches)", str(snap["total"]))
    row("  settle after the last rotation (quiet 3 s)", f"{settle_secs:.1f} s")
    row("TLS handshakes during the rotations", str(hs_count))
    row("  failures", str(hs_fail), "0", ok(hs_fail == 0))
    row("  handshakes per second", f"{hs_count / hs_secs:.0f}" if hs_secs > 0 else "-")
    row("  per target: mean interval / longest gap",
        f"{per_target * 1000:.0f} / {hs1[3] * 1000:.0f} ms", "50 ms",
        ok(hs1[3] <= 0.05))
    row("  leaves seen: old / new / other (of N each)",
        f"{len(set(seen) & old_fps)} / {len(set(seen) & new_fps)} / {len(unexpected)}",
        "N/N/0", ok(not unexpected))
    row("  targets serving the new leaf afterwards", f"{n - len(wrong_final)}/{n}", "N",
        ok(not wrong_final))
    row("certificate objects left (old ones gone)",
        f"{len(cert_objs)} ({len(cert_names & old_names)} old)", "N (0)",
        ok(cert_names == new_names and len(cert_objs) == n))
    row("old Secrets left", str(len(old_secrets & secrets)), "0", ok(not old_secrets & secrets))
    row("store: certificate records (per gateway max)",
        f"{len(all_records)} ({max(per_gateway.values() or [0])})", "N (1)",
        ok(len(all_records) == n and max(per_gateway.values() or [0]) == 1))
    row("controller RSS before / after", f"{rss_before:.1f} / {rss_after:.1f} MB")
    row("controller peak RSS during the rotations" if hwm_reset
        else "controller peak RSS (lifetime VmHWM)", f"{peak:.1f} MB")
    row("CPU seconds in the window (trigger -> settled)",
        " ".join(f"{name}={cpu1[name] - cpu0[name]:.1f}" for name in cpu0))
    row("controller log ERROR / WARNING lines", f"{errors} / {warnings}")

    print("\n  time per step (first attempt started -> done), s:    n    p50    p95    max")
    for step in step_order:
        secs = step_secs[step]
        print(f"    {step:48s} {len(secs):5d} {pct(secs, .5):6.2f} {pct(secs, .95):6.2f} "
              f"{max(secs):6.2f}")
    print("\n  writes in the window by verb/resource:                  writer     total  /rotation")
    for key, v in sorted(writes.items(), key=lambda kv: (writer(kv[0]), -kv[1])):
        print(f"    {pretty(key):58s} {writer(key):10s} {v:6d} {v / n:8.2f}")
    print("\n  requests in the window by verb/resource (top 12):")
    for key, v in sorted(snap["byVerbResource"].items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {pretty(key):58s} {v:8d} {v / n:8.2f}")
    if failed:
        print("\n  failed rotations:")
        for o in failed[:10]:
            print(f"    {name_of.get(o.gateway_uid, o.name)}: {o.state}: {o.last_error}")
    errs = hs1[4]
    if errs:
        print("\n  handshake errors (first 10):")
        for e in errs[:10]:
            print(f"    {e}")
    if wrong_final:
        print("\n  targets not serving their new certificate (first 10):")
        for e in wrong_final[:10]:
            print(f"    {e}")
    if args.keep:
        print(f"\nkept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    good = len(succeeded) == n and hs_fail == 0 and not unexpected and not wrong_final
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
