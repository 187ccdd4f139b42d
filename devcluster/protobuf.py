"""Decoding of the Kubernetes protobuf encoding for the few kinds kubectl creates imperatively.

kubectl sends typed writes (``kubectl create namespace|configmap|secret``) as
``application/vnd.kubernetes.protobuf`` and, unlike the CBOR case, does not fall back to JSON on
415. Decoding the wire format needs the field numbers of each Go type, so only Namespace,
ConfigMap and Secret (plus ObjectMeta) are described here; anything else is answered with 415,
which kubectl reports as an error. ``kubectl apply`` always sends JSON and needs none of this.
"""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["ProtobufError", "decode_object"]

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not protobuf we can decode."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
            out.append((num, v))
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ProtobufError("truncated field")
            out.append((num, buf[i : i + n]))
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _str(v: int | bytes) -> str:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a string")
    return v.decode()


def _map(entries: list[bytes], *, binary: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in entries:
        k = v = b""
        for num, val in _fields(e):
            if num == 1 and isinstance(val, bytes):
                k = val
            elif num == 2 and isinstance(val, bytes):
                v = val
        out[k.decode()] = base64.b64encode(v).decode() if binary else v.decode()
    return out


def _owner_ref(buf: bytes) -> dict[str, Any]:
    names = {5: "apiVersion", 1: "kind", 3: "name", 4: "uid"}
    ref: dict[str, Any] = {}
    for num, val in _fields(buf):
        if num in names:
            ref[names[num]] = _str(val)
        elif num == 6:
            ref["controller"] = bool(val)
        elif num == 7:
            ref["blockOwnerDeletion"] = bool(val)
    return ref


def _object_meta(buf: bytes) -> dict[str, Any]:
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    meta: dict[str, Any] = {}
    labels: list[bytes] = []
    annotations: list[bytes] = []
    for num, val in _fields(buf):
        if num in strings:
            meta[strings[num]] = _str(val)
        elif num == 11 and isinstance(val, bytes):
            labels.append(val)
        elif num == 12 and isinstance(val, bytes):
            annotations.append(val)
        elif num == 13 and isinstance(val, bytes):
            meta.setdefault("ownerReferences", []).append(_owner_ref(val))
        elif num == 14:
            meta.setdefault("finalizers", []).append(_str(val))
    if labels:
        meta["labels"] = _map(labels)
    if annotations:
        meta["annotations"] = _map(annotations)
    return meta


def _configmap(fields: list[tuple[int, int | bytes]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    data: list[bytes] = []
    binary: list[bytes] = []
    for num, val in fields:
        if num == 1 and isinstance(val, bytes):
            obj["metadata"] = _object_meta(val)
        elif num == 2 and isinstance(val, bytes):
            data.append(val)
        elif num == 3 and isinstance(val, bytes):
            binary.append(val)
        elif num == 4:
            obj["immutable"] = bool(val)
    if data:
        obj["data"] = _map(data)
    if binary:
        obj["binaryData"] = _map(binary, binary=True)
    return obj


def _secret(fields: list[tuple[int, int | bytes]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    data: list[bytes] = []
    string_data: list[bytes] = []
    for num, val in fields:
        if num == 1 and isinstance(val, bytes):
            obj["metadata"] = _object_meta(val)
        elif num == 2 and isinstance(val, bytes):
            data.append(val)
        elif num == 3:
            obj["type"] = _str(val)
        elif num == 4 and isinstance(val, bytes):
            string_data.append(val)
        elif num == 5:
            obj["immutable"] = bool(val)
    if data:
        obj["data"] = _map(data, binary=True)
    if string_data:
        obj["stringData"] = _map(string_data)
    return obj


def _namespace(fields: list[tuple[int, int | bytes]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for num, val in fields:
        if num == 1 and isinstance(val, bytes):
            obj["metadata"] = _object_meta(val)
    return obj


_KINDS = {
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Secret"): _secret,
    ("v1", "Namespace"): _namespace,
}


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded Namespace, ConfigMap or Secret as its JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic number")
    api_version = kind = ""
    raw = b""
    for num, val in _fields(body[len(MAGIC) :]):
        if num == 1 and isinstance(val, bytes):
            for n2, v2 in _fields(val):
                if n2 == 1:
                    api_version = _str(v2)
                elif n2 == 2:
                    kind = _str(v2)
        elif num == 2 and isinstance(val, bytes):
            raw = val
    decoder = _KINDS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"cannot decode {api_version}/{kind} from protobuf")
    obj = decoder(_fields(raw))
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    obj.setdefault("metadata", {})
    return obj
