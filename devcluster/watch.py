"""Watch streams: one thread per open watch, newline-delimited JSON events over a chunked body.

The official client splits events on newlines and resumes from the last resourceVersion it saw;
informers rely on bookmarks and on ADDED/DELETED when an object moves into or out of their
selector. This module turns store events into exactly that stream, handles ``resourceVersion``
(``""``/``0`` = synthetic ADDED for the current state, ``N`` = events after N, too old = a 410
ERROR event), ``sendInitialEvents``, ``timeoutSeconds``, bookmarks, and the client hanging up
(``Watch.stop()`` shuts the socket down; we notice by polling the socket while idle).
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from typing import Any

from devcluster.errors import ApiError, status_body
from devcluster.handlers import Api, Target
from devcluster.selectors import SelectorError, parse_field_selector, parse_label_selector
from devcluster.storage import Event, Expired

__all__ = ["serve_watch"]

JSON = dict[str, Any]
_DEFAULT_TIMEOUT = 1800.0
_POLL = 0.5


def _expired_event(requested: int, oldest: int) -> JSON:
    body = status_body(410, f"too old resource version: {requested} ({oldest})", "Expired")
    return {"type": "ERROR", "object": body}


def serve_watch(
    api: Api,
    t: Target,
    query: dict[str, str],
    write: Callable[[bytes], None],
    client_gone: Callable[[], bool],
    *,
    bookmark_interval: float,
    drop_after: int | None = None,
    expire: bool = False,
    as_table: bool = False,
    start: Callable[[], None] = lambda: None,
) -> None:
    """Stream events until timeout, hang-up, drop or error. ``start`` sends the 200 headers.

    Raises :class:`ApiError` before ``start`` is called for requests that must be answered with
    a plain error (bad selectors).
    """
    try:
        lsel = parse_label_selector(query.get("labelSelector"))
        fsel = parse_field_selector(query.get("fieldSelector"))
    except SelectorError as e:
        raise ApiError(400, str(e), "BadRequest") from e

    def matches(obj: JSON | None) -> bool:
        if obj is None:
            return False
        if lsel is not None and not lsel(obj):
            return False
        return fsel is None or fsel(obj)

    rv_param = query.get("resourceVersion") or ""
    send_initial = query.get("sendInitialEvents", "").lower() == "true"
    bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
    timeout = _DEFAULT_TIMEOUT
    if query.get("timeoutSeconds"):
        try:
            timeout = max(0.0, float(query["timeoutSeconds"]))
        except ValueError as e:
            raise ApiError(400, "invalid timeoutSeconds", "BadRequest") from e
    deadline = time.monotonic() + timeout
    store = api.store
    key = t.rt.skey
    ns = t.namespace

    def encode(type_: str, obj: JSON) -> bytes:
        body = api.present(t, obj)
        if as_table:
            body = api.table(t, [body], None)
        return json.dumps({"type": type_, "object": body}, separators=(",", ":")).encode() + b"\n"

    def bookmark(rv: int, initial_end: bool = False) -> bytes:
        meta: JSON = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": t.rt.kind, "apiVersion": t.api_version, "metadata": meta}
        return json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")).encode() + (
            b"\n"
        )

    initial: list[JSON] = []
    backlog: list[Event] = []
    if expire:
        start()
        n = int(rv_param) if rv_param.isdigit() else store.resource_version
        write(json.dumps(_expired_event(n, store.resource_version)).encode() + b"\n")
        return
    try:
        with store.lock:
            if rv_param in ("", "0") or send_initial:
                _, items = store.list_objects(key, ns)
                initial = [o for o in items if matches(o)]
                w, _, current = store.watch(key, ns, None)
            else:
                try:
                    since = int(rv_param)
                except ValueError as e:
                    raise ApiError(
                        400, f"invalid resource version: {rv_param}", "BadRequest"
                    ) from e
                w, backlog, current = store.watch(key, ns, since)
    except Expired as e:
        start()
        write(json.dumps(_expired_event(e.requested, e.oldest)).encode() + b"\n")
        return

    sent = 0
    last_rv = current
    try:
        start()
        if drop_after is not None and drop_after <= 0:
            return  # the fault closes the stream before any event
        for obj in initial:
            write(encode("ADDED", obj))
            sent += 1
            if drop_after is not None and sent >= drop_after:
                return
        if send_initial and bookmarks:
            write(bookmark(current, initial_end=True))

        def deliver(ev: Event) -> bool:
            """Send one event if it concerns this watcher; False once the stream must end."""
            nonlocal sent, last_rv
            last_rv = ev.rv
            new_m = matches(ev.obj)
            old_m = matches(ev.old)
            if ev.type == "ADDED":
                type_ = "ADDED" if new_m else None
            elif ev.type == "MODIFIED":
                if new_m and old_m:
                    type_ = "MODIFIED"
                elif new_m:
                    type_ = "ADDED"
                elif old_m:
                    type_ = "DELETED"
                else:
                    type_ = None
            else:
                type_ = "DELETED" if (new_m or old_m) else None
            if type_ is None:
                return True
            write(encode(type_, ev.obj))
            sent += 1
            return not (drop_after is not None and sent >= drop_after)

        for ev in backlog:
            if not deliver(ev):
                return
        next_bookmark = time.monotonic() + bookmark_interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                if bookmarks:
                    write(bookmark(_quiet_rv(api, w, last_rv)))
                return
            wait = min(deadline - now, _POLL)
            if bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            try:
                item = w.events.get(timeout=wait)
            except queue.Empty:
                pass
            else:
                if item is None:  # closed (drop_watches)
                    return
                if not deliver(item):
                    return
                continue
            if client_gone():
                return
            if bookmarks and time.monotonic() >= next_bookmark:
                write(bookmark(_quiet_rv(api, w, last_rv)))
                next_bookmark = time.monotonic() + bookmark_interval
    finally:
        store.unwatch(w)


def _quiet_rv(api: Api, w: Any, last_rv: int) -> int:
    """The resourceVersion a bookmark may carry: current, if nothing is queued for us."""
    with api.store.lock:
        if w.events.empty():
            return max(last_rv, api.store.resource_version)
    return last_rv
