"""Container probes: when a probe is due and what its results mean (a pure state machine on an
injected clock), and the prober that runs one (HTTP GET, TCP connect, exec).

Upstream's semantics: the first probe runs ``initialDelaySeconds`` after the container started,
then every ``periodSeconds`` (10); a probe that does not answer within ``timeoutSeconds`` (1)
failed; the result flips after ``successThreshold`` (1) successes or ``failureThreshold`` (3)
failures in a row. A readiness result starts False, a liveness result True; the startup probe
starts False and, once it succeeded, is never run again; until then neither liveness nor
readiness is probed. An exec probe runs its command in the container's current run, as
``kubectl exec`` does (:mod:`.exec`): exit code 0 succeeds; otherwise the command's output
(stdout and stderr together) is the failure message, and a command still running after
``timeoutSeconds`` is killed and fails with ``command "<argv>" timed out``, as upstream's.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from typing import Any

from devcluster.localpods.exec import ContainerNotRunning, ExecPlan

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


#: The most of an exec probe's output kept as its message (upstream's kubelet keeps 10 KiB).
MAX_EXEC_OUTPUT = 10 * 1024

#: How to run a command in the probed container's current run (raises ContainerNotRunning).
ExecPlanner = Callable[[list[str]], ExecPlan]


def run_exec(command: list[str], plan: ExecPlanner, timeout: float) -> tuple[bool, str]:
    """Run an exec probe's ``command``: (exit code 0, its output or the timeout message)."""
    if not command:
        return False, "exec probe has no command"
    try:
        how = plan(command)
    except ContainerNotRunning as e:
        return False, str(e)
    try:
        proc = subprocess.Popen(how.argv, env=how.env, cwd=how.cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as e:
        return False, f"exec {command[0]!r}: {e}"
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # its own session: nsenter's forked child and anything it started go too
        with contextlib.suppress(ProcessLookupError):  # it ended by itself meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return False, f'command "{" ".join(command)}" timed out'
    if proc.returncode == 0:
        return True, ""
    return False, output[:MAX_EXEC_OUTPUT].decode("utf-8", "replace")


def run_probe(probe: JSON, container: JSON, pod_ip: str, timeout: float,
              exec_plan: ExecPlanner | None = None) -> tuple[bool, str]:
    """Run ``probe`` against the container at ``pod_ip`` (``exec_plan``: how to run an exec
    probe's command in it; None: it has no running process): (success, failure message)."""
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
            if exec_plan is None:
                return False, "the container is not running"
            command = [str(x) for x in (probe["exec"] or {}).get("command") or []]
            return run_exec(command, exec_plan, timeout)
        return False, "probe has no handler"
    except ValueError as e:
        return False, str(e)
