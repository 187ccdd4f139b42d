"""Keeping Secret data out of what steps say.

Step messages go to the journal, the operation's ``last_error``, Gateway conditions, Events and
log lines, so they must never carry Secret data. The render layer already quotes no values; this
is the second line, at the steps that hold Secret-derived input (a ``ListenerSecret`` blueprint's
source Secret and the copy rendered from it; bodies of kind Secret):

- :class:`Redactor` masks, in any message, every run of 16 or more characters taken from the
  Secrets' data (as stored, base64, and decoded) and every whole data value of 8 or more.
- :func:`rejection` is the API server's message about a rejected body with the values it quotes
  from that body masked (the field paths and the server's own words stay).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any, ParamSpec

from bifrost.engine import Fail, NotDone, Retry, Wait
from bifrost.kube import KubeError

__all__ = ["MASK", "Redactor", "masked_by_source", "rejection", "secret_strings"]

MASK = "…"
#: A run this long copied from Secret data is masked wherever it appears.
FRAGMENT = 16
#: A whole data value this long is masked wherever it appears.
WHOLE = 8
_DATA_FIELDS = ("data", "stringData", "binaryData")


def secret_strings(obj: Mapping[str, Any] | None) -> list[str]:
    """The values of an object's ``data``/``stringData``/``binaryData``: as stored, decoded
    (when base64 of text) and each line of the decoded text."""
    out: list[str] = []
    for field in _DATA_FIELDS:
        data = (obj or {}).get(field)
        if not isinstance(data, Mapping):
            continue
        for value in data.values():
            if not isinstance(value, str) or not value:
                continue
            out.append(value)
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                continue
            out.append(decoded)
            out.extend(line.strip() for line in decoded.splitlines() if line.strip())
    return out


class Redactor:
    """Masks text copied from known sensitive strings (see the module docstring)."""

    def __init__(self, sensitive: Iterable[str] = ()) -> None:
        self._strings = sorted({s for s in sensitive if s}, key=len, reverse=True)
        # the strings runs are looked for in: those not contained in another one
        self._haystacks = [s for i, s in enumerate(self._strings)
                           if not any(s in t for t in self._strings[:i])]

    @classmethod
    def of(cls, *objects: Mapping[str, Any] | None) -> Redactor:
        """A redactor for the data of ``objects`` (Secrets, or objects rendered from them)."""
        return cls(s for obj in objects for s in secret_strings(obj))

    def __bool__(self) -> bool:
        return bool(self._strings)

    def text(self, message: str) -> str:
        if not self._strings:
            return message
        for whole in self._strings:
            if len(whole) >= WHOLE:
                message = message.replace(whole, MASK)
        out: list[str] = []
        i = 0
        while i < len(message):
            end = self._copied_run(message, i)
            if end is None:
                out.append(message[i])
                i += 1
            else:
                out.append(MASK)
                i = end
        return "".join(out)

    def _copied_run(self, message: str, start: int) -> int | None:
        """The end of the longest run from ``start`` found in a sensitive string, if it is at
        least ``FRAGMENT`` long."""
        probe = message[start:start + FRAGMENT]
        if len(probe) < FRAGMENT:
            return None
        holders = [s for s in self._haystacks if probe in s]
        if not holders:
            return None
        end = start + FRAGMENT
        while end < len(message) and any(message[start:end + 1] in s for s in holders):
            end += 1
        return end

    def outcome(self, outcome: NotDone) -> NotDone:
        """``outcome`` with its message masked."""
        if not self._strings:
            return outcome
        if isinstance(outcome, Fail):
            return replace(outcome, reason=self.text(outcome.reason))
        if isinstance(outcome, Wait):
            return replace(outcome, reason=self.text(outcome.reason))
        if isinstance(outcome, Retry):
            return replace(outcome, error=self.text(outcome.error))
        return outcome


# A Go/JSON double-quoted string or a single-quoted one, and a subscript of a field path.
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')
_SUBSCRIPT = re.compile(r"\[([^\[\]\n]*)\]")


def _strings_of(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _strings_of(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings_of(v)


def _unquote(literal: str) -> str:
    if literal.startswith('"'):
        try:
            text = json.loads(literal)
        except ValueError:
            return literal[1:-1]
        return text if isinstance(text, str) else literal[1:-1]
    return literal[1:-1]


def rejection(error: KubeError, body: Mapping[str, Any]) -> str:
    """The API server's message about ``body`` with every quoted value and every field-path
    subscript that comes from the body masked (``"…"``, ``[…]``) — except the object's own name,
    namespace and kind. The server's own words (the rule, the allowed values) and the field
    paths stay, so the reader still knows what to change."""
    meta = body.get("metadata") or {}
    keep = {str(meta.get("name") or ""), str(meta.get("namespace") or ""),
            str(body.get("kind") or ""), str(body.get("apiVersion") or "")} - {""}
    texts = [s for s in _strings_of({k: v for k, v in body.items() if k != "metadata"})
             if s not in keep]
    texts += [s for s in _strings_of(meta.get("labels") or {}) if s not in keep]
    texts += [s for s in _strings_of(meta.get("annotations") or {}) if s not in keep]

    whole = set(texts)

    def from_body(value: str) -> bool:
        """A body value, or (long enough not to be a coincidence) a part of one."""
        value = value.removesuffix("...")
        if not value or value in keep:
            return False
        if len(value) < FRAGMENT:
            return value in whole
        return any(value[:FRAGMENT] in s for s in texts)

    def mask_quoted(m: re.Match[str]) -> str:
        literal = m.group(0)
        return f"{literal[0]}{MASK}{literal[0]}" if from_body(_unquote(literal)) else literal

    def mask_subscript(m: re.Match[str]) -> str:
        inner = m.group(1)
        return m.group(0) if inner.isdigit() or not from_body(inner) else f"[{MASK}]"

    return _SUBSCRIPT.sub(mask_subscript, _QUOTED.sub(mask_quoted, str(error)))


P = ParamSpec("P")


def masked_by_source(
    function: Callable[P, NotDone | None],
) -> Callable[P, NotDone | None]:
    """Mask the outcome of ``function`` against the Secret it was given as ``source=`` (a
    ``ListenerSecret`` blueprint's input): whatever path the outcome took, no fragment of the
    Secret's data reaches its message."""

    @functools.wraps(function)
    def masked(*args: P.args, **kwargs: P.kwargs) -> NotDone | None:
        outcome = function(*args, **kwargs)
        source = kwargs.get("source")
        if outcome is None or not isinstance(source, Mapping):
            return outcome
        return Redactor.of(source).outcome(outcome)

    return masked

