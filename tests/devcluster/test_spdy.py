"""SPDY/3.1 of :mod:`devcluster.spdy`, without sockets: frame heads, the SPDY/3 dictionary,
header blocks through the per-connection zlib streams, and a server session fed a client's
bytes (split anywhere) answering SYN_STREAM, PING and GOAWAY as spdystream expects."""

from __future__ import annotations

import struct
import zlib

import pytest

from devcluster.spdy import (
    DICTIONARY,
    FLAG_FIN,
    RST_CANCEL,
    TYPE_GOAWAY,
    TYPE_PING,
    TYPE_RST_STREAM,
    TYPE_SETTINGS,
    TYPE_SYN_REPLY,
    TYPE_SYN_STREAM,
    TYPE_WINDOW_UPDATE,
    ControlFrame,
    DataFrame,
    FrameParser,
    GoneAway,
    HeaderCompressor,
    HeaderDecompressor,
    ServerSession,
    SessionError,
    StreamData,
    StreamOpened,
    StreamReset,
    decode_header_block,
    encode_control,
    encode_data,
    encode_header_block,
)


class Client:
    """The client's side of the header compression and its frames (as spdystream writes
    them), and a reader of what the server sends."""

    def __init__(self) -> None:
        self.deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.parser = FrameParser()

    def syn_stream(self, stream_id: int, headers: dict[str, str], *, fin: bool = False) -> bytes:
        block = self.deflate.compress(encode_header_block(headers))
        block += self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack("!IIBB", stream_id, 0, 0, 0) + block
        return encode_control(TYPE_SYN_STREAM, FLAG_FIN if fin else 0, payload)

    def read(self, data: bytes) -> list[ControlFrame | DataFrame]:
        return self.parser.feed(data)

    def reply_headers(self, frame: ControlFrame) -> tuple[int, dict[str, list[str]]]:
        assert frame.type == TYPE_SYN_REPLY
        stream_id = struct.unpack_from("!I", frame.payload)[0]
        return stream_id, decode_header_block(self.inflate.decompress(frame.payload[4:]))


def test_the_dictionary_is_spdy3s() -> None:
    assert len(DICTIONARY) == 1423
    assert zlib.adler32(DICTIONARY) == 0xE3C6A7C2
    assert DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")


def test_frame_heads() -> None:
    control = encode_control(TYPE_PING, 0, b"\x00\x00\x00\x01")
    assert control == bytes.fromhex("80030006 00000004 00000001")
    data = encode_data(5, b"abc", fin=True)
    assert data == bytes.fromhex("00000005 01000003") + b"abc"
    assert FrameParser().feed(control + data) == [
        ControlFrame(TYPE_PING, 0, b"\x00\x00\x00\x01"),
        DataFrame(5, FLAG_FIN, b"abc"),
    ]


def test_a_frame_split_anywhere_is_whole_once_its_last_byte_arrives() -> None:
    wire = encode_data(3, b"hello") + encode_control(TYPE_GOAWAY, 0, bytes(8))
    parser = FrameParser()
    seen: list[ControlFrame | DataFrame] = []
    for i in range(len(wire)):
        seen += parser.feed(wire[i : i + 1])
        if i < 12:
            assert seen == []
    assert seen == [DataFrame(3, 0, b"hello"), ControlFrame(TYPE_GOAWAY, 0, bytes(8))]


def test_another_spdy_version_is_refused() -> None:
    v2 = struct.pack("!HHI", 0x8002, TYPE_PING, 4) + b"\x00\x00\x00\x01"
    with pytest.raises(SessionError, match="version 2"):
        FrameParser().feed(v2)


def test_header_blocks_round_trip_through_one_zlib_stream_per_direction() -> None:
    block = encode_header_block({"StreamType": "data", "port": "8080", "multi": ["a", "b"]})
    assert decode_header_block(block) == {
        "streamtype": ["data"],
        "port": ["8080"],
        "multi": ["a", "b"],
    }
    sender, receiver = HeaderCompressor(), HeaderDecompressor()
    first = sender.compress({"streamtype": "error", "port": "8080", "requestid": "0"})
    second = sender.compress({"streamtype": "data", "port": "8080", "requestid": "0"})
    assert receiver.decompress(first)["streamtype"] == ["error"]
    assert receiver.decompress(second) == {
        "streamtype": ["data"],
        "port": ["8080"],
        "requestid": ["0"],
    }
    # the second block leans on the first: alone, a fresh stream cannot read it
    with pytest.raises(SessionError):
        HeaderDecompressor().decompress(second)


def test_a_truncated_header_block_is_an_error() -> None:
    block = encode_header_block({"port": "8080"})
    with pytest.raises(SessionError, match="truncated"):
        decode_header_block(block[:-1])
    with pytest.raises(SessionError, match="longer"):
        decode_header_block(block + b"x")


def test_the_session_replies_to_each_stream_and_reports_its_data() -> None:
    client, session = Client(), ServerSession()
    wire = client.syn_stream(1, {"streamtype": "error", "port": "8080", "requestid": "0"})
    wire += client.syn_stream(3, {"streamtype": "data", "port": "8080", "requestid": "0"})
    wire += encode_data(3, b"GET / HTTP/1.0\r\n\r\n") + encode_data(3, b"", fin=True)
    events = []
    for i in range(0, len(wire), 7):  # in pieces, as a WebSocket's messages may cut them
        events += session.receive(wire[i : i + 7])
    assert events == [
        StreamOpened(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}, False),
        StreamOpened(3, {"streamtype": ["data"], "port": ["8080"], "requestid": ["0"]}, False),
        StreamData(3, b"GET / HTTP/1.0\r\n\r\n", False),
        StreamData(3, b"", True),
    ]
    replies = client.read(session.take_output())
    assert [client.reply_headers(f) for f in replies if isinstance(f, ControlFrame)] == [
        (1, {}),
        (3, {}),
    ]
    assert session.take_output() == b""


def test_the_session_answers_the_clients_pings_only() -> None:
    session = ServerSession()
    assert session.receive(encode_control(TYPE_PING, 0, struct.pack("!I", 1))) == []
    assert session.take_output() == encode_control(TYPE_PING, 0, struct.pack("!I", 1))
    session.receive(encode_control(TYPE_PING, 0, struct.pack("!I", 2)))  # an answer to ours
    assert session.take_output() == b""


def test_settings_and_window_updates_are_ignored() -> None:
    session = ServerSession()
    settings = encode_control(TYPE_SETTINGS, 0, struct.pack("!III", 1, 7, 65536))
    window = encode_control(TYPE_WINDOW_UPDATE, 0, struct.pack("!II", 1, 65536))
    assert session.receive(settings + window) == []
    assert session.take_output() == b""


def test_a_refused_stream_is_replied_with_fin_and_not_reported() -> None:
    client = Client()
    session = ServerSession(reject=lambda h: None if "port" in h else "port is required")
    assert session.receive(client.syn_stream(1, {"streamtype": "data"})) == []
    (reply,) = client.read(session.take_output())
    assert isinstance(reply, ControlFrame)
    assert (reply.type, reply.flags) == (TYPE_SYN_REPLY, FLAG_FIN)
    assert session.receive(encode_data(1, b"dropped")) == []  # data of a stream not open


def test_the_server_sends_data_resets_and_goes_away() -> None:
    client, session = Client(), ServerSession()
    session.receive(client.syn_stream(1, {"port": "1"}))
    session.take_output()
    session.send_data(1, b"answer")
    session.send_data(1, b"", fin=True)
    session.reset(1, RST_CANCEL)
    session.go_away()
    assert session.ended
    assert client.read(session.take_output()) == [
        DataFrame(1, 0, b"answer"),
        DataFrame(1, FLAG_FIN, b""),
        ControlFrame(TYPE_RST_STREAM, 0, struct.pack("!II", 1, RST_CANCEL)),
        ControlFrame(TYPE_GOAWAY, 0, struct.pack("!II", 1, 0)),
    ]


def test_the_client_resets_a_stream_and_goes_away() -> None:
    client, session = Client(), ServerSession()
    session.receive(client.syn_stream(1, {"port": "1"}))
    reset = encode_control(TYPE_RST_STREAM, 0, struct.pack("!II", 1, RST_CANCEL))
    goaway = encode_control(TYPE_GOAWAY, 0, struct.pack("!II", 0, 0))
    assert session.receive(reset + encode_data(1, b"late") + goaway) == [
        StreamReset(1, RST_CANCEL),
        GoneAway(),
    ]
    assert session.ended


def test_a_stream_id_that_goes_backwards_is_reset() -> None:
    client, session = Client(), ServerSession()
    session.receive(client.syn_stream(5, {"port": "1"}))
    session.take_output()
    assert session.receive(client.syn_stream(3, {"port": "1"})) == []
    assert client.read(session.take_output()) == [
        ControlFrame(TYPE_RST_STREAM, 0, struct.pack("!II", 3, 1))
    ]


def test_a_broken_header_block_ends_the_session_with_a_goaway() -> None:
    session = ServerSession()
    broken = encode_control(TYPE_SYN_STREAM, 0, struct.pack("!IIBB", 1, 0, 0, 0) + b"junk")
    with pytest.raises(SessionError, match="does not decompress"):
        session.receive(broken)
    assert session.ended
    (goaway,) = FrameParser().feed(session.take_output())
    assert isinstance(goaway, ControlFrame) and goaway.type == TYPE_GOAWAY
    assert struct.unpack("!II", goaway.payload)[1] == 1  # PROTOCOL_ERROR
