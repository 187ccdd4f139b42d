"""Patch semantics of the Kubernetes API server: merge, JSON and strategic merge patch.

The devcluster server picks one of these by the request's Content-Type. They are pure functions
over JSON-like values (dicts, lists, scalars) so the HTTP layer stays thin and the semantics can
be tested table-driven. None of them mutates its inputs.

``strategic_merge_patch`` follows ``k8s.io/apimachinery/pkg/util/strategicpatch`` as the API
server runs it (``MergeParallelList`` and ``IgnoreUnmatchedNulls`` on), including its list
ordering rules: items that only the patch names come first, then the live items, interleaved so
that the relative order of both is kept. The Go implementation reads merge keys from struct tags;
here a small path table (:func:`list_merge_strategy`) covers the built-in kinds the devcluster
serves.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer

__all__ = [
    "PatchError",
    "PatchTestFailed",
    "json_patch",
    "list_merge_strategy",
    "merge_patch",
    "strategic_merge_patch",
]

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList"
_SET_ORDER = "$setElementOrder"


class PatchError(Exception):
    """A malformed or inapplicable patch.

    ``code`` is the HTTP status the real API server answers with: 400 when the patch cannot be
    decoded, 422 when it is well formed but does not apply to the object.
    """

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PatchTestFailed(PatchError):
    """An RFC 6902 ``test`` operation failed; the server answers 422."""


# --------------------------------------------------------------------------------------------
# RFC 7386


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch. Returns a new object; never mutates its inputs.

    A non-object patch replaces the target; ``null`` members delete; objects merge recursively;
    arrays are replaced as a whole.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    # Untouched members are shared with ``target`` by the shallow copy above: copy them too so
    # that the caller may mutate the result freely.
    for key in result:
        if key not in patch:
            result[key] = copy.deepcopy(result[key])
    return result


# --------------------------------------------------------------------------------------------
# RFC 6902


def json_patch(target: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch (via ``jsonpatch``). Returns a new object; never mutates inputs.

    Raises :class:`PatchError` with ``code=400`` when the operations are malformed (as the API
    server does when decoding fails), :class:`PatchTestFailed` when a ``test`` op fails and
    :class:`PatchError` with ``code=422`` when an op does not apply (missing path, bad index).
    """
    if not isinstance(ops, list):
        raise PatchError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch", code=400
        )
    for op in ops:
        if not isinstance(op, dict):
            raise PatchError(
                "json: cannot unmarshal non-object into Go value of type jsonpatch.Operation",
                code=400,
            )
        name = op.get("op")
        if name not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchError(f"Unexpected kind: {name}", code=422)
        if not isinstance(op.get("path"), str):
            raise PatchError(f"{name} operation is missing path", code=422)
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{name} operation is missing value", code=422)
        if name in ("move", "copy") and not isinstance(op.get("from"), str):
            raise PatchError(f"{name} operation is missing from", code=422)
    try:
        return jsonpatch.apply_patch(copy.deepcopy(target), ops, in_place=True)
    except jsonpatch.JsonPatchTestFailed as e:
        op = _failed_op(ops, target)
        raise PatchTestFailed(f"testing value {op.get('path')} failed: test failed") from e
    except (
        jsonpatch.JsonPatchException,
        jsonpointer.JsonPointerException,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
    ) as e:
        op = _failed_op(ops, target)
        name = op.get("op")
        if name in ("move", "copy"):
            where = f"from path: {_go_quote(str(op.get('from')))}"
        else:
            where = f"path: {_go_quote(str(op.get('path')))}"
        raise PatchError(
            f"{name} operation does not apply: doc is missing {where}: missing value",
            code=422,
        ) from e


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _failed_op(ops: list[dict[str, Any]], target: Any) -> dict[str, Any]:
    """The first op that fails when the ops are replayed one by one."""
    doc = copy.deepcopy(target)
    for op in ops:
        try:
            doc = jsonpatch.apply_patch(doc, [op], in_place=True)
        except Exception:
            return op
    return ops[-1] if ops else {}


# --------------------------------------------------------------------------------------------
# strategic merge patch

#: list field name -> merge key, wherever the field appears inside a pod template/spec or
#: container (the Go struct tags of core/v1).
_POD_LIST_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "topologySpreadConstraints": "topologyKey",
    "podIPs": "ip",
    "hostIPs": "ip",
}
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})


def list_merge_strategy(kind: str, path: tuple[str, ...]) -> str | None:
    """The strategic-merge merge key of the list at ``path`` in a built-in ``kind``.

    ``path`` names the map keys from the root; list items add no element. Returns the merge key,
    ``""`` for a list of scalars merged as a set (``metadata.finalizers``), or ``None`` when the
    list is replaced as a whole (``patchStrategy`` absent or ``replace``).
    """
    if not path:
        return None
    last = path[-1]
    if path == ("metadata", "finalizers"):
        return ""
    if path == ("metadata", "ownerReferences"):
        return "uid"
    if last == "conditions":
        return "type"
    if last == "ports":
        if kind == "Service" and path == ("spec", "ports"):
            return "port"
        if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
            return "containerPort"
        return None
    if kind == "Node" and path == ("status", "addresses"):
        return "type"
    return _POD_LIST_KEYS.get(last)


def strategic_merge_patch(
    target: dict[str, Any], patch: dict[str, Any], *, kind: str
) -> dict[str, Any]:
    """Strategic merge patch for built-in kinds. Returns a new object; never mutates inputs.

    Merge patch plus merge keys for the lists in :func:`list_merge_strategy`; the directives
    ``$patch: replace|delete`` (maps and list items), ``$retainKeys``,
    ``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder/<field>``. Lists without a merge
    key are replaced. ``null`` deletes; nulls and directives inside newly added values are
    dropped, as decoding into the typed object does on the real server.
    """
    if not isinstance(patch, dict):
        raise PatchError("invalid JSON document", code=400)
    if not isinstance(target, dict):
        raise PatchError("invalid JSON document", code=400)
    result = _merge_map(copy.deepcopy(target), copy.deepcopy(patch), kind, ())
    return result


def _bad_patch_type(directive: Any, patch: Any) -> PatchError:
    return PatchError(f"Unknown patch type: {directive} in map: {patch}", code=422)


def _no_merge_key(item: Any, key: str) -> PatchError:
    return PatchError(f"map: {item} does not contain declared merge key: {key}", code=422)


def _clean_new(value: Any, kind: str, path: tuple[str, ...]) -> Any:
    """A value that has no counterpart in the live object: apply it onto nothing."""
    if isinstance(value, dict):
        return _merge_map({}, value, kind, path)
    if isinstance(value, list):
        return [_clean_new(v, kind, path) for v in value if not _is_directive_item(v)]
    return value


def _is_directive_item(v: Any) -> bool:
    """A list item that only carries a ``$patch: delete|replace`` instruction."""
    return isinstance(v, dict) and v.get(_DIRECTIVE) in ("delete", "replace")


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], kind: str, path: tuple[str, ...]
) -> dict[str, Any]:
    """``mergeMap``: both arguments are owned copies and may be modified."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            del patch[_DIRECTIVE]
            return _clean_new(patch, kind, path)  # type: ignore[no-any-return]
        if directive == "delete":
            return {}
        if directive == "merge":
            # The Go code rejects this; merging is what the directive means, so accept it.
            del patch[_DIRECTIVE]
        else:
            raise _bad_patch_type(directive, patch)

    if _RETAIN_KEYS in patch:
        retain = patch.pop(_RETAIN_KEYS)
        if not isinstance(retain, list):
            raise PatchError("invalid patch format of retainKeys", code=400)
        keep = {k for k in retain if isinstance(k, str)}
        for k, v in patch.items():
            if v is None or k.startswith((_DELETE_PRIMITIVE, _SET_ORDER)):
                continue
            if k not in keep:
                raise PatchError("patch content doesn't match retainKeys list", code=422)
        for k in list(original):
            if k not in keep:
                del original[k]

    # $setElementOrder/<field>: merge the field and its order list together.
    for key in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(key)
        field = _extract_key(key, _SET_ORDER)
        if not isinstance(order, list):
            raise PatchError("invalid patch format of setElementOrder list", code=400)
        fpath = (*path, field)
        merge_key = list_merge_strategy(kind, fpath)
        found_orig = isinstance(original.get(field), list)
        found_patch = field in patch and isinstance(patch[field], list)
        if not found_orig and not found_patch:
            continue
        if merge_key is None:
            # Replace strategy: the order list carries no meaning.
            continue
        orig_list: list[Any] = original[field] if found_orig else []
        patch_list: list[Any] = patch.pop(field) if found_patch else []
        if found_orig and found_patch:
            merged = _merge_slice(list(orig_list), patch_list, kind, fpath, merge_key, False)
        elif found_patch:
            merged = [_clean_new(v, kind, fpath) for v in patch_list if not _is_directive_item(v)]
        else:
            merged = list(orig_list)
        patch_items, server_only = _partition(merged, order, merge_key)
        original[field] = _normalize_order(patch_items, server_only, order, orig_list, merge_key)

    for key, value in patch.items():
        is_delete_list = False
        if key.startswith(_DELETE_PRIMITIVE):
            key = _extract_key(key, _DELETE_PRIMITIVE)
            is_delete_list = True
            if not isinstance(value, list):
                raise PatchError("invalid patch format of primitive list", code=400)
        if value is None:
            original.pop(key, None)
            continue
        fpath = (*path, key)
        if key not in original:
            if not is_delete_list:
                original[key] = _clean_new(value, kind, fpath)
            continue
        current = original[key]
        if isinstance(current, dict) and isinstance(value, dict):
            original[key] = _merge_map(current, value, kind, fpath)
        elif isinstance(current, list) and isinstance(value, list):
            merge_key = list_merge_strategy(kind, fpath)
            if merge_key is None:
                if not is_delete_list:
                    original[key] = _clean_new(value, kind, fpath)
            else:
                original[key] = _merge_slice(current, value, kind, fpath, merge_key, is_delete_list)
        elif is_delete_list:
            continue
        else:
            original[key] = _clean_new(value, kind, fpath)
    return original


def _extract_key(key: str, prefix: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        what = "primitive list" if prefix == _DELETE_PRIMITIVE else "setElementOrder list"
        raise PatchError(f"invalid patch format of {what}", code=400)
    return rest


def _merge_slice(
    original: list[Any],
    patch: list[Any],
    kind: str,
    path: tuple[str, ...],
    merge_key: str,
    is_delete_list: bool,
) -> list[Any]:
    """``mergeSlice`` for a list with the merge strategy."""
    if not original and not patch:
        return original
    elements = [*original, *patch]
    if any(isinstance(v, list) for v in elements):
        raise PatchError("lists of lists are not supported", code=422)
    maps = [isinstance(v, dict) for v in elements]
    if any(maps) and not all(maps):
        raise PatchError(f"list element types are not identical: {elements}", code=422)
    if not all(maps):
        if is_delete_list:
            return [v for v in original if not any(_scalar_eq(v, d) for d in patch)]
        merged = _dedupe_scalars([*original, *patch])
        patch_items, server_only = _partition(merged, patch, "")
        return _normalize_order(patch_items, server_only, patch, original, "")
    if not merge_key:
        raise PatchError("cannot merge lists without merge key for type map", code=422)

    # Special elements ($patch directives).
    plain: list[dict[str, Any]] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            value = item[merge_key]
            original = [o for o in original if not _key_eq(o.get(merge_key, _MISSING), value)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch", code=422)
        else:
            raise _bad_patch_type(directive, item)
    if replace:
        original = [_clean_new(v, kind, path) for v in plain]
        plain = []

    merged = list(original)
    for item in plain:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        value = item[merge_key]
        for i, o in enumerate(merged):
            if merge_key in o and _key_eq(o[merge_key], value):
                merged[i] = _merge_map(o, item, kind, path)
                break
        else:
            merged.append(_clean_new(item, kind, path))
    patch_items, server_only = _partition(merged, plain, merge_key)
    return _normalize_order(patch_items, server_only, plain, original, merge_key)


class _Missing:
    pass


_MISSING = _Missing()


def _scalar_eq(a: Any, b: Any) -> bool:
    """Go interface equality of decoded JSON scalars (a bool is never equal to a number)."""
    return (
        type(a) is type(b)
        and a == b
        or (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and a == b
        )
    )


def _key_eq(a: Any, b: Any) -> bool:
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return _scalar_eq(a, b)


def _dedupe_scalars(items: list[Any]) -> list[Any]:
    """``deduplicateScalars``, including its habit of moving the last item into the gap."""
    s = list(items)
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _scalar_eq(s[i], s[j]):
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _ident(item: Any, merge_key: str) -> Any:
    if merge_key:
        return item.get(merge_key, _MISSING) if isinstance(item, dict) else _MISSING
    return item


def _index(items: list[Any], item: Any, merge_key: str) -> int:
    want = _ident(item, merge_key)
    if want is _MISSING:
        return -1
    for i, v in enumerate(items):
        got = _ident(v, merge_key)
        if got is not _MISSING and _key_eq(got, want):
            return i
    return -1


def _partition(
    merged: list[Any], present_in: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    patch_items: list[Any] = []
    server_only: list[Any] = []
    for v in merged:
        if merge_key and (not isinstance(v, dict) or merge_key not in v):
            raise _no_merge_key(v, merge_key)
        (patch_items if _index(present_in, v, merge_key) >= 0 else server_only).append(v)
    return patch_items, server_only


def _sort_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    """``normalizeSliceOrder``: stable sort by position in ``order``; unknown items stay put."""
    indexed = [(_index(order, v, merge_key), n, v) for n, v in enumerate(items)]
    known = sorted((t for t in indexed if t[0] >= 0), key=lambda t: (t[0], t[1]))
    # Items that ``order`` does not name keep their slots; known ones fill the rest in order.
    it = iter(known)
    return [v if idx < 0 else next(it)[2] for idx, _, v in indexed]


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
) -> list[Any]:
    """``normalizeElementOrder`` + ``mergeSortedSlice``."""
    right = _sort_by(patch_items, patch_order, merge_key)
    left = _sort_by(server_only, server_order, merge_key)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key)
            ri = _index(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out
