"""What went wrong talking to Kubernetes, expressed as what the caller should do about it.

The official client raises ``ApiException`` (typed APIs), ``DynamicApiError`` (DynamicClient) or
urllib3 errors (the connection), all of which leave it to every caller to parse the Status body and
decide whether to retry. bifrost's engine and controller only need to know *how* to react, in the
manner of kopf's temporary/permanent errors:

- :class:`Retryable` — try again after :attr:`Retryable.delay` seconds: 409 Conflict (stale
  resourceVersion, field-manager conflict), 429 Too Many Requests and 5xx (honouring the server's
  ``Retry-After`` header or ``details.retryAfterSeconds``), and connection failures.
- Permanent errors that a retry will not fix without a change: :class:`NotFound` (404),
  :class:`Forbidden` (403), :class:`Invalid` (422, with the server's causes), :class:`Gone` (410:
  relist), :class:`AlreadyExists` (409 AlreadyExists), :class:`BadRequest` (other 4xx) and
  :class:`UnknownKind` (the API server does not serve the kind).

Every error carries the server's message, the reason, and the object's kind and name, so a user
sees what the API server said. This module does not import ``kubernetes``: it reads the exceptions
by duck typing (``status``, ``body``, ``headers``), which also covers urllib3's errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bifrost.kube.forbidden import forbidden_fix

__all__ = [
    "DEFAULT_CONFLICT_DELAY",
    "DEFAULT_RETRY_DELAY",
    "AlreadyExists",
    "BadRequest",
    "Cause",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "NotFound",
    "PathNotServed",
    "Retryable",
    "ServerError",
    "TooManyRequests",
    "UnknownKind",
    "map_error",
    "translate_errors",
]

#: Delay before retrying a 409 Conflict: re-read and retry soon, but not in a tight loop.
DEFAULT_CONFLICT_DELAY = 0.1
#: Delay before retrying a 429/5xx/connection error that says nothing about when to retry.
DEFAULT_RETRY_DELAY = 1.0


@dataclass(frozen=True)
class Cause:
    """One entry of a Status's ``details.causes`` (e.g. a 422 field error)."""

    reason: str
    message: str
    field: str


class KubeError(Exception):
    """An API request failed; the subclass says what to do about it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        kind: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
        causes: tuple[Cause, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.causes = causes

    def __str__(self) -> str:
        where = ""
        if self.kind or self.name:
            obj = "/".join(p for p in (self.kind, self.namespace, self.name) if p)
            where = f" [{obj}]"
        code = f"{self.status} {self.reason}".strip() if self.status else self.reason
        head = f"{code}: " if code else ""
        return f"{head}{self.message}{where}"


class Retryable(KubeError):
    """Temporary: retry the request (after re-reading, for conflicts) in ``delay`` seconds."""

    def __init__(self, message: str, *, delay: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.delay = delay


class Conflict(Retryable):
    """409 Conflict: stale resourceVersion, failed precondition or a field-manager conflict."""


class TooManyRequests(Retryable):
    """429: the server is throttling; ``delay`` honours Retry-After."""


class ServerError(Retryable):
    """5xx: the server failed; ``delay`` honours Retry-After when the server sent one."""


class ConnectionFailed(Retryable):
    """The request did not get an HTTP answer (refused, reset, timed out, TLS failure)."""


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class PathNotServed(NotFound):
    """A 404 without a Status body: the server serves no such path, so the object's kind itself
    is gone (its CRD was deleted after discovery was read). Still a :class:`NotFound` (the
    object does not exist either); the client forgets the kind's discovery when it sees one."""


class Forbidden(KubeError):
    """403: not allowed (RBAC, or creating in a terminating namespace). An RBAC denial's text
    ends with what to grant (:mod:`bifrost.kube.forbidden`): ``...; fix: grant patch on
    configmaps to ServiceAccount bifrost-system/bifrost, see deploy/base/rbac*.yaml``."""

    @property
    def fix(self) -> str | None:
        return forbidden_fix(self.message)

    def __str__(self) -> str:
        fix = self.fix
        return f"{super().__str__()}; fix: {fix}" if fix else super().__str__()


class Invalid(KubeError):
    """422: the object is invalid; ``causes`` names the fields."""


class Gone(KubeError):
    """410: the resourceVersion (or continue token) is too old; relist."""


class AlreadyExists(KubeError):
    """409 AlreadyExists: create of an object that exists."""


class BadRequest(KubeError):
    """Another 4xx (400, 405, 415 ...): the request itself is wrong."""


class UnknownKind(KubeError):
    """The API server does not serve this apiVersion/kind (even after refreshing discovery)."""


def _status_body(body: object) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return {"message": body.strip()}
        if isinstance(parsed, dict):
            return parsed
    return {}


def _header(headers: object, name: str) -> str | None:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None and isinstance(headers, Mapping):
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return str(value) if value is not None else None


def _retry_after(headers: object, details: Mapping[str, Any]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date) or retryAfterSeconds."""
    raw = _header(headers, "Retry-After")
    if raw is not None:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    seconds = details.get("retryAfterSeconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        return float(seconds)
    return None


def _causes(details: Mapping[str, Any]) -> tuple[Cause, ...]:
    raw = details.get("causes")
    if not isinstance(raw, list):
        return ()
    return tuple(
        Cause(
            reason=str(c.get("reason", c.get("type", ""))),
            message=str(c.get("message", "")),
            field=str(c.get("field", "")),
        )
        for c in raw
        if isinstance(c, dict)
    )


def _is_connection_error(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    if module.startswith("urllib3"):
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


def map_error(
    exc: BaseException,
    *,
    kind: str | None = None,
    name: str | None = None,
    namespace: str | None = None,
) -> KubeError | None:
    """The :class:`KubeError` for an exception from the client, or ``None`` if it is not one.

    ``kind``/``name``/``namespace`` describe the object the request was about; the Status body's
    ``details`` fill them in when not given.
    """
    if isinstance(exc, KubeError):
        return exc
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or isinstance(status, bool) or status == 0:
        if status == 0 or _is_connection_error(exc):
            message = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            return ConnectionFailed(
                message.splitlines()[0] if message else type(exc).__name__,
                delay=DEFAULT_RETRY_DELAY,
                reason=type(exc).__name__,
                kind=kind,
                name=name,
                namespace=namespace,
            )
        return None
    body = _status_body(getattr(exc, "body", None))
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    assert isinstance(details, dict)
    message = str(body.get("message") or getattr(exc, "reason", "") or f"HTTP {status}")
    reason = str(body.get("reason") or getattr(exc, "reason", "") or "")
    common: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "kind": kind or (str(details["kind"]) if details.get("kind") else None),
        "name": name or (str(details["name"]) if details.get("name") else None),
        "namespace": namespace,
        "causes": _causes(details),
    }
    headers = getattr(exc, "headers", None)
    if status == 409:
        if reason == "AlreadyExists":
            return AlreadyExists(message, **common)
        return Conflict(message, delay=DEFAULT_CONFLICT_DELAY, **common)
    if status == 429:
        after = _retry_after(headers, details)
        return TooManyRequests(
            message, delay=after if after is not None else DEFAULT_RETRY_DELAY, **common
        )
    if status >= 500:
        after = _retry_after(headers, details)
        return ServerError(
            message, delay=after if after is not None else DEFAULT_RETRY_DELAY, **common
        )
    if status == 404:
        if body.get("kind") != "Status":  # the plain-text "404 page not found" of an unserved path
            return PathNotServed(message, **common)
        return NotFound(message, **common)
    if status == 403:
        return Forbidden(message, **common)
    if status == 422:
        return Invalid(message, **common)
    if status == 410:
        return Gone(message, **common)
    if status == 408:  # request timeout: the server gave up waiting, so may we retry
        return ServerError(message, delay=DEFAULT_RETRY_DELAY, **common)
    return BadRequest(message, **common)


@contextmanager
def translate_errors(
    *, kind: str | None = None, name: str | None = None, namespace: str | None = None
) -> Iterator[None]:
    """Re-raise client and connection errors inside the block as :class:`KubeError`."""
    try:
        yield
    except KubeError:
        raise
    except Exception as exc:
        mapped = map_error(exc, kind=kind, name=name, namespace=namespace)
        if mapped is None:
            raise
        raise mapped from exc
