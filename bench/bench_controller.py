"""Controller at scale: provision N Gateways (3 children each), then 10 idle full resyncs.

Figures (issue 4, "Benchmark"):

- wall time from the first Gateway create until every Gateway is ``Programmed=True`` (polled
  with one list every 0.5 s);
- API writes per Gateway from the devcluster's request log: raw (every write in the window),
  and adjusted (minus the bench's own Gateway creates and the controller's Lease renewals),
  broken down by verb and resource. Target: <= children + 3 = 6;
- the controller's peak RSS (``VmHWM`` of its process). Target: <= 200 MB at 1,000 Gateways;
- GETs per Gateway while provisioning (the steps and the status writer read from the informers'
  caches: target <= 1);
- steady state: after convergence the request log is reset and the controller (started with
  ``--resync-seconds``, default 1 s) runs 10 full resyncs: API requests other than Lease
  renewals and watches (target 0: a no-op resync reads the caches only), API writes (without
  Lease renewals) and database writes (``PRAGMA data_version`` on a long-lived connection — it
  changes when any other connection commits — plus a content diff of every table). Target: 0.

The devcluster runs as its own process (``python -m devcluster``, with the Gateway API,
cert-manager and bifrost CRDs; no peers: the blueprint has no Certificate or child Gateway), the
controller as another (``python -m bifrost.cli.run`` on a fresh SQLite file), and this process
only creates the objects and polls.

The blueprint: two ConfigMaps and one Secret, no ``readyWhen`` (ready on existence); the
Gateway's address comes from the first ConfigMap.

- drift repair: one child ConfigMap edited by another field manager — time until bifrost
  restored it (target <= 5 s) and the child writes the repair made (target <= 1).

Usage: ``python bench/bench_controller.py [--gateways 500] [--resync-seconds 1] [--keep]``
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NAMESPACE = "bench"
SYSTEM_NAMESPACE = "bifrost-system"
CLASS = "bench"
CHILDREN = 3
GW = "/apis/gateway.networking.k8s.io/v1"
LEASES = "leases.coordination.k8s.io"

BLUEPRINT = {
    "apiVersion": "gateway.bifrost.dev/v1alpha1",
    "kind": "GatewayClassBlueprint",
    "metadata": {"name": "bench"},
    "spec": {
        "defaults": {"host": "lb.bench.example"},
        "children": [
            {
                "id": "settings",
                "template": "apiVersion: v1\nkind: ConfigMap\n"
                "metadata: {name: '{{ gateway.metadata.name }}-settings'}\n"
                "data: {host: '{{ gateway.metadata.name }}.{{ values.host }}'}\n",
            },
            {
                "id": "routes",
                "template": "apiVersion: v1\nkind: ConfigMap\n"
                "metadata: {name: '{{ gateway.metadata.name }}-routes'}\n"
                "data: {listeners: '{{ gateway.spec.listeners | length }}'}\n",
            },
            {
                "id": "token",
                "template": "apiVersion: v1\nkind: Secret\n"
                "metadata: {name: '{{ gateway.metadata.name }}-token'}\n"
                "type: Opaque\ndata: {token: dG9rZW4=}\n",
            },
        ],
        "addresses": '[{"type": "Hostname", "value": children.settings.data.host}]',
    },
}


class Api:
    """A raw keep-alive HTTP client (cheap, so the bench measures the controller)."""

    def __init__(self, url: str, kubeconfig: Path) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        # the devcluster authorizes every request: send the admin token of its kubeconfig
        import yaml

        user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
        self.auth = {"Authorization": f"Bearer {user['token']}"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (),
                content_type: str = "application/json") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if data else {}
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


def start_devcluster(tmp: Path) -> tuple[subprocess.Popen[str], str, Path]:
    crds = [
        SHARED / "gateway-api" / "v1.6.1",
        SHARED / "cert-manager",
        REPO / "deploy" / "crds",
    ]
    missing = [str(d) for d in crds if not d.is_dir()]
    if missing:
        sys.exit(f"CRD directories not found: {missing}")
    kubeconfig = tmp / "kubeconfig"
    args = [sys.executable, "-m", "devcluster", "--port", "0",
            "--kubeconfig-out", str(kubeconfig)]
    for d in crds:  # non-recursive, like ``bifrost dev`` (skips gateway-api/conformance/)
        args += ["--crds", str(d)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        sys.exit("devcluster did not start")
    return proc, line.rsplit(" ", 1)[-1].strip(), kubeconfig


def start_controller(
    tmp: Path, kubeconfig: Path, db: Path, resync: float, workers: int
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = tmp / "controller.log"
    env = {**os.environ, "POD_NAMESPACE": SYSTEM_NAMESPACE, "BIFROST_DATA_DIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bifrost.cli.run", "--kubeconfig", str(kubeconfig),
         "--database-url", f"sqlite:///{db}", "--resync-seconds", str(resync),
         "--workers", str(workers), "--log-level", "WARNING"],
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


def children_peak(pid: int) -> float:
    """Sum of the peak RSS (MB) of ``pid``'s child processes: the sandbox workers."""
    kids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):  # children are listed per spawning thread
        try:
            kids.update(int(k) for k in (task / "children").read_text().split())
        except OSError:
            continue
    return sum(vm(k, "VmHWM") for k in kids)


def lease_writes(snap: dict[str, Any]) -> int:
    return sum(
        n for k, n in snap["byVerbResource"].items()
        if k.split(" ", 1)[0] in ("update", "patch", "create", "apply")
        and k.split(" ", 1)[1] == LEASES
    )


def non_lease_requests(snap: dict[str, Any]) -> int:
    """Requests other than Lease reads/renewals and watches."""
    return sum(n for k, n in snap["byVerbResource"].items()
               if not k.endswith(LEASES) and not k.startswith("watch "))


def write_breakdown(snap: dict[str, Any]) -> Counter[str]:
    writes = ("create", "update", "patch", "apply", "delete", "deletecollection")
    return Counter(
        {k: n for k, n in snap["byVerbResource"].items() if k.split(" ", 1)[0] in writes}
    )


class DbWatch:
    """Detects commits to the controller's SQLite store by other connections."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    def data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def tables(self) -> dict[str, tuple[int, str]]:
        """Per table: row count and a digest of its rows."""
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )]
        out: dict[str, tuple[int, str]] = {}
        self.conn.execute("BEGIN")
        try:
            for name in names:
                h = hashlib.sha256()
                n = 0
                for row in self.conn.execute(f'SELECT * FROM "{name}" ORDER BY 1'):  # noqa: S608
                    h.update(repr(row).encode())
                    n += 1
                out[name] = (n, h.hexdigest()[:12])
        finally:
            self.conn.execute("COMMIT")
        return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--gateways", type=int, default=500)
    p.add_argument("--resync-seconds", type=float, default=1.0,
                   help="resync interval of the steady-state controller")
    p.add_argument("--provision-resync-seconds", type=float, default=300.0,
                   help="resync interval while provisioning; if it differs from "
                   "--resync-seconds the controller is restarted for the steady state")
    p.add_argument("--resyncs", type=int, default=10)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--timeout", type=float, default=600.0, help="give up provisioning after")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    args = p.parse_args()
    n = args.gateways

    tmp = Path(tempfile.mkdtemp(prefix="bifrost-bench-controller-"))
    db = tmp / "bifrost.db"
    cluster, url, kubeconfig = start_devcluster(tmp)
    controller: subprocess.Popen[bytes] | None = None
    try:
        api = Api(url, kubeconfig)
        for ns in (SYSTEM_NAMESPACE, NAMESPACE):
            api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        api.request("POST", "/apis/gateway.bifrost.dev/v1alpha1/gatewayclassblueprints",
                    BLUEPRINT)
        api.request("POST", f"{GW}/gatewayclasses", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": CLASS},
            "spec": {"controllerName": "gateway.bifrost.dev/bifrost", "parametersRef": {
                "group": "gateway.bifrost.dev", "kind": "GatewayClassBlueprint",
                "name": "bench"}},
        })
        controller, log_path = start_controller(
            tmp, kubeconfig, db, args.provision_resync_seconds, args.workers
        )
        print(f"devcluster {url}; controller pid {controller.pid}; workdir {tmp}")

        def class_accepted() -> bool:
            if controller.poll() is not None:
                raise SystemExit(f"controller exited:\n{log_path.read_text()[-3000:]}")
            return condition(api.request("GET", f"{GW}/gatewayclasses/{CLASS}"), "Accepted")

        wait(class_accepted, 60, "the GatewayClass to be Accepted")
        time.sleep(2.0)  # let the class settle
        rss_idle = vm(controller.pid, "VmRSS")
        api.request("DELETE", "/devcluster/requests")

        # ---- provision ------------------------------------------------------------------
        start = time.monotonic()
        for i in range(n):
            api.request("POST", f"{GW}/namespaces/{NAMESPACE}/gateways", {
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": f"gw-{i:05d}", "namespace": NAMESPACE},
                "spec": {"gatewayClassName": CLASS,
                         "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
            })
        created = time.monotonic() - start
        programmed = 0
        progress_at = time.monotonic()
        while True:
            if controller.poll() is not None:
                raise SystemExit(f"controller exited:\n{log_path.read_text()[-3000:]}")
            items = api.request("GET", f"{GW}/namespaces/{NAMESPACE}/gateways")["items"]
            programmed = sum(1 for g in items if condition(g, "Programmed"))
            if programmed >= n:
                break
            if time.monotonic() - progress_at > 10:
                print(f"  {time.monotonic() - start:6.1f}s: {programmed}/{n} Programmed",
                      flush=True)
                progress_at = time.monotonic()
            if time.monotonic() - start > args.timeout:
                print(f"TIMEOUT: {programmed}/{n} Programmed after {args.timeout:.0f}s")
                break
            time.sleep(0.5)
        wall = time.monotonic() - start
        # Writes that land just after the last Programmed (e.g. trailing Events) belong to
        # provisioning too: settle for 2 resync intervals before reading the log.
        time.sleep(2.0)
        prov = api.request("GET", "/devcluster/requests")
        rss_after_prov = vm(controller.pid, "VmRSS")
        peak_prov = vm(controller.pid, "VmHWM")
        workers_peak = children_peak(controller.pid)
        restart: dict[str, Any] | None = None
        restart_secs = 0.0
        errors = warnings = 0
        if args.provision_resync_seconds != args.resync_seconds:
            # Restart with the short resync; the new leader's first pass is reported apart.
            controller.terminate()
            controller.wait(timeout=30)
            errors = log_path.read_text(errors="replace").count(" ERROR ")
            warnings = log_path.read_text(errors="replace").count(" WARNING ")
            api.request("DELETE", "/devcluster/requests")
            controller, log_path = start_controller(
                tmp, kubeconfig, db, args.resync_seconds, args.workers
            )
            t_restart = time.monotonic()
            # Quiesced: no request but Lease renewals and watches for 3 s, so the steady
            # window does not include the new leader's catch-up.
            last, quiet_since = -1, time.monotonic()
            while True:
                restart = api.request("GET", "/devcluster/requests")
                busy = non_lease_requests(restart)
                if busy != last:
                    last, quiet_since = busy, time.monotonic()
                if time.monotonic() - quiet_since >= 3.0:
                    break
                if controller.poll() is not None or time.monotonic() - t_restart > 300:
                    raise SystemExit(f"restarted controller: {log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            restart_secs = time.monotonic() - t_restart

        # ---- steady state ---------------------------------------------------------------
        dbw = DbWatch(db)
        api.request("DELETE", "/devcluster/requests")
        v0, t0 = dbw.data_version(), dbw.tables()
        # The controller resyncs every --resync-seconds from its cache (no list): the window
        # spans ``resyncs`` intervals plus one.
        steady_start = time.monotonic()
        time.sleep((args.resyncs + 1) * args.resync_seconds)
        steady = api.request("GET", "/devcluster/requests")
        steady_secs = time.monotonic() - steady_start
        v1, t1 = dbw.data_version(), dbw.tables()
        peak = vm(controller.pid, "VmHWM")

        # ---- drift repair -----------------------------------------------------------------
        # One child edited by another field manager: how long until bifrost restored it, and
        # what bifrost wrote for it (the child, plus its Events and status).
        api.request("DELETE", "/devcluster/requests")
        cm = f"/api/v1/namespaces/{NAMESPACE}/configmaps/gw-00000-settings"
        want = api.request("GET", cm)["data"]
        api.request("PATCH", cm + "?fieldManager=kubectl-edit", {"data": {"host": "evil"}},
                    content_type="application/merge-patch+json")
        t_drift = time.monotonic()
        while api.request("GET", cm)["data"] != want:
            if time.monotonic() - t_drift > 60:
                break
            time.sleep(0.05)
        drift_secs = time.monotonic() - t_drift
        time.sleep(2.0)  # the repair's trailing Events and status
        drift = api.request("GET", "/devcluster/requests")
        errors += log_path.read_text(errors="replace").count(" ERROR ")
        warnings += log_path.read_text(errors="replace").count(" WARNING ")
    finally:
        if controller is not None:
            controller.terminate()
            try:
                controller.wait(timeout=20)
            except subprocess.TimeoutExpired:
                controller.kill()
        cluster.terminate()
        cluster.wait(timeout=10)

    # ---- figures ------------------------------------------------------------------------
    bench_creates = prov["byVerbResource"].get("create gateways.gateway.networking.k8s.io", 0)
    p_leases = lease_writes(prov)
    raw_writes = prov["writes"]
    adjusted = raw_writes - bench_creates - p_leases
    s_leases = lease_writes(steady)
    s_writes = steady["writes"] - s_leases
    changed_tables = {
        name: (t0.get(name, (0, ""))[0], t1.get(name, (0, ""))[0])
        for name in sorted(set(t0) | set(t1)) if t0.get(name) != t1.get(name)
    }
    target_w = CHILDREN + 3

    def row(label: str, value: str, target: str = "", verdict: str = "") -> None:
        print(f"  {label:46s} {value:>16s}  {target:>10s}  {verdict}")

    def ok(good: bool) -> str:
        return "ok" if good else "MISSED"

    print(f"\nbifrost controller bench: {n} Gateways x {CHILDREN} children "
          f"(2 ConfigMaps + 1 Secret), {args.workers} workers, resync "
          f"{args.provision_resync_seconds:g}s provisioning / {args.resync_seconds:g}s steady")
    row("figure", "value", "target", "")
    row("create N Gateways (bench, raw HTTP)", f"{created:.2f} s")
    row("wall time until all Programmed", f"{wall:.1f} s")
    row("Gateways Programmed", f"{programmed}/{n}")
    row("  throughput", f"{programmed / wall:.1f} gw/s")
    row("API writes, raw (whole window)", str(raw_writes))
    row("  minus bench Gateway creates", str(bench_creates))
    row("  minus Lease renewals", str(p_leases))
    row("API writes per Gateway, raw", f"{raw_writes / n:.2f}")
    row("API writes per Gateway, adjusted", f"{adjusted / n:.2f}", f"<= {target_w}",
        ok(adjusted / n <= target_w))
    row("API requests total (incl. reads/watches)", str(prov["total"]))
    gets = sum(v for k, v in prov["byVerbResource"].items() if k.startswith("get ")
               and not k.endswith(LEASES))
    row("GETs per Gateway while provisioning (no Lease)", f"{gets / n:.2f}", "<= 1",
        ok(gets / n <= 1))
    row("controller RSS before Gateways", f"{rss_idle:.1f} MB")
    row("controller RSS after provisioning", f"{rss_after_prov:.1f} MB")
    if restart is not None:
        r_leases = lease_writes(restart)
        row("restart: API writes until quiet (no Lease)", str(restart["writes"] - r_leases),
            "0", ok(restart["writes"] == r_leases))
        row("restart: time until quiet", f"{restart_secs:.1f} s")
        row("steady controller peak RSS (VmHWM)", f"{peak:.1f} MB")
        peak = peak_prov
    row("controller peak RSS (VmHWM), provisioning", f"{peak:.1f} MB",
        "<= 200 MB" if n >= 1000 else "(1000 gw)", ok(peak <= 200) if n >= 1000 else "")
    row("sandbox workers peak RSS (sum of VmHWM)", f"{workers_peak:.1f} MB")
    row(f"steady: API writes in {args.resyncs} resyncs (no Lease)", str(s_writes), "0",
        ok(s_writes == 0))
    s_busy = non_lease_requests(steady)
    row(f"steady: requests in {args.resyncs} resyncs (no Lease/watch)", str(s_busy), "0",
        ok(s_busy == 0))
    row("steady: window", f"{steady_secs:.1f} s")
    row("steady: Lease renewals (excluded)", str(s_leases))
    row("steady: API requests total", str(steady["total"]))
    row("steady: DB commits seen (data_version)", "yes" if v1 != v0 else "no", "no",
        ok(v1 == v0))
    row("steady: DB tables changed", str(len(changed_tables)), "0", ok(not changed_tables))
    row("controller log ERROR / WARNING lines", f"{errors} / {warnings}")
    child_writes = drift["byVerbResource"].get("apply configmaps", 0) + drift[
        "byVerbResource"].get("patch configmaps", 0) - 1  # minus the bench's own edit
    row("drift: time until the edited child is restored", f"{drift_secs:.2f} s", "<= 5 s",
        ok(drift_secs <= 5))
    row("drift: child writes by the repair", str(child_writes), "<= 1", ok(child_writes <= 1))
    row("drift: all writes (no Lease; Events, status too)",
        str(drift["writes"] - lease_writes(drift) - 1))

    print("\n  provisioning writes by verb/resource (per Gateway):")
    for k, v in write_breakdown(prov).most_common():
        print(f"    {k:58s} {v:8d}  {v / n:6.2f}")
    print("\n  provisioning requests by verb/resource (top 12, per Gateway):")
    for k, v in sorted(prov["byVerbResource"].items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {k:58s} {v:8d}  {v / n:6.2f}")
    if restart is not None and restart["writes"]:
        print("\n  restart (new leader's first pass) writes by verb/resource:")
        for k, v in write_breakdown(restart).most_common():
            print(f"    {k:58s} {v:8d}")
    if steady["writes"]:
        print("\n  steady-state writes by verb/resource:")
        for k, v in write_breakdown(steady).most_common():
            print(f"    {k:58s} {v:8d}")
    if changed_tables:
        print("\n  steady-state DB tables changed (rows before -> after):")
        for name, (a, b) in changed_tables.items():
            print(f"    {name:40s} {a} -> {b}")
    print("\n  steady-state requests by verb/resource:")
    for k, v in sorted(steady["byVerbResource"].items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {k:58s} {v:8d}")
    print("\n  drift repair writes by verb/resource (the bench's edit included):")
    for k, v in write_breakdown(drift).most_common():
        print(f"    {k:58s} {v:8d}")
    if args.keep:
        print(f"\nkept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
