"""What a log line is about: fields bound for the duration of a piece of work.

The engine binds the Gateway, operation id, machine, step and attempt around each step it runs
(:func:`bound`); a log formatter adds :func:`current` to every record written meanwhile, so a
line logged deep inside a step (the Kubernetes client, the store) still says which operation it
belongs to. A :class:`contextvars.ContextVar` keeps each thread's (and task's) fields apart.

Only identifiers go here — names, ids, counters — never values a tenant wrote or secret
material: the fields are written verbatim into every line.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from types import MappingProxyType

__all__ = ["bound", "current"]

_FIELDS: contextvars.ContextVar[Mapping[str, str | int]] = contextvars.ContextVar(
    "bifrost_log_fields", default=MappingProxyType({}))


@contextlib.contextmanager
def bound(**fields: str | int | None) -> Iterator[None]:
    """Add ``fields`` (``None`` values are left out) to the current ones until the block
    ends; nested blocks add to and override the outer ones."""
    merged = {**_FIELDS.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _FIELDS.set(merged)
    try:
        yield
    finally:
        _FIELDS.reset(token)


def current() -> Mapping[str, str | int]:
    """The fields bound now (empty outside any :func:`bound` block)."""
    return _FIELDS.get()
