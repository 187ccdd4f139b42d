"""``GET .../pods/<name>/log``: a container's output, as kube-apiserver proxies it from the
kubelet (``kubectl logs``, the client's ``read_namespaced_pod_log``).

The bytes come from :attr:`Api.pod_logs <devcluster.handlers.Api.pod_logs>` (the local kubelet
of :mod:`devcluster.localpods`). A simulated pod (no source, or the source does not run it)
prints nothing: its log is empty.

As upstream (``LogLocation`` in the pod registry, ``validateContainerLogStatus`` in the
kubelet):

* the pod must exist (404 as for the pod); ``container`` may be left out only when the pod has
  one container (400 ``a container name must be specified for pod X, choose one of: [a b]``,
  plus ``or one of the init containers: [...]`` when it has some); an unknown one is 400
  ``container c is not valid for pod X``; init and ephemeral containers are valid;
* a pod not bound to a node yet answers an empty log;
* the container's status decides what is there: ``previous=true`` needs a last terminated run
  (400 ``previous terminated container "c" in pod "X" not found``); a waiting container is 400
  ``container "c" in pod "X" is waiting to start: <reason>``, one without a status is 400
  ``container "c" in pod "X" is not available``;
* ``tailLines`` keeps the last N lines, then ``limitBytes`` the first N bytes;
* ``follow=true`` streams: what exists, then what the container appends, until its log stops
  growing and the pod is gone, being deleted, finished or the container no longer runs, or the
  client hangs up (a chunked answer, see :class:`StreamingBody`).

Not implemented: ``timestamps`` (lines are sent without the RFC3339 prefix), ``sinceSeconds`` and
``sinceTime`` (the whole log is sent), ``insecureSkipTLSVerifyBackend`` (no backend TLS).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from devcluster.errors import ApiError
from devcluster.handlers import Api, RawBody, RequestContext, Target

__all__ = ["FOLLOW_POLL_SECONDS", "StreamingBody", "register_pod_logs"]

JSON = dict[str, Any]

FOLLOW_POLL_SECONDS = 0.1
"""How often a followed log is read again."""

ClientGone = Callable[[], bool]


def _no_more(client_gone: ClientGone) -> Iterator[bytes]:
    return iter(())


@dataclass(frozen=True)
class StreamingBody(RawBody):
    """A handler's answer sent chunked: ``data`` first, then every chunk ``more`` yields (it is
    given a function telling whether the client hung up, and ends the stream by returning)."""

    more: Callable[[ClientGone], Iterator[bytes]] = field(default=_no_more)


def register_pod_logs(api: Api) -> None:
    """Answer ``pods/log`` on ``api``."""
    api.handlers[("", "pods", "log")] = handle


def _names(containers: Any) -> list[str]:
    return [str(c.get("name")) for c in containers or [] if isinstance(c, dict)]


def _bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def _container(pod: JSON, asked: str) -> str:
    """The container the request is about (``LogLocation``)."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    containers = _names(spec.get("containers"))
    if not asked:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise _bad_request(f"a container name must be specified for pod {name}")
        message = (
            f"a container name must be specified for pod {name}, choose one of: "
            f"[{' '.join(containers)}]"
        )
        inits = _names(spec.get("initContainers"))
        if inits:
            message += f" or one of the init containers: [{' '.join(inits)}]"
        raise _bad_request(message)
    every = containers + _names(spec.get("initContainers"))
    every += _names(spec.get("ephemeralContainers"))
    if asked not in every:
        raise _bad_request(f"container {asked} is not valid for pod {name}")
    return asked


def _container_status(pod: JSON, container: str) -> JSON | None:
    status = pod.get("status") or {}
    for f in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for s in status.get(f) or []:
            if isinstance(s, dict) and s.get("name") == container:
                return s
    return None


def _check_status(pod: JSON, container: str, previous: bool) -> None:
    """The kubelet's ``validateContainerLogStatus``: is there a run to read?"""
    name = pod["metadata"]["name"]
    status = _container_status(pod, container)
    if status is None:
        raise _bad_request(f'container "{container}" in pod "{name}" is not available')
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated")
    if previous:
        if not last:
            raise _bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        return
    if state.get("running") or state.get("terminated") or last:
        return
    waiting = state.get("waiting")
    if waiting is not None:
        reason = str(waiting.get("reason") or "")
        if reason == "ErrImagePull":
            reason = "image can't be pulled"
        elif reason == "ImagePullBackOff":
            reason = "trying and failing to pull image"
        raise _bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    raise _bad_request(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')


def _non_negative(query: dict[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as e:
        raise _bad_request(f"{key}: invalid value {raw!r}: must be an integer") from e
    if value < 0:
        raise ApiError(
            422,
            f'PodLogOptions "" is invalid: {key}: Invalid value: {value}: must be greater than '
            "or equal to 0",
            "Invalid",
            kind="PodLogOptions",
        )
    return value


def tail(data: bytes, lines: int | None, limit: int | None) -> bytes:
    """The last ``lines`` lines of ``data`` (a last line without a newline counts), then its
    first ``limit`` bytes."""
    if lines is not None:
        if lines == 0:
            data = b""
        else:
            parts = data.splitlines(keepends=True)
            data = b"".join(parts[-lines:])
    if limit is not None:
        data = data[:limit]
    return data


def _true(query: dict[str, str], key: str) -> bool:
    return query.get(key, "").lower() in ("true", "1")


def handle(ctx: RequestContext) -> tuple[int, RawBody]:
    if ctx.verb != "get":
        raise ApiError(405, "method not allowed", "MethodNotAllowed")
    api = ctx.api
    t = ctx.target
    ns, name = t.namespace or "", t.name or ""
    pod = api.get(Target(t.rt, "v1", t.namespace, name))  # 404 as for the pod
    container = _container(pod, ctx.query.get("container", ""))
    previous = _true(ctx.query, "previous")
    lines = _non_negative(ctx.query, "tailLines")
    limit = _non_negative(ctx.query, "limitBytes")
    if not (pod.get("spec") or {}).get("nodeName"):
        return 200, RawBody(b"")  # not scheduled: no kubelet to ask
    _check_status(pod, container, previous)
    source = api.pod_logs
    data = source.read(ns, name, container, previous=previous) if source is not None else None
    first = tail(data or b"", lines, limit)
    if not _true(ctx.query, "follow") or previous:
        return 200, RawBody(first)
    uid = pod["metadata"].get("uid")
    follower = _Follower(api, ns, name, uid, container, len(data or b""), limit, len(first))
    return 200, StreamingBody(first, more=follower.chunks)


@dataclass
class _Follower:
    """``follow=true``: what the container appends after ``offset``, until it is done."""

    api: Api
    namespace: str
    name: str
    uid: str | None
    container: str
    offset: int
    limit: int | None
    sent: int

    def _running(self) -> bool:
        pod = self.api.store.get(("", "pods"), self.namespace, self.name)
        if pod is None or pod["metadata"].get("uid") != self.uid:
            return False
        if pod["metadata"].get("deletionTimestamp"):
            return False
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return False
        status = _container_status(pod, self.container) or {}
        return bool((status.get("state") or {}).get("running"))

    def _read(self) -> bytes:
        source = self.api.pod_logs
        if source is None:
            return b""
        return source.read(self.namespace, self.name, self.container, previous=False) or b""

    def chunks(self, client_gone: ClientGone) -> Iterator[bytes]:
        while not client_gone():
            if self.limit is not None and self.sent >= self.limit:
                return
            running = self._running()  # before reading: what it wrote before it stopped counts
            data = self._read()
            if len(data) < self.offset:  # a new run (or a truncated file): start over
                self.offset = 0
            new = data[self.offset :]
            if new:
                if self.limit is not None:
                    new = new[: self.limit - self.sent]
                self.offset += len(new)
                self.sent += len(new)
                yield new
                continue
            if not running:
                return
            time.sleep(FOLLOW_POLL_SECONDS)
