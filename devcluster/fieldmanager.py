"""Server-side apply and ``metadata.managedFields`` bookkeeping, as pure functions.

bifrost writes its children with server-side apply and relies on the API server's ownership
rules: conflicts with other managers, co-ownership of equal values, and removal of fields that a
manager stops applying. The devcluster reproduces those rules here, following
``sigs.k8s.io/structured-merge-diff`` and ``k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager``:

* a field set is a set of paths of FieldsV1 elements (``f:name``, ``k:{"type":"Ready"}``,
  ``v:"value"``, ``i:0``); a path that has children and is itself a member is written with the
  ``".": {}`` marker, exactly as the real server encodes it;
* managers are identified by (manager, operation, apiVersion for ``Update``, subresource);
* :func:`apply` = merge the applied configuration into the live object, own the configuration's
  field set, remove fields this manager applied before and no longer applies unless someone else
  owns them, and detect conflicts on changed fields owned by other managers;
* :func:`record_update` = the fields a non-apply write added or changed become the writer's
  (``operation: Update``); they are taken from the other managers, and removed fields are dropped
  from every manager.

Server-owned metadata (``uid``, ``resourceVersion``, ``generation``, ``creationTimestamp``,
``managedFields``, ...) and ``apiVersion``/``kind`` are never recorded. The list semantics come
from a :data:`ListTypeFn` (``StructuralSchema.list_type`` for CRDs, :func:`builtin_list_type`
for built-in kinds); lists it does not describe are atomic, as for a deduced schema.

Known simplifications: all ``f:`` ancestors count as named (struct) fields when deciding which
parents a removal may take along; the ``".": {}`` markers of ``Update`` entries follow the
unstructured (CR) rules for built-in kinds too (the real server compares Go zero structs there);
managers are never merged into ``ancient-changes``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApplyConflict",
    "ListTypeFn",
    "apply",
    "builtin_list_type",
    "fields_to_paths",
    "paths_to_fields",
    "record_update",
]

ListTypeFn = Callable[[tuple[str, ...]], tuple[str, tuple[str, ...]] | None]

Path = tuple[str, ...]  # FieldsV1 path elements: ("f:spec", "f:listeners", 'k:{"name":"a"}')
PathSet = set[Path]

# Metadata the server owns: never part of anyone's field set (fieldmanager's stripMeta, plus the
# deletion fields the devcluster sets itself).
_SERVER_OWNED_META = (
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_STRIP: frozenset[Path] = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)}
    | {("f:metadata", f"f:{k}") for k in _SERVER_OWNED_META}
)


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


# --------------------------------------------------------------------------------------------
# conflicts


class ApplyConflict(Exception):
    """Apply would change fields owned by other managers (409 Conflict, reason ``Conflict``).

    ``conflicts`` lists ``(manager, path)`` pairs such as ``("mgr", ".spec.x")``; ``labels``
    holds, for each pair, the manager as the API server prints it (``"mgr"`` for an applier,
    ``"mgr" using gateway.networking.k8s.io/v1`` for an updater, ``... with subresource
    "status"``). ``api_versions`` maps the name of each conflicting ``Update`` manager to its
    apiVersion. ``str(e)`` is the Status message of the real server: use it as is.
    """

    def __init__(
        self,
        conflicts: list[tuple[str, str]],
        labels: list[str] | None = None,
        api_versions: dict[str, str] | None = None,
    ) -> None:
        self.conflicts = list(conflicts)
        self.api_versions = dict(api_versions or {})
        self.labels = (
            list(labels) if labels is not None else [_go_quote(m) for m, _ in self.conflicts]
        )
        if len(self.labels) != len(self.conflicts):
            raise ValueError("labels must match conflicts one to one")
        super().__init__(self._message())

    def _message(self) -> str:
        n = len(self.conflicts)
        if n == 1:
            label, path = self.labels[0], self.conflicts[0][1]
            return f"Apply failed with 1 conflict: conflict with {label}: {path}"
        grouped: dict[str, list[str]] = {}
        for label, (_, p) in zip(self.labels, self.conflicts, strict=True):
            grouped.setdefault(label, []).append(p)
        lines: list[str] = []
        for label, paths in grouped.items():
            lines.append(f"conflicts with {label}:")
            lines.extend(f"- {p}" for p in paths)
        return f"Apply failed with {n} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        """``details.causes`` of the 409 Status."""
        return [
            {"type": "FieldManagerConflict", "message": f"conflict with {label}", "field": p}
            for label, (_, p) in zip(self.labels, self.conflicts, strict=True)
        ]


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# list types of built-in kinds

_NAME_KEYED = frozenset(
    {
        "containers",
        "initContainers",
        "ephemeralContainers",
        "env",
        "volumes",
        "imagePullSecrets",
        "resourceClaims",
        "schedulingGates",
    }
)
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})


def builtin_list_type(kind: str) -> ListTypeFn:
    """List semantics of the built-in kinds the devcluster serves (their ``+listType`` tags).

    ``conditions`` are maps keyed by ``type``; containers, env, volumes, imagePullSecrets by
    ``name``; container ``ports`` by ``containerPort``+``protocol``; Service ``spec.ports`` by
    ``port``+``protocol``; ``volumeMounts`` by ``mountPath``; ``ownerReferences`` by ``uid``;
    ``finalizers`` are a set. Service ``spec.selector`` is an atomic map. Everything else atomic.
    """

    def list_type(path: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
        if not path:
            return None
        last = path[-1]
        if path == ("metadata", "finalizers"):
            return ("set", ())
        if path == ("metadata", "ownerReferences"):
            return ("map", ("uid",))
        if kind == "Service" and path == ("spec", "selector"):
            return ("atomic", ())
        if last == "*":
            return None
        if last == "conditions":
            return ("map", ("type",))
        if last == "ports":
            if kind == "Service" and path == ("spec", "ports"):
                return ("map", ("port", "protocol"))
            if len(path) >= 3 and path[-3] in _CONTAINER_LISTS:
                return ("map", ("containerPort", "protocol"))
            return ("atomic", ())
        if last in _NAME_KEYED:
            return ("map", ("name",))
        if last == "volumeMounts":
            return ("map", ("mountPath",))
        if last == "volumeDevices":
            return ("map", ("devicePath",))
        if last == "hostAliases":
            return ("map", ("ip",))
        if last == "topologySpreadConstraints":
            return ("map", ("topologyKey", "whenUnsatisfiable"))
        return None

    return list_type


# --------------------------------------------------------------------------------------------
# path elements


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _granular_list(lt: tuple[str, tuple[str, ...]] | None) -> bool:
    return lt is not None and lt[0] in ("map", "set")


def _is_atomic_map(list_type: ListTypeFn, jpath: tuple[str, ...]) -> bool:
    lt = list_type(jpath) if jpath else None
    return lt is not None and lt[0] == "atomic"


def _item_element(item: Any, lt: tuple[str, tuple[str, ...]]) -> str:
    if lt[0] == "map":
        if isinstance(item, dict):
            return "k:" + _dumps({k: item[k] for k in lt[1] if k in item})
        return "v:" + _dumps(item)
    return "v:" + _dumps(item)


def _element_to_string(el: str) -> str:
    """One element as ``fieldpath.Path.String()`` prints it."""
    tag, _, rest = el.partition(":")
    if tag == "f":
        return "." + rest
    if tag == "k":
        try:
            keys = json.loads(rest)
        except ValueError:
            return f"[{rest}]"
        if isinstance(keys, dict):
            return "[" + ",".join(f"{k}={_dumps(v)}" for k, v in sorted(keys.items())) + "]"
        return f"[{rest}]"
    if tag == "v":
        return f"[={rest}]"
    if tag == "i":
        return f"[{rest}]"
    return el


def _path_to_string(p: Path) -> str:
    return "".join(_element_to_string(el) for el in p)


_RANK = {"f": 0, "k": 1, "v": 2, "i": 3}


def _element_sort_key(el: str) -> tuple[int, int, str]:
    if el == ".":
        return (-1, 0, "")
    tag = el.split(":", 1)[0]
    if tag == "i":
        try:
            return (3, int(el[2:]), "")
        except ValueError:
            pass
    return (_RANK.get(tag, 4), 0, el)


def _path_sort_key(p: Path) -> tuple[tuple[int, int, str], ...]:
    return tuple(_element_sort_key(el) for el in p)


# --------------------------------------------------------------------------------------------
# FieldsV1 encoding


def paths_to_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode a field set as FieldsV1 (members with children get ``".": {}``)."""
    members = set(paths)
    root: dict[str, Any] = {}
    for p in members:
        node = root
        for el in p:
            node = node.setdefault(el, {})
    for p in members:
        node = root
        for el in p:
            node = node[el]
        if any(k != "." for k in node):
            node["."] = {}
    return _sorted_fields(root)


def _sorted_fields(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_fields(node[k]) for k in sorted(node, key=_element_sort_key)}


def fields_to_paths(fields: dict[str, Any] | None) -> PathSet:
    """Decode FieldsV1 into a set of paths."""
    out: PathSet = set()

    def walk(node: dict[str, Any], prefix: Path) -> None:
        for k, child in node.items():
            if k == ".":
                if prefix:
                    out.add(prefix)
                continue
            p = (*prefix, k)
            if not isinstance(child, dict) or not child:
                out.add(p)
            else:
                walk(child, p)

    if isinstance(fields, dict):
        walk(fields, ())
    return out


# --------------------------------------------------------------------------------------------
# managers


@dataclass
class _Manager:
    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str
    fields: PathSet = field(default_factory=set)

    def identity(self) -> tuple[str, str, str, str]:
        api = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, api, self.subresource)

    def identifier_json(self) -> str:
        """``BuildManagerIdentifier``: the sort key of managers in conflict messages."""
        d: dict[str, str] = {"manager": self.manager, "operation": self.operation}
        if self.operation != "Apply" and self.api_version:
            d["apiVersion"] = self.api_version
        if self.subresource:
            d["subresource"] = self.subresource
        return json.dumps(d, separators=(",", ":"))

    def label(self) -> str:
        """``printManager``."""
        s = _go_quote(self.manager)
        if self.subresource:
            s += f" with subresource {_go_quote(self.subresource)}"
        if self.operation == "Update":
            s += f" using {self.api_version}"
        return s

    def encode(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = paths_to_fields(self.fields)
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def _decode_managers(entries: Any) -> list[_Manager]:
    out: list[_Manager] = []
    if not isinstance(entries, list):
        return out
    for e in entries:
        if not isinstance(e, dict) or not e.get("manager") and not e.get("operation"):
            continue
        m = _Manager(
            manager=str(e.get("manager", "")),
            operation=str(e.get("operation", "Update")),
            api_version=str(e.get("apiVersion", "")),
            time=e.get("time") if isinstance(e.get("time"), str) else None,
            subresource=str(e.get("subresource", "") or ""),
            fields=fields_to_paths(e.get("fieldsV1")),
        )
        for other in out:
            if other.identity() == m.identity():
                other.fields |= m.fields
                break
        else:
            out.append(m)
    return out


def _encode_managers(managers: list[_Manager]) -> list[dict[str, Any]]:
    live = [m for m in managers if m.fields]
    live.sort(
        key=lambda m: (
            m.operation,
            m.time or "",
            m.manager,
            m.api_version,
            m.subresource,
        )
    )
    return [m.encode() for m in live]


def _is_reset(entries: Any) -> bool:
    return isinstance(entries, list) and len(entries) == 1 and entries[0] == {}


# --------------------------------------------------------------------------------------------
# field sets, comparison, merge, removal


def _field_set(
    v: Any, jpath: tuple[str, ...], epath: Path, lt_fn: ListTypeFn, out: PathSet
) -> None:
    """``TypedValue.ToFieldSet`` of an applied configuration."""
    if isinstance(v, dict):
        if epath and _is_atomic_map(lt_fn, jpath):
            out.add(epath)
            return
        for k, c in v.items():
            ce = (*epath, f"f:{k}")
            if c is None or (isinstance(c, dict) and not c):
                out.add(ce)
            _field_set(c, (*jpath, k), ce, lt_fn, out)
    elif isinstance(v, list):
        lt = lt_fn(jpath)
        if lt is None or not _granular_list(lt):
            out.add(epath)
            return
        for item in v:
            ie = (*epath, _item_element(item, lt))
            out.add(ie)
            if isinstance(item, dict):
                _field_set(item, (*jpath, "*"), ie, lt_fn, out)
    elif epath:
        out.add(epath)


def _mark_all(v: Any, jpath: tuple[str, ...], epath: Path, lt_fn: ListTypeFn, out: PathSet) -> None:
    """Every node of an added/removed subtree (containers and leaves)."""
    if epath:
        out.add(epath)
    if isinstance(v, dict):
        if epath and _is_atomic_map(lt_fn, jpath):
            return
        for k, c in v.items():
            _mark_all(c, (*jpath, k), (*epath, f"f:{k}"), lt_fn, out)
    elif isinstance(v, list):
        lt = lt_fn(jpath)
        if not _granular_list(lt):
            return
        assert lt is not None
        for item in v:
            _mark_all(item, (*jpath, "*"), (*epath, _item_element(item, lt)), lt_fn, out)


def _index_items(
    items: list[Any], lt: tuple[str, tuple[str, ...]]
) -> tuple[list[str], dict[str, Any]]:
    pes = [_item_element(i, lt) for i in items]
    observed: dict[str, Any] = {}
    for pe, item in zip(pes, items, strict=True):
        observed.setdefault(pe, item)
    return pes, observed


def _compare(
    o: Any,
    n: Any,
    jpath: tuple[str, ...],
    epath: Path,
    lt_fn: ListTypeFn,
    added: PathSet,
    modified: PathSet,
    removed: PathSet,
) -> None:
    """``TypedValue.Compare``: added/removed subtrees, modified leaves."""
    if o is _ABSENT and n is _ABSENT:
        return
    if o is _ABSENT:
        _mark_all(n, jpath, epath, lt_fn, added)
        return
    if n is _ABSENT:
        _mark_all(o, jpath, epath, lt_fn, removed)
        return
    if isinstance(o, dict) and isinstance(n, dict) and not (epath and _is_atomic_map(lt_fn, jpath)):
        for k in {**o, **n}:
            _compare(
                o.get(k, _ABSENT),
                n.get(k, _ABSENT),
                (*jpath, k),
                (*epath, f"f:{k}"),
                lt_fn,
                added,
                modified,
                removed,
            )
        return
    if isinstance(o, list) and isinstance(n, list):
        lt = lt_fn(jpath)
        if lt is not None and _granular_list(lt):
            _, lo = _index_items(o, lt)
            _, ln = _index_items(n, lt)
            for pe in {**lo, **ln}:
                _compare(
                    lo.get(pe, _ABSENT),
                    ln.get(pe, _ABSENT),
                    (*jpath, "*"),
                    (*epath, pe),
                    lt_fn,
                    added,
                    modified,
                    removed,
                )
            return
    if not _json_equal(o, n) and epath:
        modified.add(epath)


def _merge(l: Any, r: Any, jpath: tuple[str, ...], lt_fn: ListTypeFn) -> Any:  # noqa: E741
    """``TypedValue.Merge``: ``r`` (the applied configuration) over ``l`` (the live object)."""
    if r is _ABSENT:
        return copy.deepcopy(l)
    if l is _ABSENT:
        return copy.deepcopy(r)
    if isinstance(l, dict) and isinstance(r, dict) and not (jpath and _is_atomic_map(lt_fn, jpath)):
        out = {k: copy.deepcopy(v) for k, v in l.items()}
        for k, v in r.items():
            out[k] = _merge(l.get(k, _ABSENT), v, (*jpath, k), lt_fn)
        return out
    if isinstance(l, list) and isinstance(r, list):
        lt = lt_fn(jpath)
        if lt is not None and _granular_list(lt):
            return _merge_list(l, r, (*jpath, "*"), lt, lt_fn)
    return copy.deepcopy(r)


def _merge_list(
    lhs: list[Any],
    rhs: list[Any],
    item_jpath: tuple[str, ...],
    lt: tuple[str, tuple[str, ...]],
    lt_fn: ListTypeFn,
) -> list[Any]:
    """``mergingWalker.visitListItems``: keep live-only items in place, applied order otherwise."""
    lhs_pes, observed_l = _index_items(lhs, lt)
    rhs_pes, observed_r = _index_items(rhs, lt)
    shared = [pe for pe in rhs_pes if pe in observed_l]
    shared.reverse()
    next_shared = shared.pop() if shared else None
    merged_rhs: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    nl, nr = len(lhs_pes), len(rhs_pes)
    while li < nl or ri < nr:
        if li < nl and ri < nr:
            pe = lhs_pes[li]
            if pe == rhs_pes[ri]:
                merged_rhs.add(pe)
                out.append(_merge(observed_l[pe], observed_r[pe], item_jpath, lt_fn))
                li += 1
                ri += 1
                next_shared = shared.pop() if shared else None
                continue
            if pe in observed_r and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < nl:
            pe = lhs_pes[li]
            if pe not in observed_r:
                out.append(copy.deepcopy(lhs[li]))
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
                continue
        if ri < nr:
            pe = rhs_pes[ri]
            if pe in merged_rhs:
                ri += 1
                continue
            merged_rhs.add(pe)
            out.append(_merge(observed_l.get(pe, _ABSENT), observed_r[pe], item_jpath, lt_fn))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop() if shared else None
    return out


def _match_item(item: Any, el: str) -> bool:
    tag, _, rest = el.partition(":")
    try:
        want = json.loads(rest)
    except ValueError:
        return False
    if tag == "k":
        return (
            isinstance(item, dict)
            and isinstance(want, dict)
            and all(k in item and _json_equal(item[k], v) for k, v in want.items())
        )
    if tag == "v":
        return _json_equal(item, want)
    return False


def _remove_path(obj: Any, p: Path) -> None:
    """Delete the node at ``p`` (and its subtree) if it exists."""
    node = obj
    for i, el in enumerate(p):
        last = i == len(p) - 1
        tag, _, rest = el.partition(":")
        if tag == "f" and isinstance(node, dict):
            if rest not in node:
                return
            if last:
                del node[rest]
                return
            node = node[rest]
        elif tag == "i" and isinstance(node, list):
            try:
                idx = int(rest)
            except ValueError:
                return
            if not 0 <= idx < len(node):
                return
            if last:
                del node[idx]
                return
            node = node[idx]
        elif tag in ("k", "v") and isinstance(node, list):
            found = [i for i, item in enumerate(node) if _match_item(item, el)]
            if not found:
                return
            idx = found[0]
            if last:
                del node[idx]
                return
            node = node[idx]
        else:
            return


def _ensure_named(s: PathSet) -> PathSet:
    """``EnsureNamedFieldsAreMembers``: add the ``f:`` ancestors of every member."""
    out = set(s)
    for p in s:
        for i in range(1, len(p)):
            if p[i - 1].startswith("f:"):
                out.add(p[:i])
    return out


def _strip(s: PathSet) -> PathSet:
    return {p for p in s if p not in _STRIP}


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _sanitized(obj: dict[str, Any] | None) -> dict[str, Any]:
    """A copy without ``metadata.managedFields`` (never part of any comparison)."""
    if not obj:
        return {}
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return copy.deepcopy(out)


def _restrict(
    obj: dict[str, Any], subresource: str | None, ignored: Collection[str]
) -> dict[str, Any]:
    """The part of ``obj`` that a write through ``subresource`` may touch."""
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    if subresource:
        return {}
    return {k: v for k, v in obj.items() if k not in ignored}


def _find(managers: list[_Manager], ident: tuple[str, str, str, str]) -> _Manager | None:
    for m in managers:
        if m.identity() == ident:
            return m
    return None


# --------------------------------------------------------------------------------------------
# public operations


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    now: str,
    list_type: ListTypeFn,
    subresource: str | None = None,
    ignored_fields: Collection[str] = (),
) -> dict[str, Any]:
    """Server-side apply ``applied`` onto ``live``; returns the merged object.

    The result is ``live`` with the applied configuration merged in (lists per ``list_type``),
    minus the fields this manager applied last time and omits now unless another manager owns
    them, with ``metadata.managedFields`` updated: this manager (``operation: Apply``) owns
    exactly the applied field set. Changing a value that another manager owns raises
    :class:`ApplyConflict` unless ``force``, in which case ownership moves to this manager;
    writing the same value makes both owners.

    ``subresource="status"`` considers only ``status`` of ``applied`` (the entry carries
    ``subresource: status``). ``ignored_fields`` names top-level fields the endpoint resets and
    that must not be applied or owned, e.g. ``("status",)`` for the main endpoint of a kind with
    a status subresource. ``live`` and ``applied`` are not modified. ``applied``'s
    ``metadata.managedFields`` is ignored.
    """
    live_s = _sanitized(live)
    managers = _decode_managers(((live or {}).get("metadata") or {}).get("managedFields"))
    cfg = _restrict(_sanitized(applied), subresource, ignored_fields)
    cfg_meta = cfg.get("metadata")
    if isinstance(cfg_meta, dict):
        # The server's own metadata is never taken from an applied configuration.
        cfg["metadata"] = {
            k: v
            for k, v in cfg_meta.items()
            if k in ("name", "namespace") or k not in _SERVER_OWNED_META
        }

    merged = _merge(live_s, cfg, (), list_type)
    new_set: PathSet = set()
    _field_set(cfg, (), (), list_type, new_set)
    new_set = _strip(new_set)

    sub = subresource or ""
    me = _find(managers, (manager, "Apply", "", sub))
    last: PathSet = set(me.fields) if me is not None else set()
    others = [m for m in managers if m is not me]

    # Remove what this manager applied last time and no longer applies, unless owned elsewhere.
    if last:
        owned: PathSet = _ensure_named(new_set)
        for m in others:
            owned |= _ensure_named(m.fields)
        for p in sorted(_ensure_named(last) - owned - _STRIP, key=len):
            _remove_path(merged, p)

    added: PathSet = set()
    modified: PathSet = set()
    removed: PathSet = set()
    _compare(live_s, merged, (), (), list_type, added, modified, removed)
    changed = _strip(added | modified)

    conflicts: list[tuple[_Manager, Path]] = []
    for m in others:
        for p in m.fields & changed:
            conflicts.append((m, p))
    if conflicts and not force:
        conflicts.sort(key=lambda c: (c[0].identifier_json(), _path_sort_key(c[1])))
        raise ApplyConflict(
            [(m.manager, _path_to_string(p)) for m, p in conflicts],
            [m.label() for m, _ in conflicts],
            {m.manager: m.api_version for m, _ in conflicts if m.operation == "Update"},
        )
    for m in others:
        m.fields -= changed
    for m in managers:
        m.fields -= removed

    object_changed = bool(added or modified or removed)
    if me is None:
        me = _Manager(manager, "Apply", api_version, now, sub, set())
        managers.append(me)
    elif object_changed or me.fields != new_set or me.api_version != api_version:
        me.time = now
    me.api_version = api_version
    me.fields = new_set

    meta = merged.setdefault("metadata", {})
    if isinstance(meta, dict):
        meta["managedFields"] = _encode_managers(managers)
    return merged  # type: ignore[no-any-return]


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    list_type: ListTypeFn,
    subresource: str | None = None,
) -> list[dict[str, Any]]:
    """managedFields after a non-apply write (create, PUT, merge/JSON/strategic patch).

    The fields the write added or changed (every set field on create, ``old=None``) become owned
    by ``manager`` with ``operation: Update`` under ``api_version``, and are taken away from
    every other manager; removed fields are dropped from all managers; managers left without
    fields disappear. A write that changes nothing leaves the entries as they were. With
    ``subresource="status"`` only ``status`` is compared and the entry carries ``subresource``.

    The starting entries are ``new``'s ``metadata.managedFields`` when the request set them
    (a non-empty list), else ``old``'s. ``[{}]`` in ``new`` clears them all, as on the real
    server.
    """
    new_meta = new.get("metadata") if isinstance(new.get("metadata"), dict) else {}
    requested = (new_meta or {}).get("managedFields")
    if _is_reset(requested):
        return []
    managers = _decode_managers(requested) if requested else []
    if not managers:
        managers = _decode_managers(((old or {}).get("metadata") or {}).get("managedFields"))

    old_s = _restrict(_sanitized(old), subresource, ())
    new_s = _restrict(_sanitized(new), subresource, ())
    added: PathSet = set()
    modified: PathSet = set()
    removed: PathSet = set()
    _compare(old_s, new_s, (), (), list_type, added, modified, removed)
    changed = _strip(added | modified)
    removed = _strip(removed)

    for m in managers:
        m.fields -= changed
        m.fields -= removed
    if changed:
        sub = subresource or ""
        me = _find(managers, (manager, "Update", api_version, sub))
        if me is None:
            me = _Manager(manager, "Update", api_version, now, sub, set())
            managers.append(me)
        me.fields |= changed
        me.time = now
    return _encode_managers(managers)
