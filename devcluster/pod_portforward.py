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
``select``: a TLS socket must not be read and written by two threads at once. There is no
flow control (spdystream has none); the client is not read while more than
:data:`MAX_PENDING` bytes wait for a pod that does not read. The session lasts until the
client closes it; unlike a kubelet, the devcluster does not end it when the pod is deleted.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from collections.abc import Mapping
from typing import Any, Protocol

from devcluster.auth import Auth
from devcluster.errors import ApiError
from devcluster.faults import Request
from devcluster.handlers import Api, RawBody, RequestContext, Target
from devcluster.kinds.resource_type import Subresource
from devcluster.spdy import (
    GoneAway,
    Headers,
    ServerSession,
    SessionError,
    StreamData,
    StreamOpened,
    StreamReset,
)
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

CONNECT_TIMEOUT = 5.0
MAX_PENDING = 4 << 20
"""Bytes waiting for one pod connection past which the client is not read."""


class ForwardSource(Protocol):
    """Which pods run as local processes (the local kubelet's runtime)."""

    def handles(self, pod: JSON) -> object | None: ...


def register_pod_portforward(api: Api, auth: Auth, source: ForwardSource | None) -> None:
    """Answer ``pods/portforward`` on ``api`` (and list it in discovery, verbs ``create`` and
    ``get`` as upstream), relaying to the pods ``source`` runs (None: every pod is
    simulated)."""
    pods = api.registry.get("", "v1", "pods")
    assert pods is not None
    pods.subresources["portforward"] = Subresource(("create", "get"), "PodPortForwardOptions")
    api.handlers[("", "pods", "portforward")] = lambda ctx: _handle(ctx, auth, source)


def _bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def _handle(ctx: RequestContext, auth: Auth, source: ForwardSource | None) -> tuple[int, RawBody]:
    t = ctx.target
    ns, name = t.namespace or "", t.name or ""
    if ctx.verb == "get":  # a WebSocket upgrade: it must also be allowed to create
        auth.authorize(ctx.user, Request("create", "", "v1", "pods", "portforward", ns, name))
    elif ctx.verb != "create":
        raise ApiError(405, "method not allowed", "MethodNotAllowed")
    pod = ctx.api.get(Target(t.rt, "v1", t.namespace, name))  # 404 as for the pod
    if not (pod.get("spec") or {}).get("nodeName"):
        raise _bad_request(f"pod {name} does not have a host assigned")
    if source is None or source.handles(pod) is None:
        raise _bad_request(
            f"the devcluster does not run pod {ns}/{name} (it is simulated: no local image runs "
            "its containers), so it has no port to forward to"
        )
    ip = str((pod.get("status") or {}).get("podIP") or "")
    if not ip:
        raise _bad_request(f"pod {ns}/{name} has no IP yet: its sandbox is not running")
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
        raise _bad_request(
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
    transport: _Transport
    try:
        if websocket:
            try:
                answer = handshake("GET", headers, (TUNNELED_PROTOCOL,))
            except HandshakeError as e:
                raise _bad_request(
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
    _Forwarder(transport, ip, uid).run()


class _Transport(Protocol):
    sock: socket.socket

    def read(self) -> bytes | None:
        """The SPDY bytes that arrived (maybe none); None when the client is gone."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


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


def _reject(headers: Headers) -> str | None:
    """Why a stream is refused (upstream's ``httpStreamReceived``), or None."""
    port = (headers.get("port") or [""])[0]
    if not port:
        return '"port" header is required'
    if not port.isdigit() or int(port) > 65535:
        return f"unable to parse {port!r} as a port"
    if int(port) < 1:
        return f"port {port!r} must be > 0"
    kind = (headers.get("streamtype") or [""])[0]
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f"invalid stream type {kind!r}"
    return None


class _Pair:
    """One forwarded connection: its two streams and the connection to the pod."""

    def __init__(self, request_id: str, port: int) -> None:
        self.request_id = request_id
        self.port = port
        self.error_id = 0
        self.data_id = 0
        self.pod: socket.socket | None = None
        self.to_pod = bytearray()
        self.client_done = False  # the client's FIN (or reset) on the data stream
        self.ended = False  # the server ended both streams

    def complete(self) -> bool:
        return bool(self.error_id and self.data_id)


class _Forwarder:
    """One SPDY session: the pairs of streams, their pod connections, one ``select`` loop."""

    def __init__(self, transport: _Transport, ip: str, uid: str) -> None:
        self.transport = transport
        self.ip = ip
        self.uid = uid
        self.session = ServerSession(reject=_reject)
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}

    def run(self) -> None:
        try:
            self._loop()
        finally:
            for pair in list(self.pairs.values()):
                self._drop(pair)
            with contextlib.suppress(OSError):
                self._flush()  # a GOAWAY after a protocol error
            self.transport.close()

    def _flush(self) -> None:
        out = self.session.take_output()
        if out:
            self.transport.write(out)

    def _loop(self) -> None:
        client = self.transport.sock
        while True:
            self._flush()
            if self.session.ended:
                return
            waiting = any(len(p.to_pod) > MAX_PENDING for p in self.pairs.values())
            reads: list[Any] = [] if waiting else [client]
            reads += [p.pod for p in self.pairs.values() if p.pod is not None and not p.ended]
            writes = [p.pod for p in self.pairs.values() if p.pod is not None and p.to_pod]
            if not waiting and isinstance(client, ssl.SSLSocket) and client.pending():
                readable: list[Any] = [client]  # decrypted bytes wait in the TLS layer
                writable: list[Any] = []
            else:
                readable, writable, _ = select.select(reads, writes, [], 5.0)
            for s in writable:
                self._write_pod(s)
            for s in readable:
                if s is client:
                    if not self._from_client():
                        return
                else:
                    self._read_pod(s)

    def _pair_of(self, pod: socket.socket) -> _Pair | None:
        return next((p for p in self.pairs.values() if p.pod is pod), None)

    def _from_client(self) -> bool:
        """Handle what the client sent; False when it hung up or ended the session."""
        data = self.transport.read()
        if data is None:
            return False
        try:
            events = self.session.receive(data)
        except SessionError:
            return False  # the session queued its GOAWAY
        for event in events:
            if isinstance(event, StreamOpened):
                self._opened(event)
            elif isinstance(event, StreamData):
                self._data(event)
            elif isinstance(event, StreamReset):
                self._reset(event)
            elif isinstance(event, GoneAway):
                return False
        return True

    def _opened(self, event: StreamOpened) -> None:
        kind = event.headers["streamtype"][0]
        request_id = (event.headers.get("requestid") or [""])[0]
        if not request_id:  # an old client: upstream's guess from the stream ids
            request_id = str(event.stream_id - (2 if kind == "data" else 0))
        port = int(event.headers["port"][0])
        pair = self.pairs.setdefault(request_id, _Pair(request_id, port))
        if (pair.data_id if kind == "data" else pair.error_id) or pair.ended:
            message = f"error processing stream for request {request_id}: "
            message += f"{kind} stream already assigned"
            if pair.error_id and not pair.ended:
                self.session.send_data(pair.error_id, message.encode())
            self.session.reset(event.stream_id)
            return
        if kind == "data":
            pair.data_id = event.stream_id
        else:
            pair.error_id = event.stream_id
            self.session.close_stream(event.stream_id)  # the client writes nothing there
        self.by_stream[event.stream_id] = pair
        if pair.complete():
            self._connect(pair)

    def _connect(self, pair: _Pair) -> None:
        try:
            pod = socket.create_connection((self.ip, pair.port), timeout=CONNECT_TIMEOUT)
        except OSError as e:
            reason = e.strerror or str(e)
            self._end(
                pair,
                f"error forwarding port {pair.port} to pod {self.uid}, uid : failed to connect "
                f"to {self.ip}:{pair.port} (the pod's loopback address): "
                f"connect: {reason.lower()}",
            )
            self._drop(pair)
            return
        pod.setblocking(False)
        pair.pod = pod

    def _data(self, event: StreamData) -> None:
        pair = self.by_stream.get(event.stream_id)
        if pair is None or event.stream_id != pair.data_id or pair.client_done:
            return
        pair.to_pod += event.data
        if event.fin:
            pair.client_done = True
            self._write_pod(pair.pod)

    def _reset(self, event: StreamReset) -> None:
        pair = self.by_stream.get(event.stream_id)
        if pair is None:
            return
        if event.stream_id == pair.data_id:  # the client is done with this connection
            self._end(pair)
            self._drop(pair)

    def _write_pod(self, pod: socket.socket | None) -> None:
        pair = self._pair_of(pod) if pod is not None else None
        if pair is None or pair.pod is None:
            return
        try:
            if pair.to_pod:
                sent = pair.pod.send(pair.to_pod)
                del pair.to_pod[:sent]
            if pair.client_done and not pair.to_pod:
                pair.pod.shutdown(socket.SHUT_WR)
        except BlockingIOError:
            return
        except OSError:  # the pod reset the connection: nothing more to send or read
            pair.to_pod.clear()
            self._end(pair)
            self._drop(pair)
            return
        if pair.ended and pair.client_done and not pair.to_pod:
            self._drop(pair)

    def _read_pod(self, pod: socket.socket) -> None:
        pair = self._pair_of(pod)
        if pair is None:
            return
        try:
            data = pod.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.session.send_data(pair.data_id, data)
            return
        self._end(pair)  # the pod closed its side
        if pair.client_done and not pair.to_pod:
            self._drop(pair)

    def _end(self, pair: _Pair, error: str = "") -> None:
        """End both streams (the error stream first carrying ``error``), once."""
        if pair.ended:
            return
        pair.ended = True
        if pair.error_id:
            self.session.send_data(pair.error_id, error.encode(), fin=True)
        if pair.data_id:
            self.session.send_data(pair.data_id, b"", fin=True)

    def _drop(self, pair: _Pair) -> None:
        """Forget a pair and close its pod connection."""
        self.pairs.pop(pair.request_id, None)
        for stream_id in (pair.error_id, pair.data_id):
            self.by_stream.pop(stream_id, None)
            self.session.close_stream(stream_id)
        if pair.pod is not None:
            with contextlib.suppress(OSError):
                pair.pod.close()
            pair.pod = None
