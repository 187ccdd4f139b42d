"""The local-pods tests' "image" (``probe-app:*``): a small HTTP program run by the devcluster's
local kubelet, whose behaviour the test Pod's env switches.

Env: ``APP_PORT`` (8080; it binds 0.0.0.0, which the netshim rewrites to the pod IP),
``APP_MODE`` (``serve``; ``crash``: print and exit 3 at once; ``ignore-term``: serve and ignore
SIGTERM; ``allocate``: first fill ``APP_ALLOCATE_MB`` MB of memory, every page touched, then
serve), ``APP_STATE`` (a directory: the file ``unhealthy`` there fails /healthz, ``unready``
fails /readyz). Routes: /healthz, /readyz, /env (JSON), /id (uid, gid), /write?path= (write a
file: ``ok`` or the error), /read?path=, /touch?path= (create a file), /k8s (list ConfigMaps of
the pod's namespace with the in-cluster config: ``{"status": 200, "names": [...]}`` or the
API's status code).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STATE = os.environ.get("APP_STATE", "/tmp")


def _k8s() -> dict[str, object]:
    from kubernetes import client, config  # type: ignore[import-untyped]
    from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

    config.load_incluster_config()
    with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
        namespace = f.read()
    try:
        items = client.CoreV1Api().list_namespaced_config_map(namespace).items
    except ApiException as e:
        return {"status": e.status}
    return {"status": 200, "names": sorted(i.metadata.name for i in items)}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, code: int, body: object) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/healthz":
            bad = os.path.exists(os.path.join(STATE, "unhealthy"))
            self._answer(500 if bad else 200, "unhealthy" if bad else "ok")
        elif url.path == "/readyz":
            bad = os.path.exists(os.path.join(STATE, "unready"))
            self._answer(500 if bad else 200, "unready" if bad else "ok")
        elif url.path == "/env":
            self._answer(200, dict(os.environ))
        elif url.path == "/id":
            self._answer(200, {"uid": os.getuid(), "gid": os.getgid(), "argv": sys.argv})
        elif url.path in ("/write", "/touch"):
            try:
                with open(q["path"], "w") as f:
                    f.write(q.get("data", "x"))
                self._answer(200, "ok")
            except OSError as e:
                self._answer(200, f"{type(e).__name__}: {e.strerror}")
        elif url.path == "/read":
            try:
                with open(q["path"]) as f:
                    self._answer(200, f.read())
            except OSError as e:
                self._answer(404, f"{type(e).__name__}: {e.strerror}")
        elif url.path == "/k8s":
            self._answer(200, _k8s())
        else:
            self._answer(404, "not found")


def main() -> int:
    mode = os.environ.get("APP_MODE", "serve")
    print(f"app starting mode={mode} args={sys.argv[1:]}", flush=True)
    if mode == "crash":
        print("app crashing", flush=True)
        return 3
    if mode == "allocate":
        megabytes = int(os.environ.get("APP_ALLOCATE_MB", "100"))
        held = [b"\x01" * (1 << 20) for _ in range(megabytes)]
        print(f"app allocated {len(held)} MB", flush=True)
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, lambda *_: print("app ignores SIGTERM", flush=True))
    else:

        def on_term(*_: object) -> None:
            print("app got SIGTERM", flush=True)
            os._exit(0)

        signal.signal(signal.SIGTERM, on_term)
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("APP_PORT", "8080"))), Handler)
    print(f"app listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
