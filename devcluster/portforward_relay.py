"""The relay of ``pods/portforward`` (:mod:`devcluster.pod_portforward`): one SPDY session's
pairs of streams (``error`` and ``data``, one ``requestid``, the remote ``port``), a connection
to the pod's address per pair, and one ``select`` loop moving bytes both ways (see that module's
docstring for the protocol and what is emulated)."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from typing import Any, Protocol

from devcluster.spdy import (
    GoneAway,
    Headers,
    ServerSession,
    SessionError,
    StreamData,
    StreamOpened,
    StreamReset,
)

__all__ = ["CONNECT_TIMEOUT", "MAX_PENDING", "Forwarder", "Transport"]

CONNECT_TIMEOUT = 5.0
MAX_PENDING = 4 << 20
"""Bytes waiting for one pod connection past which the client is not read."""


class Transport(Protocol):
    """Where the SPDY session's bytes come from and go to (the connection itself, or a
    WebSocket's binary messages)."""

    sock: socket.socket

    def read(self) -> bytes | None:
        """The SPDY bytes that arrived (maybe none); None when the client is gone."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


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


class Forwarder:
    """One SPDY session: the pairs of streams, their pod connections, one ``select`` loop."""

    def __init__(self, transport: Transport, ip: str, uid: str) -> None:
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
