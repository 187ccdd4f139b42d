"""The server side of a WebSocket (RFC 6455), as much as ``pods/exec`` needs: the opening
handshake (``Sec-WebSocket-Accept``, choosing a subprotocol), reading the client's masked frames
(fragments, control frames, close) and writing unmasked frames.

The connection is taken over from the HTTP server with :class:`Takeover`: a handler answers
with one, and the server (:mod:`devcluster.server`) hands it the request's path, its headers and
the socket instead of answering itself; the connection is closed once ``run`` returns. Nothing
of the socket has been read past the request's headers: a client must wait for the server's
handshake answer before it sends a frame (RFC 6455 section 4.1), so no frame is in the HTTP
server's read buffer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from devcluster.errors import ApiError
from devcluster.handlers import RawBody

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Frame",
    "FrameReader",
    "HandshakeError",
    "ProtocolError",
    "Takeover",
    "accept_key",
    "choose_protocol",
    "close_payload",
    "encode_frame",
    "error_answer",
    "handshake",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_PHRASES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}

MAX_MESSAGE = 16 << 20
"""The largest message a client may send (the exec streams send no stdin: this is generous)."""


def _no_run(path: str, headers: Mapping[str, str], sock: socket.socket) -> None:
    raise NotImplementedError


@dataclass(frozen=True)
class Takeover(RawBody):
    """A handler's answer that takes the connection over (a protocol upgrade): the server
    calls ``run(path, headers, socket)`` with the request's path (its full query, repeated
    parameters included), its headers (lower-case keys) and the socket, writes nothing itself
    and closes the connection when ``run`` returns. ``run`` answers the request, with a
    ``101 Switching Protocols`` or an error."""

    run: Callable[[str, Mapping[str, str], socket.socket], None] = field(default=_no_run)


class HandshakeError(Exception):
    """The request is not a WebSocket handshake this server accepts (answered 400)."""


class ProtocolError(Exception):
    """The client broke RFC 6455 (the connection is closed with 1002)."""


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for the client's ``Sec-WebSocket-Key``."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()  # noqa: S324 - the RFC's
    return base64.b64encode(digest).decode("ascii")


def choose_protocol(offered: str, supported: Sequence[str]) -> str | None:
    """The first of ``supported`` (the server's preference, best first) the client offered in
    its comma-separated ``Sec-WebSocket-Protocol``, or None."""
    wanted = {p.strip() for p in offered.split(",") if p.strip()}
    for p in supported:
        if p in wanted:
            return p
    return None


def handshake(method: str, headers: Mapping[str, str], supported: Sequence[str]) -> bytes:
    """The ``101 Switching Protocols`` answer to a client's opening handshake, with the
    subprotocol chosen among ``supported``; raises :class:`HandshakeError` otherwise."""
    if method != "GET":
        raise HandshakeError(f"a WebSocket handshake is a GET, not a {method}")
    if headers.get("upgrade", "").strip().lower() != "websocket":
        raise HandshakeError("the request does not ask to upgrade to a WebSocket")
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if "upgrade" not in tokens:
        raise HandshakeError("the request's Connection header does not name Upgrade")
    if headers.get("sec-websocket-version", "").strip() != "13":
        raise HandshakeError("only WebSocket version 13 is supported")
    key = headers.get("sec-websocket-key", "").strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError(key)
    except ValueError as e:
        raise HandshakeError("the request's Sec-WebSocket-Key is not 16 bytes in base64") from e
    offered = headers.get("sec-websocket-protocol", "")
    protocol = choose_protocol(offered, supported)
    if protocol is None:
        raise HandshakeError(
            f"none of the client's subprotocols [{offered}] is supported; "
            f"supported: [{', '.join(supported)}]"
        )
    head = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
        f"Sec-WebSocket-Protocol: {protocol}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def error_answer(error: ApiError) -> bytes:
    """A plain HTTP answer (before any upgrade) carrying ``error``'s Status; the connection is
    closed after it."""
    body = json.dumps(error.body()).encode()
    head = [
        f"HTTP/1.1 {error.code} {_PHRASES.get(error.code, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-cache, private",
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked frame, as a server sends it."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame: the status code, then the UTF-8 reason."""
    return struct.pack("!H", code) + reason.encode()[:123]


@dataclass(frozen=True)
class Frame:
    """A whole message (its fragments joined) or a control frame."""

    opcode: int
    payload: bytes


class FrameReader:
    """Parses what the client sends, fed as it arrives, into :class:`Frame` s: every client
    frame must be masked (RFC 6455 section 5.1), control frames are at most 125 bytes and not
    fragmented, and fragments are joined into their message."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode: int | None = None
        self._max = max_message

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        out: list[Frame] = []
        while True:
            frame = self._one()
            if frame is None:
                return out
            out.append(frame)

    def _one(self) -> Frame | None:
        buf = self._buffer
        while True:
            if len(buf) < 2:
                return None
            fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
            if buf[0] & 0x70:
                raise ProtocolError("reserved bits set without an extension")
            if not buf[1] & 0x80:
                raise ProtocolError("a client frame is not masked")
            n, at = buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return None
                n, at = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return None
                n, at = struct.unpack_from("!Q", buf, 2)[0], 10
            if n > self._max:
                raise ProtocolError(f"a frame of {n} bytes is too large")
            if len(buf) < at + 4 + n:
                return None
            mask = bytes(buf[at : at + 4])
            payload = _unmask(bytes(buf[at + 4 : at + 4 + n]), mask)
            del buf[: at + 4 + n]
            if opcode >= 0x8:
                if not fin or n > 125:
                    raise ProtocolError("a control frame is fragmented or longer than 125 bytes")
                if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                    raise ProtocolError(f"unknown control opcode {opcode}")
                return Frame(opcode, payload)
            if opcode == OP_CONTINUATION:
                if self._fragment_opcode is None:
                    raise ProtocolError("a continuation frame without a message to continue")
            elif opcode in (OP_TEXT, OP_BINARY):
                if self._fragment_opcode is not None:
                    raise ProtocolError("a new message before the last one's final fragment")
                self._fragment_opcode = opcode
            else:
                raise ProtocolError(f"unknown data opcode {opcode}")
            self._fragments.append(payload)
            if sum(len(f) for f in self._fragments) > self._max:
                raise ProtocolError("a message is too large")
            if fin:
                message = Frame(self._fragment_opcode, b"".join(self._fragments))
                self._fragments, self._fragment_opcode = [], None
                return message


def _unmask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
