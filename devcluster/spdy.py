"""SPDY/3.1 as ``kubectl port-forward`` speaks it (the Go library ``moby/spdystream`` under
client-go's ``httpstream``): frames, name/value header blocks and their zlib compression, and a
server-side session with no I/O of its own (:class:`ServerSession`: fed the bytes the client
sent, it answers what the protocol requires and reports stream events; its caller moves the
bytes).

Frames (SPDY/3 draft, section 2.2): a control frame is 8 bytes of head (the C bit, version 3,
its 16-bit type; flags and a 24-bit length) and its payload; a data frame is a 31-bit stream
id, flags (``FIN``) and a 24-bit length. Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are a
32-bit count, then each name and value with a 32-bit length (values joined by NUL), compressed
with one zlib stream per direction for the whole connection, seeded with the SPDY/3
dictionary and flushed (``Z_SYNC_FLUSH``) at the end of each block.

What the session does for the client: a SYN_REPLY answers each SYN_STREAM (the client waits
for it before it sends data, and drops data on a stream not yet replied to), a PING the client
started (odd id) is echoed, a GOAWAY or the end of the bytes ends the session. SETTINGS,
HEADERS and WINDOW_UPDATE are read and ignored: spdystream implements no flow control (it
neither sends WINDOW_UPDATE nor waits for one), so neither does this session.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DICTIONARY",
    "FLAG_FIN",
    "RST_CANCEL",
    "RST_PROTOCOL_ERROR",
    "TYPE_GOAWAY",
    "TYPE_HEADERS",
    "TYPE_PING",
    "TYPE_RST_STREAM",
    "TYPE_SETTINGS",
    "TYPE_SYN_REPLY",
    "TYPE_SYN_STREAM",
    "TYPE_WINDOW_UPDATE",
    "ControlFrame",
    "DataFrame",
    "FrameParser",
    "GoneAway",
    "HeaderCompressor",
    "HeaderDecompressor",
    "ServerSession",
    "SessionError",
    "StreamData",
    "StreamOpened",
    "StreamReset",
    "decode_header_block",
    "encode_control",
    "encode_data",
    "encode_header_block",
]

VERSION = 3

TYPE_SYN_STREAM = 1
TYPE_SYN_REPLY = 2
TYPE_RST_STREAM = 3
TYPE_SETTINGS = 4
TYPE_PING = 6
TYPE_GOAWAY = 7
TYPE_HEADERS = 8
TYPE_WINDOW_UPDATE = 9

FLAG_FIN = 0x01
"""On a data frame, SYN_STREAM or SYN_REPLY: the sender sends nothing more on the stream."""

RST_PROTOCOL_ERROR = 1
RST_CANCEL = 5

MAX_LENGTH = (1 << 24) - 1
"""The largest payload a frame's 24-bit length can describe."""

MAX_HEADER_BLOCK = 1 << 20
"""The most bytes a decompressed header block may take (port-forward's are a few dozen)."""

# The zlib dictionary of SPDY/3 (draft 3, section 2.6.10.1): a protocol constant. It is the
# words below, each preceded by its length as 4 bytes big-endian, then the tail as it is.
_DICTIONARY_WORDS = (
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
)
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(
    struct.pack("!I", len(w)) + w.encode("ascii") for w in _DICTIONARY_WORDS
) + _DICTIONARY_TAIL.encode("ascii")
"""The SPDY/3 header-compression dictionary (1423 bytes, Adler-32 ``0xe3c6a7c2``)."""


class SessionError(Exception):
    """The client broke SPDY/3 (the session ends with a GOAWAY)."""


@dataclass(frozen=True)
class ControlFrame:
    type: int
    flags: int
    payload: bytes


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    flags: int
    data: bytes


def encode_control(frame_type: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"a control frame of {len(payload)} bytes is too long")
    return struct.pack("!HHI", 0x8000 | VERSION, frame_type, flags << 24 | len(payload)) + payload


def encode_data(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
    """One data frame (``data`` at most :data:`MAX_LENGTH` bytes)."""
    if len(data) > MAX_LENGTH:
        raise ValueError(f"a data frame of {len(data)} bytes is too long")
    flags = FLAG_FIN if fin else 0
    return struct.pack("!II", stream_id & 0x7FFFFFFF, flags << 24 | len(data)) + data


class FrameParser:
    """Splits the bytes the client sends, fed as they arrive (a frame may be split across
    reads, or several come in one), into :class:`ControlFrame` and :class:`DataFrame`."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[ControlFrame | DataFrame]:
        self._buffer += data
        out: list[ControlFrame | DataFrame] = []
        while len(self._buffer) >= 8:
            first, flags_length = struct.unpack_from("!II", self._buffer)
            length = flags_length & MAX_LENGTH
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = flags_length >> 24
            if first & 0x80000000:
                version = (first >> 16) & 0x7FFF
                if version != VERSION:
                    raise SessionError(f"SPDY version {version} is not supported (only 3)")
                out.append(ControlFrame(first & 0xFFFF, flags, payload))
            else:
                out.append(DataFrame(first & 0x7FFFFFFF, flags, payload))
        return out


Headers = dict[str, list[str]]
"""A decoded header block: each (lower-case) name's values."""


def encode_header_block(headers: Mapping[str, str | Iterable[str]]) -> bytes:
    """The uncompressed name/value block: names lower-cased, several values joined by NUL."""
    out = [struct.pack("!I", len(headers))]
    for name, values in headers.items():
        value = values if isinstance(values, str) else "\0".join(values)
        raw_name, raw_value = name.lower().encode(), value.encode()
        out += [struct.pack("!I", len(raw_name)), raw_name]
        out += [struct.pack("!I", len(raw_value)), raw_value]
    return b"".join(out)


def decode_header_block(block: bytes) -> Headers:
    """The headers of an uncompressed name/value block; raises :class:`SessionError` when it is
    truncated or longer than its count says."""
    at = 0

    def take(n: int) -> bytes:
        nonlocal at
        if at + n > len(block):
            raise SessionError("a truncated SPDY header block")
        at += n
        return block[at - n : at]

    def length() -> int:
        return int(struct.unpack("!I", take(4))[0])

    headers: Headers = {}
    for _ in range(length()):
        name = take(length()).decode("utf-8", "replace").lower()
        value = take(length()).decode("utf-8", "replace")
        headers.setdefault(name, []).extend(value.split("\0"))
    if at != len(block):
        raise SessionError("a SPDY header block longer than its count of headers")
    return headers


class HeaderCompressor:
    """The server's side of the header compression: one zlib stream for the connection."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)

    def compress(self, headers: Mapping[str, str | Iterable[str]]) -> bytes:
        return self._z.compress(encode_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The client's side, as the server reads it: one zlib stream for the connection."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, compressed: bytes) -> Headers:
        try:
            block = self._z.decompress(compressed, MAX_HEADER_BLOCK)
        except zlib.error as e:
            raise SessionError(f"a SPDY header block does not decompress: {e}") from e
        if self._z.unconsumed_tail:
            raise SessionError(f"a SPDY header block is larger than {MAX_HEADER_BLOCK} bytes")
        return decode_header_block(block)


@dataclass(frozen=True)
class StreamOpened:
    """The client opened a stream (SYN_STREAM); the session has replied (SYN_REPLY).
    ``fin``: the client sends nothing on it."""

    stream_id: int
    headers: Headers
    fin: bool


@dataclass(frozen=True)
class StreamData:
    """Bytes on a stream (possibly none); ``fin``: the client's last."""

    stream_id: int
    data: bytes
    fin: bool


@dataclass(frozen=True)
class StreamReset:
    """The client reset a stream (RST_STREAM): neither side sends more on it."""

    stream_id: int
    status: int


@dataclass(frozen=True)
class GoneAway:
    """The client ends the session (GOAWAY)."""


Event = StreamOpened | StreamData | StreamReset | GoneAway


class ServerSession:
    """The server side of one SPDY/3.1 connection, without I/O: :meth:`receive` takes the
    client's bytes and returns the stream events; the frames to send (the automatic replies and
    what :meth:`send_data`, :meth:`reset` and :meth:`go_away` add) wait in :meth:`take_output`.

    ``reject`` decides a new stream's fate from its headers: None accepts it, a message
    refuses it (the SYN_REPLY then carries ``FIN``, as a Go server refusing a stream does; the
    stream is not reported)."""

    def __init__(self, reject: Callable[[Headers], str | None] | None = None) -> None:
        self._reject = reject
        self._parser = FrameParser()
        self._inflate = HeaderDecompressor()
        self._deflate = HeaderCompressor()
        self._out = bytearray()
        self._last_stream = 0
        self._open: set[int] = set()
        self.ended = False
        """A GOAWAY was received or sent: the session is over."""

    def receive(self, data: bytes) -> list[Event]:
        """The events in ``data``; on a protocol error a GOAWAY is queued, :attr:`ended` set
        and :class:`SessionError` raised."""
        try:
            frames = self._parser.feed(data)
            events: list[Event] = []
            for frame in frames:
                if isinstance(frame, DataFrame):
                    if frame.stream_id in self._open:
                        fin = bool(frame.flags & FLAG_FIN)
                        events.append(StreamData(frame.stream_id, frame.data, fin))
                    continue
                event = self._control(frame)
                if event is not None:
                    events.append(event)
            return events
        except SessionError:
            self.go_away(status=1)
            raise

    def _control(self, frame: ControlFrame) -> Event | None:
        p = frame.payload
        if frame.type == TYPE_SYN_STREAM:
            if len(p) < 10:
                raise SessionError("a truncated SYN_STREAM")
            stream_id = struct.unpack_from("!I", p)[0] & 0x7FFFFFFF
            headers = self._inflate.decompress(p[10:])
            if stream_id == 0 or stream_id % 2 == 0 or stream_id <= self._last_stream:
                self.reset(stream_id, RST_PROTOCOL_ERROR)
                return None
            self._last_stream = stream_id
            refusal = self._reject(headers) if self._reject is not None else None
            fin = bool(frame.flags & FLAG_FIN)
            self._reply(stream_id, fin=refusal is not None)
            if refusal is not None:
                return None
            self._open.add(stream_id)
            return StreamOpened(stream_id, headers, fin)
        if frame.type == TYPE_RST_STREAM:
            if len(p) != 8:
                raise SessionError("a RST_STREAM that is not 8 bytes")
            stream_id, status = struct.unpack("!II", p)
            self._open.discard(stream_id & 0x7FFFFFFF)
            return StreamReset(stream_id & 0x7FFFFFFF, status)
        if frame.type == TYPE_PING:
            if len(p) != 4:
                raise SessionError("a PING that is not 4 bytes")
            if struct.unpack("!I", p)[0] % 2 == 1:  # the client's: echo it
                self._out += encode_control(TYPE_PING, 0, p)
            return None
        if frame.type == TYPE_GOAWAY:
            self.ended = True
            return GoneAway()
        if frame.type in (TYPE_HEADERS, TYPE_SYN_REPLY):
            if len(p) < 4:
                raise SessionError("a truncated header frame")
            self._inflate.decompress(p[4:])  # keeps the zlib stream in step; not used
            return None
        return None  # SETTINGS, WINDOW_UPDATE, and unknown types (SPDY says: ignore)

    def _reply(self, stream_id: int, *, fin: bool) -> None:
        payload = struct.pack("!I", stream_id) + self._deflate.compress({})
        self._out += encode_control(TYPE_SYN_REPLY, FLAG_FIN if fin else 0, payload)

    def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        """Queue ``data`` on a stream (split into frames as needed); ``fin``: the server's
        last."""
        for at in range(0, len(data), MAX_LENGTH):
            last = at + MAX_LENGTH >= len(data)
            self._out += encode_data(stream_id, data[at : at + MAX_LENGTH], fin=fin and last)
        if not data and fin:
            self._out += encode_data(stream_id, b"", fin=True)

    def reset(self, stream_id: int, status: int = RST_CANCEL) -> None:
        self._open.discard(stream_id)
        self._out += encode_control(TYPE_RST_STREAM, 0, struct.pack("!II", stream_id, status))

    def close_stream(self, stream_id: int) -> None:
        """The client's side of a stream is of no more interest (its data is dropped)."""
        self._open.discard(stream_id)

    def go_away(self, status: int = 0) -> None:
        self.ended = True
        self._out += encode_control(TYPE_GOAWAY, 0, struct.pack("!II", self._last_stream, status))

    def take_output(self) -> bytes:
        """The frames queued for the client since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out
