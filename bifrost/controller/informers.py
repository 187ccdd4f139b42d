"""Informers: one resuming watch per kind feeding an indexed in-memory cache.

The Go controller this design replaces listed every HTTPRoute in the cluster on every reconcile
and did not watch policies or blueprints at all, so it was both slow and stale. bifrost instead
keeps one :class:`~bifrost.kube.Watcher` per kind it reads and a :class:`Cache` of the objects,
with **indexes** from each related object to the Gateways it affects:

- gateways by class and by namespace,
- routes by parent Gateway (``spec.parentRefs``) and by namespace,
- gateways by the Secrets their listeners reference (``tls.certificateRefs``),
- policies (``GatewayClassConfig``/``GatewayConfig``) by ``targetRef``,
- GatewayClasses by the blueprint their ``parametersRef`` names,
- Gateways by the GatewayConfig their ``spec.infrastructure.parametersRef`` names.

:meth:`Cache.apply` updates the cache for one watch event and returns exactly the work keys
(Gateways, and GatewayClasses for class status) whose desired state may have changed — computed
from the index entries *before and after* the change, so a route moved from one Gateway to another
wakes both. Reconciles read everything from the cache; no reconcile lists anything from the API.

bifrost's own objects report on their status too (``bifrost.controller.policy_status``), so they
are work keys of their own: a policy when it, a policy on the same target, or its target (created,
deleted, a Gateway's or a GatewayClass's controller changed) changes; a blueprint when it or a
GatewayClass referring to it changes.

Only Gateways bifrost is responsible for are returned: their class names bifrost's controller, or
they still carry bifrost's finalizer (a Gateway whose class vanished must still be torn down).

**Secrets are never cached with their data.** Their informer lists and watches metadata only
(``PartialObjectMetadata``: name, resourceVersion, labels — enough to notice that a referenced
Secret changed), and the cache strips whatever else arrives. :meth:`Cache.get` of a Secret reads
the full object by name through the cache's ``secret_reader`` (a GET), only when a reconcile asks
for it — i.e. for the Secrets Gateways reference and the managed Secrets of their certificates —
and remembers it until the watch reports another resourceVersion or the Secret is deleted. A
cache without a reader answers Secrets with their metadata only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from bifrost.api.objects import Obj, meta
from bifrost.api.objects import spec as object_spec
from bifrost.kube import KubeClient, Watcher, WatchEvent
from bifrost.kube.client import metadata_view

__all__ = [
    "BLUEPRINT_API_VERSION",
    "CONTROLLER_NAME",
    "FINALIZER",
    "GATEWAY_API_VERSION",
    "WATCHED",
    "Cache",
    "CacheBlueprints",
    "CachedNamespaceLabels",
    "Informers",
    "KindSpec",
    "SecretReader",
    "WorkKey",
    "blueprint_key",
    "class_key",
    "gateway_key",
    "policy_key",
]

log = logging.getLogger(__name__)

CacheKey = tuple[str, str, str]  # (kind, namespace or "", name)

CONTROLLER_NAME = "gateway.bifrost.dev/bifrost"
FINALIZER = "gateway.bifrost.dev/finalizer"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSION = f"{GATEWAY_GROUP}/v1"
BIFROST_GROUP = "gateway.bifrost.dev"
BLUEPRINT_API_VERSION = "gateway.bifrost.dev/v1alpha1"
BLUEPRINT_KIND = "GatewayClassBlueprint"
POLICY_KINDS = ("GatewayClassConfig", "GatewayConfig")


class WorkKey(NamedTuple):
    """What a worker reconciles: a ``Gateway`` (namespace, name), a ``GatewayClass`` (name), a
    policy (``GatewayClassConfig``/``GatewayConfig``, namespace, name) or a
    ``GatewayClassBlueprint`` (name) — the last two for their status only."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else (
            f"{self.kind} {self.name}"
        )


def gateway_key(namespace: str, name: str) -> WorkKey:
    return WorkKey("Gateway", namespace, name)


def class_key(name: str) -> WorkKey:
    return WorkKey("GatewayClass", "", name)


def policy_key(kind: str, namespace: str, name: str) -> WorkKey:
    return WorkKey(kind, namespace, name)


def blueprint_key(name: str) -> WorkKey:
    return WorkKey(BLUEPRINT_KIND, "", name)


#: Reads one Secret, data included, by (namespace, name); ``None`` when it does not exist.
SecretReader = Callable[[str, str], Obj | None]


@dataclass(frozen=True)
class KindSpec:
    api_version: str
    kind: str
    #: List and watch ``PartialObjectMetadata`` only (see the module docstring).
    metadata_only: bool = False


#: Every kind the controller watches (children's kinds come with the provision machine).
WATCHED: tuple[KindSpec, ...] = (
    KindSpec("gateway.networking.k8s.io/v1", "GatewayClass"),
    KindSpec("gateway.networking.k8s.io/v1", "Gateway"),
    KindSpec("gateway.networking.k8s.io/v1", "HTTPRoute"),
    KindSpec("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
    KindSpec("v1", "Secret", metadata_only=True),
    KindSpec("v1", "Namespace"),
    KindSpec("v1", "Service"),
    KindSpec(BLUEPRINT_API_VERSION, BLUEPRINT_KIND),
    KindSpec(BLUEPRINT_API_VERSION, "GatewayClassConfig"),
    KindSpec(BLUEPRINT_API_VERSION, "GatewayConfig"),
)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _ns_name(obj: Obj) -> tuple[str, str]:
    m = meta(obj)
    return str(m.get("namespace") or ""), str(m.get("name") or "")


# ---- what each object points at (the index values) -------------------------------------


def gateway_class_name(gateway: Obj) -> str:
    return str(object_spec(gateway).get("gatewayClassName") or "")


def blueprint_name(gateway_class: Obj) -> str | None:
    """The blueprint a GatewayClass's ``parametersRef`` names, if it names one."""
    ref = object_spec(gateway_class).get("parametersRef")
    if not isinstance(ref, dict):
        return None
    if ref.get("group") != BIFROST_GROUP or ref.get("kind") != BLUEPRINT_KIND:
        return None
    name = ref.get("name")
    return str(name) if name else None


def route_parents(route: Obj) -> set[tuple[str, str]]:
    """(namespace, name) of every Gateway an HTTPRoute's ``parentRefs`` name."""
    ns, _ = _ns_name(route)
    out: set[tuple[str, str]] = set()
    for ref in _list(object_spec(route).get("parentRefs")):
        if not isinstance(ref, dict) or not ref.get("name"):
            continue
        if (ref.get("group") or GATEWAY_GROUP) != GATEWAY_GROUP:
            continue
        if (ref.get("kind") or "Gateway") != "Gateway":
            continue
        out.add((str(ref.get("namespace") or ns), str(ref["name"])))
    return out


def route_status_parents(route: Obj, controller_name: str) -> set[tuple[str, str]]:
    """(namespace, name) of the Gateways a route's ``status.parents`` entries of
    ``controller_name`` name — so a Gateway dropped from parentRefs still reaches the route
    and its stale entry is removed."""
    ns, _ = _ns_name(route)
    status = route.get("status")
    out: set[tuple[str, str]] = set()
    for entry in _list(status.get("parents") if isinstance(status, dict) else None):
        if not isinstance(entry, dict) or entry.get("controllerName") != controller_name:
            continue
        ref = entry.get("parentRef")
        if not isinstance(ref, dict) or not ref.get("name"):
            continue
        if (ref.get("group") or GATEWAY_GROUP) != GATEWAY_GROUP:
            continue
        if (ref.get("kind") or "Gateway") != "Gateway":
            continue
        out.add((str(ref.get("namespace") or ns), str(ref["name"])))
    return out


def gateway_secrets(gateway: Obj) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret the Gateway's listeners reference for TLS."""
    ns, _ = _ns_name(gateway)
    out: set[tuple[str, str]] = set()
    for listener in _list(object_spec(gateway).get("listeners")):
        if not isinstance(listener, dict):
            continue
        tls = listener.get("tls")
        if not isinstance(tls, dict):
            continue
        for ref in _list(tls.get("certificateRefs")):
            if not isinstance(ref, dict) or not ref.get("name"):
                continue
            if (ref.get("group") or "") != "" or (ref.get("kind") or "Secret") != "Secret":
                continue
            out.add((str(ref.get("namespace") or ns), str(ref["name"])))
    return out


def policy_target(policy: Obj) -> CacheKey | None:
    """The (kind, namespace, name) a policy's ``targetRef`` names (Gateways: the policy's ns)."""
    ref = object_spec(policy).get("targetRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    kind, name = str(ref.get("kind") or ""), str(ref["name"])
    if kind == "Gateway":
        return ("Gateway", _ns_name(policy)[0], name)
    if kind in ("GatewayClass", "Namespace"):
        return (kind, "", name)
    return None


def gateway_parameters_key(gateway: Obj) -> CacheKey | None:
    """The GatewayConfig a Gateway's ``spec.infrastructure.parametersRef`` names, as a cache
    key (any other kind: ``None``; :mod:`bifrost.controller.parameters` says why)."""
    ref = object_spec(gateway).get("infrastructure")
    ref = ref.get("parametersRef") if isinstance(ref, dict) else None
    if not isinstance(ref, dict) or not ref.get("name") or ref.get("kind") != "GatewayConfig":
        return None
    return ("GatewayConfig", _ns_name(gateway)[0], str(ref["name"]))


class _Index:
    """A reverse index: value → keys of the objects that contribute it (and back)."""

    def __init__(self) -> None:
        self._by_value: dict[Any, set[CacheKey]] = {}
        self._values: dict[CacheKey, frozenset[Any]] = {}

    def update(self, key: CacheKey, values: Iterable[Any]) -> frozenset[Any]:
        """Set ``key``'s values; returns its previous ones."""
        new = frozenset(values)
        old = self._values.get(key, frozenset())
        for value in old - new:
            keys = self._by_value.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_value[value]
        for value in new - old:
            self._by_value.setdefault(value, set()).add(key)
        if new:
            self._values[key] = new
        else:
            self._values.pop(key, None)
        return old

    def lookup(self, value: Any) -> set[CacheKey]:
        return set(self._by_value.get(value, ()))


class Cache:
    """Objects of the watched kinds by (kind, namespace, name), with the indexes above.

    Thread-safe: informer threads call :meth:`apply`, workers read. Objects handed out are the
    cache's own dicts — treat them as read-only. Secrets are kept as metadata; ``secret_reader``
    reads one with its data when :meth:`get` asks for it (see the module docstring).
    """

    def __init__(
        self,
        *,
        controller_name: str = CONTROLLER_NAME,
        secret_reader: SecretReader | None = None,
    ) -> None:
        self.controller_name = controller_name
        self._secret_reader = secret_reader
        self._lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        #: (namespace, name) → (resourceVersion the watch reported when it was read, the Secret)
        self._secrets_read: dict[tuple[str, str], tuple[str, Obj]] = {}
        self.gateways_by_class = _Index()
        self.gateways_by_namespace = _Index()
        self.gateways_by_secret = _Index()
        self.gateways_by_secret_namespace = _Index()
        self.routes_by_gateway = _Index()
        self.routes_by_namespace = _Index()
        self.policies_by_target = _Index()
        self.classes_by_blueprint = _Index()
        self.gateways_by_parameters = _Index()
        #: Gateway uid → (namespace, name): children name their Gateway by uid (label).
        self._gateway_uids: dict[str, tuple[str, str]] = {}

    # ---- reads --------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The cached object; a Secret with its data read by name (see the module docstring).
        Reading a Secret may raise the reader's :class:`~bifrost.kube.KubeError`."""
        key = (namespace or "", name)
        with self._lock:
            obj = self._objects.get(kind, {}).get(key)
            if kind != "Secret" or obj is None or self._secret_reader is None:
                return obj
            version = _resource_version(obj)
            read = self._secrets_read.get(key)
            if read is not None and read[0] == version:
                return read[1]
        full = self._secret_reader(*key)  # outside the lock: a GET
        with self._lock:
            current = self._objects.get("Secret", {}).get(key)
            if current is None or full is None:
                return None  # deleted meanwhile (the watch will say so)
            if _resource_version(current) == version:
                self._secrets_read[key] = (version, full)
            return full

    def peek(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The cached object as the watch gave it (a Secret: its metadata, no read)."""
        with self._lock:
            return self._objects.get(kind, {}).get((namespace or "", name))

    def gateway_for_uid(self, uid: str) -> WorkKey | None:
        """The work key of the cached Gateway with ``uid`` (None: not cached)."""
        with self._lock:
            found = self._gateway_uids.get(uid)
        return gateway_key(*found) if found is not None else None

    def secrets_read(self) -> int:
        """How many Secrets are held with their data (the referenced ones read so far)."""
        with self._lock:
            return len(self._secrets_read)

    def objects(self, kind: str) -> list[Obj]:
        with self._lock:
            return list(self._objects.get(kind, {}).values())

    def sizes(self) -> dict[str, int]:
        """How many objects of each kind are cached (for metrics)."""
        with self._lock:
            return {kind: len(objs) for kind, objs in self._objects.items()}

    def _objs(self, keys: Iterable[CacheKey]) -> list[Obj]:
        out = []
        for kind, ns, name in sorted(keys):
            obj = self._objects.get(kind, {}).get((ns, name))
            if obj is not None:
                out.append(obj)
        return out

    def routes_for_gateway(self, namespace: str, name: str) -> list[Obj]:
        """HTTPRoutes whose parentRefs name the Gateway, or whose ``status.parents`` still
        hold an entry of ours for it (attachment rules not yet applied)."""
        with self._lock:
            return self._objs(self.routes_by_gateway.lookup((namespace, name)))

    def policies_for(self, kind: str, namespace: str, name: str) -> list[Obj]:
        """Policies whose targetRef names the object (``namespace`` "" unless a Gateway)."""
        with self._lock:
            return self._objs(self.policies_by_target.lookup((kind, namespace, name)))

    def classes_for_blueprint(self, name: str) -> set[str]:
        with self._lock:
            return {k[2] for k in self.classes_by_blueprint.lookup(name)}

    def gateways_for_secret(self, namespace: str, name: str) -> set[WorkKey]:
        with self._lock:
            return self._gateway_keys(self.gateways_by_secret.lookup((namespace, name)))

    def gateways_in(self, namespace: str) -> list[Obj]:
        """The Gateways in ``namespace`` (any class)."""
        with self._lock:
            return self._objs(self.gateways_by_namespace.lookup(namespace))

    def gateways_of_class(self, name: str) -> set[WorkKey]:
        with self._lock:
            return self._gateway_keys(self.gateways_by_class.lookup(name))

    def is_ours(self, gateway_class: Obj | None) -> bool:
        return (
            gateway_class is not None
            and object_spec(gateway_class).get("controllerName") == self.controller_name
        )

    def responsible_for(self, gateway: Obj) -> bool:
        """bifrost reconciles this Gateway: its class is bifrost's, or it has our finalizer."""
        if FINALIZER in _list(meta(gateway).get("finalizers")):
            return True
        return self.is_ours(self.get("GatewayClass", "", gateway_class_name(gateway)))

    def work_keys(self) -> set[WorkKey]:
        """Every Gateway bifrost is responsible for, every bifrost GatewayClass, every policy and
        every blueprint (resync)."""
        with self._lock:
            keys = {
                class_key(name)
                for (_, name), obj in self._objects.get("GatewayClass", {}).items()
                if self.is_ours(obj)
            }
            keys |= self._gateway_keys(
                {("Gateway", ns, n) for (ns, n) in self._objects.get("Gateway", {})}
            )
            for kind in POLICY_KINDS:
                keys |= {policy_key(kind, ns, n) for (ns, n) in self._objects.get(kind, {})}
            keys |= {blueprint_key(n) for (_, n) in self._objects.get(BLUEPRINT_KIND, {})}
            return keys

    def _policy_keys(self, *targets: CacheKey) -> set[WorkKey]:
        """The policies naming any of ``targets`` (their attachment may have changed)."""
        return {
            policy_key(kind, ns, name)
            for target in targets
            for kind, ns, name in self.policies_by_target.lookup(target)
        }

    def _gateway_keys(self, keys: Iterable[CacheKey]) -> set[WorkKey]:
        out: set[WorkKey] = set()
        for _, ns, name in keys:
            obj = self._objects.get("Gateway", {}).get((ns, name))
            if obj is not None and self.responsible_for(obj):
                out.add(gateway_key(ns, name))
        return out

    # ---- writes -------------------------------------------------------------------------

    def apply(self, kind: str, event_type: str, obj: Obj) -> set[WorkKey]:
        """Record one watch event; the work keys it affects (see the module docstring)."""
        ns, name = _ns_name(obj)
        key: CacheKey = (kind, ns, name)
        if kind == "Secret":
            obj = metadata_view(obj)  # whatever the informer was sent: never data in the cache
        with self._lock:
            if kind == "Secret":
                read = self._secrets_read.get((ns, name))
                if read is not None and (
                    event_type == "DELETED" or read[0] != _resource_version(obj)
                ):
                    del self._secrets_read[(ns, name)]
            objects = self._objects.setdefault(kind, {})
            before = objects.get((ns, name))
            deleted = event_type == "DELETED"
            if deleted:
                objects.pop((ns, name), None)
            else:
                objects[(ns, name)] = obj
            current = None if deleted else obj
            affected: set[CacheKey] = set()
            classes: set[str] = set()
            own: set[WorkKey] = set()  # bifrost's own objects whose status may have changed
            if kind == "Gateway":
                if before is not None:
                    self._gateway_uids.pop(str(meta(before).get("uid") or ""), None)
                if current is not None:
                    self._gateway_uids[str(meta(current).get("uid") or "")] = (ns, name)
                self.gateways_by_class.update(key, _opt(current, gateway_class_name))
                self.gateways_by_namespace.update(key, [ns] if current else [])
                secrets = gateway_secrets(current) if current else set()
                self.gateways_by_secret.update(key, secrets)
                self.gateways_by_secret_namespace.update(key, {s for s, _ in secrets})
                params = gateway_parameters_key(current) if current else None
                old_params = self.gateways_by_parameters.update(key, [params] if params else [])
                result = {gateway_key(ns, name)} if (
                    current is not None and self.responsible_for(current)
                ) or (before is not None and self.responsible_for(before)) else set()
                if (before is None) != (current is None) or (
                    before is not None and current is not None
                    and gateway_class_name(before) != gateway_class_name(current)
                ):
                    # created, deleted or moved to another class: policies targeting it, and
                    # its namespace's (they are checked against the blueprints of its classes)
                    result |= self._policy_keys(key, ("Namespace", "", ns))
                elif old_params != ({params} if params else set()):
                    # the GatewayConfig its parametersRef names wins over older ones on it
                    result |= self._policy_keys(key)
                return result
            if kind == "GatewayClass":
                self.classes_by_blueprint.update(key, _opt(current, blueprint_name))
                affected |= self.gateways_by_class.lookup(name)
                if self.is_ours(current) or self.is_ours(before):
                    classes.add(name)
                own |= self._policy_keys(key)
                if self.is_ours(current) != self.is_ours(before) or \
                        (current is None) != (before is None):
                    # Gateway policies attach only to Gateways of a bifrost class (and say
                    # whose class it is, or that it does not exist)
                    own |= self._policy_keys(*self.gateways_by_class.lookup(name))
                refs = set(_opt(before, blueprint_name)) | set(_opt(current, blueprint_name))
                own |= {blueprint_key(b) for b in refs}
            elif kind == "HTTPRoute":
                parents = (
                    route_parents(current) | route_status_parents(current, self.controller_name)
                    if current else set()
                )
                old = self.routes_by_gateway.update(key, parents)
                self.routes_by_namespace.update(key, [ns] if current else [])
                # an entry of ours for a Gateway that is gone or not bifrost's: observed, it goes
                ours = route_status_parents(current, self.controller_name) if current else ()
                own |= {gateway_key(gns, gname) for gns, gname in ours}
                affected |= {("Gateway", gns, gname) for gns, gname in old | parents}
            elif kind == "Service":
                # backendRefs resolve against Services: the Gateways of routes in the namespace.
                affected |= self._route_gateways_in(ns)
            elif kind == "Secret":
                affected |= self.gateways_by_secret.lookup((ns, name))
            elif kind == "ReferenceGrant":
                # A grant in ns X lets objects in the `from` namespaces refer to objects in X:
                # Gateways with certificates in X and Gateways of routes from those namespaces.
                affected |= self.gateways_by_secret_namespace.lookup(ns)
                for version in (before, current):
                    for source in _list(object_spec(version).get("from")):
                        if isinstance(source, dict) and source.get("namespace"):
                            affected |= self._route_gateways_in(str(source["namespace"]))
            elif kind == "Namespace":
                # Labels feed allowedRoutes selectors; the namespace's own Gateways too.
                affected |= self.gateways_by_namespace.lookup(name)
                affected |= self._route_gateways_in(name)
                if (before is None) != (current is None):
                    own |= self._policy_keys(key)
            elif kind == BLUEPRINT_KIND:
                own.add(blueprint_key(name))
                for class_cache_key in self.classes_by_blueprint.lookup(name):
                    classes.add(class_cache_key[2])
                    gateways = self.gateways_by_class.lookup(class_cache_key[2])
                    affected |= gateways
                    # policies feeding it are checked against its spec.values
                    own |= self._policy_keys(class_cache_key, *gateways, *{
                        ("Namespace", "", g[1]) for g in gateways})
            elif kind in POLICY_KINDS:
                targets = {policy_target(current)} if current else set()
                old = self.policies_by_target.update(key, {t for t in targets if t})
                affected |= self.gateways_by_parameters.lookup(key)  # parametersRef names it
                for target in old | {t for t in targets if t}:
                    affected |= self._targets(target)
                    own |= self._policy_keys(target)  # who wins a conflict may have changed
                own.add(policy_key(kind, ns, name))
            out = self._gateway_keys(affected)
            out |= {
                class_key(c) for c in classes if self.is_ours(self.get("GatewayClass", "", c))
            }
            if kind == "GatewayClass" and name in classes:
                out.add(class_key(name))
            return out | own

    def _route_gateways_in(self, namespace: str) -> set[CacheKey]:
        out: set[CacheKey] = set()
        for _, rns, rname in self.routes_by_namespace.lookup(namespace):
            route = self._objects.get("HTTPRoute", {}).get((rns, rname))
            if route is not None:
                out |= {("Gateway", gns, gname) for gns, gname in route_parents(route)}
        return out

    def _targets(self, target: CacheKey) -> set[CacheKey]:
        kind, ns, name = target
        if kind == "GatewayClass":
            return self.gateways_by_class.lookup(name)
        if kind == "Namespace":
            return self.gateways_by_namespace.lookup(name)
        return {("Gateway", ns, name)}


def _resource_version(obj: Obj) -> str:
    return str(meta(obj).get("resourceVersion") or "")


def _opt(obj: Obj | None, fn: Callable[[Obj], str | None]) -> list[str]:
    if obj is None:
        return []
    value = fn(obj)
    return [value] if value else []


class CachedNamespaceLabels(Mapping[str, Mapping[str, str]]):
    """Namespace name → labels, read from the cache on demand (no copy of every Namespace):
    what ``allowedRoutes`` namespace selectors are judged against, by the status writer and by
    observe when it decides which routes are attached (so both agree)."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def __getitem__(self, name: str) -> Mapping[str, str]:
        ns = self._cache.get("Namespace", "", name)
        if ns is None:
            raise KeyError(name)
        labels = meta(ns).get("labels")
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    def __iter__(self) -> Iterator[str]:
        return iter([str(meta(ns).get("name")) for ns in self._cache.objects("Namespace")])

    def __len__(self) -> int:
        return len(self._cache.objects("Namespace"))


class CacheBlueprints:
    """Blueprints by name from the cache (a ``BlueprintSource`` for the provision steps)."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def get(self, name: str) -> Obj | None:
        return self.cache.get(BLUEPRINT_KIND, "", name)


class Informers:
    """One watch thread per kind: events go into ``cache``; affected keys go to ``on_keys``."""

    def __init__(
        self,
        kube: KubeClient,
        cache: Cache,
        on_keys: Callable[[set[WorkKey]], None],
        *,
        kinds: Iterable[KindSpec] = WATCHED,
        timeout_seconds: int = 300,
        on_event: Callable[[str, Obj], None] | None = None,
    ) -> None:
        """``on_event`` is told (kind, object) of every event after the cache took it (the
        children's informers look for bifrost's children among them)."""
        self._kube = kube
        self._on_event = on_event
        self.cache = cache
        self._on_keys = on_keys
        self.kinds = tuple(kinds)
        self._watchers: dict[str, Watcher] = {}
        self._threads: list[threading.Thread] = []
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()

    def start(self) -> None:
        for spec in self.kinds:
            watcher = Watcher(
                self._kube, spec.api_version, spec.kind, timeout_seconds=self._timeout_seconds,
                metadata_only=spec.metadata_only,
            )
            self._watchers[spec.kind] = watcher
            thread = threading.Thread(
                target=self._run, args=(spec.kind, watcher), name=f"informer-{spec.kind}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _run(self, kind: str, watcher: Watcher) -> None:
        for event in watcher:
            self._handle(kind, event)

    def _handle(self, kind: str, event: WatchEvent) -> None:
        try:
            keys = self.cache.apply(kind, event.type, event.object)
            if keys:
                self._on_keys(keys)
            if self._on_event is not None:
                self._on_event(kind, event.object)
        except Exception:  # one bad object must not stop the watch of its kind
            log.exception("handling %s %s %s failed", event.type, kind, event.key)

    def synced(self) -> bool:
        """Every kind has been listed and its initial objects are in the cache.

        A Watcher only opens its first watch stream after its consumer took every event of the
        initial list, so "has started a watch" means "the list is fully applied".
        """
        return bool(self._watchers) and all(
            w.stats["watches"] >= 1 for w in self._watchers.values()
        )

    def watch_stats(self) -> dict[str, dict[str, int]]:
        """Each kind's watcher counters (lists, watches, relists, errors, ...; for metrics)."""
        return {kind: dict(w.stats) for kind, w in list(self._watchers.items())}

    def wait_synced(self, timeout: float, stop: threading.Event | None = None) -> bool:
        deadline = time.monotonic() + timeout
        waiter = stop or threading.Event()
        while not self.synced():
            if time.monotonic() >= deadline or waiter.wait(0.05):
                return self.synced()
        return True

    def stop(self, timeout: float = 5.0) -> None:
        for watcher in self._watchers.values():
            watcher.stop()
        for thread in self._threads:
            thread.join(timeout)
