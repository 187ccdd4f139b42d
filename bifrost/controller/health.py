"""The controller's HTTP endpoints: ``/healthz`` and ``/readyz`` (the probes) and ``/metrics``.

A small threaded HTTP server that asks its :class:`HealthSource` (the
:class:`~bifrost.controller.manager.Controller`) what to answer; it holds no state of its own,
so the same class serves the health port and, separately, the metrics port.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from bifrost.controller.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bifrost.controller.metrics import Metrics

__all__ = ["HealthServer", "HealthSource"]


class HealthSource(Protocol):
    """What :class:`HealthServer` reads of the controller."""

    @property
    def metrics(self) -> Metrics: ...

    def healthy(self) -> bool: ...

    def ready(self) -> bool: ...

    def describe(self) -> dict[str, Any]: ...


class HealthServer:
    """``/healthz`` and ``/readyz`` (``health``) and ``/metrics`` (``metrics``) on a small
    threaded HTTP server; a path it does not serve is a 404."""

    def __init__(self, controller: HealthSource, host: str, port: int, *,
                 health: bool = True, metrics: bool = True) -> None:
        self.controller = controller
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                if (path == "/metrics" and not metrics) or (
                    path in ("/healthz", "/readyz") and not health
                ):
                    self.send_error(404)
                    return
                if path == "/metrics":
                    payload = outer.controller.metrics.exposition()
                    self.send_response(200)
                    self.send_header("Content-Type", METRICS_CONTENT_TYPE)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if self.path.split("?")[0] == "/healthz":
                    ok = outer.controller.healthy()
                elif self.path.split("?")[0] == "/readyz":
                    ok = outer.controller.ready()
                else:
                    self.send_error(404)
                    return
                body = json.dumps({"ok": ok, **outer.controller.describe()}).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._server.shutdown()
            self._server.server_close()
