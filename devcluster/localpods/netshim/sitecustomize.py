"""Gives a local pod's Python program its own IP: binding the wildcard or loopback address is
rewritten to the pod's address (env ``DEVCLUSTER_POD_IP``, a 127.x.y.z loopback address).

Local pods share the host's network (they must reach the API server and their peers on
127.0.0.1), so two replicas listening on ``:8080`` would collide. With this module on
``PYTHONPATH`` (the local kubelet prepends its directory) Python's ``site`` imports it at start,
and ``socket.bind(("0.0.0.0" | "" | "127.0.0.1" | "localhost", port))`` binds
``(DEVCLUSTER_POD_IP, port)`` instead; other addresses are left alone. IPv6 binds (``::``,
``::1``) are left alone too: a pod that listens on IPv6 shares the host's IPv6 ports.

This emulates a per-pod network namespace for Python programs only; outgoing connections keep
the host's source address. Another ``sitecustomize`` later on ``sys.path`` is still imported.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys

_POD_IP = os.environ.get("DEVCLUSTER_POD_IP", "")
_REWRITTEN = ("", "0.0.0.0", "127.0.0.1", "localhost")

if _POD_IP:
    _bind = socket.socket.bind

    def _pod_bind(self: socket.socket, address: object) -> None:
        if (
            self.family == socket.AF_INET
            and isinstance(address, tuple)
            and len(address) == 2
            and address[0] in _REWRITTEN
        ):
            address = (_POD_IP, address[1])
        _bind(self, address)  # type: ignore[arg-type]

    socket.socket.bind = _pod_bind  # type: ignore[method-assign, assignment]


def _chain() -> None:
    """Import the next ``sitecustomize`` on ``sys.path`` (the one this module shadows)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or ".") == here:
            continue
        candidate = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_next_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


_chain()
