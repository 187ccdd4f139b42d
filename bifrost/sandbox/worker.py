"""A sandbox worker process: evaluates blueprint templates and CEL for the controller.

Started by ``bifrost.sandbox.pool`` as ``python -m bifrost.sandbox.worker``. It reads framed
requests on stdin and writes framed replies on a private copy of stdout (fd 1 itself is pointed
at stderr, so nothing printed can corrupt the protocol). Its address space is limited
(``RLIMIT_AS``) after the imports; the controller kills it when a call overruns its time budget
and starts a new one. It exits when stdin closes (its controller is gone).

Only the functions in ``CALLS`` can be called.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

from bifrost import render
from bifrost.render.templates import ON_CHILD
from bifrost.sandbox import codec
from bifrost.sandbox.frames import PROGRESS, read_frame, write_frame

CALLS: dict[str, Callable[..., Any]] = {
    "render_gateway": render.render_gateway,
    "render_route_children": render.render_route_children,
    "render_certificate": render.render_certificate,
    "evaluate_ready": render.evaluate_ready,
    "evaluate_expression": render.evaluate_expression,
    "evaluate_addresses": render.evaluate_addresses,
    "ping": lambda: "pong",
}

def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    def progress(child_id: str, field: str) -> None:
        write_frame(replies, PROGRESS + json.dumps([child_id, field]).encode())

    ON_CHILD.set(progress)
    while True:
        frame = read_frame(requests)
        if frame is None:
            return
        try:
            name, args, kwargs = codec.loads(frame)
            reply: Any = ("ok", CALLS[name](*args, **kwargs))
        except (render.RenderError, render.NotAvailable) as exc:
            reply = ("raise", exc)
        except MemoryError:
            reply = ("fail", "the evaluation ran out of memory (sandbox memory limit)")
        except Exception as exc:  # a bug of ours, not the blueprint's: say which kind
            reply = ("fail", f"the evaluation failed inside the sandbox: {type(exc).__name__}")
        try:
            body = codec.dumps(reply)
        except (codec.CodecError, ValueError, MemoryError) as exc:
            body = codec.dumps(("fail", f"the result could not be sent back: {type(exc).__name__}"))
        write_frame(replies, body)


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform: the timeout still holds
        pass


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _limit_memory(int(os.environ.get("BIFROST_SANDBOX_MEMORY_MB", "0")))
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
