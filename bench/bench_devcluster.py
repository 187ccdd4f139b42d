"""Devcluster throughput: creates/s, gets/s, lists/s and watch events/s with 10 watchers.

bifrost's own benchmarks run against the devcluster, so it must be fast enough to measure bifrost
rather than itself (target: >= 1,000 small writes/s and >= 3,000 gets/s on a 2-core machine).
The server runs in its own process (``python -m devcluster``), as it would for
``bifrost dev``; the clients are the official ``kubernetes`` client over HTTP and, to separate
client cost from server cost, a raw keep-alive ``http.client`` loop.

Every request carries the admin's bearer token; ``--authorization RBAC`` (the default, like
``python -m devcluster``) authenticates and authorizes each one, ``--authorization AlwaysAllow``
skips both. The server loads the bundled Gateway API CRDs, and the raw client also creates
Gateways and HTTPRoutes, each one different (hostnames, names, ports), so the CRDs' CEL
validation rules run on every write; ``--no-validation-rules`` turns them off.
``--compare`` runs the whole benchmark in pairs (``--rounds``, default 3), with RBAC and
validation rules (the default) and without either, and prints for each figure the median share
of the first over the second: the issue's budget is at most 20% less throughput with both on.

Usage: ``python bench/bench_devcluster.py [--n 2000] [--authorization RBAC|AlwaysAllow]
[--no-validation-rules] [--compare] [--url http://127.0.0.1:PORT --token TOKEN]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kubernetes import client, watch

from devcluster.bundle import upstream_crd_dirs

TOKEN = ""  # the admin's bearer token, sent with every request


@contextmanager
def server(url: str | None, authorization: str, validation_rules: bool) -> Iterator[str]:
    if url:
        yield url
        return
    crds = [a for d in upstream_crd_dirs() for a in ("--crds", str(d))]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devcluster",
            "--port",
            "0",
            "--authorization",
            authorization,
            f"--admin-token={TOKEN}",  # one form: a token may start with "-"
            *crds,
            *([] if validation_rules else ["--no-validation-rules"]),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def rate(n: int, fn: Callable[[int], object], threads: int = 1) -> float:
    per = n // threads

    def work(offset: int) -> None:
        for i in range(per):
            fn(offset + i)

    ts = [threading.Thread(target=work, args=(k * per,)) for k in range(threads)]
    start = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * threads / (time.perf_counter() - start)


def official(url: str, n: int) -> dict[str, float]:
    cfg = client.Configuration()
    cfg.host = url
    cfg.api_key = {"authorization": f"Bearer {TOKEN}"}
    client.Configuration.set_default(cfg)
    api = client.ApiClient(cfg)
    core = client.CoreV1Api(api)
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    out: dict[str, float] = {}
    out["creates/s"] = rate(
        n,
        lambda i: core.create_namespaced_config_map(
            ns, {"metadata": {"name": f"cm-{i}"}, "data": {"k": "v"}}
        ),
    )
    out["gets/s"] = rate(n, lambda i: core.read_namespaced_config_map(f"cm-{i % n}", ns))
    out["updates/s (patch)"] = rate(
        n // 2,
        lambda i: core.patch_namespaced_config_map(f"cm-{i}", ns, {"data": {"k": str(i)}}),
    )
    small = f"{ns}-small"
    core.create_namespace({"metadata": {"name": small}})
    for i in range(10):
        core.create_namespaced_config_map(small, {"metadata": {"name": f"s-{i}"}})
    out["lists/s (10 items)"] = rate(n // 4, lambda i: core.list_namespaced_config_map(small))
    out["watch events/s (10 watchers)"] = watch_rate(core, ns, n // 2)
    return out


def watch_rate(core: client.CoreV1Api, ns: str, m: int) -> float:
    target = f"{ns}-w"
    core.create_namespace({"metadata": {"name": target}})
    counts = [0] * 10
    ready = threading.Barrier(11)
    done = threading.Event()
    rv = core.list_namespaced_config_map(target).metadata.resource_version

    def watcher(k: int) -> None:
        w = watch.Watch()
        ready.wait()
        for _ in w.stream(
            core.list_namespaced_config_map, target, resource_version=rv, timeout_seconds=120
        ):
            counts[k] += 1
            if counts[k] >= m:
                w.stop()
        if all(c >= m for c in counts):
            done.set()

    threads = [threading.Thread(target=watcher, args=(k,), daemon=True) for k in range(10)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter()
    raw = RawClient(core.api_client.configuration.host)
    for i in range(m):
        raw.request(
            "POST",
            f"/api/v1/namespaces/{target}/configmaps",
            {"metadata": {"name": f"w-{i}"}},
        )
    for t in threads:
        t.join(timeout=120)
    elapsed = time.perf_counter() - start
    return sum(counts) / elapsed


class RawClient:
    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port)

    def request(self, method: str, path: str, body: object | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        headers["Authorization"] = f"Bearer {TOKEN}"
        self.conn.request(method, path, data, headers)
        r = self.conn.getresponse()
        payload = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {payload[:200]!r}")
        return payload


def raw(url: str, n: int) -> dict[str, float]:
    c = RawClient(url)
    ns = f"raw-{uuid.uuid4().hex[:6]}"
    c.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    base = f"/api/v1/namespaces/{ns}/configmaps"
    out: dict[str, float] = {}
    out["creates/s"] = rate(
        n, lambda i: c.request("POST", base, {"metadata": {"name": f"cm-{i}"}, "data": {"k": "v"}})
    )
    out["gets/s"] = rate(n, lambda i: c.request("GET", f"{base}/cm-{i % n}"))
    small = f"{ns}-small"
    c.request("POST", "/api/v1/namespaces", {"metadata": {"name": small}})
    for i in range(10):
        c.request("POST", f"/api/v1/namespaces/{small}/configmaps", {"metadata": {"name": f"s{i}"}})
    out["lists/s (10 items)"] = rate(
        n // 4, lambda i: c.request("GET", f"/api/v1/namespaces/{small}/configmaps")
    )
    clients = [RawClient(url) for _ in range(4)]
    many = 4 * n  # long enough a window to be more than scheduling noise
    out["gets/s (4 connections)"] = rate(
        many, lambda i: clients[i * 4 // many].request("GET", f"{base}/cm-{i % n}"), threads=4
    )
    gw = f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/gateways"
    out["gateway creates/s (CEL rules)"] = rate(n // 2, lambda i: c.request("POST", gw, gateway(i)))
    routes = f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes"
    out["httproute creates/s (CEL rules)"] = rate(
        n // 2, lambda i: c.request("POST", routes, httproute(i))
    )
    return out


def gateway(i: int) -> dict[str, object]:
    """A Gateway unlike every other (names, hostnames, ports), with HTTP and HTTPS listeners."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": f"gw-{i}"},
        "spec": {
            "gatewayClassName": "bench",
            "listeners": [
                {"name": f"http-{i}", "port": 8000 + i % 1000, "protocol": "HTTP",
                 "hostname": f"h{i}.example.com"},
                {"name": f"https-{i}", "port": 9000 + i % 1000, "protocol": "HTTPS",
                 "hostname": f"s{i}.example.com",
                 "tls": {"mode": "Terminate", "certificateRefs": [{"name": f"cert-{i}"}]}},
            ],
        },
    }


def httproute(i: int) -> dict[str, object]:
    """An HTTPRoute unlike every other, with a path match, a header filter and a backend."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": f"route-{i}"},
        "spec": {
            "parentRefs": [{"name": f"gw-{i}"}],
            "hostnames": [f"r{i}.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": f"/app-{i}"}}],
                    "filters": [
                        {"type": "RequestHeaderModifier",
                         "requestHeaderModifier": {"set": [{"name": "x-n", "value": str(i)}]}}
                    ],
                    "backendRefs": [{"name": f"svc-{i}", "port": 80 + i % 100}],
                }
            ],
        },
    }


def run(url: str | None, n: int, authorization: str, validation_rules: bool) -> dict[str, float]:
    """One whole benchmark; returns every figure under "<section>: <name>"."""
    figures: dict[str, float] = {}
    with server(url, authorization, validation_rules) as where:
        print(
            f"devcluster at {where}, n={n}, authorization={authorization}, "
            f"validation rules {'on' if validation_rules else 'off'}"
        )
        for title, section in (
            ("official client", official(where, n)),
            ("raw http.client keep-alive", raw(where, n)),
        ):
            print(f"\n{title}:")
            for k, v in section.items():
                print(f"  {k:32s} {v:10.0f}")
                figures[f"{title}: {k}"] = v
    return figures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--url", default=None, help="an already running devcluster")
    p.add_argument("--token", default=None, help="its admin token (with --url)")
    p.add_argument(
        "--authorization",
        choices=["RBAC", "AlwaysAllow"],
        default="RBAC",
        help="the devcluster's authorization mode (not with --url)",
    )
    p.add_argument(
        "--no-validation-rules",
        action="store_true",
        help="the devcluster does not evaluate CRD validation rules (not with --url)",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="run with RBAC and validation rules, then without both, and compare",
    )
    p.add_argument("--rounds", type=int, default=3, help="with --compare: pairs of runs")
    args = p.parse_args()
    global TOKEN
    TOKEN = args.token or secrets.token_urlsafe(32)
    if not args.compare:
        run(args.url, args.n, args.authorization, not args.no_validation_rules)
        return 0
    shares: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        on = run(None, args.n, "RBAC", True)
        print()
        off = run(None, args.n, "AlwaysAllow", False)
        print()
        for k, v in on.items():
            shares.setdefault(k, []).append(100 * v / off[k])
    print(f"RBAC + validation rules, as a share of the run without them ({args.rounds} pairs):")
    for k, vs in shares.items():
        each = ", ".join(f"{v:.0f}" for v in vs)
        print(f"  {k:60s} median {statistics.median(vs):6.1f}%  ({each})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
