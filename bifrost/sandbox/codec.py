"""The wire format between the controller and a sandbox worker: JSON with a few tags.

Not pickle: the worker evaluates untrusted blueprint code, so what it sends back must not be able
to run anything in the controller. Decoding builds only the render dataclasses and errors named
in ``_TYPES``; anything else is refused.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from bifrost.render import (
    Pending,
    RenderedChild,
    RenderResult,
    confinement,
    expressions,
    model,
)
from bifrost.render import errors as render_errors

_TAGS = frozenset({"__t", "__d", "__e", "__m"})


def _dataclasses(*modules: Any) -> dict[str, type]:
    found: dict[str, type] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value) \
                    and value.__module__.startswith("bifrost.render"):
                found[value.__name__] = value
    return found


_TYPES: dict[str, type] = {
    **_dataclasses(model, expressions, confinement),
    "RenderResult": RenderResult,
    "RenderedChild": RenderedChild,
    "Pending": Pending,
}
_ERRORS: dict[str, type[Exception]] = {
    "RenderError": render_errors.RenderError,
    "NotAvailable": expressions.NotAvailable,
}


class CodecError(Exception):
    """A message from a worker was not in the expected form."""


def encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, tuple):
        return {"__t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, BaseException):
        name = type(value).__name__
        if name not in _ERRORS:
            raise CodecError(f"cannot send a {name}")
        return {"__e": name, "a": [encode(a) for a in value.args]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _TYPES.get(name) is not type(value):
            raise CodecError(f"cannot send a {name}")
        return {"__d": name, "f": {f.name: encode(getattr(value, f.name))
                                   for f in dataclasses.fields(value)}}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value) and not _TAGS.intersection(value):
            return {k: encode(v) for k, v in value.items()}
        return {"__m": [[encode(k), encode(v)] for k, v in value.items()]}
    raise CodecError(f"cannot send a {type(value).__name__}")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__t" in value:
        return tuple(decode(v) for v in value["__t"])
    if "__m" in value:
        return {_hashable(decode(k)): decode(v) for k, v in value["__m"]}
    if "__d" in value:
        cls = _TYPES.get(value["__d"])
        if cls is None:
            raise CodecError(f"unknown type {value['__d']!r}")
        return cls(**{k: decode(v) for k, v in value["f"].items()})
    if "__e" in value:
        error = _ERRORS.get(value["__e"])
        if error is None:
            raise CodecError(f"unknown error {value['__e']!r}")
        return error(*[decode(a) for a in value["a"]])
    return {k: decode(v) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value), separators=(",", ":"), allow_nan=False).encode()


def loads(data: bytes) -> Any:
    return decode(json.loads(data))
