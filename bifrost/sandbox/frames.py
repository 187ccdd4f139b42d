"""Length-prefixed frames on the pipes between the controller and a sandbox worker."""

from __future__ import annotations

import struct
from typing import BinaryIO

HEADER = struct.Struct("!I")
MAX_FRAME = 64 * 1024 * 1024
PROGRESS = b"@"
"""First byte of a progress frame (``@`` + JSON ``[child id, field]``); replies are JSON."""


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame, or ``None`` at end of stream."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is over {MAX_FRAME}")
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: BinaryIO, body: bytes) -> None:
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()
