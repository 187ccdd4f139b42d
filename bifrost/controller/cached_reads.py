"""The steps' Kubernetes port, reading from the informers' caches where they are fresh enough.

Steps observe before they act: the Gateway, its routes, its children, certificates and their
Secrets. Each of those reads was a GET (6 per Gateway while provisioning, thousands per no-op
resync); the controller already holds every one of these objects in a watch cache — the main
informers (:mod:`bifrost.controller.informers`) and the children's label-selected watches
(:mod:`bifrost.controller.children`). :class:`CachedReads` answers ``get`` from those caches and
passes everything else (lists, writes) through.

**Fresh enough** means: the kind's watch has synced (a miss then means the object does not
exist), and the cache has caught up with every write made through this port. A step that applied
a child and reads it back in the same run (or the next one, before the watch event arrived)
must see its own write, not the older cached copy: each write's result is remembered (with the
resourceVersion the cache had when it was made) until the cache shows that version or a newer
one — read your own writes. A delete is not remembered: the object is read as it is cached
(present, or terminating) until its watch event arrives, which also wakes the step waiting for
it to go. A write by someone else that the watch has not delivered yet is not seen; its event
wakes the waiting operation, which then reads it.

Objects are handed out as copies: a step may change what it reads.
"""

from __future__ import annotations

import copy
import threading
import time

from bifrost.api.objects import Obj, meta
from bifrost.controller.children import ChildInformers, group_of
from bifrost.kube import Kube
from bifrost.kube.client import metadata_view
from bifrost.kube.delegate import KubeDelegate
from bifrost.steps.ownership import GATEWAY_UID_LABEL

__all__ = ["CachedReads"]

_Key = tuple[str, str, str, str]  # (group, kind, namespace, name)
#: A write not seen in the cache after this long is forgotten (its events were missed or
#: merged): the cache answers again.
REMEMBER_SECONDS = 30.0


def _key(api_version: str, kind: str, namespace: str | None, name: str) -> _Key:
    return group_of(api_version), kind, namespace or "", name


def _uid_selector(selector: str | None) -> str | None:
    """``<uid>`` of a selector that is exactly ``gateway.bifrost.dev/gateway-uid=<uid>``."""
    if not selector:
        return None
    key, sep, value = selector.partition("=")
    value = value.lstrip("=")  # "==" is "=" too
    if sep and key.strip() == GATEWAY_UID_LABEL and value and "," not in value \
            and not key.endswith("!"):
        return value.strip()
    return None


def _rv(obj: Obj | None) -> str:
    return str(meta(obj).get("resourceVersion") or "") if obj is not None else ""


class CachedReads(KubeDelegate):
    """A :class:`~bifrost.kube.ports.Kube` reading watched kinds from the caches (see the
    module docstring). Thread-safe."""

    def __init__(self, inner: Kube, children: ChildInformers) -> None:
        super().__init__(inner)
        self.children = children
        self._lock = threading.Lock()
        #: key → (the object this port wrote, the cache's resourceVersion when it wrote, when)
        self._written: dict[_Key, tuple[Obj, str, float]] = {}
        #: Reads answered from the caches and passed to the API (for tests and benchmarks).
        self.stats: dict[str, int] = {"cached": 0, "api": 0}

    # ---- reads ----------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> Obj | None:
        if not self.children.synced(api_version, kind):
            self.stats["api"] += 1
            return self.inner.get(api_version, kind, name, namespace)
        key = _key(api_version, kind, namespace, name)
        cached, exists = self.children.lookup(api_version, kind, namespace, name)
        with self._lock:
            written = self._written.get(key)
            if written is not None:
                mine, cache_rv_then, at = written
                if self._caught_up(mine, cached, cache_rv_then) or \
                        time.monotonic() - at > REMEMBER_SECONDS:
                    del self._written[key]
                else:
                    self.stats["cached"] += 1
                    return copy.deepcopy(mine)
        if cached is None and exists:
            # it exists but is not one of bifrost's children (or its label event is late):
            # only the API can say what it is
            self.stats["api"] += 1
            return self.inner.get(api_version, kind, name, namespace)
        self.stats["cached"] += 1
        return copy.deepcopy(cached) if cached is not None else None

    @staticmethod
    def _caught_up(mine: Obj, cached: Obj | None, cache_rv_then: str) -> bool:
        """The cache shows this port's write (or something that came after it)."""
        if cached is None:
            # gone from the cache: deleted after our write (a create not yet seen keeps the
            # rv of "nothing" it had then, "")
            return cache_rv_then != ""
        return _rv(cached) == _rv(mine) or _rv(cached) != cache_rv_then

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None,
             page_size: int = 500, metadata_only: bool = False) -> tuple[list[Obj], str]:
        """A list of one Gateway's objects (``label_selector`` exactly
        ``gateway.bifrost.dev/gateway-uid=<uid>``, no field selector) of a kind the children's
        watches hold is answered from their index (resourceVersion ""); any other list goes to
        the API."""
        uid = _uid_selector(label_selector)
        if uid is not None and field_selector is None:
            owned = self.children.owned(api_version, kind, uid)
            if owned is not None:
                self.stats["cached"] += 1
                items = [copy.deepcopy(o) for o in owned
                         if namespace is None or meta(o).get("namespace") == namespace]
                return ([metadata_view(o) for o in items] if metadata_only else items), ""
        self.stats["api"] += 1
        return super().list(api_version, kind, namespace, label_selector=label_selector,
                            field_selector=field_selector, page_size=page_size,
                            metadata_only=metadata_only)

    # ---- writes (remembered until the cache has them) -------------------------------------

    def _remember(self, api_version: str, kind: str, namespace: str | None, name: str,
                  written: Obj) -> None:
        if not self.children.synced(api_version, kind):
            return
        key = _key(api_version, kind, namespace, name)
        cached = self.children.get(api_version, kind, namespace, name)
        with self._lock:
            self._written[key] = (written, _rv(cached), time.monotonic())
            if len(self._written) > 10_000:  # never read back: forget the oldest
                oldest = min(self._written, key=lambda k: self._written[k][2])
                del self._written[oldest]

    def after_write(self, obj: Obj) -> Obj:
        m = meta(obj)
        self._remember(str(obj.get("apiVersion")), str(obj.get("kind")),
                       m.get("namespace"), str(m.get("name")), obj)
        return obj


def _cached_reads_is_a_kube(kube: CachedReads) -> Kube:
    """Type-checked only: the wrapper satisfies the port."""
    return kube

