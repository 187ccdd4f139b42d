"""The API verbs: create, get, list, update, patch (merge/JSON/strategic/apply), delete.

This is where the devcluster decides what a real API server would answer: object metadata
(uid, resourceVersion, generation, managedFields), optimistic concurrency, the status
subresource split, CRD schema defaulting/pruning/validation, finalizers and deletion, dryRun,
selectors and pagination, Table rendering for kubectl. The HTTP layer (``server.py``) only parses
requests into :class:`Target` and serialises what these methods return.

Every write goes through :meth:`Api._finish_write` (or the create path) under the store lock, so
checks and the commit are atomic.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import json
import random
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from devcluster import deletion, fieldmanager, patch, validation_rules
from devcluster.admission import (
    normalize_micro_time,
    normalize_time,
    validate_event_core,
    validate_event_v1,
    validate_name,
)
from devcluster.auth import UserInfo
from devcluster.conversion import core_event_to_v1, v1_event_to_core
from devcluster.errors import ApiError
from devcluster.kinds import defaults as builtin_defaults
from devcluster.protobuf import ProtobufError, decode_object, is_protobuf
from devcluster.registry import Registry, ResourceType, resource_type_from_crd
from devcluster.schema import FieldError, invalid_message
from devcluster.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from devcluster.storage import Expired, Store
from devcluster.tables import render_table

__all__ = ["Api", "PodLogSource", "RawBody", "Target", "now_rfc3339"]

JSON = dict[str, Any]

MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Target:
    """What a resource URL addresses."""

    rt: ResourceType
    version: str
    namespace: str | None  # None: cluster-scoped kind, or all namespaces
    name: str | None = None
    subresource: str | None = None

    @property
    def api_version(self) -> str:
        return self.rt.api_version(self.version)


@dataclass(frozen=True)
class RequestContext:
    """One request to a handler registered in :attr:`Api.handlers` (one typed input)."""

    api: Api
    target: Target
    verb: str  # create | get | update | patch
    query: dict[str, str]
    raw: bytes
    content_type: str
    user: UserInfo


@dataclass(frozen=True)
class RawBody:
    """A handler's answer that is not a JSON object (``pods/log``: plain text)."""

    data: bytes
    content_type: str = "text/plain"


Handler = Callable[[RequestContext], "tuple[int, JSON | RawBody]"]


class PodLogSource(Protocol):
    """Where ``pods/log`` reads a container's output (the local kubelet's log files), as a
    container runtime writes it: the CRI format of :mod:`devcluster.localpods.logs` (each line
    stamped with its time and stream), which ``pods/log`` reads as the kubelet does."""

    def read(self, namespace: str, name: str, container: str, *, previous: bool) -> bytes | None:
        """The container's log file in the CRI format (``previous``: of its last terminated
        run), or None when this source does not run that pod."""
        ...
Admission = Callable[[Target, JSON, "JSON | None", UserInfo], None]
"""Answers a subresource (``deployments/scale``, ``serviceaccounts/token``) or a create-only
kind (``selfsubjectaccessreviews``): returns the HTTP code and the body."""


def _not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        404, f'{rt.group_resource} "{name}" not found', name=name, group=rt.group, kind=rt.plural
    )


def _invalid(rt: ResourceType, name: str, errs: list[FieldError]) -> ApiError:
    return ApiError(
        422,
        invalid_message(rt.kind_group, name, errs),
        "Invalid",
        name=name,
        group=rt.group,
        kind=rt.kind,
        causes=[{"reason": e.reason, "message": e.message, "field": e.field} for e in errs],
    )


def _conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        "Conflict",
        name=name,
        group=rt.group,
        kind=rt.plural,
    )


def _random_suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(random.choice(alphabet) for _ in range(5))


def _strip_volatile(obj: JSON) -> JSON:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("resourceVersion", None)
    if "managedFields" in meta:
        meta["managedFields"] = [
            {k: v for k, v in e.items() if k != "time"} for e in meta["managedFields"] or []
        ]
    out["metadata"] = meta
    return out


def _unknown_fields(before: Any, after: Any, path: str = "") -> list[str]:
    """Paths present in ``before`` but pruned from ``after`` (for fieldValidation)."""
    out: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for k, v in before.items():
            p = f"{path}.{k}" if path else str(k)
            if k not in after:
                out.append(p)
            else:
                out.extend(_unknown_fields(v, after[k], p))
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            out.extend(_unknown_fields(a, b, f"{path}[{i}]"))
    return out


_service_ips = iter(range(1, 1 << 20))


def _default_service(svc: JSON) -> None:
    """The defaults a real Service gets: type, a cluster IP, port protocol and targetPort."""
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if not spec.get("clusterIP") and spec["type"] != "ExternalName":
        n = next(_service_ips)
        ip = f"10.96.{(n >> 8) & 0xFF}.{n & 0xFF or 1}"
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


def _to_storage(t: Target, obj: JSON) -> JSON:
    """The object in the shape it is stored in (events.k8s.io Events are stored as core)."""
    if t.rt.key == ("events.k8s.io", "events"):
        return v1_event_to_core(obj)
    return obj


def _spec_part(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def parse_body(raw: bytes, *, allow_yaml: bool = False, content_type: str = "") -> Any:
    """A request body as JSON data: JSON, YAML (when allowed or declared) or Kubernetes
    protobuf (declared, or recognised by its magic number: DELETE bodies reach us without
    their content type). Undecodable protobuf or CBOR is 415, as on a real server."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype.startswith("application/vnd.kubernetes.protobuf") or is_protobuf(raw):
        try:
            return decode_object(raw)
        except ProtobufError:
            ctype = "application/vnd.kubernetes.protobuf"
    if ctype.startswith("application/vnd.kubernetes.protobuf") or ctype == "application/cbor":
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml",
            "UnsupportedMediaType",
        )
    if ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
        allow_yaml = True
    if not raw:
        raise ApiError(400, "the body of the request is empty", "BadRequest")
    try:
        return json.loads(raw)
    except ValueError as e:
        if allow_yaml:
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError:
                pass
        raise ApiError(
            400, f"the body of the request could not be decoded: {e}", "BadRequest"
        ) from e


class Api:
    """The verbs over one :class:`Store` and :class:`Registry`."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.on_delete_wakeup: Callable[[], None] = lambda: None
        # (group, plural, subresource or None) -> handler, for what is not plain storage:
        # subresources other than status, and the review kinds that are answered, not stored.
        self.handlers: dict[tuple[str, str, str | None], Handler] = {}
        # pods/log reads from here; set by the local kubelet (None: only simulated pods)
        self.pod_logs: PodLogSource | None = None
        # Checks that need the requester (RBAC escalation prevention): each gets the target,
        # the object as it will be stored, the object before an update (None on create) and
        # the user, and raises ApiError to refuse. Writes of the cluster's own controllers have
        # no requester and are not checked.
        self.admission: list[Admission] = []
        self._local = threading.local()
        self.validation_rules = True  # CRD x-kubernetes-validations (celrules); off to compare

    # ---------------------------------------------------------------- warnings

    def add_warning(self, text: str) -> None:
        """A ``Warning`` header for the current request (this thread)."""
        ws: list[str] | None = getattr(self._local, "warnings", None)
        if ws is None:
            ws = []
            self._local.warnings = ws
        if text not in ws:
            ws.append(text)

    def set_requester(self, user: UserInfo | None) -> None:
        """Who the current request (this thread) is from; None for the cluster's own writes."""
        self._local.user = user

    def requester(self) -> UserInfo | None:
        user: UserInfo | None = getattr(self._local, "user", None)
        return user

    def take_warnings(self) -> list[str]:
        ws: list[str] = getattr(self._local, "warnings", None) or []
        self._local.warnings = None
        return ws

    # ---------------------------------------------------------------- bootstrap

    def bootstrap(self) -> None:
        """System namespaces, and the types of CRDs loaded from the state file."""
        for _, crd in self.store.iter_all():
            if crd.get("kind") == "CustomResourceDefinition":
                self.registry.add(resource_type_from_crd(crd))
        ns_rt = self.registry.by_key(("", "namespaces"))
        assert ns_rt is not None
        for ns in _SYSTEM_NAMESPACES:
            if self.store.get(ns_rt.key, "", ns) is None:
                self.create(
                    Target(ns_rt, "v1", None), {"metadata": {"name": ns}}, {}, "kube-apiserver"
                )

    # ---------------------------------------------------------------- helpers

    def list_type_fn(self, rt: ResourceType, version: str) -> fieldmanager.ListTypeFn:
        schema = rt.schema(version)
        if schema is not None:
            return schema.list_type
        return fieldmanager.builtin_list_type(rt.kind)

    def present(self, t: Target, obj: JSON) -> JSON:
        """The stored object as served at ``t.version`` (apiVersion rewritten, defaults)."""
        av = t.api_version
        if obj.get("apiVersion") == av:
            return obj
        if t.rt.key == ("events.k8s.io", "events"):
            return core_event_to_v1(obj)
        out = dict(obj)
        out["apiVersion"] = av
        schema = t.rt.schema(t.version)
        if schema is not None:
            out = schema.apply_defaults(out)
        return out

    def _check_namespace_usable(self, rt: ResourceType, ns: str, name: str) -> None:
        ns_obj = self.store.get(("", "namespaces"), "", ns)
        if ns_obj is None:
            raise ApiError(404, f'namespaces "{ns}" not found', name=ns, kind="namespaces")
        if (ns_obj.get("status") or {}).get("phase") == "Terminating" or ns_obj["metadata"].get(
            "deletionTimestamp"
        ):
            raise ApiError(
                403,
                f'{rt.group_resource} "{name}" is forbidden: unable to create new content in '
                f"namespace {ns} because it is being terminated",
                "Forbidden",
                name=name,
                group=rt.group,
                kind=rt.plural,
            )

    def _manager(self, query: dict[str, str], user_agent: str) -> str:
        m = query.get("fieldManager")
        if m:
            return m
        return (user_agent or "unknown").split("/", 1)[0] or "unknown"

    def _record_update(
        self, t: Target, old: JSON | None, new: JSON, manager: str, sub: str | None
    ) -> None:
        try:
            mf = fieldmanager.record_update(
                old,
                new,
                manager=manager,
                api_version=t.api_version,
                now=now_rfc3339(),
                list_type=self.list_type_fn(t.rt, t.version),
                subresource=sub,
            )
        except NotImplementedError:
            return
        if mf:
            new["metadata"]["managedFields"] = mf
        else:
            new["metadata"].pop("managedFields", None)

    def _check_gvk(self, t: Target, body: JSON) -> None:
        kind = body.get("kind")
        av = body.get("apiVersion")
        if t.rt.custom:
            if not kind:
                raise ApiError(
                    400, f"Object 'Kind' is missing in '{json.dumps(body)}'", "BadRequest"
                )
            if not av:
                raise ApiError(
                    400, f"Object 'apiVersion' is missing in '{json.dumps(body)}'", "BadRequest"
                )
        if kind and kind != t.rt.kind:
            raise ApiError(
                400,
                f"the kind in the data ({kind}) does not match the expected kind ({t.rt.kind})",
                "BadRequest",
            )
        if av and av != t.api_version:
            raise ApiError(
                400,
                f"the API version in the data ({av}) does not match the expected API version "
                f"({t.api_version})",
                "BadRequest",
            )

    def _normalize(
        self, t: Target, obj: JSON, field_validation: str = "Warn", old: JSON | None = None
    ) -> JSON:
        """Schema pruning/defaulting/validation, validation rules and per-kind admission;
        returns the object. ``old`` is the object before an update (None on create)."""
        rt = t.rt
        obj["apiVersion"] = t.api_version
        obj["kind"] = rt.kind
        name = obj["metadata"].get("name", "")
        schema = rt.schema(t.version)
        if schema is not None:
            meta = obj["metadata"]
            pruned = schema.prune(obj)
            if field_validation != "Ignore":
                unknown = _unknown_fields(
                    {k: v for k, v in obj.items() if k != "metadata"},
                    {k: v for k, v in pruned.items() if k != "metadata"},
                )
                if unknown and field_validation == "Strict":
                    raise ApiError(
                        400,
                        f'{rt.kind} in version "{t.version}" cannot be handled as a {rt.kind}: '
                        "strict decoding error: "
                        + ", ".join(f'unknown field "{u}"' for u in unknown),
                        "BadRequest",
                    )
                for u in unknown:
                    self.add_warning(f'unknown field "{u}"')
            obj = schema.apply_defaults(pruned)
            obj["metadata"] = meta
            errs = schema.validate(obj)
            if not errs and self.validation_rules:
                errs = validation_rules.check(schema, obj, old)
            if errs:
                raise _invalid(rt, name, errs)
        if not rt.custom:
            builtin_defaults.admit(rt, obj)
        if rt.key == ("", "events"):
            inv = obj.get("involvedObject") or {}
            subject = self.registry.find_kind(inv.get("apiVersion") or "", inv.get("kind") or "")
            cluster_scoped = subject is not None and not subject.namespaced
            errs = validate_event_core(obj, cluster_scoped)
            if errs:
                raise _invalid(rt, name, errs)
            if obj.get("eventTime"):
                obj["eventTime"] = normalize_micro_time(obj["eventTime"])
        elif rt.key == ("events.k8s.io", "events"):
            errs = validate_event_v1(obj)
            if errs:
                raise _invalid(rt, name, errs)
            obj["eventTime"] = normalize_micro_time(obj["eventTime"])
        elif rt.key == ("coordination.k8s.io", "leases"):
            spec = obj.get("spec")
            if isinstance(spec, dict):
                for f in ("acquireTime", "renewTime"):
                    if spec.get(f):
                        spec[f] = normalize_micro_time(spec[f])
        elif rt.key == ("", "secrets"):
            string_data = obj.pop("stringData", None)
            if isinstance(string_data, dict):
                data = obj.setdefault("data", {})
                for k, v in string_data.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
            if not obj.get("type"):
                obj["type"] = "Opaque"
        elif rt.key == ("", "services"):
            _default_service(obj)
        elif rt.key == ("", "namespaces"):
            labels = obj["metadata"].setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = name
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        elif rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            errs = self._validate_crd(obj)
            if errs:
                raise _invalid(rt, name, errs)
        meta = obj["metadata"]
        for f in ("creationTimestamp", "deletionTimestamp"):
            if meta.get(f):
                meta[f] = normalize_time(meta[f])
        user = self.requester()
        if user is not None:
            for check in self.admission:
                check(t, obj, old, user)
        return obj

    def _validate_crd(self, crd: JSON) -> list[FieldError]:
        errs: list[FieldError] = []
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for f in ("group",):
            if not spec.get(f):
                errs.append(FieldError("FieldValueRequired", "Required value", f"spec.{f}"))
        for f in ("plural", "kind"):
            if not names.get(f):
                errs.append(FieldError("FieldValueRequired", "Required value", f"spec.names.{f}"))
        if not spec.get("versions"):
            errs.append(FieldError("FieldValueRequired", "Required value", "spec.versions"))
        if not errs:
            expected = f"{names['plural']}.{spec['group']}"
            if crd["metadata"].get("name") != expected:
                errs.append(
                    FieldError(
                        "FieldValueInvalid",
                        f'Invalid value: "{crd["metadata"].get("name")}": must be '
                        f'spec.names.plural+"."+spec.group',
                        "metadata.name",
                    )
                )
        return errs

    def _crd_status(self, crd: JSON) -> None:
        spec = crd.get("spec") or {}
        now = now_rfc3339()
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("plural", "")))
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        crd["status"] = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now,
                },
            ],
        }

    # ---------------------------------------------------------------- get / list

    def get(self, t: Target) -> JSON:
        assert t.name is not None
        obj = self.store.get(t.rt.skey, t.namespace or "", t.name)
        if obj is None:
            raise _not_found(t.rt, t.name)
        return self.present(t, obj)

    def list_objects(self, t: Target, query: dict[str, str]) -> JSON:
        try:
            lsel = parse_label_selector(query.get("labelSelector"))
            fsel = parse_field_selector(query.get("fieldSelector"))
        except SelectorError as e:
            raise ApiError(400, str(e), "BadRequest") from e
        rv_param = query.get("resourceVersion") or ""
        at: int | None = None  # serve the snapshot at this resourceVersion
        if query.get("resourceVersionMatch") == "Exact" and rv_param:
            try:
                at = int(rv_param)
            except ValueError as e:
                raise ApiError(400, f"invalid resource version: {rv_param}", "BadRequest") from e
        start_after: tuple[str, str] | None = None
        cont = query.get("continue")
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode()))
                at = int(token["rv"])
                start_after = (token["ns"], token["name"])
            except (ValueError, KeyError, TypeError) as e:
                raise ApiError(400, "continue key is not valid", "BadRequest") from e
        if at is None:
            rv, items = self.store.list_objects(t.rt.skey, t.namespace)
        else:
            try:
                rv, items = self.store.snapshot(t.rt.skey, t.namespace, at)
            except Expired as e:
                if cont:
                    raise ApiError(
                        410,
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter.",
                        "Expired",
                    ) from e
                raise ApiError(
                    410, f"too old resource version: {e.requested} ({e.oldest})", "Expired"
                ) from e
        limit = 0
        if query.get("limit"):
            try:
                limit = max(0, int(query["limit"]))
            except ValueError as e:
                raise ApiError(400, "invalid limit", "BadRequest") from e
        out: list[JSON] = []
        next_token: str | None = None
        remaining = 0
        for obj in items:
            meta = obj["metadata"]
            k = (meta.get("namespace") or "", meta["name"])
            if start_after is not None and k <= start_after:
                continue
            if lsel is not None and not lsel(obj):
                continue
            if fsel is not None and not fsel(obj):
                continue
            if limit and len(out) >= limit:
                remaining += 1
                continue
            out.append(obj)
        if remaining and out:
            last = out[-1]["metadata"]
            next_token = base64.urlsafe_b64encode(
                json.dumps(
                    {"rv": rv, "ns": last.get("namespace") or "", "name": last["name"]}
                ).encode()
            ).decode()
        presented: list[JSON] = []
        for obj in out:
            p = self.present(t, obj)
            if not t.rt.custom:
                p = {k: v for k, v in p.items() if k not in ("apiVersion", "kind")}
            presented.append(p)
        meta_out: JSON = {"resourceVersion": str(rv)}
        if next_token:
            meta_out["continue"] = next_token
            meta_out["remainingItemCount"] = remaining
        return {
            "kind": f"{t.rt.kind}List",
            "apiVersion": t.api_version,
            "metadata": meta_out,
            "items": presented,
        }

    # ---------------------------------------------------------------- create

    def create(
        self,
        t: Target,
        body: Any,
        query: dict[str, str],
        user_agent: str = "",
        *,
        manager: str | None = None,
        managed_fields: list[JSON] | None = None,
    ) -> JSON:
        rt = t.rt
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be an object", "BadRequest")
        self._check_gvk(t, body)
        obj = copy.deepcopy(body)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        obj["metadata"] = meta
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and t.namespace and body_ns != t.namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                    "BadRequest",
                )
            if not t.namespace:
                raise ApiError(404, "the server could not find the requested resource", "NotFound")
            meta["namespace"] = t.namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{_random_suffix()}"
            else:
                raise _invalid(
                    rt,
                    "",
                    [
                        FieldError(
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                            "metadata.name",
                        )
                    ],
                )
        name = str(meta["name"])
        errs = validate_name(
            name,
            label=rt.key == ("", "namespaces"),
            path_segment=rt.group == "rbac.authorization.k8s.io",
        )
        if errs:
            raise _invalid(rt, name, errs)
        for f in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(f, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.status:
            obj.pop("status", None)
        if rt.custom or "spec" in obj:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.key == ("", "namespaces"):
            obj["status"] = {"phase": "Active"}
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._crd_status(obj)
        obj = self._normalize(t, obj, query.get("fieldValidation") or "Warn")
        meta = obj["metadata"]
        with self.store.lock:
            if rt.namespaced:
                assert t.namespace is not None
                self._check_namespace_usable(rt, t.namespace, name)
            if self.store.get(rt.skey, meta.get("namespace") or "", name) is not None:
                raise ApiError(
                    409,
                    f'{rt.group_resource} "{name}" already exists',
                    "AlreadyExists",
                    name=name,
                    group=rt.group,
                    kind=rt.plural,
                )
            if managed_fields is not None:
                if managed_fields:
                    meta["managedFields"] = managed_fields
                else:
                    meta.pop("managedFields", None)
            else:
                meta.pop("managedFields", None)
                self._record_update(t, None, obj, manager or self._manager(query, user_agent), None)
            if query.get("dryRun") == "All":
                meta["resourceVersion"] = ""
                return obj
            if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                self._install_crd(obj)
            obj = _to_storage(t, obj)
            self.store.commit(rt.skey, "ADDED", obj, None)
        if meta.get("ownerReferences"):
            self.on_delete_wakeup()
        return self.present(t, obj)

    def _install_crd(self, crd: JSON) -> None:
        new_rt = resource_type_from_crd(crd)
        existing = self.registry.by_key(new_rt.key)
        if existing is not None and not existing.custom:
            raise ApiError(409, f"{new_rt.group_resource} is a built-in resource", "Conflict")
        self.registry.add(new_rt)
        if existing is not None:
            self._redefault(new_rt)

    def _redefault(self, rt: ResourceType) -> None:
        """Defaulting on read, materialised: after a schema change, stored objects get the new
        defaults without a new resourceVersion or a watch event (a real server applies them on
        every read, which is indistinguishable for clients)."""
        _, items = self.store.list_objects(rt.skey)
        for obj in items:
            version = str(obj.get("apiVersion", "")).rpartition("/")[2]
            schema = rt.schema(version) or rt.schema(rt.storage_version)
            if schema is None:
                continue
            meta = obj["metadata"]
            new = schema.apply_defaults(obj)
            new["metadata"] = meta
            if new != obj:
                self.store.replace_silently(rt.skey, new)

    # ---------------------------------------------------------------- update / patch

    def update(self, t: Target, body: Any, query: dict[str, str], user_agent: str = "") -> JSON:
        rt = t.rt
        assert t.name is not None
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be an object", "BadRequest")
        self._check_gvk(t, body)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != t.name:
            raise ApiError(
                400,
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({t.name})",
                "BadRequest",
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != t.namespace:
            raise ApiError(
                400,
                "the namespace of the provided object does not match the namespace sent on the "
                "request",
                "BadRequest",
            )
        manager = self._manager(query, user_agent)
        with self.store.lock:
            old = self.store.get(rt.skey, t.namespace or "", t.name)
            if old is None:
                raise _not_found(rt, t.name)
            rv = meta.get("resourceVersion")
            if not rv:
                if rt.custom or rt.key == ("coordination.k8s.io", "leases"):
                    raise _invalid(
                        rt,
                        t.name,
                        [
                            FieldError(
                                "FieldValueInvalid",
                                "Invalid value: 0x0: must be specified for an update",
                                "metadata.resourceVersion",
                            )
                        ],
                    )
            elif str(rv) != old["metadata"]["resourceVersion"]:
                raise _conflict(rt, t.name)
            new = copy.deepcopy(body)
            new.setdefault("metadata", {})
            return self._finish_write(t, old, new, query, manager, "Update")

    def patch(
        self, t: Target, raw: bytes, content_type: str, query: dict[str, str], user_agent: str = ""
    ) -> tuple[int, JSON]:
        rt = t.rt
        assert t.name is not None
        ctype = content_type.split(";", 1)[0].strip().lower()
        if ctype == APPLY:
            return self.apply(t, raw, query)
        if query.get("force"):
            raise ApiError(
                422,
                'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified '
                "for non-apply patch",
                "Invalid",
                causes=[
                    {
                        "reason": "FieldValueForbidden",
                        "message": "Forbidden: may not be specified for non-apply patch",
                        "field": "force",
                    }
                ],
            )
        if ctype not in (MERGE, JSONPATCH, STRATEGIC) or (ctype == STRATEGIC and rt.custom):
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml"
                + (", application/strategic-merge-patch+json" if not rt.custom else ""),
                "UnsupportedMediaType",
            )
        body = parse_body(raw)
        manager = self._manager(query, user_agent)
        with self.store.lock:
            old = self.store.get(rt.skey, t.namespace or "", t.name)
            if old is None:
                raise _not_found(rt, t.name)
            current = self.present(t, old)
            try:
                if ctype == MERGE:
                    new = patch.merge_patch(current, body)
                elif ctype == JSONPATCH:
                    new = patch.json_patch(current, body)
                else:
                    new = patch.strategic_merge_patch(current, body, kind=rt.kind)
            except patch.PatchError as e:
                raise ApiError(
                    e.code,
                    e.message,
                    "Invalid" if e.code == 422 else "BadRequest",
                    name=t.name,
                    group=rt.group,
                    kind=rt.kind,
                ) from e
            if not isinstance(new, dict):
                raise ApiError(422, "patch did not produce an object", "Invalid")
            new_meta = new.get("metadata")
            if not isinstance(new_meta, dict):
                new_meta = {}
                new["metadata"] = new_meta
            rv = new_meta.get("resourceVersion")
            if rv and str(rv) != old["metadata"]["resourceVersion"]:
                raise _conflict(rt, t.name)
            if new_meta.get("name") != t.name:
                raise ApiError(
                    400, "the name of the object does not match the name on the URL", "BadRequest"
                )
            return 200, self._finish_write(t, old, new, query, manager, "Update")

    def apply(self, t: Target, raw: bytes, query: dict[str, str]) -> tuple[int, JSON]:
        rt = t.rt
        assert t.name is not None
        manager = query.get("fieldManager")
        if not manager:
            raise ApiError(
                422,
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch",
                "Invalid",
                causes=[
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: is required for apply patch",
                        "field": "fieldManager",
                    }
                ],
            )
        body = parse_body(raw, allow_yaml=True)
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be an object", "BadRequest")
        if not body.get("apiVersion") or not body.get("kind"):
            raise ApiError(
                400,
                "invalid object type: " + ("/, Kind=" if not body.get("kind") else ""),
                "BadRequest",
            )
        self._check_gvk(t, body)
        meta = body.get("metadata") or {}
        if meta.get("name") != t.name:
            raise ApiError(
                400,
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({t.name})",
                "BadRequest",
            )
        force = query.get("force", "").lower() in ("true", "1")
        with self.store.lock:
            old = self.store.get(rt.skey, t.namespace or "", t.name)
            live = self.present(t, old) if old is not None else None
            rv = meta.get("resourceVersion")
            if rv and (old is None or str(rv) != old["metadata"]["resourceVersion"]):
                raise _conflict(rt, t.name)
            try:
                merged = fieldmanager.apply(
                    copy.deepcopy(live) if live is not None else None,
                    copy.deepcopy(body),
                    manager=manager,
                    force=force,
                    api_version=t.api_version,
                    now=now_rfc3339(),
                    list_type=self.list_type_fn(rt, t.version),
                    subresource=t.subresource,
                )
            except fieldmanager.ApplyConflict as e:
                causes = e.causes()
                msg = str(e)
                raise ApiError(
                    409, msg, "Conflict", name=t.name, group=rt.group, kind=rt.plural, causes=causes
                ) from e
            except NotImplementedError as e:
                raise ApiError(
                    500, "server-side apply is not available yet", "InternalError"
                ) from e
            if old is None:
                if t.subresource:
                    raise _not_found(rt, t.name)
                mf = (merged.get("metadata") or {}).get("managedFields")
                created = self.create(
                    Target(rt, t.version, t.namespace),
                    merged,
                    query,
                    manager=manager,
                    managed_fields=list(mf) if mf else [],
                )
                return 201, created
            return 200, self._finish_write(t, old, merged, query, manager, "Apply")

    def _finish_write(
        self, t: Target, old: JSON, new: JSON, query: dict[str, str], manager: str, op: str
    ) -> JSON:
        """Common tail of update/patch/apply (store lock held): rules, no-op check, commit."""
        rt = t.rt
        sub = t.subresource
        old_meta = old["metadata"]
        if sub == "status":
            result = copy.deepcopy(self.present(t, old))
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            if op == "Apply":
                result["metadata"]["managedFields"] = (new.get("metadata") or {}).get(
                    "managedFields", []
                )
            new = result
        else:
            if rt.status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta = new["metadata"]
            for f in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "name",
            ):
                if f in old_meta:
                    meta[f] = old_meta[f]
                else:
                    meta.pop(f, None)
            if rt.key == ("", "namespaces"):
                new["status"] = copy.deepcopy(old.get("status", {"phase": "Active"}))
            if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                new["status"] = copy.deepcopy(old.get("status"))
        meta = new["metadata"]
        meta.pop("resourceVersion", None)
        if "generation" in old_meta:
            meta["generation"] = old_meta["generation"]
        if rt.key == ("", "services"):
            old_spec, new_spec = old.get("spec") or {}, new.get("spec")
            if isinstance(new_spec, dict):
                for f in ("clusterIP", "clusterIPs"):
                    if not new_spec.get(f) and old_spec.get(f):
                        new_spec[f] = copy.deepcopy(old_spec[f])
        new = self._normalize(
            t, new, query.get("fieldValidation") or "Warn", old=self.present(t, old)
        )
        meta = new["metadata"]
        # finalizers may not be added while deleting
        if old_meta.get("deletionTimestamp"):
            added = [
                f
                for f in meta.get("finalizers") or []
                if f not in (old_meta.get("finalizers") or [])
            ]
            if added:
                quoted = ", ".join(f'"{f}"' for f in added)
                raise _invalid(
                    rt,
                    t.name or "",
                    [
                        FieldError(
                            "FieldValueForbidden",
                            "Forbidden: no new finalizers can be added if the object is being "
                            f"deleted, found new finalizers []string{{{quoted}}}",
                            "metadata.finalizers",
                        )
                    ],
                )
        if (
            "generation" in old_meta
            and sub is None
            and _spec_part(new) != _spec_part(self.present(t, old))
        ):
            meta["generation"] = int(old_meta["generation"]) + 1
        if op != "Apply":
            meta.pop("managedFields", None)
            if old_meta.get("managedFields"):
                meta["managedFields"] = copy.deepcopy(old_meta["managedFields"])
            self._record_update(t, self.present(t, old), new, manager, sub)
        old_view = self.present(t, old)
        if _strip_volatile(new) == _strip_volatile(old_view):
            return old_view  # no-op: no new resourceVersion, no event
        if query.get("dryRun") == "All":
            meta["resourceVersion"] = old_meta["resourceVersion"]
            return new
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._install_crd(new)
        new = _to_storage(t, new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(rt, new, old)
            return self.present(t, new)
        self.store.commit(rt.skey, "MODIFIED", new, old)
        if meta.get("ownerReferences") != old_meta.get("ownerReferences") or meta.get(
            "finalizers"
        ) != old_meta.get("finalizers"):
            self.on_delete_wakeup()
        return self.present(t, new)

    def _remove(self, rt: ResourceType, last: JSON, old: JSON) -> None:
        """Delete for good (store lock held)."""
        self.store.commit(rt.skey, "DELETED", last, old)
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            spec = last.get("spec") or {}
            names = spec.get("names") or {}
            key = (spec.get("group", ""), names.get("plural", ""))
            self.registry.remove(key)
            _, items = self.store.list_objects(key)
            for obj in items:
                self.store.commit(key, "DELETED", copy.deepcopy(obj), obj)
        self.on_delete_wakeup()

    # ---------------------------------------------------------------- delete

    def delete(self, t: Target, raw: bytes, query: dict[str, str]) -> JSON:
        """DELETE one object; the answer and the effect follow :mod:`devcluster.deletion`.

        The simulated kubelet finishes a graceful pod deletion with :meth:`finish_pod_deletion`.
        """
        rt = t.rt
        assert t.name is not None
        try:
            opts = deletion.parse_options(parse_body(raw) if raw.strip() else {}, query)
        except deletion.InvalidOptions as e:
            raise ApiError(e.code, str(e), "Invalid" if e.code == 422 else "BadRequest") from e
        pre = opts.preconditions
        with self.store.lock:
            old = self.store.get(rt.skey, t.namespace or "", t.name)
            if old is None:
                raise _not_found(rt, t.name)
            om = old["metadata"]
            if pre.get("uid") and pre["uid"] != om.get("uid"):
                raise ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                    f"meta: {om.get('uid')}",
                    "Conflict",
                    name=t.name,
                    group=rt.group,
                    kind=rt.plural,
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != om.get("resourceVersion"):
                raise ApiError(
                    409,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{om.get('resourceVersion')}",
                    "Conflict",
                    name=t.name,
                    group=rt.group,
                    kind=rt.plural,
                )
            if rt.key == ("", "namespaces"):
                return self._delete_namespace(t, old, opts)
            now = datetime.datetime.now(datetime.UTC)
            new = copy.deepcopy(old)
            nm = new["metadata"]
            graceful = False
            if rt.key == ("", "pods") and (
                not om.get("deletionTimestamp") or om.get("deletionGracePeriodSeconds")
            ):
                period = deletion.pod_grace_period(old, opts)
                if not om.get("deletionTimestamp"):
                    deletion.start_graceful(nm, period, now)
                elif period < int(om["deletionGracePeriodSeconds"]):
                    deletion.shorten_graceful(nm, period)
                else:
                    return self.present(t, old)  # a graceful deletion is already running
                graceful = True
            finalizers = deletion.gc_finalizers(list(om.get("finalizers") or []), opts)
            if finalizers:
                nm["finalizers"] = finalizers
            else:
                nm.pop("finalizers", None)
            if finalizers and not graceful:
                deletion.mark_deleting(nm, now)
            waiting = bool(finalizers) or bool(graceful and nm.get("deletionGracePeriodSeconds"))
            if opts.dry_run:
                return self.present(t, new) if waiting else self._delete_answer(t, new)
            if new != old:
                self.store.commit(rt.skey, "MODIFIED", new, old)
                if waiting:
                    self.on_delete_wakeup()
            if waiting:
                return self.present(t, new)
            last = copy.deepcopy(new)
            self._remove(rt, last, new)
            return self._delete_answer(t, last)

    def _delete_answer(self, t: Target, last: JSON) -> JSON:
        """The answer for an object that is gone: itself, or a Status, by kind."""
        if t.rt.custom or t.rt.key in deletion.RETURNS_DELETED_OBJECT:
            return self.present(t, last)
        meta = last["metadata"]
        return deletion.status_answer(t.rt.group, t.rt.plural, meta["name"], meta.get("uid"))

    def _delete_namespace(self, t: Target, old: JSON, opts: deletion.DeleteOptions) -> JSON:
        """Namespaces: the first delete only marks (phase Terminating, deletionTimestamp); the
        namespace controller empties it and removes it. Answered with the namespace."""
        name = old["metadata"]["name"]
        if name in _SYSTEM_NAMESPACES[:3]:
            raise ApiError(
                403,
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                "Forbidden",
                name=name,
                kind="namespaces",
            )
        if old["metadata"].get("deletionTimestamp"):
            if (old.get("spec") or {}).get("finalizers") or old["metadata"].get("finalizers"):
                return self.present(t, old)
            last = copy.deepcopy(old)
            if not opts.dry_run:
                self._remove(t.rt, last, old)
            return self._delete_answer(t, last)
        new = copy.deepcopy(old)
        meta = new["metadata"]
        meta["deletionTimestamp"] = now_rfc3339()
        finalizers = deletion.gc_finalizers(list(meta.get("finalizers") or []), opts)
        if finalizers:
            meta["finalizers"] = finalizers
        else:
            meta.pop("finalizers", None)
        status = dict(new.get("status") or {})
        status["phase"] = "Terminating"
        new["status"] = status
        if opts.dry_run:
            return self.present(t, new)
        self.store.commit(t.rt.skey, "MODIFIED", new, old)
        self.on_delete_wakeup()
        return self.present(t, new)

    def delete_collection(self, t: Target, raw: bytes, query: dict[str, str]) -> JSON:
        """DELETE a collection: every listed object is deleted like a single DELETE (finalizers
        and grace periods honoured); the answer is the list as it was."""
        listing = self.list_objects(t, query)
        deleted: list[JSON] = []
        for item in listing["items"]:
            meta = item["metadata"]
            sub_t = Target(t.rt, t.version, meta.get("namespace"), meta["name"])
            try:
                self.delete(sub_t, raw, query)
            except ApiError as e:
                if e.code != 404:
                    raise
            deleted.append(item)
        listing["items"] = deleted
        return listing

    def finish_pod_deletion(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """The kubelet's last word on a pod it has stopped: delete it now (grace period 0),
        as kubelet's status manager does. ``uid`` guards against a pod recreated under the same
        name. Returns whether the pod was removed."""
        rt = self.registry.by_key(("", "pods"))
        assert rt is not None
        body: JSON = {"gracePeriodSeconds": 0}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            answer = self.delete(Target(rt, "v1", namespace, name), json.dumps(body).encode(), {})
        except ApiError:
            return False
        return self.store.get(rt.skey, namespace, name) is None and answer.get("kind") == "Pod"

    # ---------------------------------------------------------------- internal (GC, namespaces)

    def internal_delete(
        self, rt: ResourceType, namespace: str, name: str, policy: str | None = None
    ) -> None:
        t = Target(rt, rt.storage_version, namespace or None, name)
        body = json.dumps({"propagationPolicy": policy}).encode() if policy else b""
        with contextlib.suppress(ApiError):
            self.delete(t, body, {})

    def internal_write(self, rt: ResourceType, old: JSON, new: JSON) -> None:
        """Write ``new`` as the GC (manager ``kube-controller-manager``); old is the stored one."""
        meta = old["metadata"]
        t = Target(
            rt,
            old.get("apiVersion", "").rpartition("/")[2] or rt.storage_version,
            meta.get("namespace") or None,
            meta["name"],
        )
        with self.store.lock:
            cur = self.store.get(rt.skey, meta.get("namespace") or "", meta["name"])
            if cur is None or cur["metadata"]["resourceVersion"] != meta["resourceVersion"]:
                return
            with contextlib.suppress(ApiError):
                self._finish_write(t, cur, new, {}, "kube-controller-manager", "Update")

    # ---------------------------------------------------------------- tables (kubectl)

    def table(
        self, t: Target, objs: list[JSON], rv: str | None, include_object: str = "Metadata"
    ) -> JSON:
        return render_table(t.rt, t.version, objs, rv, include_object)


# silence "imported but unused" for string (used for documentation of the alphabet)
_ = string
