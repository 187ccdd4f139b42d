"""The WebSocket framing of :mod:`devcluster.websocket`: the handshake's accept value (RFC
6455's own example), subprotocol choice, masked client frames of each length encoding,
fragments and control frames, and what a client may not send."""

from __future__ import annotations

import os
import struct

import pytest

from devcluster.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    Frame,
    FrameReader,
    HandshakeError,
    ProtocolError,
    accept_key,
    choose_protocol,
    encode_frame,
    handshake,
)


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """A frame as a client sends it (masked with a random key)."""
    first = (0x80 if fin else 0) | opcode
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, bit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_the_accept_value_of_rfc_6455s_example_key() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_best_supported_subprotocol_the_client_offers_is_chosen() -> None:
    supported = ("v5.channel.k8s.io", "v4.channel.k8s.io")
    offered = "v4.channel.k8s.io, v5.channel.k8s.io, channel.k8s.io"
    assert choose_protocol(offered, supported) == "v5.channel.k8s.io"
    assert choose_protocol("channel.k8s.io,v4.channel.k8s.io", supported) == "v4.channel.k8s.io"
    assert choose_protocol("v3.channel.k8s.io", supported) is None


def test_the_handshake_answers_101_with_the_accept_value_and_the_protocol() -> None:
    headers = {
        "upgrade": "websocket",
        "connection": "keep-alive, Upgrade",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-protocol": "v4.channel.k8s.io",
    }
    answer = handshake("GET", headers, ("v5.channel.k8s.io", "v4.channel.k8s.io")).decode()
    assert answer.startswith("HTTP/1.1 101 Switching Protocols\r\n")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in answer
    assert "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n" in answer
    assert answer.endswith("\r\n\r\n")
    with pytest.raises(HandshakeError, match="subprotocols"):
        handshake("GET", {**headers, "sec-websocket-protocol": "chat"}, ("v5.channel.k8s.io",))
    with pytest.raises(HandshakeError, match="upgrade"):
        handshake("GET", {**headers, "upgrade": "SPDY/3.1"}, ("v4.channel.k8s.io",))


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 65535, 65536, 70000])
def test_masked_client_frames_of_every_length_encoding_decode(size: int) -> None:
    payload = os.urandom(size)
    assert FrameReader().feed(client_frame(OP_BINARY, payload)) == [Frame(OP_BINARY, payload)]


def test_frames_fed_in_pieces_and_fragments_are_joined() -> None:
    data = (
        client_frame(OP_TEXT, b"hel", fin=False)
        + client_frame(OP_PING, b"beat")  # a control frame may come between fragments
        + client_frame(OP_CONTINUATION, b"lo")
        + client_frame(OP_CLOSE, struct.pack("!H", 1000))
    )
    reader = FrameReader()
    frames: list[Frame] = []
    for i in range(len(data)):
        frames += reader.feed(data[i : i + 1])
    assert frames == [
        Frame(OP_PING, b"beat"),
        Frame(OP_TEXT, b"hello"),
        Frame(OP_CLOSE, struct.pack("!H", 1000)),
    ]


def test_an_unmasked_client_frame_or_a_long_control_frame_is_refused() -> None:
    with pytest.raises(ProtocolError, match="not masked"):
        FrameReader().feed(client_frame(OP_BINARY, b"x", mask=False))
    with pytest.raises(ProtocolError, match="control frame"):
        FrameReader().feed(client_frame(OP_PING, b"x" * 126))


@pytest.mark.parametrize("size", [3, 125, 126, 65535, 65536, 70000])
def test_server_frames_are_unmasked_with_the_length_encoding_for_their_size(size: int) -> None:
    payload = os.urandom(size)
    frame = encode_frame(OP_BINARY, payload)
    assert frame[0] == 0x80 | OP_BINARY
    assert not frame[1] & 0x80  # unmasked
    if size < 126:
        assert frame[1] == size and frame[2:] == payload
    elif size < 65536:
        assert frame[1] == 126 and struct.unpack("!H", frame[2:4])[0] == size
        assert frame[4:] == payload
    else:
        assert frame[1] == 127 and struct.unpack("!Q", frame[2:10])[0] == size
        assert frame[10:] == payload
