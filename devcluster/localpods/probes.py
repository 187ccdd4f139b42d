"""Container probes: when a probe is due and what its results mean (a pure state machine on an
injected clock), and the prober that runs one (HTTP GET, TCP connect).

Upstream's semantics: the first probe runs ``initialDelaySeconds`` after the container started,
then every ``periodSeconds`` (10); a probe that does not answer within ``timeoutSeconds`` (1)
failed; the result flips after ``successThreshold`` (1) successes or ``failureThreshold`` (3)
failures in a row. A readiness result starts False, a liveness result True; the startup probe
starts False and, once it succeeded, is never run again; until then neither liveness nor
readiness is probed. Exec probes are not supported (they fail, saying so).
"""

from __future__ import annotations

import http.client
import socket
from typing import Any

__all__ = ["ProbeState", "run_probe"]

JSON = dict[str, Any]


class ProbeState:
    """One probe of one container run; ``kind``: ``startup``, ``liveness`` or ``readiness``."""

    def __init__(self, kind: str, probe: JSON, started: float) -> None:
        self.kind = kind
        self.probe = probe
        self.period = float(probe.get("periodSeconds") or 10)
        self.timeout = float(probe.get("timeoutSeconds") or 1)
        self.success_threshold = int(probe.get("successThreshold") or 1)
        self.failure_threshold = int(probe.get("failureThreshold") or 3)
        self.next_due = started + float(probe.get("initialDelaySeconds") or 0)
        self.result = kind == "liveness"
        self.successes = 0
        self.failures = 0
        self.last_message = ""

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def record(self, ok: bool, message: str, now: float) -> bool:
        """Count one result; returns whether :attr:`result` changed."""
        self.next_due = now + self.period
        self.last_message = message
        if ok:
            self.successes += 1
            self.failures = 0
            if not self.result and self.successes >= self.success_threshold:
                self.result = True
                return True
        else:
            self.failures += 1
            self.successes = 0
            if self.result and self.failures >= self.failure_threshold:
                self.result = False
                return True
            if self.kind == "startup" and self.failures >= self.failure_threshold:
                return True
        return False

    @property
    def failed(self) -> bool:
        """A liveness or startup probe that asks for the container to be restarted."""
        return self.failures >= self.failure_threshold and self.kind in ("liveness", "startup")


def _port(container: JSON, port: object) -> int:
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or []:
        if p.get("name") == text:
            return int(p["containerPort"])
    raise ValueError(f"port {text!r} is not a named port of the container")


def run_probe(probe: JSON, container: JSON, pod_ip: str, timeout: float) -> tuple[bool, str]:
    """Run ``probe`` against the container at ``pod_ip``: (success, failure message)."""
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            host = str(get.get("host") or pod_ip)
            port = _port(container, get.get("port"))
            path = str(get.get("path") or "/")
            scheme = str(get.get("scheme") or "HTTP").upper()
            url = f"{scheme.lower()}://{host}:{port}{path}"
            if scheme == "HTTPS":
                import ssl

                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, port, timeout=timeout, context=ssl._create_unverified_context()
                )
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                headers.setdefault("User-Agent", "kube-probe/1.31")
                conn.request("GET", path, headers=headers)
                answer = conn.getresponse()
                answer.read(10240)
            except ConnectionRefusedError:
                return False, f'Get "{url}": dial tcp {host}:{port}: connect: connection refused'
            except TimeoutError:
                return False, (
                    f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                    "awaiting headers)"
                )
            except OSError as e:
                return False, f'Get "{url}": {e}'
            finally:
                conn.close()
            if 200 <= answer.status < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {answer.status}"
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"]
            host = str(tcp.get("host") or pod_ip)
            port = _port(container, tcp.get("port"))
            try:
                socket.create_connection((host, port), timeout=timeout).close()
            except OSError as e:
                return False, f"dial tcp {host}:{port}: {e}"
            return True, ""
        if "exec" in probe:
            return False, "exec probes are not supported by the devcluster's local kubelet"
        return False, "probe has no handler"
    except ValueError as e:
        return False, str(e)
