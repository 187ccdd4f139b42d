"""``python -m devcluster``: run one devcluster standalone until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from devcluster.auth.service import AUTHORIZATION_MODES
from devcluster.server import DevCluster


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument(
        "--crds",
        type=Path,
        action="append",
        default=[],
        help="CRD YAML file or directory (repeatable)",
    )
    p.add_argument("--kubeconfig-out", type=Path, default=None)
    p.add_argument("--state-file", type=Path, default=None)
    p.add_argument("--bookmark-interval", type=float, default=5.0)
    p.add_argument(
        "--authorization",
        choices=AUTHORIZATION_MODES,
        default="RBAC",
        help="RBAC (default: bearer tokens and RBAC, like a real cluster; the kubeconfig's "
        "user is the admin) or AlwaysAllow (every request is the admin)",
    )
    p.add_argument(
        "--admin-token",
        default=None,
        help="the admin's bearer token (default: random, or kept with --state-file)",
    )
    p.add_argument(
        "--pods-not-ready",
        action="store_true",
        help="pods run but never become Ready (so Deployments never become Available)",
    )
    p.add_argument(
        "--no-validation-rules",
        action="store_true",
        help="do not evaluate CRD validation rules (x-kubernetes-validations); for comparisons",
    )
    args = p.parse_args(argv)
    cluster = DevCluster(
        host=args.host,
        port=args.port,
        crd_paths=args.crds,
        state_file=args.state_file,
        bookmark_interval=args.bookmark_interval,
        authorization=args.authorization,
        admin_token=args.admin_token,
        pods_ready=not args.pods_not_ready,
        validation_rules=not args.no_validation_rules,
    )
    cluster.start()
    if args.kubeconfig_out:
        cluster.write_kubeconfig(args.kubeconfig_out)
    print(f"devcluster listening on {cluster.url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
