"""``GET .../pods/<name>/exec`` over a WebSocket (``kubectl exec POD [-c C] -- cmd args``): run
a command in a local Pod's container, stream its stdout and stderr, and end with its exit
status, as the kubelet's streaming server does for kube-apiserver.

The request is authorized as ``get`` on ``pods/exec`` (from the URL, by the server) and, as
upstream since 1.35 (``AuthorizePodWebsocketUpgradeCreatePermission``), as ``create`` too: a
WebSocket upgrade is a GET but runs a command. Then, as ``ExecREST.Connect``: the pod must exist
(404), not be finished (400 ``cannot exec into a container in a completed pod; current phase is
Succeeded``), be bound to a node (400 ``pod X does not have a host assigned``), and the
container must be one of its containers (the only one may be left out). ``command`` (repeated
in the query) must not be empty and at least one of stdout and stderr asked for. ``stdin`` and
``tty`` are answered 400: the devcluster does not support them. A simulated pod (no local
process) answers 400: the devcluster does not run it.

The channel protocol (``v5.channel.k8s.io``, else ``v4.channel.k8s.io``): each binary message's
first byte is its channel: 1 stdout, 2 stderr, 3 the final ``Status`` as JSON (``Success``, or
``Failure`` with reason ``NonZeroExitCode`` and the exit code as an ``ExitCode`` cause, which
kubectl turns into its own exit code). Then the server closes the WebSocket. A client that
hangs up (or closes) kills the command. The command runs as :mod:`devcluster.localpods.exec`
starts it. A request that is not a WebSocket upgrade (kubectl's SPDY fallback) is answered 400.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

from devcluster.auth import Auth
from devcluster.errors import ApiError
from devcluster.handlers import Api, RawBody, RequestContext
from devcluster.localpods.exec import ContainerNotRunning, ExecPlan
from devcluster.pod_streams import bad_request, pod_to_stream, register_pod_stream, require_node
from devcluster.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    FrameReader,
    HandshakeError,
    ProtocolError,
    Takeover,
    close_payload,
    encode_frame,
    error_answer,
    handshake,
)

__all__ = ["PROTOCOLS", "ExecSource", "exit_status", "register_pod_exec"]

JSON = dict[str, Any]

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
"""The channel protocols served, best first."""

STDOUT, STDERR, ERROR = 1, 2, 3
CLOSE_WAIT_SECONDS = 2.0
"""How long the server waits for the client's answer to its close frame."""


class ExecSource(Protocol):
    """Where a container's command is run (the local kubelet's runtime)."""

    def exec_plan(
        self, namespace: str, name: str, container: str, command: list[str]
    ) -> ExecPlan | None: ...


def register_pod_exec(api: Api, auth: Auth, source: ExecSource | None) -> None:
    """Answer ``pods/exec`` on ``api`` (and list it in discovery, verbs ``create`` and
    ``get`` as upstream), running commands with ``source`` (None: every pod is simulated)."""
    register_pod_stream(api, "exec", "PodExecOptions", lambda ctx: _handle(ctx, auth, source))


def _true(query: Mapping[str, str], key: str) -> bool:
    return query.get(key, "").lower() in ("true", "1")


def _container(pod: JSON, asked: str) -> str:
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    every = containers + [str(c.get("name")) for c in spec.get("initContainers") or []]
    every += [str(c.get("name")) for c in spec.get("ephemeralContainers") or []]
    if not asked:
        if len(containers) == 1:
            return containers[0]
        raise bad_request(
            f"a container name must be specified for pod {name}, choose one of: "
            f"[{' '.join(containers)}]"
        )
    if asked not in every:
        raise bad_request(f"container {asked} is not valid for pod {name}")
    return asked


def _handle(ctx: RequestContext, auth: Auth, source: ExecSource | None) -> tuple[int, RawBody]:
    ns, name = ctx.target.namespace or "", ctx.target.name or ""
    pod = pod_to_stream(ctx, auth, "exec")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    container = _container(pod, ctx.query.get("container", ""))
    require_node(pod)
    if _true(ctx.query, "stdin") or _true(ctx.query, "tty"):
        raise bad_request("stdin and tty are not supported by the devcluster's pods/exec")
    if not (_true(ctx.query, "stdout") or _true(ctx.query, "stderr")):
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")

    def run(path: str, headers: Mapping[str, str], sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client hung up: not a server error
            _serve(path, headers, sock, source, ns, name, container)

    return 101, Takeover(b"", run=run)


def _serve(
    path: str,
    headers: Mapping[str, str],
    sock: socket.socket,
    source: ExecSource | None,
    ns: str,
    name: str,
    container: str,
) -> None:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    command = query.get("command") or []
    try:
        if not command:
            raise bad_request("you must specify at least one command for the container")
        plan = source.exec_plan(ns, name, container, command) if source is not None else None
        if plan is None:
            raise bad_request(
                f"container {container} is not running: the devcluster does not run pod "
                f"{ns}/{name} (it is simulated: no local image runs its containers)"
            )
        try:
            answer = handshake("GET", headers, PROTOCOLS)
        except HandshakeError as e:
            raise bad_request(
                f"the devcluster serves pods/exec over a WebSocket "
                f"({', '.join(PROTOCOLS)}) only: {e}"
            ) from e
    except ContainerNotRunning as e:
        sock.sendall(error_answer(bad_request(f"{e} (pod {ns}/{name})")))
        return
    except ApiError as e:
        sock.sendall(error_answer(e))
        return
    sock.sendall(answer)
    stdout = _true({k: v[-1] for k, v in query.items()}, "stdout")
    stderr = _true({k: v[-1] for k, v in query.items()}, "stderr")
    _Session(sock, plan, command, stdout, stderr).run()


def exit_status(command: list[str], code: int) -> JSON:
    """The Status sent on the error channel at the end (the kubelet's ``ServeExec``)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        f"[{' '.join(command)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


class _Session:
    """One exec: the command's output to the client, the client's frames answered, then the
    status and the close handshake. One thread does it all (a TLS socket must not be read and
    written by two threads at once)."""

    def __init__(
        self, sock: socket.socket, plan: ExecPlan, command: list[str], stdout: bool, stderr: bool
    ) -> None:
        self.sock = sock
        self.plan = plan
        self.command = command
        self.wanted = {STDOUT: stdout, STDERR: stderr}
        self.reader = FrameReader()

    def _send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(encode_frame(opcode, payload))

    def _channel(self, channel: int, data: bytes) -> None:
        self._send(OP_BINARY, bytes([channel]) + data)

    def _client_frames(self) -> bool:
        """Read what the client sent; False when it hung up or closed."""
        data = self.sock.recv(65536)
        if not data:
            return False
        try:
            frames = self.reader.feed(data)
        except ProtocolError as e:
            self._send(OP_CLOSE, close_payload(1002, str(e)))
            return False
        for frame in frames:
            if frame.opcode == OP_CLOSE:
                self._send(OP_CLOSE, frame.payload[:2])
                return False
            if frame.opcode == OP_PING:
                self._send(OP_PONG, frame.payload)
            # data (stdin, resize) is not served: ignored
        return True

    def _readable(self, fds: list[Any], timeout: float) -> list[Any]:
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return [self.sock]  # decrypted bytes wait in the TLS layer, not in the socket
        readable, _, _ = select.select(fds, [], [], timeout)
        return list(readable)

    def run(self) -> None:
        try:
            process = subprocess.Popen(
                self.plan.argv,
                env=self.plan.env,
                cwd=self.plan.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:  # an unsandboxed command that cannot be started
            self._channel(STDERR, f"exec: {self.command[0]!r}: {e.strerror}\n".encode())
            self._finish(127)
            return
        try:
            code = self._pump(process)
        except OSError:
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            assert process.stdout is not None and process.stderr is not None
            process.stdout.close()
            process.stderr.close()
        if code is not None:
            with contextlib.suppress(OSError):
                self._finish(code)

    def _pump(self, process: subprocess.Popen[bytes]) -> int | None:
        """Stream the output until both pipes are closed; the exit code, or None when the
        client went away first."""
        assert process.stdout is not None and process.stderr is not None
        pipes = {process.stdout.fileno(): STDOUT, process.stderr.fileno(): STDERR}
        while pipes:
            for r in self._readable([self.sock, *pipes], 1.0):
                if r is self.sock:
                    if not self._client_frames():
                        return None
                    continue
                data = os.read(r, 65536)
                if not data:
                    del pipes[r]
                elif self.wanted[pipes[r]]:
                    self._channel(pipes[r], data)
        code = process.wait()
        return 128 - code if code < 0 else code

    def _finish(self, code: int) -> None:
        self._channel(ERROR, json.dumps(exit_status(self.command, code)).encode())
        self._send(OP_CLOSE, close_payload(1000))
        self.sock.settimeout(CLOSE_WAIT_SECONDS)
        with contextlib.suppress(OSError, ProtocolError):
            while True:  # until the client's close (or it hangs up, or the time is over)
                data = self.sock.recv(65536)
                if not data or any(f.opcode == OP_CLOSE for f in self.reader.feed(data)):
                    return
