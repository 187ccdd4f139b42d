"""The blueprint as the renderer sees it: small frozen dataclasses built from the API model.

What a blueprint may say, and every check on it, is :mod:`bifrost.api.blueprint` — the one
parser. This view keeps only what rendering reads (the child templates, the addresses expression
and the confinement; the controller merges values from the API model itself), as plain frozen
dataclasses that the sandbox can ship to its workers as JSON (``bifrost.sandbox.codec``).
:meth:`Blueprint.from_dict` validates a raw object with the API model and reports the first
problem as a ``RenderError`` naming the child and the field; the ``dependsOn`` checks are left to
the renderer's ordering, which reports them per child and also sees the dependencies a template
infers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bifrost.render.confinement import AllowRule, Confinement
from bifrost.render.errors import BLUEPRINT, RenderError

if TYPE_CHECKING:  # imported where used: see _parse
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

    from bifrost.api.blueprint import ChildTemplate, GatewayClassBlueprintSpec

CHILDREN = "children"
ROUTE_CHILDREN = "routeChildren"


@dataclass(frozen=True)
class RenderChild:
    """One entry of ``spec.children`` or ``spec.routeChildren``, as rendering uses it."""

    id: str
    template: str
    depends_on: tuple[str, ...] = ()
    ready_when: str | None = None
    delete_order: int | None = None
    list_name: str = CHILDREN
    """``children`` or ``routeChildren``: used to name the field in errors."""
    ignore_drift: tuple[str, ...] = ()
    """Fields left alone after creation (not repaired, not reverted by a re-apply)."""

    def field_path(self, name: str) -> str:
        return f"spec.{self.list_name}[{self.id}].{name}"

    @classmethod
    def from_api(cls, child: ChildTemplate, list_name: str) -> RenderChild:
        return cls(
            id=child.id,
            template=child.template,
            depends_on=child.depends_on,
            ready_when=child.ready_when or None,
            delete_order=child.delete_order,
            ignore_drift=child.ignore_drift,
            list_name=list_name,
        )


@dataclass(frozen=True)
class Blueprint:
    """The part of a ``GatewayClassBlueprint`` that rendering reads."""

    children: tuple[RenderChild, ...] = ()
    route_children: tuple[RenderChild, ...] = ()
    addresses: str | None = None
    confinement: Confinement = field(default_factory=Confinement)
    """``spec.confinement``: where children may land beyond the Gateway's namespace."""

    @classmethod
    def from_api(cls, spec: GatewayClassBlueprintSpec) -> Blueprint:
        """The view of an already validated ``spec``."""
        allow = spec.confinement.allow if spec.confinement is not None else ()
        return cls(
            children=tuple(RenderChild.from_api(c, CHILDREN) for c in spec.children),
            route_children=tuple(
                RenderChild.from_api(c, ROUTE_CHILDREN) for c in spec.route_children
            ),
            addresses=spec.addresses or None,
            confinement=Confinement(tuple(
                AllowRule(r.group, r.kind, r.cluster_scoped, r.namespaces) for r in allow
            )),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Blueprint:
        """Validate a ``GatewayClassBlueprint`` object or its ``spec`` with the API model, then
        build the view; the first problem is a ``RenderError``.

        Cached by content: a render pass parses its blueprint, and the same one comes by often.
        """
        spec = data.get("spec", data)
        try:
            key = json.dumps(spec, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):  # not JSON data: no API object, parse it uncached
            return _parse(spec)
        return _parse_cached(key)


def as_blueprint(blueprint: Blueprint | Mapping[str, Any]) -> Blueprint:
    return blueprint if isinstance(blueprint, Blueprint) else Blueprint.from_dict(blueprint)


@lru_cache(maxsize=64)
def _parse_cached(canonical: str) -> Blueprint:
    return _parse(json.loads(canonical))


def _parse(spec: Any) -> Blueprint:
    # Imported here, not at the top: a sandbox worker imports this module to render, gets the
    # view already built (``bifrost.sandbox`` parses in the controller), and starts twice as fast
    # without pydantic and the API models.
    from pydantic import ValidationError

    from bifrost.api.blueprint import parse_blueprint_spec

    try:
        parsed = parse_blueprint_spec(spec, check_dependencies=False)
    except ValidationError as exc:
        raise _render_error(spec, exc) from None
    return Blueprint.from_api(parsed)


# --- pydantic's errors as RenderErrors ------------------------------------------------------

#: What a field must be, by its name in the API (the rules themselves are the API model's).
_EXPECTED: Mapping[str, str] = {
    "id": "id must be a DNS label of at most 63 characters: lower-case letters, digits and '-', "
          "starting and ending with a letter or digit",
    "template": "template must be a non-empty string",
    "dependsOn": "dependsOn must be a list of distinct child ids",
    "readyWhen": "readyWhen must be an expression string",
    "deleteOrder": "deleteOrder must be an integer from -1000 to 1000",
    "addresses": "addresses must be an expression string",
    "defaults": "must be a mapping",
    "overrides": "must be a mapping",
    CHILDREN: "must be a list of children",
    ROUTE_CHILDREN: "must be a list of children",
    "confinement": "must be a mapping",
    "allow": "must be a list",
    "group": 'group must be an API group ("" for core)',
    "kind": "kind must be a kind name such as ConfigMap",
    "clusterScoped": "clusterScoped must be true or false",
    "namespaces": "namespaces must be a list of namespace names",
}

#: pydantic's error types for a list entry that should have been a mapping (an object).
_NOT_A_MAPPING = frozenset({"model_type", "model_attributes_type", "dict_type"})


def _render_error(spec: Any, exc: ValidationError) -> RenderError:
    """The first of pydantic's errors as a ``RenderError``: the child (``<blueprint>`` outside
    the child lists), the field as ``spec...``, and what to write instead."""
    from bifrost.api.blueprint import EntryCheckError

    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, EntryCheckError):
        loc += cause.at
    elif loc and isinstance(loc[-1], int) and first["type"] not in _NOT_A_MAPPING:
        loc = loc[:-1]  # a bad item of a list of plain values: name the list's field
    message = _message(first, loc)
    if len(loc) >= 2 and loc[0] in (CHILDREN, ROUTE_CHILDREN) and isinstance(loc[1], int):
        list_name, index = str(loc[0]), loc[1]
        child_id, label = _entry_name(spec, errors, list_name, index)
        return RenderError(child_id, message, None, f"spec.{list_name}[{label}]{_path(loc[2:])}")
    return RenderError(BLUEPRINT, message, None, f"spec{_path(loc)}")


def _message(error: ErrorDetails, loc: tuple[int | str, ...]) -> str:
    names = [p for p in loc if isinstance(p, str)]
    name = names[-1] if names else "spec"
    cause = (error.get("ctx") or {}).get("error")
    if error["type"] == "value_error" and cause is not None:
        return str(cause)  # the API model's own check says what is wrong
    if error["type"] == "missing":
        return f"{name} is required"
    if error["type"] == "extra_forbidden":
        return f"unknown field {name}: remove it or fix its spelling"
    if error["type"] == "too_long":
        return f"{name} may have at most {(error.get('ctx') or {}).get('max_length')} entries"
    if loc and isinstance(loc[-1], int) and error["type"] in _NOT_A_MAPPING:
        return "each entry must be a mapping"
    if not loc:
        return "spec must be a mapping"
    return _EXPECTED.get(name, f"{name}: {error['msg'][:1].lower()}{error['msg'][1:]}")


def _entry_name(
    spec: Any, errors: Sequence[ErrorDetails], list_name: str, index: int
) -> tuple[str, str | int]:
    """The child id for the error and how the path names the entry: by its id when that
    identifies it (valid, once in its list), else by its position."""
    entries = spec.get(list_name) if isinstance(spec, Mapping) else None
    entry = entries[index] if isinstance(entries, Sequence) else None
    child_id = entry.get("id") if isinstance(entry, Mapping) else None
    if not isinstance(child_id, str):
        return BLUEPRINT, index
    assert isinstance(entries, Sequence)
    ids = [e.get("id") for e in entries if isinstance(e, Mapping)]
    id_invalid = any(tuple(e["loc"]) == (list_name, index, "id") for e in errors)
    return child_id, index if id_invalid or ids.count(child_id) > 1 else child_id


def _path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
