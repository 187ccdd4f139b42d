"""Helpers for the devcluster tests: decoding Status bodies, the admin's headers for raw HTTP."""

from __future__ import annotations

import json
from typing import Any


def admin_headers(cluster: Any) -> dict[str, str]:
    """The bearer token of the cluster admin, for raw HTTP requests (the devcluster authorizes
    every request; without a token a request is ``system:anonymous``)."""
    return {"Authorization": f"Bearer {cluster.admin_token}"}


def body_of(exc: Any) -> dict[str, Any]:
    """The decoded Status body of an ``ApiException``."""
    return json.loads(exc.body)  # type: ignore[no-any-return]
