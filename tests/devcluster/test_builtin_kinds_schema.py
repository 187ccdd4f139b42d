"""Section "built-in kinds", in process: the schemas derived from the client's models, the fast
paths of their structural schemas (the same answers as the general walkers), defaults' helpers,
table ages and the OpenAPI document cache."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from devcluster.kinds import builtin_types
from devcluster.kinds.columns import human_duration
from devcluster.kinds.defaults import canonical_quantity, image_pull_policy
from devcluster.kinds.resource_type import CREATE_ONLY
from devcluster.kinds.schemas import kind_schema_name, storage_schema
from devcluster.openapi import openapi_v3_group_version
from devcluster.registry import Registry, resource_type_from_crd
from devcluster.schema import StructuralSchema

STORED = [rt for rt in builtin_types() if rt.schema_source is not None]


def test_every_stored_kind_but_crds_has_a_schema() -> None:
    kinds = {(rt.group, rt.kind) for rt in builtin_types() if rt.verbs != CREATE_ONLY}
    with_schema = {(rt.group, rt.kind) for rt in STORED if rt.schema(rt.versions[0]) is not None}
    assert kinds - with_schema == {("apiextensions.k8s.io", "CustomResourceDefinition")}


def test_schema_shapes_from_the_models() -> None:
    schema = storage_schema("apps", "v1", "Deployment")
    assert schema is not None
    spec = schema.schema["properties"]["spec"]
    assert spec["required"] == ["selector", "template"]
    assert spec["properties"]["replicas"] == {"type": "integer"}
    rolling = spec["properties"]["strategy"]["properties"]["rollingUpdate"]["properties"]
    assert rolling["maxSurge"] == {"x-kubernetes-int-or-string": True}
    container = spec["properties"]["template"]["properties"]["spec"]["properties"]["containers"]
    limits = container["items"]["properties"]["resources"]["properties"]["limits"]
    assert limits == {"type": "object", "additionalProperties": {}}  # Quantity: any scalar
    secret = storage_schema("", "v1", "Secret")
    assert secret is not None
    assert secret.schema["properties"]["data"]["additionalProperties"] == {
        "type": "string",
        "format": "byte",
    }
    # server-side apply keeps the built-in list semantics
    assert schema.list_type(("spec", "template", "spec", "containers")) == ("map", ("name",))
    assert kind_schema_name("", "v1", "Event") == "io.k8s.api.core.v1.Event"
    assert kind_schema_name("events.k8s.io", "v1", "Event") == "io.k8s.api.events.v1.Event"
    assert kind_schema_name("autoscaling", "v2", "HorizontalPodAutoscaler") == (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"
    )


def _noisy(s: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    """A value roughly shaped by ``s``, with nulls, wrong types and unknown fields mixed in."""
    r = rng.random()
    if r < 0.05:
        return None
    if r < 0.08:
        return rng.choice([1, "x", 2.5, True, [1], {"junk": 1}])
    if s.get("x-kubernetes-int-or-string"):
        return rng.choice([1, "25%"])
    t = s.get("type")
    if t == "object" and depth < 7:
        out: dict[str, Any] = {}
        for k, sub in (s.get("properties") or {}).items():
            if rng.random() < 0.3:
                out[k] = _noisy(sub, rng, depth + 1)
        if isinstance(s.get("additionalProperties"), dict):
            for i in range(rng.randint(0, 2)):
                out[f"k{i}"] = _noisy(s["additionalProperties"], rng, depth + 1)
        if rng.random() < 0.2:
            out["unknownField"] = {"a": [1, None]}
        return out
    if t == "array" and depth < 7:
        return [_noisy(s["items"], rng, depth + 1) for _ in range(rng.randint(0, 2))]
    if t == "string":
        return rng.choice(["a", "2024-01-01T00:00:00Z", "not a time", "aGVsbG8=", "%%"])
    if t == "integer":
        return rng.choice([0, 3, 1.0, 1.5])
    if t == "boolean":
        return rng.choice([True, False])
    return rng.choice([1, "1Gi", 0.5])


@pytest.mark.parametrize("rt", STORED, ids=[f"{rt.group or 'core'}/{rt.kind}" for rt in STORED])
def test_fast_paths_answer_as_the_general_walkers(rt: Any) -> None:
    fast = rt.schema(rt.versions[0])
    general = StructuralSchema(fast.schema)
    rng = random.Random(rt.kind)
    for _ in range(60):
        obj = _noisy(fast.schema, rng)
        if not isinstance(obj, dict):
            obj = {}
        obj["metadata"] = {"name": "x", "junk": None}
        before = copy.deepcopy(obj)
        pruned = fast.prune(obj)
        assert pruned == general.prune(obj)
        defaulted = fast.apply_defaults(pruned)
        assert defaulted == general.apply_defaults(pruned)
        assert fast.validate(obj) == general.validate(obj)
        assert fast.validate(defaulted) == general.validate(defaulted)
        assert obj == before  # nothing changed in place


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (1, "1"),
        (0, "0"),
        (0.5, "500m"),
        (1.5, "1500m"),
        (2.0, "2"),
        (2000, "2k"),
        (3_000_000, "3M"),
        (0.0001, "100u"),
        ("250m", "250m"),
    ],
)
def test_numeric_quantities_become_canonical_strings(given: Any, stored: str) -> None:
    assert canonical_quantity(given) == stored


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry.test:5000/team/app", "Always"),
        ("registry.test:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (5, "5s"),
        (119, "119s"),
        (200, "3m20s"),
        (600, "10m"),
        (3 * 3600 + 1800, "3h30m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (40 * 86400, "40d"),
        (3 * 365 * 86400 + 20 * 86400, "3y20d"),
    ],
)
def test_ages_read_as_kubectl_prints_them(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_documents_are_cached_until_a_crd_changes() -> None:
    registry = Registry()
    apps = openapi_v3_group_version(registry, "apps", "v1")
    assert apps is openapi_v3_group_version(Registry(), "apps", "v1")  # shared by clusters
    crd: dict[str, Any] = {
        "metadata": {"name": "things.cache.example.com"},
        "spec": {
            "group": "cache.example.com",
            "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    registry.add(resource_type_from_crd(crd))
    first = openapi_v3_group_version(registry, "cache.example.com", "v1")
    assert first is openapi_v3_group_version(registry, "cache.example.com", "v1")
    registry.add(resource_type_from_crd(crd))  # what a CRD update does
    second = openapi_v3_group_version(registry, "cache.example.com", "v1")
    assert second is not None and second is not first
    assert "com.example.cache.v1.Thing" in second["components"]["schemas"]
