"""Kubernetes ``Status`` errors raised by the devcluster's request handlers.

Every error leaves the server as a ``Status`` object with the reason and code a real API server
would use, because clients branch on them (leader election checks ``code == 404`` before it
creates its Lease; kubectl prints ``message``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "status_body"]

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(
    code: int,
    message: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else _REASONS.get(code, ""),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    """An error answer: HTTP ``code`` with a Status body."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        details: dict[str, Any] = {}
        if name is not None:
            details["name"] = name
        if group is not None:
            details["group"] = group
        if kind is not None:
            details["kind"] = kind
        if causes:
            details["causes"] = causes
        if retry_after is not None:
            details["retryAfterSeconds"] = retry_after
        self.details = details
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.message, self.reason, self.details or None)
