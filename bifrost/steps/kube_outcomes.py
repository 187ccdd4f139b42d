"""Turn a Kubernetes error into the step outcome it calls for (kopf-style: the error says how to
retry). Retryable errors (409, 429, 5xx, no connection) retry after the server's delay; anything
permanent (422 Invalid, 403 Forbidden, …) fails the step with the server's message, which then
shows up in the journal, the operation's last_error and (later) the Gateway's conditions."""

from __future__ import annotations

from datetime import timedelta

from bifrost.engine import Fail, NotDone, Retry
from bifrost.kube import KubeError, Retryable


def outcome_for(error: KubeError, *, doing: str) -> NotDone:
    if isinstance(error, Retryable):
        return Retry(f"{doing}: {error}", backoff=timedelta(seconds=error.delay))
    return Fail(f"{doing}: {error}")
