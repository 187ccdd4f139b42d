"""``.../pods/<name>/portforward`` (``kubectl port-forward POD [LOCAL:]REMOTE``): relay TCP
connections to a local Pod's ports, as the kubelet's streaming server does for kube-apiserver.

Authorization: ``create`` on ``pods/portforward`` (a POST, from the URL, by the server); a
WebSocket upgrade is a GET, so it is checked as ``get`` by the server and, as upstream since
1.35 (``AuthorizePodWebsocketUpgradeCreatePermission``), as ``create`` here. Then, as
``PortForwardREST.Connect``: the pod must exist (404) and be bound to a node (400 ``pod X does
not have a host assigned``). A simulated pod (no local process) answers 400: the devcluster runs
nothing to forward to; so does a local pod without an IP yet.

Transports, as kubectl (client-go ``tools/portforward``) tries them: first a WebSocket
(subprotocol ``SPDY/3.1+portforward.k8s.io``) whose binary messages carry a SPDY/3.1 session as
a byte stream; kubectl falls back, when that upgrade is refused, to a plain upgrade (``Upgrade:
SPDY/3.1``, ``X-Stream-Protocol-Version: portforward.k8s.io``) after which the connection
carries SPDY itself. SPDY is :mod:`devcluster.spdy`.

Each forwarded connection is a pair of streams the client opens, ``streamtype`` ``error`` and
``data``, with the same ``requestid`` and the remote ``port`` in their headers. Once both are
open the server connects to the port: upstream the runtime connects to localhost inside the
pod's network namespace; here a local Pod has no namespace of its own but its own loopback
address (``status.podIP``, 127.x.y.z), which its listeners bind instead of ``127.0.0.1`` or
the wildcard (see :mod:`devcluster.localpods.netshim`), so the server connects to the pod's
IP and the port (a listener on the wildcard is reached there too; one a non-Python program
binds to ``127.0.0.1`` itself is not: the netshim rewrites Python's binds only). Bytes are
then relayed both ways; the client's ``FIN`` on the data stream closes the pod connection's
write side; when the pod closes its side the server ends both streams (``FIN``). A
connection that fails is reported as text on the error stream, in upstream's words (``error
forwarding port 8080 to pod <pod uid>, uid : ...``, the pod's uid standing for the sandbox id)
and both streams end: kubectl logs it, closes the session and exits (``error: lost connection
to pod``), as with a kubelet.

One thread per session (the HTTP server's connection thread) does everything with
``select`` (:mod:`devcluster.portforward_relay`): a TLS socket must not be read and written by
two threads at once. There is no flow control (spdystream has none); the client is not read
while more than ``MAX_PENDING`` bytes wait for a pod that does not read. The session lasts
until the client closes it; unlike a kubelet, the devcluster does not end it when the pod is
deleted.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping
from typing import Any, Protocol

from devcluster.auth import Auth
from devcluster.errors import ApiError
from devcluster.handlers import Api, RawBody, RequestContext
from devcluster.pod_streams import bad_request, pod_to_stream, register_pod_stream, require_node
from devcluster.portforward_relay import Forwarder, Transport
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

__all__ = ["PROTOCOL", "TUNNELED_PROTOCOL", "ForwardSource", "register_pod_portforward"]

JSON = dict[str, Any]

PROTOCOL = "portforward.k8s.io"
"""The stream protocol (``X-Stream-Protocol-Version``) of the plain SPDY upgrade."""

TUNNELED_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
"""The WebSocket subprotocol whose binary messages carry the SPDY session."""



class ForwardSource(Protocol):
    """Which pods run as local processes (the local kubelet's runtime)."""

    def handles(self, pod: JSON) -> object | None: ...


def register_pod_portforward(api: Api, auth: Auth, source: ForwardSource | None) -> None:
    """Answer ``pods/portforward`` on ``api`` (and list it in discovery, verbs ``create`` and
    ``get`` as upstream), relaying to the pods ``source`` runs (None: every pod is
    simulated)."""
    register_pod_stream(api, "portforward", "PodPortForwardOptions",
                        lambda ctx: _handle(ctx, auth, source))


def _handle(ctx: RequestContext, auth: Auth, source: ForwardSource | None) -> tuple[int, RawBody]:
    ns, name = ctx.target.namespace or "", ctx.target.name or ""
    pod = pod_to_stream(ctx, auth, "portforward")
    require_node(pod)
    if source is None or source.handles(pod) is None:
        raise bad_request(
            f"the devcluster does not run pod {ns}/{name} (it is simulated: no local image runs "
            "its containers), so it has no port to forward to"
        )
    ip = str((pod.get("status") or {}).get("podIP") or "")
    if not ip:
        raise bad_request(f"pod {ns}/{name} has no IP yet: its sandbox is not running")
    uid = str(pod["metadata"].get("uid") or "")
    websocket = ctx.verb == "get"

    def run(path: str, headers: Mapping[str, str], sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client hung up: not a server error
            _serve(headers, sock, websocket, ip, uid)

    return 101, Takeover(b"", run=run)


def _header_values(headers: Mapping[str, str], key: str) -> list[str]:
    """Every comma-separated value of a header (sent once or several times)."""
    get_all = getattr(headers, "get_all", None)
    raw = get_all(key) if callable(get_all) else [headers.get(key, "")]
    return [v.strip() for line in raw for v in str(line).split(",") if v.strip()]


def spdy_upgrade(headers: Mapping[str, str]) -> bytes:
    """The ``101`` answer to a plain SPDY/3.1 upgrade asking for :data:`PROTOCOL`; raises
    :class:`ApiError` (400, or 403 when the protocols do not match, as upstream's
    ``httpstream.Handshake``) otherwise."""
    connection = {v.lower() for v in _header_values(headers, "connection")}
    upgrade = {v.lower() for v in _header_values(headers, "upgrade")}
    if "upgrade" not in connection or "spdy/3.1" not in upgrade:
        raise bad_request(
            "the devcluster serves pods/portforward over a WebSocket "
            f"({TUNNELED_PROTOCOL}) or a SPDY/3.1 upgrade; this request asks for neither"
        )
    offered = _header_values(headers, "x-stream-protocol-version")
    if PROTOCOL not in offered:
        raise ApiError(
            403,
            "unable to upgrade: unable to negotiate protocol: client supports "
            f"[{' '.join(offered)}], server supports [{PROTOCOL}]",
            "Forbidden",
        )
    head = [
        "HTTP/1.1 101 Switching Protocols",
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        f"X-Stream-Protocol-Version: {PROTOCOL}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def _serve(
    headers: Mapping[str, str], sock: socket.socket, websocket: bool, ip: str, uid: str
) -> None:
    transport: Transport
    try:
        if websocket:
            try:
                answer = handshake("GET", headers, (TUNNELED_PROTOCOL,))
            except HandshakeError as e:
                raise bad_request(
                    f"the devcluster serves pods/portforward over a WebSocket "
                    f"({TUNNELED_PROTOCOL}) or a SPDY/3.1 upgrade: {e}"
                ) from e
            transport = _WebSocket(sock)
        else:
            answer = spdy_upgrade(headers)
            transport = _Raw(sock)
    except ApiError as e:
        sock.sendall(error_answer(e))
        return
    sock.sendall(answer)
    Forwarder(transport, ip, uid).run()


class _Raw:
    """SPDY straight on the connection (after ``Upgrade: SPDY/3.1``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self) -> bytes | None:
        return self.sock.recv(65536) or None

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        pass


class _WebSocket:
    """SPDY as the concatenated payloads of a WebSocket's binary messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = FrameReader()
        self.closed = False

    def read(self) -> bytes | None:
        data = self.sock.recv(65536)
        if not data:
            return None
        try:
            frames = self.reader.feed(data)
        except ProtocolError as e:
            self._close(close_payload(1002, str(e)))
            return None
        out = bytearray()
        for frame in frames:
            if frame.opcode == OP_CLOSE:
                self._close(frame.payload[:2])
                return None
            if frame.opcode == OP_PING:
                self.sock.sendall(encode_frame(OP_PONG, frame.payload))
            elif frame.opcode == OP_BINARY:
                out += frame.payload
        return bytes(out)

    def write(self, data: bytes) -> None:
        self.sock.sendall(encode_frame(OP_BINARY, data))

    def _close(self, payload: bytes) -> None:
        if not self.closed:
            self.closed = True
            self.sock.sendall(encode_frame(OP_CLOSE, payload))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._close(close_payload(1000))
