"""The blueprint as the renderer sees it: small frozen dataclasses parsed from a plain dict.

The pydantic models and the CRD live in ``bifrost.api``; rendering takes the raw ``spec`` (or the
whole object) so that it stays pure and does not move in lock-step with the API package. Parsing
checks only what rendering relies on (ids, types of the fields it reads) and reports problems as
``RenderError`` naming the child and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bifrost.render.confinement import Confinement
from bifrost.render.errors import BLUEPRINT, RenderError

CHILD_ID_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CHILD_ID_MAX_LENGTH = 63

CHILDREN = "children"
ROUTE_CHILDREN = "routeChildren"


@dataclass(frozen=True)
class ChildTemplate:
    """One entry of ``spec.children`` or ``spec.routeChildren``."""

    id: str
    template: str
    depends_on: tuple[str, ...] = ()
    ready_when: str | None = None
    delete_order: int | None = None
    list_name: str = CHILDREN
    """``children`` or ``routeChildren``: used to name the field in errors."""

    def field_path(self, name: str) -> str:
        return f"spec.{self.list_name}[{self.id}].{name}"


@dataclass(frozen=True)
class Blueprint:
    """The rendering-relevant part of a ``GatewayClassBlueprint``."""

    defaults: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[ChildTemplate, ...] = ()
    route_children: tuple[ChildTemplate, ...] = ()
    addresses: str | None = None
    confinement: Confinement = field(default_factory=Confinement)
    """``spec.confinement``: where children may land beyond the Gateway's namespace."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Blueprint:
        """Parse a ``GatewayClassBlueprint`` object or its ``spec``."""
        spec = data.get("spec", data)
        if not isinstance(spec, Mapping):
            raise RenderError(BLUEPRINT, "spec must be a mapping", None, "spec")
        defaults = _mapping(spec.get("defaults"), "spec.defaults")
        overrides = _mapping(spec.get("overrides"), "spec.overrides")
        addresses = spec.get("addresses")
        if addresses is not None and not isinstance(addresses, str):
            raise RenderError(
                BLUEPRINT, "addresses must be an expression string", None, "spec.addresses"
            )
        children = _children(spec.get(CHILDREN), CHILDREN)
        route_children = _children(spec.get(ROUTE_CHILDREN), ROUTE_CHILDREN)
        gateway_ids = {c.id for c in children}
        for child in route_children:
            if child.id in gateway_ids:
                raise RenderError(
                    child.id,
                    f"id {child.id!r} is used in both children and routeChildren; ids must be "
                    "unique across both lists",
                    None,
                    f"spec.{ROUTE_CHILDREN}[{child.id}].id",
                )
        return cls(
            defaults=defaults,
            overrides=overrides,
            children=children,
            route_children=route_children,
            addresses=addresses or None,
            confinement=Confinement.from_dict(spec.get("confinement")),
        )


def as_blueprint(blueprint: Blueprint | Mapping[str, Any]) -> Blueprint:
    return blueprint if isinstance(blueprint, Blueprint) else Blueprint.from_dict(blueprint)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RenderError(BLUEPRINT, f"must be a mapping, got {type(value).__name__}", None, path)
    return value


def _children(raw: Any, list_name: str) -> tuple[ChildTemplate, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise RenderError(BLUEPRINT, "must be a list of children", None, f"spec.{list_name}")
    seen: set[str] = set()
    out: list[ChildTemplate] = []
    for index, entry in enumerate(raw):
        path = f"spec.{list_name}[{index}]"
        if not isinstance(entry, Mapping):
            raise RenderError(BLUEPRINT, "each child must be a mapping", None, path)
        child_id = entry.get("id")
        if not isinstance(child_id, str) or not CHILD_ID_PATTERN.match(child_id):
            raise RenderError(
                str(child_id),
                "id must be a DNS label: lower-case letters, digits and '-', starting and ending "
                "with a letter or digit",
                None,
                f"{path}.id",
            )
        if len(child_id) > CHILD_ID_MAX_LENGTH:
            raise RenderError(child_id, "id must be at most 63 characters", None, f"{path}.id")
        if child_id in seen:
            raise RenderError(
                child_id, f"duplicate id {child_id!r}: ids must be unique", None, f"{path}.id"
            )
        seen.add(child_id)
        template = entry.get("template")
        if not isinstance(template, str):
            raise RenderError(
                child_id,
                "template must be a string",
                None,
                f"spec.{list_name}[{child_id}].template",
            )
        depends_on = entry.get("dependsOn") or []
        if (
            not isinstance(depends_on, Sequence)
            or isinstance(depends_on, str)
            or not all(isinstance(d, str) for d in depends_on)
        ):
            raise RenderError(
                child_id,
                "dependsOn must be a list of child ids",
                None,
                f"spec.{list_name}[{child_id}].dependsOn",
            )
        ready_when = entry.get("readyWhen")
        if ready_when is not None and not isinstance(ready_when, str):
            raise RenderError(
                child_id,
                "readyWhen must be an expression string",
                None,
                f"spec.{list_name}[{child_id}].readyWhen",
            )
        delete_order = entry.get("deleteOrder")
        if delete_order is not None and (
            not isinstance(delete_order, int) or isinstance(delete_order, bool)
        ):
            raise RenderError(
                child_id,
                "deleteOrder must be an integer",
                None,
                f"spec.{list_name}[{child_id}].deleteOrder",
            )
        out.append(
            ChildTemplate(
                id=child_id,
                template=template,
                depends_on=tuple(depends_on),
                ready_when=ready_when or None,
                delete_order=delete_order,
                list_name=list_name,
            )
        )
    return tuple(out)
