"""Turn pydantic validation errors on API objects into messages a platform engineer can act on.

A blueprint or policy that does not parse is reported on the object's status, in events and by
the CLI. pydantic's own text (``1 validation error for GatewayClassBlueprintSpec ...``) names
Python classes; users need the object, the field path as ``kubectl`` shows it, the problem and
the fix::

    GatewayClassBlueprint "edge": spec.children[1].id: required — give every child a stable id
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bifrost.api.base import ModelCheckError

__all__ = ["InvalidResourceError", "field_path", "format_validation_error", "parse_resource"]

M = TypeVar("M", bound=BaseModel)

# (field name, error type) → what to do; (field name, None) matches any error type on the field.
_HINTS: dict[tuple[str, str | None], str] = {
    ("id", "missing"): "give every child a stable id",
    ("id", None): (
        "use a DNS label: lowercase letters, digits and '-', starting and ending with a letter "
        "or digit, at most 63 characters"
    ),
    ("dependsOn", None): "list the ids of other children of this blueprint",
    ("template", "missing"): "add the child's template (a YAML document with Jinja expressions)",
    ("template", None): "the template must be a non-empty string",
    ("children", "missing"): "list the child resources a Gateway of this class is made of",
    ("certificateTemplate", None): "add the template of the certificate request",
    ("targetRef", "missing"): "say which object the values apply to (group, kind, name)",
    ("days", None): "use Mon, Tue, Wed, Thu, Fri, Sat or Sun",
    ("start", None): "write a 24-hour time as HH:MM, e.g. 02:30",
    ("end", None): "write a 24-hour time as HH:MM, e.g. 06:00",
    ("duration", None): "write a duration such as 720h or 1h30m",
    ("percentage", None): "use a whole number from 1 to 99 (percent of the lifetime)",
    ("timezone", None): "use an IANA time zone name such as UTC or Europe/Berlin",
    ("mode", None): "use tlsProbe, expression or none",
}
_GENERIC: dict[str, str] = {
    "missing": "add it",
    "extra_forbidden": "remove it or fix its spelling",
}


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("spec", "children", 1, "id")`` → ``spec.children[1].id``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problem(err: ErrorDetails) -> str:
    """The rule the input broke — never the input itself: a policy's values may be anything a
    tenant typed, and messages go to status, Events and logs."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch":
        return f"does not match {ctx.get('pattern')}"
    if kind == "string_too_long":
        return f"longer than {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else err["msg"].lower()
    if kind in ("literal_error", "enum"):
        return f"is not one of {ctx.get('expected')}"
    if kind == "too_long":
        return f"more than {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"fewer than {ctx.get('min_length')} items"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return err["msg"].lower()
    if kind == "value_error":
        msg = err["msg"]
        return msg.removeprefix("Value error, ")
    return err["msg"][:1].lower() + err["msg"][1:]


def _hint(err: ErrorDetails) -> str | None:
    names = [p for p in err["loc"] if isinstance(p, str)]
    field = names[-1] if names else ""
    kind = err["type"]
    if kind == "value_error":
        # bifrost's own checks already say what to do; add only a field's specific advice
        return _HINTS.get((field, None))
    return _HINTS.get((field, kind)) or _HINTS.get((field, None)) or _GENERIC.get(kind)


def _relevant(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop a list's item-count error when its items are already reported as invalid."""
    item_locs = {
        tuple(e["loc"][:i]) for e in errors for i, p in enumerate(e["loc"]) if isinstance(p, int)
    }
    return [e for e in errors if not (e["type"] == "too_short" and tuple(e["loc"]) in item_locs)]


def format_validation_error(kind: str, name: str, exc: ValidationError) -> str:
    """One line per problem: ``Kind "name": path: problem — fix`` (see module docstring)."""
    lines = []
    for err in _relevant(exc.errors(include_url=False)):
        path = field_path(tuple(err["loc"])) or "(object)"
        hint = _hint(err)
        line = f'{kind} "{name}": {path}: {_problem(err)}'
        lines.append(f"{line} — {hint}" if hint else line)
    return "\n".join(lines)


class InvalidResourceError(ValueError):
    """An API object bifrost reads does not match its model; ``str()`` is the user's message.

    ``reason`` is the condition reason for the object's status: the first
    :class:`~bifrost.api.base.ModelCheckError`'s (e.g. ``DependencyCycle``), else ``Invalid``.
    """

    def __init__(
        self, message: str, *, kind: str, name: str, errors: int, reason: str = "Invalid"
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.errors = errors
        self.reason = reason


def _reason(exc: ValidationError) -> str:
    for err in exc.errors(include_url=False):
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ModelCheckError):
            return str(cause.reason)
    return "Invalid"


class _Kinded(Protocol):
    kind: str


def parse_resource(model: type[M], obj: Mapping[str, Any]) -> M:
    """``obj`` (a dict from the API) as ``model``, or :class:`InvalidResourceError`.

    The name in messages is ``namespace/name`` for namespaced objects.
    """
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = str(meta.get("name") or "?")
    if meta.get("namespace"):
        name = f"{meta['namespace']}/{name}"
    kind_field = model.model_fields.get("kind")
    kind = str(obj.get("kind") or (kind_field.default if kind_field else model.__name__))
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise InvalidResourceError(
            format_validation_error(kind, name, exc),
            kind=kind,
            name=name,
            errors=exc.error_count(),
            reason=_reason(exc),
        ) from exc
