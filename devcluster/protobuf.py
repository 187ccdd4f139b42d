"""Decoding of the Kubernetes protobuf encoding (``application/vnd.kubernetes.protobuf``).

kubectl's typed clientset sends imperative writes (``kubectl create deployment|role|job|token``,
``kubectl auth can-i``'s SelfSubjectAccessReview, ...) as protobuf and, unlike the CBOR case,
does not fall back to JSON on 415. A body is a ``k8s\\0`` magic number and a ``runtime.Unknown``
envelope (``TypeMeta`` + raw message); the raw message is decoded here into the object's JSON
form with the declarative field tables of :mod:`devcluster.protobuf_types` (generated from the
upstream ``generated.proto`` files and Go struct tags). A handful of apimachinery types whose
JSON form is not an object (Time, MicroTime, Duration, IntOrString, Quantity, RawExtension,
FieldsV1) are converted by hand. Fields the tables do not know are skipped; a kind they do not
know, or a malformed body, raises :class:`ProtobufError` (answered with 415).

The wire carries every non-pointer field even when it is zero, where the JSON form omits it
(``omitempty``); zero values are therefore dropped unless the table marks the field ``k``.
"""

from __future__ import annotations

import base64
import datetime
import json
import struct
from typing import Any

from devcluster.protobuf_types import KINDS, LISTS, MESSAGES

__all__ = ["MAGIC", "ProtobufError", "decode_message", "decode_object", "is_protobuf"]

MAGIC = b"k8s\x00"

Wire = int | bytes  # a varint, or the bytes of a length-delimited / fixed field

_OPTIONS_VERSION = "meta.k8s.io/v1"  # DeleteOptions & co. come with the client's group version


class ProtobufError(ValueError):
    """The body is not protobuf we can decode."""


# ---------------------------------------------------------------- wire format


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


def _fields(buf: bytes) -> list[tuple[int, int, Wire]]:
    """(field number, wire type, value) for every field of one message, in wire order."""
    out: list[tuple[int, int, Wire]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
            out.append((num, wire, v))
            continue
        if wire == 2:
            n, i = _varint(buf, i)
        elif wire == 1:
            n = 8
        elif wire == 5:
            n = 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        if i + n > len(buf):
            raise ProtobufError("truncated field")
        out.append((num, wire, buf[i : i + n]))
        i += n
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _bytes(v: Wire) -> bytes:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a length-delimited field")
    return v


def _int(v: Wire) -> int:
    if not isinstance(v, int):
        raise ProtobufError("expected a varint")
    return _signed(v)


# ---------------------------------------------------------------- hand-converted types


def _timestamp(buf: bytes, micro: bool) -> str | None:
    seconds = nanos = 0
    for num, _, v in _fields(buf):
        if num == 1:
            seconds = _int(v)
        elif num == 2:
            nanos = _int(v)
    if seconds == 0 and nanos == 0:
        return None  # the zero Time is null in JSON
    t = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(ns: int) -> str:
    """A duration in nanoseconds as Go's ``time.Duration.String`` writes it (``1h2m3.5s``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    out = sign
    if hours:
        out += f"{hours}h{minutes}m"
    elif minutes:
        out += f"{minutes}m"
    return out + _decimal(rest, 1_000_000_000) + "s"


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def _int_or_string(buf: bytes) -> int | str | None:
    typ = int_val = 0
    str_val = ""
    for num, _, v in _fields(buf):
        if num == 1:
            typ = _int(v)
        elif num == 2:
            int_val = _int(v)
        elif num == 3:
            str_val = _bytes(v).decode()
    if typ == 1:
        return str_val
    return int_val


def _raw_json(buf: bytes) -> Any:
    raw = b""
    for num, _, v in _fields(buf):
        if num == 1:
            raw = _bytes(v)
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return decode_object(raw)
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ProtobufError("embedded object is neither JSON nor protobuf") from e


def _special(typ: str, buf: bytes) -> tuple[bool, Any]:
    """(handled, value) for the types whose JSON form is not an object."""
    if typ in ("meta.v1.Time", "meta.v1.MicroTime"):
        return True, _timestamp(buf, typ == "meta.v1.MicroTime")
    if typ == "meta.v1.Duration":
        ns = 0
        for num, _, v in _fields(buf):
            if num == 1:
                ns = _int(v)
        return True, go_duration(ns)
    if typ == "util.intstr.IntOrString":
        return True, _int_or_string(buf)
    if typ == "api.resource.Quantity":
        q = ""
        for num, _, v in _fields(buf):
            if num == 1:
                q = _bytes(v).decode()
        return True, q
    if typ in ("runtime.RawExtension", "meta.v1.FieldsV1"):
        return True, _raw_json(buf)
    return False, None


# ---------------------------------------------------------------- table-driven decoding


def _scalar(typ: str, wire: int, v: Wire) -> Any:
    if typ == "s":
        return _bytes(v).decode()
    if typ == "i":
        return _int(v)
    if typ == "b":
        return bool(_int(v))
    if typ == "y":
        return base64.b64encode(_bytes(v)).decode()
    if typ == "d":
        b = _bytes(v)
        if wire != 1 or len(b) != 8:
            raise ProtobufError("expected a double")
        return float(struct.unpack("<d", b)[0])
    raise ProtobufError(f"unknown scalar type {typ}")


def _packed(typ: str, buf: bytes) -> list[Any]:
    """A packed repeated numeric field."""
    out: list[Any] = []
    i = 0
    while i < len(buf):
        if typ == "d":
            out.append(float(struct.unpack("<d", buf[i : i + 8])[0]))
            i += 8
        else:
            v, i = _varint(buf, i)
            out.append(bool(v) if typ == "b" else _signed(v))
    return out


def _value(typ: str, wire: int, v: Wire) -> Any:
    """One value of type ``typ``: a scalar, a hand-converted type or a message."""
    if typ in ("s", "i", "b", "y", "d"):
        return _scalar(typ, wire, v)
    buf = _bytes(v)
    handled, out = _special(typ, buf)
    if handled:
        return out
    if typ in LISTS:
        return [_bytes(item).decode() for num, _, item in _fields(buf) if num == 1]
    return decode_message(typ, buf)


def _is_zero(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False or value == {}


def _map_entry(typ: str, buf: bytes) -> tuple[str, Any]:
    key = ""
    value: Any = None
    for num, wire, v in _fields(buf):
        if num == 1:
            key = _bytes(v).decode()
        elif num == 2:
            value = _value(typ, wire, v)
    if value is None:
        value = _value(typ, 2, b"") if typ not in ("i", "b", "d") else 0
    return key, value


def decode_message(name: str, buf: bytes) -> dict[str, Any]:
    """The JSON form of message ``name`` (a key of ``MESSAGES``) encoded in ``buf``."""
    table = MESSAGES.get(name)
    if table is None:
        raise ProtobufError(f"no field table for {name}")
    out: dict[str, Any] = {}
    for num, wire, v in _fields(buf):
        spec = table.get(num)
        if spec is None:
            continue  # a field newer than our table
        json_name, typ, flags = spec
        if "m" in flags:
            k, val = _map_entry(typ, _bytes(v))
            out.setdefault(json_name, {})[k] = val
        elif "r" in flags:
            items = out.setdefault(json_name, [])
            if wire == 2 and typ in ("i", "b", "d"):
                items.extend(_packed(typ, _bytes(v)))
            else:
                items.append(_value(typ, wire, v))
        elif "i" in flags:
            out.update(_value(typ, wire, v))
        else:
            val = _value(typ, wire, v)
            if val is None or (_is_zero(val) and "k" not in flags):
                out.pop(json_name, None)
            else:
                out[json_name] = val
    return out


def is_protobuf(body: bytes) -> bool:
    """Whether ``body`` starts like a Kubernetes protobuf envelope."""
    return body.startswith(MAGIC)


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object (with the ``k8s\\0`` envelope) as its JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic number")
    api_version = kind = ""
    raw = b""
    for num, _, v in _fields(body[len(MAGIC) :]):
        if num == 1:
            for n2, _, v2 in _fields(_bytes(v)):
                if n2 == 1:
                    api_version = _bytes(v2).decode()
                elif n2 == 2:
                    kind = _bytes(v2).decode()
        elif num == 2:
            raw = _bytes(v)
    message = KINDS.get((api_version, kind))
    if message is None and kind.endswith("Options"):
        message = KINDS.get((_OPTIONS_VERSION, kind))
    if message is None:
        raise ProtobufError(f"cannot decode {api_version}/{kind} from protobuf")
    try:
        obj = decode_message(message, raw)
    except (UnicodeDecodeError, struct.error, OverflowError, ValueError) as e:
        if isinstance(e, ProtobufError):
            raise
        raise ProtobufError(f"malformed {kind}: {e}") from e
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    if MESSAGES[message].get(1, ("",))[0] == "metadata":
        obj.setdefault("metadata", {})
    return obj
