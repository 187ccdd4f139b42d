"""An in-memory Kubernetes API behind bifrost's ports (:class:`bifrost.kube.ports.Kube`), so
steps and the observer can be unit-tested without a server, with API errors injected on demand.

It is faithful where bifrost relies on the API server (``tests/fake_kube/`` checks each of these
claims against the devcluster too):

- every object gets a ``uid``, a ``creationTimestamp`` (from the injected clock) and a
  ``resourceVersion`` from one counter shared by all kinds, bumped by every write that changes
  something (a write that changes nothing keeps the object's resourceVersion);
- ``replace``, ``patch``/``patch_status`` and ``apply`` carrying a stale
  ``metadata.resourceVersion`` fail with 409 :class:`~bifrost.kube.errors.Conflict`, and so does
  a ``delete`` whose ``uid``/``resource_version`` precondition does not match;
- ``metadata.generation``: 1 at creation for custom kinds, bumped when anything outside
  ``metadata`` and ``status`` changes (and when deletion starts), never by status writes;
- kinds with a status subresource keep ``status`` out of main-resource writes, and
  ``patch_status``/``apply_status`` change nothing but ``status``;
- ``delete`` of an object with finalizers sets ``deletionTimestamp`` (the object stays readable);
  a write that removes the last finalizer of such an object deletes it; no finalizer may be added
  while it is being deleted (422);
- objects are created only in an existing, non-terminating namespace (404 / 403);
- label selectors (``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``)
  and the ``metadata.name``/``metadata.namespace`` field selectors;
- the kinds of :data:`KINDS` (what bifrost reads and writes), namespaced or cluster-scoped; any
  other kind raises :class:`~bifrost.kube.errors.UnknownKind` (tests add theirs with
  :meth:`FakeKube.register_kind`).

Simplifications (do not test these against it):

- **server-side apply is a recursive merge** of the applied fields into the live object: maps
  merge key by key, anything else (lists included) is replaced. There is no field ownership:
  a field an earlier apply set and a later apply leaves out is *kept* (a real server removes it),
  and ``force`` and manager conflicts do not exist;
- strategic merge patches are merge patches (lists are replaced, not merged by key);
- no garbage collection (deleting an owner leaves its dependents), no admission, no schema
  validation or defaulting, no ``managedFields``; no watch — :meth:`FakeKube.drain_changes`
  hands out the events a watch would have delivered, to feed an informer cache by hand.

Tests steer it with :meth:`FakeKube.fail_next` (the next matching call raises the given error)
and read :attr:`FakeKube.calls` (verb, kind, namespace, name of every call, failed ones too).
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import jsonpatch

from bifrost.api.objects import Obj
from bifrost.clock import Clock, SystemClock
from bifrost.kube.client import DEFAULT_FIELD_MANAGER, Patch, metadata_view
from bifrost.kube.errors import (
    DEFAULT_CONFLICT_DELAY,
    DEFAULT_RETRY_DELAY,
    AlreadyExists,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    ServerError,
    UnknownKind,
)
from bifrost.kube.ports import Kube

__all__ = [
    "KINDS",
    "Call",
    "Change",
    "FakeKube",
    "KindInfo",
    "conflict",
    "gone",
    "server_error",
]


@dataclass(frozen=True)
class KindInfo:
    """What the fake serves of one kind (what discovery and the CRD would tell)."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool
    #: ``status`` is a subresource: main-resource writes leave it alone.
    status_subresource: bool = True
    #: ``metadata.generation`` is kept (custom resources; built-ins here do not need it).
    generation: bool = True


#: The kinds bifrost reads and writes.
KINDS: tuple[KindInfo, ...] = (
    KindInfo("v1", "Namespace", "namespaces", namespaced=False, generation=False),
    KindInfo("v1", "Secret", "secrets", namespaced=True, status_subresource=False,
             generation=False),
    KindInfo("v1", "ConfigMap", "configmaps", namespaced=True, status_subresource=False,
             generation=False),
    KindInfo("v1", "Service", "services", namespaced=True, generation=False),
    KindInfo("v1", "Event", "events", namespaced=True, status_subresource=False,
             generation=False),
    KindInfo("events.k8s.io/v1", "Event", "events", namespaced=True, status_subresource=False,
             generation=False),
    KindInfo("coordination.k8s.io/v1", "Lease", "leases", namespaced=True,
             status_subresource=False, generation=False),
    KindInfo("gateway.networking.k8s.io/v1", "GatewayClass", "gatewayclasses", namespaced=False),
    KindInfo("gateway.networking.k8s.io/v1", "Gateway", "gateways", namespaced=True),
    KindInfo("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes", namespaced=True),
    KindInfo("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "referencegrants",
             namespaced=True, status_subresource=False),
    KindInfo("cert-manager.io/v1", "Certificate", "certificates", namespaced=True),
    KindInfo("cert-manager.io/v1", "Issuer", "issuers", namespaced=True),
    KindInfo("cert-manager.io/v1", "ClusterIssuer", "clusterissuers", namespaced=False),
    KindInfo("gateway.bifrost.dev/v1alpha1", "GatewayClassBlueprint", "gatewayclassblueprints",
             namespaced=False),
    KindInfo("gateway.bifrost.dev/v1alpha1", "GatewayClassConfig", "gatewayclassconfigs",
             namespaced=True),
    KindInfo("gateway.bifrost.dev/v1alpha1", "GatewayConfig", "gatewayconfigs", namespaced=True),
)

Verb = Literal["get", "list", "create", "replace", "apply", "patch", "delete", "apply_status",
               "patch_status"]


@dataclass(frozen=True)
class Call:
    """One call made through the ports (recorded before any injected error is raised)."""

    verb: str
    kind: str
    namespace: str | None
    name: str | None


@dataclass(frozen=True)
class Change:
    """What a watch of ``kind`` would have delivered: ``ADDED``/``MODIFIED``/``DELETED``."""

    type: str
    kind: str
    obj: Obj


@dataclass
class _Fault:
    verb: str
    kind: str | None
    namespace: str | None
    name: str | None
    error: KubeError
    times: int

    def matches(self, call: Call) -> bool:
        return (self.verb == call.verb
                and self.kind in (None, call.kind)
                and self.namespace in (None, call.namespace)
                and self.name in (None, call.name))


# ---- errors as the real client raises them ---------------------------------------------------


def conflict(kind: str | None = None, name: str | None = None,
             namespace: str | None = None) -> Conflict:
    """A 409 Conflict (stale resourceVersion), as ``KubeClient`` raises it."""
    return Conflict(
        "the object has been modified; please apply your changes to the latest version and "
        "try again", delay=DEFAULT_CONFLICT_DELAY, status=409, reason="Conflict", kind=kind,
        name=name, namespace=namespace)


def gone(kind: str | None = None, name: str | None = None,
         namespace: str | None = None) -> Gone:
    """A 410 Gone (a resourceVersion or continue token too old)."""
    return Gone("too old resource version", status=410, reason="Expired", kind=kind, name=name,
                namespace=namespace)


def server_error(kind: str | None = None, name: str | None = None,
                 namespace: str | None = None, *, delay: float = DEFAULT_RETRY_DELAY
                 ) -> ServerError:
    """A 500 Internal Server Error (``delay``: what a Retry-After header would have said)."""
    return ServerError("an error on the server has prevented the request from succeeding",
                       delay=delay, status=500, reason="InternalError", kind=kind, name=name,
                       namespace=namespace)


# ---- selectors ---------------------------------------------------------------------------------

_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*")
_COMPARE = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s,()]*)\s*")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*")

Matcher = Callable[[Mapping[str, str]], bool]


def _requirement(text: str) -> tuple[Matcher, str]:
    """The first requirement of a label selector and the rest of the text."""
    if m := _SET.match(text):
        key, negate, values = m[1], m[2] == "notin", {v.strip() for v in m[3].split(",")}
        return (lambda labels: (labels.get(key) in values) != negate), text[m.end():]
    if m := _COMPARE.match(text):
        key, negate, value = m[1], m[2] == "!=", m[3]
        return (lambda labels: (labels.get(key) == value) != negate), text[m.end():]
    if m := _EXISTS.match(text):
        key, negate = m[2], m[1] == "!"
        return (lambda labels: (key in labels) != negate), text[m.end():]
    raise BadRequest(f"unable to parse requirement: {text!r}", status=400, reason="BadRequest")


def label_matcher(selector: str | None) -> Matcher:
    """A predicate over labels for a label selector (``None`` or empty: everything)."""
    requirements: list[Matcher] = []
    rest = selector or ""
    while rest.strip():
        requirement, rest = _requirement(rest)
        requirements.append(requirement)
        rest = rest.strip()
        if rest.startswith(","):
            rest = rest[1:]
        elif rest:
            raise BadRequest(f"unable to parse selector {selector!r}", status=400,
                             reason="BadRequest")
    return lambda labels: all(r(labels) for r in requirements)


def _field_matcher(selector: str | None) -> Callable[[Obj], bool]:
    """``metadata.name``/``metadata.namespace`` equality (``=``, ``==``, ``!=``)."""
    checks: list[tuple[str, str, bool]] = []
    for part in (selector or "").split(","):
        if not part.strip():
            continue
        m = re.fullmatch(r"\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(\S*)\s*", part)
        if m is None:
            raise BadRequest(f"field selector {part!r} is not supported", status=400,
                             reason="BadRequest")
        checks.append((m[1].split(".")[1], m[3], m[2] == "!="))
    return lambda obj: all(
        (str(_meta(obj).get(field) or "") == value) != negate for field, value, negate in checks)


# ---- object helpers ------------------------------------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def _spec_part(obj: Obj) -> Obj:
    """What a generation counts: everything but metadata, status, apiVersion and kind."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_resource_version(obj: Obj) -> Obj:
    out = dict(obj)
    out["metadata"] = {k: v for k, v in _meta(obj).items() if k != "resourceVersion"}
    return out


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _apply_merge(target: Any, applied: Any) -> Any:
    """The simplified server-side apply (see the module docstring): maps merge recursively,
    everything else is replaced by the applied value."""
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    out = copy.deepcopy(target)
    for key, value in applied.items():
        out[key] = _apply_merge(out.get(key), value)
    return out


def _timestamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeKube:
    """An in-memory API server for unit tests (see the module docstring). Thread-safe."""

    def __init__(self, *, clock: Clock | None = None,
                 namespaces: tuple[str, ...] = ("default",)) -> None:
        self.clock: Clock = clock or SystemClock()
        self._kinds: dict[tuple[str, str], KindInfo] = {(k.api_version, k.kind): k for k in KINDS}
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._rv = 0
        self._lock = threading.RLock()
        self._faults: list[_Fault] = []
        #: Every call through the ports, in order.
        self.calls: list[Call] = []
        self._changes: list[Change] = []
        for name in namespaces:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self.calls.clear()
        self._changes.clear()

    # ---- test controls ----------------------------------------------------------------------

    def register_kind(self, info: KindInfo) -> None:
        """Serve another kind (a test's own CRD)."""
        with self._lock:
            self._kinds[(info.api_version, info.kind)] = info

    def fail_next(self, verb: Verb, *, error: KubeError, kind: str | None = None,
                  name: str | None = None, namespace: str | None = None,
                  times: int = 1) -> None:
        """The next ``times`` calls of ``verb`` (on ``kind``/``name``/``namespace`` when given)
        raise ``error`` instead of doing anything."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(_Fault(verb, kind, namespace, name, error, times))

    def pending_faults(self) -> int:
        """How many injected failures have not been raised yet."""
        with self._lock:
            return sum(f.times for f in self._faults)

    def calls_of(self, verb: str, kind: str | None = None) -> list[Call]:
        """The recorded calls of ``verb`` (on ``kind``)."""
        with self._lock:
            return [c for c in self.calls if c.verb == verb and kind in (None, c.kind)]

    def drain_changes(self) -> list[Change]:
        """The changes committed since the last drain, oldest first (what informers would
        have been told); feed them to a cache with ``cache.apply(c.kind, c.type, c.obj)``."""
        with self._lock:
            out, self._changes = self._changes, []
            return out

    # ---- plumbing ---------------------------------------------------------------------------

    def _info(self, api_version: str, kind: str) -> KindInfo:
        info = self._kinds.get((api_version, kind))
        if info is None:
            raise UnknownKind(f"the server does not serve {kind} in {api_version}",
                              reason="UnknownKind", kind=kind)
        return info

    def _enter(self, verb: str, kind: str, namespace: str | None, name: str | None) -> None:
        """Record the call; raise the first injected failure that matches it."""
        call = Call(verb, kind, namespace, name)
        self.calls.append(call)
        for fault in self._faults:
            if fault.matches(call):
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                raise fault.error

    @staticmethod
    def _scope(info: KindInfo, namespace: str | None, name: str | None) -> str:
        """The stored namespace ("" for cluster-scoped); namespaced kinds need one (as the
        real client requires)."""
        if not info.namespaced:
            return ""
        if not namespace:
            raise ValueError(f"{info.kind} {name or ''} is namespaced: a namespace is required")
        return namespace

    def _bucket(self, info: KindInfo) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault((info.api_version, info.kind), {})

    @staticmethod
    def _ident(obj: Obj) -> tuple[str, str, str, str | None]:
        api_version, kind, meta = obj.get("apiVersion"), obj.get("kind"), _meta(obj)
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("the object needs apiVersion and kind")
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"the {kind} needs metadata.name")
        namespace = meta.get("namespace")
        return api_version, kind, name, namespace if isinstance(namespace, str) else None

    @staticmethod
    def _where(info: KindInfo, name: str, namespace: str) -> dict[str, Any]:
        return {"kind": info.kind, "name": name, "namespace": namespace or None}

    def _not_found(self, info: KindInfo, name: str, namespace: str) -> NotFound:
        return NotFound(f'{info.plural} "{name}" not found', status=404, reason="NotFound",
                        **self._where(info, name, namespace))

    def _conflict(self, info: KindInfo, name: str, namespace: str) -> Conflict:
        return conflict(info.kind, name, namespace or None)

    def _commit(self, info: KindInfo, change: str, obj: Obj) -> Obj:
        """Store ``obj`` (or drop it, for DELETED) under a new resourceVersion."""
        self._rv += 1
        meta = _meta(obj)
        meta["resourceVersion"] = str(self._rv)
        key = (str(meta.get("namespace") or ""), str(meta["name"]))
        bucket = self._bucket(info)
        if change == "DELETED":
            bucket.pop(key, None)
        else:
            bucket[key] = obj
        self._changes.append(Change(change, info.kind, copy.deepcopy(obj)))
        if change == "DELETED" and info.namespaced:
            self._finish_namespace(key[0])
        return copy.deepcopy(obj)

    def _check_namespace(self, info: KindInfo, namespace: str, name: str) -> None:
        if not info.namespaced:
            return
        ns = self._objects.get(("v1", "Namespace"), {}).get(("", namespace))
        if ns is None:
            raise NotFound(f'namespaces "{namespace}" not found', status=404, reason="NotFound",
                           kind="Namespace", name=namespace)
        if _meta(ns).get("deletionTimestamp"):
            raise Forbidden(
                f'{info.plural} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated", status=403, reason="Forbidden",
                **self._where(info, name, namespace))

    def _write(self, info: KindInfo, old: Obj, new: Obj, *, status_only: bool) -> Obj:
        """The common tail of every update: keep what the server owns, bump the generation,
        apply the finalizer rules, and commit unless nothing changed."""
        old_meta = _meta(old)
        if status_only:
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = copy.deepcopy(new["status"])
            else:
                result.pop("status", None)
            new = result
        else:
            new = copy.deepcopy(new)
            if info.status_subresource:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta = new.setdefault("metadata", {})
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "namespace", "name",
                          "generation"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
        new["apiVersion"], new["kind"] = info.api_version, info.kind
        meta = _meta(new)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        name, namespace = str(old_meta["name"]), str(old_meta.get("namespace") or "")
        if old_meta.get("deletionTimestamp"):
            added = [f for f in meta.get("finalizers") or []
                     if f not in (old_meta.get("finalizers") or [])]
            if added:
                raise Invalid(f"no new finalizers can be added if the object is being deleted, "
                              f"found new finalizers {added}", status=422, reason="Invalid",
                              **self._where(info, name, namespace))
        if "generation" in old_meta and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old_meta["generation"]) + 1
        if not meta.get("finalizers"):
            meta.pop("finalizers", None)
        if _without_resource_version(new) == _without_resource_version(old):
            return copy.deepcopy(old)  # no-op: no new resourceVersion, no event
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._commit(info, "DELETED", new)
        return self._commit(info, "MODIFIED", new)

    def _finish_namespace(self, namespace: str) -> None:
        """A terminating namespace goes once its last object is gone."""
        ns_info = self._kinds[("v1", "Namespace")]
        ns = self._bucket(ns_info).get(("", namespace))
        if ns is None or not _meta(ns).get("deletionTimestamp"):
            return
        if any(key[0] == namespace for (av, kind), bucket in self._objects.items()
               if self._kinds[(av, kind)].namespaced for key in bucket):
            return
        self._commit(ns_info, "DELETED", copy.deepcopy(ns))

    # ---- KubeReader -------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None
            ) -> Obj | None:
        with self._lock:
            self._enter("get", kind, namespace, name)
            info = self._info(api_version, kind)
            found = self._bucket(info).get((self._scope(info, namespace, name), name))
            return copy.deepcopy(found) if found is not None else None

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
        with self._lock:
            self._enter("list", kind, namespace, None)
            info = self._info(api_version, kind)
            labels, fields = label_matcher(label_selector), _field_matcher(field_selector)
            scope = namespace if info.namespaced else None
            items = [
                metadata_view(obj) if metadata_only else copy.deepcopy(obj)
                for (ns, _), obj in sorted(self._bucket(info).items())
                if (scope is None or ns == scope) and labels(_meta(obj).get("labels") or {})
                and fields(obj)
            ]
            return items, str(self._rv)

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return self._info(api_version, kind).namespaced

    def plural(self, api_version: str, kind: str) -> str:
        return self._info(api_version, kind).plural

    # ---- KubeWriter -------------------------------------------------------------------------

    def create(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("the object needs apiVersion and kind")
        with self._lock:
            self._enter("create", kind, namespace or _meta(obj).get("namespace"),
                        _meta(obj).get("name"))
            return self._create(self._info(api_version, kind), obj, namespace=namespace,
                                dry_run=dry_run)

    def _create(self, info: KindInfo, obj: Obj, *, namespace: str | None = None,
                dry_run: bool = False) -> Obj:
        body = copy.deepcopy(obj)
        meta = body.setdefault("metadata", {})
        kind = info.kind
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise Invalid("metadata.name: Required value: name or generateName is required",
                          status=422, reason="Invalid", kind=kind)
        ns = self._scope(info, namespace or meta.get("namespace"), name)
        if ns:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        self._check_namespace(info, ns, name)
        if (ns, name) in self._bucket(info):
            raise AlreadyExists(f'{info.plural} "{name}" already exists', status=409,
                                reason="AlreadyExists", **self._where(info, name, ns))
        for field in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _timestamp(self.clock.now())
        if info.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if info.status_subresource:
            body.pop("status", None)
        if kind == "Namespace":
            body["status"] = {"phase": "Active"}
        if dry_run:
            return body
        return self._commit(info, "ADDED", body)

    def replace(self, obj: Obj, *, field_manager: str | None = None) -> Obj:
        api_version, kind, name, namespace = self._ident(obj)
        with self._lock:
            self._enter("replace", kind, namespace, name)
            info = self._info(api_version, kind)
            ns = self._scope(info, namespace, name)
            old = self._bucket(info).get((ns, name))
            if old is None:
                raise self._not_found(info, name, ns)
            rv = _meta(obj).get("resourceVersion")
            if not rv and info.generation:
                raise Invalid("metadata.resourceVersion: Invalid value: 0x0: must be specified "
                              "for an update", status=422, reason="Invalid",
                              **self._where(info, name, ns))
            if rv and str(rv) != _meta(old).get("resourceVersion"):
                raise self._conflict(info, name, ns)
            return self._write(info, old, obj, status_only=False)

    def _apply(self, verb: str, obj: Obj, *, status_only: bool) -> Obj:
        api_version, kind, name, namespace = self._ident(obj)
        with self._lock:
            self._enter(verb, kind, namespace, name)
            info = self._info(api_version, kind)
            ns = self._scope(info, namespace, name)
            old = self._bucket(info).get((ns, name))
            rv = _meta(obj).get("resourceVersion")
            if rv and (old is None or str(rv) != _meta(old).get("resourceVersion")):
                raise self._conflict(info, name, ns)
            body = copy.deepcopy(obj)
            _meta(body).pop("managedFields", None)
            if old is None:
                if status_only:
                    raise self._not_found(info, name, ns)
                return self._create(info, body)
            if status_only:
                merged = dict(old)
                merged["status"] = _apply_merge(old.get("status"), body.get("status") or {})
            else:
                merged = _apply_merge(old, body)
            return self._write(info, old, merged, status_only=status_only)

    def apply(self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER,
              force: bool = True) -> Obj:
        return self._apply("apply", obj, status_only=False)

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
        with self._lock:
            self._enter("patch", kind, namespace, name)
            return self._patch(api_version, kind, name, namespace, patch, patch_type=patch_type,
                               subresource=subresource)

    def _patch(self, api_version: str, kind: str, name: str, namespace: str | None,
               patch: Patch, *, patch_type: str, subresource: str | None) -> Obj:
        if patch_type == "json" and not isinstance(patch, list):
            raise ValueError("a JSON patch is a list of operations")
        if patch_type != "json" and not isinstance(patch, dict):
            raise ValueError(f"a {patch_type} patch is an object")
        info = self._info(api_version, kind)
        ns = self._scope(info, namespace, name)
        old = self._bucket(info).get((ns, name))
        if old is None:
            raise self._not_found(info, name, ns)
        if isinstance(patch, list):  # a JSON patch (checked above)
            try:
                new = jsonpatch.apply_patch(copy.deepcopy(old), patch)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError,
                    IndexError, TypeError) as exc:
                raise Invalid(f"the JSON patch does not apply: {exc}", status=422,
                              reason="Invalid", **self._where(info, name, ns)) from exc
        else:
            new = _merge_patch(old, patch)
        rv = _meta(new).get("resourceVersion")
        if rv and str(rv) != _meta(old).get("resourceVersion"):
            raise self._conflict(info, name, ns)
        if subresource not in (None, "status"):
            raise NotFound(f"the server could not find the requested resource ({subresource})",
                           status=404, reason="NotFound", **self._where(info, name, ns))
        return self._write(info, old, new, status_only=subresource == "status")

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
        with self._lock:
            self._enter("delete", kind, namespace, name)
            info = self._info(api_version, kind)
            ns = self._scope(info, namespace, name)
            old = self._bucket(info).get((ns, name))
            if old is None:
                return False
            meta = _meta(old)
            if (uid is not None and uid != meta.get("uid")) or (
                    resource_version is not None and resource_version != meta.get(
                        "resourceVersion")):
                raise Conflict(f"Precondition failed for {info.plural} {name!r}",
                               delay=DEFAULT_CONFLICT_DELAY, status=409, reason="Conflict",
                               **self._where(info, name, ns))
            if kind == "Namespace":
                self._delete_namespace(name)
                return True
            if meta.get("finalizers"):
                if not meta.get("deletionTimestamp"):
                    marked = copy.deepcopy(old)
                    _meta(marked)["deletionTimestamp"] = _timestamp(self.clock.now())
                    if "generation" in meta:
                        _meta(marked)["generation"] = int(meta["generation"]) + 1
                    self._commit(info, "MODIFIED", marked)
                return True
            self._commit(info, "DELETED", copy.deepcopy(old))
            return True

    def _delete_namespace(self, name: str) -> None:
        """Mark the namespace terminating, delete what is in it; it goes once it is empty."""
        ns_info = self._kinds[("v1", "Namespace")]
        ns = copy.deepcopy(self._bucket(ns_info)[("", name)])
        if not _meta(ns).get("deletionTimestamp"):
            _meta(ns)["deletionTimestamp"] = _timestamp(self.clock.now())
            ns["status"] = {"phase": "Terminating"}
            self._commit(ns_info, "MODIFIED", ns)
        for (api_version, kind), bucket in list(self._objects.items()):
            info = self._kinds[(api_version, kind)]
            if not info.namespaced:
                continue
            for (obj_ns, obj_name) in [k for k in bucket if k[0] == name]:
                obj = bucket[(obj_ns, obj_name)]
                if _meta(obj).get("finalizers"):
                    if not _meta(obj).get("deletionTimestamp"):
                        marked = copy.deepcopy(obj)
                        _meta(marked)["deletionTimestamp"] = _timestamp(self.clock.now())
                        self._commit(info, "MODIFIED", marked)
                else:
                    self._commit(info, "DELETED", copy.deepcopy(obj))
        self._finish_namespace(name)

    # ---- KubeStatusWriter ---------------------------------------------------------------------

    def apply_status(self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER,
                     force: bool = True) -> Obj:
        return self._apply("apply_status", obj, status_only=True)

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
        body: Obj = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        with self._lock:
            self._enter("patch_status", kind, namespace, name)
            return self._patch(api_version, kind, name, namespace, body, patch_type="merge",
                               subresource="status")


def _fake_is_a_kube(fake: FakeKube) -> Kube:
    """Type-checked only: mypy proves here that the fake satisfies every port."""
    return fake
