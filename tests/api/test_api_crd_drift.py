"""The CRDs in deploy/crds and the pydantic models in bifrost/api must describe the same objects.

Both are written by hand (the CRDs for humans and ``kubectl explain``, the models for code), so
this test walks each CRD's ``openAPIV3Schema`` and the model's JSON schema side by side and
reports every difference by path: property names, required fields, types, enums, formats
(date-time), bounds, patterns, defaults, list types and map keys, preserved unknown fields and
CEL rules — recursively through objects and array items.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bifrost.api import GatewayClassBlueprint, GatewayClassConfig, GatewayConfig

CRDS = Path(__file__).resolve().parents[2] / "deploy" / "crds"

CASES: list[tuple[str, type[BaseModel]]] = [
    ("gateway.bifrost.dev_gatewayclassblueprints.yaml", GatewayClassBlueprint),
    ("gateway.bifrost.dev_gatewayclassconfigs.yaml", GatewayClassConfig),
    ("gateway.bifrost.dev_gatewayconfigs.yaml", GatewayConfig),
]

# Keywords compared as they are; everything else (descriptions, titles, int formats) is not part
# of the contract between the two.
_SCALAR_KEYS = (
    "type",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
)
_ROOT_ONLY = ("apiVersion", "kind", "metadata")  # owned by the API machinery, not the CRD


def load_crd(filename: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / filename).read_text())
    assert isinstance(crd, dict)
    return crd


def crd_schema(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON-schema node with ``$ref`` and ``Optional`` (``anyOf [X, null]``) inlined."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v != {"type": "null"}]
        assert len(variants) == 1, f"unions are not expressible in a structural schema: {variants}"
        node = {**_resolve(variants[0], defs), **node}
    if "properties" in node:
        node["properties"] = {k: _resolve(v, defs) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        node["items"] = _resolve(node["items"], defs)
    return node


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _resolve(raw, raw.get("$defs", {}))


def _norm_default(value: Any) -> Any:
    return None if value in (None, [], {}) else value


def _norm(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: node[k] for k in _SCALAR_KEYS if k in node}
    if node.get("format") == "date-time":
        out["format"] = "date-time"
    if "enum" in node:
        out["enum"] = sorted(node["enum"])
    if _norm_default(node.get("default")) is not None:
        out["default"] = node["default"]
    return out


def diff(
    crd: dict[str, Any], model: dict[str, Any], path: str = "", *, root: bool = False
) -> list[str]:
    """Every difference between a CRD schema node and a model schema node, by path."""
    problems: list[str] = []
    here = path or "(root)"
    a, b = _norm(crd), _norm(model)
    if root:
        a.pop("type", None), b.pop("type", None)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            problems.append(f"{here}: {key}: CRD {a.get(key)!r} != model {b.get(key)!r}")
    req_a, req_b = set(crd.get("required", ())), set(model.get("required", ()))
    if req_a != req_b:
        problems.append(f"{here}: required: CRD {sorted(req_a)} != model {sorted(req_b)}")
    props_a = dict(crd.get("properties") or {})
    props_b = dict(model.get("properties") or {})
    if root:
        for k in _ROOT_ONLY:
            props_a.pop(k, None), props_b.pop(k, None)
    # a dict[str, Any] in the model is an object with arbitrary keys; in the CRD that is
    # x-kubernetes-preserve-unknown-fields (compared above), never an explicit property list
    for name in sorted(set(props_a) - set(props_b)):
        problems.append(f"{here}: property {name!r} is in the CRD but not in the model")
    for name in sorted(set(props_b) - set(props_a)):
        problems.append(f"{here}: property {name!r} is in the model but not in the CRD")
    for name in sorted(set(props_a) & set(props_b)):
        sub = f"{path}.{name}" if path else name
        problems += diff(props_a[name], props_b[name], sub)
    if "items" in crd or "items" in model:
        if not (isinstance(crd.get("items"), dict) and isinstance(model.get("items"), dict)):
            problems.append(f"{here}: items: only one side declares array items")
        else:
            problems += diff(crd["items"], model["items"], f"{path}[]")
    return problems


@pytest.mark.parametrize(("filename", "model"), CASES, ids=[m.__name__ for _, m in CASES])
def test_crd_schema_matches_model(filename: str, model: type[BaseModel]) -> None:
    problems = diff(crd_schema(load_crd(filename)), model_schema(model), root=True)
    assert not problems, "CRD and model drifted:\n" + "\n".join(problems)


@pytest.mark.parametrize(("filename", "model"), CASES, ids=[m.__name__ for _, m in CASES])
def test_crd_names_match_model(filename: str, model: type[BaseModel]) -> None:
    crd = load_crd(filename)
    kind = model.model_fields["kind"].default
    api_version = model.model_fields["api_version"].default
    assert crd["spec"]["names"]["kind"] == kind
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.{crd['spec']['group']}"
    assert filename == f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"
    (version,) = crd["spec"]["versions"]
    assert (
        api_version == f"{crd['spec']['group']}/{version['name']}" == "gateway.bifrost.dev/v1alpha1"
    )
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Accepted", "Age"} <= columns


def _walk_properties(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, sub in (node.get("properties") or {}).items():
        p = f"{path}.{name}" if path else name
        out.append((p, sub))
        out += _walk_properties(sub, p)
    if isinstance(node.get("items"), dict):
        out += _walk_properties(node["items"], f"{path}[]")
    return out


@pytest.mark.parametrize("filename", [c[0] for c in CASES])
def test_every_crd_field_is_described(filename: str) -> None:
    schema = crd_schema(load_crd(filename))
    missing = [
        p for p, sub in _walk_properties(schema) if p != "metadata" and not sub.get("description")
    ]
    assert not missing, f"fields without a description: {missing}"
    for p, sub in [("(root)", schema), *_walk_properties(schema)]:
        for rule in sub.get("x-kubernetes-validations", ()):
            assert rule.get("message"), f"{p}: CEL rule without a message: {rule['rule']}"


# ---- the checker itself must catch drift, or the tests above prove nothing


def _blueprint_spec(crd: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = crd_schema(crd)["properties"]["spec"]["properties"]
    return spec


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.pop("addresses"), "property 'addresses' is in the model but not in the CRD"),
        (
            lambda s: s["children"]["items"]["properties"].update(extra={"type": "string"}),
            "property 'extra' is in the CRD but not in the model",
        ),
        (
            lambda s: s["children"]["items"]["required"].remove("template"),
            "spec.children[]: required",
        ),
        (
            lambda s: s["children"]["items"]["properties"]["id"].update(maxLength=64),
            "spec.children[].id: maxLength",
        ),
        (
            lambda s: s["tls"]["properties"]["verify"]["properties"]["mode"]["enum"].append("x"),
            "spec.tls.verify.mode: enum",
        ),
        (
            lambda s: s["tls"]["properties"]["drainSeconds"].update(type="string"),
            "spec.tls.drainSeconds: type",
        ),
        (
            lambda s: s["routeChildren"].update({"x-kubernetes-list-type": "atomic"}),
            "spec.routeChildren: x-kubernetes-list-type",
        ),
        (
            lambda s: s["tls"]["properties"]["maintenanceWindows"]["items"]["properties"][
                "timezone"
            ].update(default="Europe/Berlin"),
            "spec.tls.maintenanceWindows[].timezone: default",
        ),
        (
            lambda s: s["defaults"].pop("x-kubernetes-preserve-unknown-fields"),
            "spec.defaults: x-kubernetes-preserve-unknown-fields",
        ),
    ],
)
def test_drift_checker_catches_drift(mutate: Any, expected: str) -> None:
    crd = copy.deepcopy(load_crd(CASES[0][0]))
    mutate(_blueprint_spec(crd))
    problems = diff(crd_schema(crd), model_schema(GatewayClassBlueprint), root=True)
    assert any(expected in p for p in problems), problems


def test_drift_checker_covers_policies_and_conditions() -> None:
    crd = copy.deepcopy(load_crd(CASES[2][0]))
    props = crd_schema(crd)["properties"]
    props["spec"]["properties"]["targetRef"]["properties"]["kind"]["enum"].append("HTTPRoute")
    props["status"]["properties"]["conditions"]["items"]["properties"]["reason"]["pattern"] = ".*"
    props["status"]["properties"]["attachedTo"]["items"]["required"].append("namespace")
    props["spec"]["properties"]["targetRef"]["x-kubernetes-validations"][0]["rule"] = "true"
    problems = diff(crd_schema(crd), model_schema(GatewayConfig), root=True)
    for expected in (
        "spec.targetRef.kind: enum",
        "status.conditions[].reason: pattern",
        "status.attachedTo[]: required",
        "spec.targetRef: x-kubernetes-validations",
    ):
        assert any(expected in p for p in problems), (expected, problems)


def _nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path or "(root)", node)]
    for name, sub in (node.get("properties") or {}).items():
        out += _nodes(sub, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        out += _nodes(node["items"], f"{path}[]")
    return out


@pytest.mark.parametrize("filename", [c[0] for c in CASES])
def test_crd_schemas_are_structural(filename: str) -> None:
    """The rules a real API server applies to a v1 CRD schema (the devcluster is lenient)."""
    problems = []
    for path, node in _nodes(crd_schema(load_crd(filename))):
        if "type" not in node:
            problems.append(f"{path}: no type")
        list_type = node.get("x-kubernetes-list-type")
        items = node.get("items") or {}
        if list_type == "map":
            keys = node.get("x-kubernetes-list-map-keys") or []
            if not keys or not set(keys) <= set(items.get("required", ())):
                problems.append(f"{path}: list-map keys {keys} must be required in the items")
        if list_type == "set" and items.get("type") in ("object", "array"):
            problems.append(f"{path}: a set's items must be scalars")
        if node.get("x-kubernetes-preserve-unknown-fields") and node.get("properties"):
            problems.append(f"{path}: values objects declare no properties")
        for forbidden in ("oneOf", "anyOf", "allOf", "not", "additionalProperties", "$ref"):
            if forbidden in node:
                problems.append(f"{path}: {forbidden} is not used in bifrost's CRDs")
        if "default" in node and "enum" in node and node["default"] not in node["enum"]:
            problems.append(f"{path}: default {node['default']!r} is not in the enum")
    assert not problems, "\n".join(problems)
