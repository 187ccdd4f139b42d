"""docs/blueprints.md's field reference covers the GatewayClassBlueprint CRD, and only it.

The reference is written by hand, so it can fall behind the CRD
(``deploy/crds/gateway.bifrost.dev_gatewayclassblueprints.yaml``). This test walks the CRD's
``spec`` down to its second level (``spec.tls.verify``, ``spec.children[].readyWhen``) and
requires every field to be named, in backticks, in the reference section ("## Field
reference"); and every ``spec.…`` path the section names must exist in the CRD, at any depth,
so a renamed or removed field cannot linger there either.

Paths are written as the reference writes them: ``spec.<field>``, ``.`` into an object,
``[]`` into the items of a list (``spec.children[].id``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "deploy" / "crds" / "gateway.bifrost.dev_gatewayclassblueprints.yaml"
REFERENCE = REPO / "docs" / "blueprints.md"
SECTION = "## Field reference"


def _spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert isinstance(schema, dict)
    return schema


def _fields(schema: dict[str, Any], prefix: str, depth: int) -> list[str]:
    """Every field path under ``schema`` down to ``depth`` levels (1: its own properties)."""
    if depth == 0:
        return []
    out: list[str] = []
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        out.append(path)
        if sub.get("type") == "array":
            out += _fields(sub.get("items") or {}, f"{path}[]", depth - 1)
        else:
            out += _fields(sub, path, depth - 1)
    return out


def _reference_section() -> str:
    text = REFERENCE.read_text()
    assert SECTION in text, f"{REFERENCE.name} has no '{SECTION}' section"
    body = text.split(SECTION, 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.MULTILINE)[0]


def _named_paths(section: str) -> set[str]:
    """The ``spec.…`` field paths named in backticks in the section."""
    return set(re.findall(r"`(spec(?:\.[A-Za-z]+(?:\[\])?)+)`", section))


def test_the_walk_sees_both_levels() -> None:
    fields = _fields(_spec_schema(), "spec", 2)
    # a guard against a walk that silently finds nothing (a changed CRD layout)
    assert "spec.children" in fields
    assert "spec.children[].readyWhen" in fields
    assert "spec.tls.verify" in fields
    assert "spec.values.tenantKeys" in fields
    assert "spec.tls.verify.mode" not in fields  # third level: not required


def test_every_first_and_second_level_field_is_in_the_reference() -> None:
    named = _named_paths(_reference_section())
    missing = [f for f in _fields(_spec_schema(), "spec", 2) if f not in named]
    assert not missing, (
        f"docs/blueprints.md ('{SECTION}') does not describe {missing}: add a row for each"
    )


def test_the_reference_names_no_field_the_crd_lacks() -> None:
    every = set(_fields(_spec_schema(), "spec", 10))
    unknown = sorted(p for p in _named_paths(_reference_section()) if p not in every)
    assert not unknown, f"docs/blueprints.md names fields the CRD does not have: {unknown}"
