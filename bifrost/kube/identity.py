"""Who this bifrost process is, for Lease holders and Event ``reportingInstance``.

In a pod the Downward API gives ``POD_NAME`` (the Deployment sets it); without it, the hostname
(a pod's hostname is its name) plus the pid keeps two processes on one machine apart.
"""

from __future__ import annotations

import os
import socket

__all__ = ["default_identity"]


def default_identity() -> str:
    """``$POD_NAME`` if set, else ``<hostname>_<pid>``."""
    pod = os.environ.get("POD_NAME", "").strip()
    if pod:
        return pod
    return f"{socket.gethostname()}_{os.getpid()}"
