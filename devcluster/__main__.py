"""``python -m devcluster``: run one devcluster standalone until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
from pathlib import Path

from devcluster.auth.service import AUTHORIZATION_MODES
from devcluster.localpods import LocalPodOptions
from devcluster.localpods.images import parse_image_mapping
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
    p.add_argument(
        "--local-image",
        action="append",
        default=[],
        metavar="PATTERN=COMMAND",
        help="run the Pods whose every container image matches PATTERN (fnmatch, e.g. "
        "'bifrost:*') as local processes: COMMAND is the image's entrypoint (repeatable)",
    )
    p.add_argument(
        "--local-pods-dir",
        type=Path,
        default=None,
        help="where local pods keep their volumes, tokens and logs (default: a temporary "
        "directory, removed on exit)",
    )
    p.add_argument(
        "--local-sandbox",
        choices=("auto", "required", "off"),
        default="auto",
        help="confine local pods with bubblewrap: auto (where it works), required, off",
    )
    args = p.parse_args(argv)
    try:
        images = tuple(parse_image_mapping(m) for m in args.local_image)
    except ValueError as e:
        p.error(str(e))
    tmp: tempfile.TemporaryDirectory[str] | None = None
    local_pods: LocalPodOptions | None = None
    if images:
        root = args.local_pods_dir
        if root is None:
            tmp = tempfile.TemporaryDirectory(prefix="devcluster-pods-")
            root = Path(tmp.name)
        local_pods = LocalPodOptions(images=images, root=root, sandbox=args.local_sandbox)
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
        local_pods=local_pods,
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
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
