"""The one place bifrost sends requests to a Kubernetes API server.

bifrost reads and writes many kinds (Gateway API, cert-manager, its own CRDs, core objects) and
must behave the same against the devcluster and a real cluster, so it uses the official client's
``DynamicClient`` for everything and exchanges plain ``dict`` objects with the rest of bifrost:

- every failure becomes a :mod:`bifrost.kube.errors` error that says how to react;
- children are written with **server-side apply** under bifrost's field manager, status through
  the ``/status`` subresource, deletes carry preconditions (uid/resourceVersion) and a
  propagation policy;
- discovery is cached per client in its own temporary file (the library's default path is derived
  from the host and leaks between clients and tests that reuse a port), and a kind the cache does
  not know triggers one refresh, so CRDs installed after start-up are found;
- lists paginate and return the list ``resourceVersion`` a watch resumes from;
- :meth:`KubeClient.watch_stream` opens one raw watch stream that another thread can abort; the
  resuming, relisting :class:`bifrost.kube.watch.Watcher` is built on it.

The client never retries by itself: callers (the engine, the watcher, the elector) own the retry
policy and use :attr:`bifrost.kube.errors.Retryable.delay`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from kubernetes import client as _k8s_client
from kubernetes import config as _k8s_config
from kubernetes import dynamic as _k8s_dynamic
from kubernetes.client import rest as _k8s_rest
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from urllib3.util.retry import Retry

from bifrost.api import objects
from bifrost.api.objects import Obj
from bifrost.kube.errors import (
    Gone,
    KubeError,
    NotFound,
    PathNotServed,
    UnknownKind,
    translate_errors,
)

__all__ = [
    "APPLY_PATCH",
    "DEFAULT_FIELD_MANAGER",
    "JSON_PATCH",
    "MERGE_PATCH",
    "KubeClient",
    "RequestHook",
    "WatchStream",
    "request_labels",
    "metadata_view",
    "transport_retries",
]

DEFAULT_FIELD_MANAGER = "bifrost"
#: Connections the client keeps per host (see :class:`KubeClient`).
POOL_SIZE = 64
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_STRATEGIC_PATCH = "application/strategic-merge-patch+json"
_PATCH_TYPES = {"merge": MERGE_PATCH, "json": JSON_PATCH, "strategic": _STRATEGIC_PATCH}

_SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

log = logging.getLogger(__name__)

Patch = Obj | list[Obj]

# The official client is only partly annotated; bifrost treats it as untyped at this boundary.
k8s_client: Any = _k8s_client
k8s_config: Any = _k8s_config
k8s_rest: Any = _k8s_rest
DynamicClient: Any = _k8s_dynamic.DynamicClient
RequestTimeout = float | tuple[float, float]



#: ``Accept`` headers of a metadata-only read (what client-go's metadata client sends): the
#: server answers ``PartialObjectMetadata`` — no ``data``, ``spec`` or ``status`` — and falls
#: back to the full object if it cannot (the ``application/json`` at the end).
METADATA_LIST_ACCEPT = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#: kubectl's client-side apply copies the whole object (a Secret's data too) into this annotation.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def metadata_view(obj: Obj) -> Obj:
    """``obj`` reduced to its metadata, as a ``PartialObjectMetadata`` (no ``data``, ``spec``,
    ``status``, ``managedFields`` nor kubectl's last-applied annotation, which holds a copy of
    the whole object). Applied also when a server ignored the metadata-only ``Accept``."""
    meta = {k: v for k, v in objects.meta(obj).items() if k != "managedFields"}
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta}


def transport_retries() -> Retry:
    """urllib3 retries for bifrost's requests: reconnect, never retry an HTTP answer.

    urllib3's default retries 429/503 answers that carry Retry-After (sleeping inside the call)
    for idempotent methods, which hides throttling from the caller and blocks its thread; bifrost's
    callers decide about retries themselves from :class:`~bifrost.kube.errors.Retryable`. Failed
    connects are retried a few times, and one read failure (a stale keep-alive connection) for
    idempotent methods.
    """
    return Retry(
        total=3,
        connect=3,
        read=1,
        redirect=0,
        status=0,
        other=0,
        backoff_factor=0.05,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


#: Told of every request the client sent: (verb, resource, code, seconds). ``code`` is the HTTP
#: status as text, or ``"error"`` when no response came (connection failed, timed out).
RequestHook = Callable[[str, str, str, float], None]

_VERBS = {"post": "create", "put": "update", "patch": "patch"}


def request_labels(method: str, path: str, *, watch: bool = False) -> tuple[str, str]:
    """The Kubernetes verb and resource (``plural`` or ``plural/subresource``) of a request,
    from its method and path — bounded values, never an object's name or namespace."""
    parts = [p for p in path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        rest = rest[2:]
    resource = rest[0] if rest else ""
    named = len(rest) >= 2
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    m = method.lower()
    if watch:
        verb = "watch"
    elif m == "get":
        verb = "get" if named else "list"
    elif m == "delete":
        verb = "delete" if named else "deletecollection"
    else:
        verb = _VERBS.get(m, m)
    return verb, resource


class _Kind:
    """What bifrost needs to know about one served kind (from discovery)."""

    __slots__ = ("api_version", "group", "kind", "namespaced", "plural", "prefix")

    def __init__(self, resource: Any) -> None:
        self.api_version: str = resource.group_version
        self.group: str = resource.group or ""
        self.kind: str = resource.kind
        self.plural: str = resource.name
        self.namespaced: bool = bool(resource.namespaced)
        self.prefix: str = resource.prefix  # "api" or "apis"

    def path(
        self,
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        parts = [f"/{self.prefix}/{self.api_version}"]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    @property
    def resource_name(self) -> str:
        """``plural.group`` as in Status messages, e.g. ``gateways.gateway.networking.k8s.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


class WatchStream:
    """One open watch request: iterate the raw event dicts; :meth:`close` from any thread.

    Iteration ends when the server closes the stream (timeout or drop) or after :meth:`close`.
    Transport failures while reading raise :class:`~bifrost.kube.errors.ConnectionFailed`, unless
    the stream was closed on purpose.
    """

    def __init__(self, response: Any, *, kind: str) -> None:
        self._response = response
        self._kind = kind
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Abort the stream; a thread blocked reading it wakes up and the iteration ends."""
        if self._closed.is_set():
            return
        self._closed.set()
        # Shutting the socket down is what wakes a reader blocked in recv(); closing alone does not.
        with contextlib.suppress(Exception):
            sock = getattr(getattr(self._response, "connection", None), "sock", None)
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)

    def __iter__(self) -> Iterator[Obj]:
        buffer = bytearray()
        try:
            with translate_errors(kind=self._kind):
                try:
                    for chunk in self._response.stream(None, decode_content=False):
                        if self._closed.is_set():
                            return
                        buffer.extend(chunk if isinstance(chunk, bytes) else chunk.encode())
                        while (newline := buffer.find(b"\n")) != -1:
                            line = bytes(buffer[:newline])
                            del buffer[: newline + 1]
                            if not line.strip():
                                continue
                            try:
                                event = json.loads(line)
                            except ValueError:
                                # (its length only: a line may hold an object's data)
                                log.warning("skipping an undecodable watch line (%d bytes)",
                                            len(line))
                                continue
                            if isinstance(event, dict):
                                yield event
                            if self._closed.is_set():
                                return
                except Exception:
                    if self._closed.is_set():
                        return
                    raise
        finally:
            self._release()

    def _release(self) -> None:
        self._closed.set()
        with contextlib.suppress(Exception):
            self._response.close()
        with contextlib.suppress(Exception):
            self._response.release_conn()


class KubeClient:
    """A typed, dict-in/dict-out client for any kind the API server serves. Thread-safe."""

    def __init__(
        self,
        api_client: Any,
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        request_timeout: RequestTimeout = (5.0, 30.0),
    ) -> None:
        """Wrap an official ``kubernetes.client.ApiClient`` (the constructors build one).

        Unless its configuration sets ``retries``, the connection pool is rebuilt with
        :func:`transport_retries`, so urllib3 does not silently sleep on a 429/503 Retry-After
        and retry behind the caller's back. It keeps at least :data:`POOL_SIZE` connections
        (the library's default is 5 per CPU): a controller holds one per watch besides its
        workers' and runners' requests, and a connection returned to a full pool is discarded
        with a "Connection pool is full" warning — every watch's at shutdown.
        """
        configuration = api_client.configuration
        rebuild = False
        if configuration.retries is None:
            configuration.retries = transport_retries()
            rebuild = True
        if (configuration.connection_pool_maxsize or 0) < POOL_SIZE:
            configuration.connection_pool_maxsize = POOL_SIZE
            rebuild = True
        if rebuild:
            api_client.rest_client = k8s_rest.RESTClientObject(configuration)
        self._api_client = api_client
        #: Told of every request (see :data:`RequestHook`); a plain callback, so this layer
        #: stays free of any metrics library. Set it before the client is shared.
        self.on_request: RequestHook | None = None
        self.field_manager = field_manager
        self.request_timeout = request_timeout
        self._lock = threading.RLock()
        self._dynamic: Any = None
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._cache_dir = tempfile.mkdtemp(prefix="bifrost-discovery-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._cache_dir, ignore_errors=True)

    # ---- constructors -------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str] | None = None, context: str | None = None
    ) -> KubeClient:
        """A client for ``context`` of the kubeconfig ``path`` (default: $KUBECONFIG, ~/.kube)."""
        # The library reads $KUBECONFIG once, at import; read it now instead.
        config_file = (
            os.fspath(path)
            if path is not None
            else os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        )
        with translate_errors():
            api_client = k8s_config.new_client_from_config(
                config_file=config_file, context=context, persist_config=False
            )
        return cls(api_client)

    @classmethod
    def in_cluster(cls) -> KubeClient:
        """A client for the cluster this pod runs in (service account token and CA)."""
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)
        return cls(k8s_client.ApiClient(configuration))

    @staticmethod
    def in_cluster_available() -> bool:
        return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
            _SERVICE_ACCOUNT_TOKEN
        )

    @classmethod
    def auto(
        cls, kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None
    ) -> KubeClient:
        """In-cluster when running in a pod (and no kubeconfig is given), else the kubeconfig."""
        if kubeconfig is None and cls.in_cluster_available():
            return cls.in_cluster()
        return cls.from_kubeconfig(kubeconfig, context)

    def close(self) -> None:
        """Release the connection pool and the discovery cache."""
        with contextlib.suppress(Exception):
            self._api_client.close()
        self._finalizer()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def host(self) -> str:
        return str(self._api_client.configuration.host)

    def bearer_token(self) -> str | None:
        """The bearer token this client sends (kubeconfig token, token file or exec plugin, as
        the library resolved it), or None when it authenticates otherwise (client
        certificates). For ``bifrost-admin --server``, which presents the user's own token."""
        configuration = self._api_client.configuration
        refresh = getattr(configuration, "refresh_api_key_hook", None)
        if callable(refresh):
            refresh(configuration)
        for value in (configuration.api_key or {}).values():
            if isinstance(value, str) and value.startswith("Bearer "):
                return value.removeprefix("Bearer ").strip() or None
        return None

    # ---- discovery ----------------------------------------------------------------------

    def _dyn(self) -> Any:
        with self._lock:
            if self._dynamic is None:
                cache_file = str(Path(self._cache_dir) / "discovery.json")
                with translate_errors():
                    self._dynamic = DynamicClient(self._api_client, cache_file=cache_file)
            return self._dynamic

    def _kind(self, api_version: str, kind: str) -> _Kind:
        key = (api_version, kind)
        with self._lock:
            found = self._kinds.get(key)
            if found is not None:
                return found
            dyn = self._dyn()
            # LazyDiscoverer refreshes its whole cache once when a search misses, so a CRD
            # installed after this client started is found here.
            try:
                with translate_errors(kind=kind):
                    resource = dyn.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError as exc:
                raise UnknownKind(
                    f"the server does not serve {kind} in {api_version}",
                    reason="UnknownKind",
                    kind=kind,
                ) from exc
            found = _Kind(resource)
            self._kinds[key] = found
            return found

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        """Whether ``kind`` is namespaced (from discovery)."""
        return self._kind(api_version, kind).namespaced

    def plural(self, api_version: str, kind: str) -> str:
        """The resource name (plural) of ``kind``, e.g. ``gateways``."""
        return self._kind(api_version, kind).plural

    def forget_discovery(self) -> None:
        """Drop the cached discovery (e.g. after a CRD changed scope or was removed)."""
        with self._lock:
            self._kinds.clear()
            if self._dynamic is not None:
                with translate_errors():
                    self._dynamic.resources.invalidate_cache()

    # ---- plumbing -----------------------------------------------------------------------

    def _scope(self, k: _Kind, namespace: str | None, name: str | None = None) -> str | None:
        if not k.namespaced:
            return None
        if not namespace:
            raise ValueError(f"{k.kind} {name or ''} is namespaced: a namespace is required")
        return namespace

    def _call(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        name: str | None = None,
        namespace: str | None = None,
        body: Any = None,
        content_type: str | None = None,
        **params: Any,
    ) -> Obj:
        try:
            with self._observed(method, path), translate_errors(kind=kind, name=name,
                                                                 namespace=namespace):
                response = self._dyn().request(
                    method,
                    path,
                    body=body,
                    content_type=content_type,
                    serialize=False,
                    _request_timeout=self.request_timeout,
                    **{k: v for k, v in params.items() if v is not None},
                )
                try:
                    data = response.data
                finally:
                    with contextlib.suppress(Exception):
                        response.release_conn()
        except PathNotServed:
            # The kind is gone (its CRD deleted): the next use of it reads discovery again and
            # raises UnknownKind, instead of requesting a path the server no longer serves.
            self.forget_discovery()
            raise
        if not data:
            return {}
        decoded = json.loads(data)
        return decoded if isinstance(decoded, dict) else {"items": decoded}

    @contextlib.contextmanager
    def _observed(self, method: str, path: str, *, watch: bool = False) -> Iterator[None]:
        """Tell :attr:`on_request` how the request in the block went (a hook that raises is
        logged, never the request's failure)."""
        hook = self.on_request
        if hook is None:
            yield
            return
        began = time.monotonic()
        code = "200"
        try:
            yield
        except KubeError as exc:
            code = str(exc.status) if exc.status else "error"
            raise
        except BaseException:
            code = "error"
            raise
        finally:
            verb, resource = request_labels(method, path, watch=watch)
            try:
                hook(verb, resource, code, time.monotonic() - began)
            except Exception:  # noqa: BLE001 - metrics must not break a request
                log.exception("the request hook failed")

    @staticmethod
    def _typed(obj: Obj, k: _Kind) -> Obj:
        obj.setdefault("apiVersion", k.api_version)
        obj.setdefault("kind", k.kind)
        return obj

    @staticmethod
    def _ident(obj: Obj) -> tuple[str, str, str, str | None]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        meta = objects.meta(obj)
        name = meta.get("name")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("the object needs apiVersion and kind")
        if not isinstance(name, str) or not name:
            raise ValueError(f"the {kind} needs metadata.name")
        namespace = meta.get("namespace")
        return api_version, kind, name, namespace if isinstance(namespace, str) else None

    # ---- reads --------------------------------------------------------------------------

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        """The object, or ``None`` when it does not exist."""
        k = self._kind(api_version, kind)
        ns = self._scope(k, namespace, name)
        try:
            obj = self._call(
                "get", k.path(namespace=ns, name=name), kind=kind, name=name, namespace=ns
            )
        except NotFound:
            return None
        return self._typed(obj, k)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        metadata_only: bool = False,
    ) -> tuple[list[Obj], str]:
        """All matching objects (every page) and the list resourceVersion to watch from.

        ``namespace=None`` lists a namespaced kind across all namespaces. Items always carry
        ``apiVersion`` and ``kind``. If a continue token expires midway (410), the list starts over
        (at most three times). ``metadata_only``: ask for ``PartialObjectMetadataList`` and
        return :func:`metadata_view` items (never the objects' data, whatever the server sent).
        """
        k = self._kind(api_version, kind)
        ns = namespace if k.namespaced else None
        path = k.path(namespace=ns)
        for attempt in range(3):
            items: list[Obj] = []
            list_rv = ""
            token: str | None = None
            try:
                while True:
                    page = self._call(
                        "get",
                        path,
                        kind=kind,
                        namespace=ns,
                        label_selector=label_selector,
                        field_selector=field_selector,
                        limit=page_size,
                        _continue=token,
                        header_params={"Accept": METADATA_LIST_ACCEPT} if metadata_only else None,
                    )
                    meta = objects.meta(page)
                    if not list_rv:
                        list_rv = str(meta.get("resourceVersion") or "")
                    items.extend(
                        metadata_view(item) if metadata_only else self._typed(item, k)
                        for item in page.get("items") or []
                    )
                    token = meta.get("continue") or None
                    if not token:
                        return items, list_rv
            except Gone:
                if token is None or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def watch_stream(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        read_timeout: float | None = None,
        metadata_only: bool = False,
    ) -> WatchStream:
        """Open one watch (``?watch=true``) and return the stream of raw event dicts.

        HTTP errors opening the stream (e.g. 410 for a resourceVersion that is too old) raise the
        mapped :class:`~bifrost.kube.errors.KubeError`; an ``ERROR`` event inside the stream is
        yielded as-is for the caller to interpret. ``read_timeout`` bounds the silence between
        bytes (default: ``timeout_seconds`` + 30 s) so a dead connection cannot block forever.
        ``metadata_only`` asks for ``PartialObjectMetadata`` events (the caller still reduces
        each object with :func:`metadata_view`: a server may answer with full objects).
        """
        k = self._kind(api_version, kind)
        ns = namespace if k.namespaced else None
        if read_timeout is None:
            read_timeout = float(timeout_seconds or 300) + 30.0
        connect = (
            self.request_timeout[0]
            if isinstance(self.request_timeout, tuple)
            else float(self.request_timeout)
        )
        with self._observed("get", k.path(namespace=ns), watch=True), \
                translate_errors(kind=kind, namespace=ns):
            response = self._dyn().request(
                "get",
                k.path(namespace=ns),
                serialize=False,
                _request_timeout=(connect, read_timeout),
                **{
                    key: value
                    for key, value in {
                        "watch": True,
                        "resource_version": resource_version or None,
                        "label_selector": label_selector,
                        "field_selector": field_selector,
                        "timeout_seconds": timeout_seconds,
                        "allow_watch_bookmarks": True if allow_bookmarks else None,
                        "header_params": {"Accept": METADATA_ACCEPT} if metadata_only else None,
                    }.items()
                    if value is not None
                },
            )
        return WatchStream(response, kind=kind)

    # ---- writes -------------------------------------------------------------------------

    def create(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """POST a new object (``metadata.generateName`` works); returns what the server stored."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("the object needs apiVersion and kind")
        k = self._kind(api_version, kind)
        meta = objects.meta(obj)
        name = meta.get("name") if isinstance(meta.get("name"), str) else None
        ns = self._scope(k, namespace or meta.get("namespace"), name)
        created = self._call(
            "post",
            k.path(namespace=ns),
            kind=kind,
            name=name,
            namespace=ns,
            body=obj,
            content_type="application/json",
            field_manager=field_manager or self.field_manager,
            dry_run="All" if dry_run else None,
        )
        return self._typed(created, k)

    def replace(self, obj: Obj, *, field_manager: str | None = None) -> Obj:
        """PUT the whole object; its ``metadata.resourceVersion`` makes it conditional (409)."""
        api_version, kind, name, namespace = self._ident(obj)
        k = self._kind(api_version, kind)
        ns = self._scope(k, namespace, name)
        replaced = self._call(
            "put",
            k.path(namespace=ns, name=name),
            kind=kind,
            name=name,
            namespace=ns,
            body=obj,
            content_type="application/json",
            field_manager=field_manager or self.field_manager,
        )
        return self._typed(replaced, k)

    def _apply(
        self, obj: Obj, *, subresource: str | None, field_manager: str | None, force: bool
    ) -> Obj:
        api_version, kind, name, namespace = self._ident(obj)
        k = self._kind(api_version, kind)
        ns = self._scope(k, namespace, name)
        body = copy.deepcopy(obj)
        # The server rejects an apply body that carries managedFields.
        objects.meta(body).pop("managedFields", None)
        applied = self._call(
            "patch",
            k.path(namespace=ns, name=name, subresource=subresource),
            kind=kind,
            name=name,
            namespace=ns,
            body=body,
            content_type=APPLY_PATCH,
            field_manager=field_manager or self.field_manager,
            force_conflicts=True if force else None,
        )
        return self._typed(applied, k)

    def apply(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj:
        """Server-side apply ``obj`` (the fields bifrost owns); creates it if missing.

        With ``force`` (the default, as a controller should) ownership of conflicting fields moves
        to ``field_manager``; without it a conflict raises :class:`~bifrost.kube.errors.Conflict`
        with the conflicting fields in ``causes``.
        """
        return self._apply(obj, subresource=None, field_manager=field_manager, force=force)

    def apply_status(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj:
        """Server-side apply ``obj['status']`` through the ``/status`` subresource."""
        return self._apply(obj, subresource="status", field_manager=field_manager, force=force)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Patch,
        *,
        patch_type: Literal["merge", "json", "strategic"] = "merge",
        field_manager: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """PATCH with a merge patch (dict), a JSON patch (list of ops) or strategic merge."""
        if patch_type == "json" and not isinstance(patch, list):
            raise ValueError("a JSON patch is a list of operations")
        if patch_type != "json" and not isinstance(patch, dict):
            raise ValueError(f"a {patch_type} patch is an object")
        k = self._kind(api_version, kind)
        ns = self._scope(k, namespace, name)
        patched = self._call(
            "patch",
            k.path(namespace=ns, name=name, subresource=subresource),
            kind=kind,
            name=name,
            namespace=ns,
            body=patch,
            content_type=_PATCH_TYPES[patch_type],
            field_manager=field_manager or self.field_manager,
        )
        return self._typed(patched, k)

    def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        status: Obj,
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patch ``status`` on ``/status`` (conditional on ``resource_version`` if given)."""
        body: Obj = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return self.patch(
            api_version,
            kind,
            name,
            namespace,
            body,
            patch_type="merge",
            field_manager=field_manager,
            subresource="status",
        )

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: Literal["Background", "Foreground", "Orphan"] = "Background",
    ) -> bool:
        """Delete (or mark for deletion, with finalizers); ``False`` when already gone.

        ``uid``/``resource_version`` become DeleteOptions preconditions: a mismatch raises
        :class:`~bifrost.kube.errors.Conflict` instead of deleting a different object.
        """
        k = self._kind(api_version, kind)
        ns = self._scope(k, namespace, name)
        options: Obj = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
        }
        preconditions = {
            key: value
            for key, value in (("uid", uid), ("resourceVersion", resource_version))
            if value is not None
        }
        if preconditions:
            options["preconditions"] = preconditions
        try:
            self._call(
                "delete",
                k.path(namespace=ns, name=name),
                kind=kind,
                name=name,
                namespace=ns,
                body=options,
                content_type="application/json",
            )
        except NotFound:
            return False
        return True
