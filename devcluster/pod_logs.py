"""``GET .../pods/<name>/log``: a container's output, as kube-apiserver proxies it from the
kubelet (``kubectl logs``, the client's ``read_namespaced_pod_log``).

The log comes from :attr:`Api.pod_logs <devcluster.handlers.Api.pod_logs>` (the local kubelet
of :mod:`devcluster.localpods`) as the container runtime wrote it: the CRI format of
:mod:`devcluster.localpods.logs`, one entry per line with its time and stream. It is read as the
kubelet's ``ReadLogs`` reads it: the answer is the entries' contents (exactly what the program
printed, stdout and stderr interleaved in the order they were written). A simulated pod (no
source, or the source does not run it) prints nothing: its log is empty.

As upstream (``ValidatePodLogOptions`` and ``LogLocation`` in the pod registry,
``validateContainerLogStatus`` and ``ReadLogs`` in the kubelet):

* the options are checked first, a 422 ``PodLogOptions "X" is invalid``: ``tailLines`` must not
  be negative, ``limitBytes`` and ``sinceSeconds`` must be greater than 0, and at most one of
  ``sinceTime`` or ``sinceSeconds`` may be given; a value that does not parse is a 400;
* the pod must exist (404 as for the pod); ``container`` may be left out only when the pod has
  one container (400 ``a container name must be specified for pod X, choose one of: [a b]``,
  plus ``or one of the init containers: [...]`` when it has some); an unknown one is 400
  ``container c is not valid for pod X``; init and ephemeral containers are valid;
* a pod not bound to a node yet answers an empty log;
* the container's status decides what is there: ``previous=true`` needs a last terminated run
  (400 ``previous terminated container "c" in pod "X" not found``); a waiting container is 400
  ``container "c" in pod "X" is waiting to start: <reason>``, one without a status is 400
  ``container "c" in pod "X" is not available``;
* ``tailLines`` keeps the last N entries of the file (a line cut into parts counts each part);
  ``sinceSeconds`` / ``sinceTime`` keep the entries written at or after that time;
  ``timestamps=true`` puts an entry's RFC3339Nano time and a space before each line (a line
  cut into parts gets the time of its first part); ``limitBytes`` keeps the first N bytes of
  the answer, the timestamps included;
* ``follow=true`` streams: what exists, then what the container appends, until its log stops
  growing and the pod is gone, being deleted, finished or the container no longer runs, or the
  client hangs up (a chunked answer, see :class:`StreamingBody`). Entries are read whole (a
  line the runtime is still writing waits for its newline); the options apply to them as above.

Not implemented: ``insecureSkipTLSVerifyBackend`` (no backend TLS), ``stream`` (stdout or stderr
only: the answer has both).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from devcluster.errors import ApiError
from devcluster.handlers import Api, RawBody, RequestContext, Target
from devcluster.localpods.logs import LogEntry, format_time, parse_entries, parse_time
from devcluster.schema import FieldError, format_value, invalid_message

__all__ = ["FOLLOW_POLL_SECONDS", "LogOptions", "LogRenderer", "StreamingBody", "register_pod_logs"]

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


def _integer(query: dict[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as e:
        raise _bad_request(f"{key}: invalid value {raw!r}: must be an integer") from e


def _since_time(query: dict[str, str]) -> int | None:
    raw = query.get("sinceTime")
    if raw is None or raw == "":
        return None
    try:
        return parse_time(raw)
    except ValueError as e:
        raise _bad_request(f"sinceTime: invalid value {raw!r}: must be an RFC3339 time") from e


@dataclass(frozen=True)
class LogOptions:
    """What of the log is sent (``PodLogOptions``, times in nanoseconds since the epoch)."""

    timestamps: bool = False
    since_ns: int | None = None
    tail_lines: int | None = None
    limit_bytes: int | None = None


def _options(query: dict[str, str], name: str, now_ns: int) -> LogOptions:
    """``ValidatePodLogOptions``, then the kubelet's ``NewLogOptions``: ``sinceSeconds`` is
    counted back from ``now_ns``."""
    tail_lines = _integer(query, "tailLines")
    limit_bytes = _integer(query, "limitBytes")
    since_seconds = _integer(query, "sinceSeconds")
    since_ns = _since_time(query)
    errors: list[FieldError] = []
    if tail_lines is not None and tail_lines < 0:
        errors.append(_invalid_value("tailLines", tail_lines, "must be greater than or equal to 0"))
    if limit_bytes is not None and limit_bytes < 1:
        errors.append(_invalid_value("limitBytes", limit_bytes, "must be greater than 0"))
    if since_seconds is not None and since_ns is not None:
        errors.append(
            FieldError(
                "FieldValueForbidden",
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                "",
            )
        )
    elif since_seconds is not None:
        if since_seconds < 1:
            errors.append(_invalid_value("sinceSeconds", since_seconds, "must be greater than 0"))
        since_ns = now_ns - since_seconds * 1_000_000_000
    if errors:
        raise ApiError(
            422,
            invalid_message("PodLogOptions", name, errors),
            "Invalid",
            name=name,
            kind="PodLogOptions",
            causes=[{"reason": e.reason, "message": e.message, "field": e.field} for e in errors],
        )
    return LogOptions(_true(query, "timestamps"), since_ns, tail_lines, limit_bytes)


def _invalid_value(key: str, value: int, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", f"Invalid value: {format_value(value)}: {detail}", key)


def tail(entries: list[LogEntry], lines: int | None) -> list[LogEntry]:
    """The last ``lines`` entries (all when None)."""
    if lines is None:
        return entries
    return entries[len(entries) - lines :] if lines else []


class LogRenderer:
    """The kubelet's ``logWriter``: entries to the bytes sent, across the calls of a followed
    log (whether the next entry starts a line, how many bytes may still be sent)."""

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        self.remaining = options.limit_bytes
        self._new_line = True

    @property
    def done(self) -> bool:
        """``limitBytes`` bytes have been sent."""
        return self.remaining is not None and self.remaining <= 0

    def render(self, entries: list[LogEntry]) -> bytes:
        out: list[bytes] = []
        for entry in entries:
            if self.done:
                break
            content = entry.content
            if self.options.since_ns is None or entry.time_ns >= self.options.since_ns:
                line = content
                if self.options.timestamps and self._new_line:
                    line = format_time(entry.time_ns).encode() + b" " + content
                if self.remaining is not None:
                    line = line[: self.remaining]
                    self.remaining -= len(line)
                out.append(line)
            self._new_line = not content or content.endswith(b"\n")
        return b"".join(out)


def _true(query: dict[str, str], key: str) -> bool:
    return query.get(key, "").lower() in ("true", "1")


def handle(ctx: RequestContext) -> tuple[int, RawBody]:
    if ctx.verb != "get":
        raise ApiError(405, "method not allowed", "MethodNotAllowed")
    api = ctx.api
    t = ctx.target
    ns, name = t.namespace or "", t.name or ""
    options = _options(ctx.query, name, time.time_ns())
    pod = api.get(Target(t.rt, "v1", t.namespace, name))  # 404 as for the pod
    container = _container(pod, ctx.query.get("container", ""))
    previous = _true(ctx.query, "previous")
    if not (pod.get("spec") or {}).get("nodeName"):
        return 200, RawBody(b"")  # not scheduled: no kubelet to ask
    _check_status(pod, container, previous)
    source = api.pod_logs
    data = source.read(ns, name, container, previous=previous) if source is not None else None
    follow = _true(ctx.query, "follow") and not previous
    entries, used = parse_entries(data or b"", final=not follow)
    renderer = LogRenderer(options)
    first = renderer.render(tail(entries, options.tail_lines))
    if not follow:
        return 200, RawBody(first)
    uid = pod["metadata"].get("uid")
    follower = _Follower(api, ns, name, uid, container, used, renderer)
    return 200, StreamingBody(first, more=follower.chunks)


@dataclass
class _Follower:
    """``follow=true``: the entries the container appends after ``offset``, until it is done."""

    api: Api
    namespace: str
    name: str
    uid: str | None
    container: str
    offset: int
    renderer: LogRenderer

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
            if self.renderer.done:
                return
            running = self._running()  # before reading: what it wrote before it stopped counts
            data = self._read()
            if len(data) < self.offset:  # a new run (or a truncated file): start over
                self.offset = 0
            entries, used = parse_entries(data[self.offset :], final=False)
            self.offset += used
            new = self.renderer.render(entries)
            if new:
                yield new
                continue
            if not running:
                return
            time.sleep(FOLLOW_POLL_SECONDS)
