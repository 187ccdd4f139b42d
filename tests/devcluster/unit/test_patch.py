"""Merge, JSON and strategic merge patch semantics of the devcluster (table-driven)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devcluster.patch import (
    PatchError,
    PatchTestFailed,
    json_patch,
    list_merge_strategy,
    merge_patch,
    strategic_merge_patch,
)

# --------------------------------------------------------------------------------------------
# RFC 7386 (the examples of its appendix A, plus a few Kubernetes-shaped ones)

MERGE_CASES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    (
        {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}},
        {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"x": [3]}},
        {"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"x": [3]}},
    ),
]


@pytest.mark.parametrize(("target", "patch", "expected"), MERGE_CASES)
def test_merge_patch(target: Any, patch: Any, expected: Any) -> None:
    before_t, before_p = copy.deepcopy(target), copy.deepcopy(patch)
    assert merge_patch(target, patch) == expected
    assert target == before_t and patch == before_p


def test_merge_patch_result_is_independent_of_inputs() -> None:
    target = {"a": {"b": [1]}, "c": {"d": 1}}
    out = merge_patch(target, {"c": {"e": 2}})
    out["a"]["b"].append(2)
    out["c"]["d"] = 9
    assert target == {"a": {"b": [1]}, "c": {"d": 1}}


# --------------------------------------------------------------------------------------------
# RFC 6902

DOC: dict[str, Any] = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2, 3]}}

JSON_PATCH_CASES: list[tuple[list[dict[str, Any]], Any]] = [
    (
        [{"op": "add", "path": "/metadata/labels/b", "value": "2"}],
        {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"list": [1, 2, 3]}},
    ),
    ([{"op": "remove", "path": "/spec/list/0"}], {**DOC, "spec": {"list": [2, 3]}}),
    ([{"op": "replace", "path": "/spec/list", "value": []}], {**DOC, "spec": {"list": []}}),
    ([{"op": "add", "path": "/spec/list/-", "value": 4}], {**DOC, "spec": {"list": [1, 2, 3, 4]}}),
    (
        [{"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/z"}],
        {**DOC, "metadata": {"labels": {"z": "1"}}},
    ),
    (
        [{"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/z"}],
        {**DOC, "metadata": {"labels": {"a": "1", "z": "1"}}},
    ),
    (
        [
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "remove", "path": "/metadata/labels/a"},
        ],
        {**DOC, "metadata": {"labels": {}}},
    ),
    ([], DOC),
]


@pytest.mark.parametrize(("ops", "expected"), JSON_PATCH_CASES)
def test_json_patch(ops: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(DOC)
    assert json_patch(DOC, ops) == expected
    assert before == DOC


def test_json_patch_failed_test_is_422() -> None:
    ops = [
        {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
        {"op": "test", "path": "/metadata/labels/a", "value": "1"},
    ]
    with pytest.raises(PatchTestFailed) as e:
        json_patch(DOC, ops)
    assert e.value.code == 422
    assert str(e.value) == "testing value /metadata/labels/a failed: test failed"
    assert DOC["metadata"]["labels"]["a"] == "1"


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ([{"op": "remove", "path": "/spec/missing"}], 422),
        ([{"op": "replace", "path": "/nope/x", "value": 1}], 422),
        ([{"op": "remove", "path": "/spec/list/7"}], 422),
        ([{"op": "frobnicate", "path": "/a"}], 422),
        ([{"op": "add", "path": "/a"}], 422),
        ([{"op": "move", "path": "/a"}], 422),
        ([{"path": "/a"}], 422),
        (["not an op"], 400),
        ({"op": "add"}, 400),
    ],
)
def test_json_patch_errors(ops: Any, code: int) -> None:
    with pytest.raises(PatchError) as e:
        json_patch(DOC, ops)
    assert e.value.code == code
    assert not isinstance(e.value, PatchTestFailed)


# --------------------------------------------------------------------------------------------
# strategic merge patch

POD: dict[str, Any] = {
    "metadata": {
        "name": "p",
        "labels": {"app": "x"},
        "finalizers": ["a", "b"],
        "ownerReferences": [
            {"uid": "u1", "kind": "ReplicaSet", "name": "rs1"},
            {"uid": "u2", "kind": "Job", "name": "j"},
        ],
    },
    "spec": {
        "containers": [
            {
                "name": "a",
                "image": "a:1",
                "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                "ports": [{"containerPort": 80, "name": "http"}],
                "args": ["--one"],
            },
            {"name": "b", "image": "b:1"},
        ],
        "volumes": [{"name": "v1", "emptyDir": {}}],
        "tolerations": [{"key": "k1"}],
    },
    "status": {
        "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Initialized", "status": "True"},
        ]
    },
}

SVC: dict[str, Any] = {
    "spec": {
        "selector": {"app": "x"},
        "ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}],
        "externalIPs": ["1.1.1.1"],
    }
}


def _at(obj: Any, *path: Any) -> Any:
    for p in path:
        obj = obj[p]
    return obj


SMP_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], tuple[Any, ...], Any]] = [
    # (id, kind, target, patch, path into result, expected value there)
    (
        "finalizer added comes first (Go order)",
        "Pod",
        POD,
        {"metadata": {"finalizers": ["c"]}},
        ("metadata", "finalizers"),
        ["c", "a", "b"],
    ),
    (
        "finalizers are a set",
        "Pod",
        POD,
        {"metadata": {"finalizers": ["b", "a"]}},
        ("metadata", "finalizers"),
        ["b", "a"],
    ),
    (
        "deleteFromPrimitiveList",
        "Pod",
        POD,
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
        ("metadata", "finalizers"),
        ["b"],
    ),
    (
        "delete and add finalizers at once",
        "ConfigMap",
        POD,
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "b"], "finalizers": ["z"]}},
        ("metadata", "finalizers"),
        ["z"],
    ),
    (
        "conditions merged by type",
        "Pod",
        POD,
        {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ok"}]}},
        ("status", "conditions"),
        [
            {"type": "Ready", "status": "True", "reason": "Ok"},
            {"type": "Initialized", "status": "True"},
        ],
    ),
    (
        "new condition prepended",
        "Service",
        POD,
        {"status": {"conditions": [{"type": "New", "status": "True"}]}},
        ("status", "conditions"),
        [
            {"type": "New", "status": "True"},
            {"type": "Ready", "status": "False"},
            {"type": "Initialized", "status": "True"},
        ],
    ),
    (
        "containers merged by name",
        "Pod",
        POD,
        {"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}},
        ("spec", "containers"),
        [
            POD["spec"]["containers"][0],
            {"name": "b", "image": "b:2"},
            {"name": "c", "image": "c:1"},
        ],
    ),
    (
        "env merged by name inside a container",
        "Pod",
        POD,
        {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}]}]}},
        ("spec", "containers", 0, "env"),
        [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}],
    ),
    (
        "container ports merged by containerPort",
        "Pod",
        POD,
        {
            "spec": {
                "containers": [{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]
            }
        },
        ("spec", "containers", 0, "ports"),
        [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
    ),
    (
        "lists without merge key are replaced",
        "Pod",
        POD,
        {"spec": {"containers": [{"name": "a", "args": ["--two"]}], "tolerations": []}},
        ("spec",),
        {
            **POD["spec"],
            "containers": [
                {**POD["spec"]["containers"][0], "args": ["--two"]},
                POD["spec"]["containers"][1],
            ],
            "tolerations": [],
        },  # noqa: E501
    ),
    (
        "$patch: delete removes a list item",
        "Pod",
        POD,
        {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}},
        ("spec", "containers"),
        [{"name": "b", "image": "b:1"}],
    ),
    (
        "$patch: replace replaces a list",
        "Pod",
        POD,
        {
            "spec": {
                "volumes": [{"name": "v2", "secret": {"secretName": "s"}}, {"$patch": "replace"}]
            }
        },
        ("spec", "volumes"),
        [{"name": "v2", "secret": {"secretName": "s"}}],
    ),
    (
        "$patch: replace replaces a map",
        "Service",
        SVC,
        {"spec": {"selector": {"app": "y", "$patch": "replace"}}},
        ("spec", "selector"),
        {"app": "y"},
    ),
    (
        "$patch: delete empties a map",
        "Pod",
        POD,
        {"metadata": {"labels": {"$patch": "delete"}}},
        ("metadata", "labels"),
        {},
    ),
    (
        "$patch: merge is a plain merge",
        "Pod",
        POD,
        {"metadata": {"labels": {"$patch": "merge", "b": "2"}}},
        ("metadata", "labels"),
        {"app": "x", "b": "2"},
    ),
    (
        "ownerReferences merged by uid",
        "ConfigMap",
        POD,
        {"metadata": {"ownerReferences": [{"uid": "u2", "controller": True}]}},
        ("metadata", "ownerReferences"),
        [
            {"uid": "u1", "kind": "ReplicaSet", "name": "rs1"},
            {"uid": "u2", "kind": "Job", "name": "j", "controller": True},
        ],
    ),
    (
        "Service ports merged by port",
        "Service",
        SVC,
        {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}},
        ("spec", "ports"),
        [{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}],
    ),
    (
        "Service externalIPs replaced",
        "Service",
        SVC,
        {"spec": {"externalIPs": ["2.2.2.2"]}},
        ("spec", "externalIPs"),
        ["2.2.2.2"],
    ),
    (
        "null deletes",
        "Pod",
        POD,
        {"metadata": {"labels": {"app": None, "new": "1"}}},
        ("metadata", "labels"),
        {"new": "1"},
    ),
    (
        "$retainKeys clears other keys",
        "Pod",
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        ("spec", "strategy"),
        {"type": "Recreate"},
    ),
    (
        "$setElementOrder reorders",
        "Pod",
        POD,
        {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}},
        ("spec", "containers"),
        [POD["spec"]["containers"][1], POD["spec"]["containers"][0]],
    ),
    (
        "$setElementOrder with a patch list",
        "Pod",
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
                "containers": [{"name": "c", "image": "c:1"}],
            }
        },
        ("spec", "containers"),
        [{"name": "c", "image": "c:1"}, POD["spec"]["containers"][0], POD["spec"]["containers"][1]],
    ),
    (
        "new values lose directives and nulls",
        "Pod",
        {"metadata": {"name": "x"}},
        {
            "spec": {
                "containers": [{"name": "a", "image": None, "$patch": "merge"}],
                "x": {"y": None},
            }
        },
        ("spec",),
        {"containers": [{"name": "a"}], "x": {}},
    ),
    (
        "type change takes the patch value",
        "Pod",
        {"spec": {"x": "scalar"}},
        {"spec": {"x": {"a": 1}}},
        ("spec", "x"),
        {"a": 1},
    ),
]


@pytest.mark.parametrize(
    ("kind", "target", "patch", "path", "expected"),
    [c[1:] for c in SMP_CASES],
    ids=[c[0] for c in SMP_CASES],
)
def test_strategic_merge_patch(
    kind: str, target: dict[str, Any], patch: dict[str, Any], path: tuple[Any, ...], expected: Any
) -> None:
    before_t, before_p = copy.deepcopy(target), copy.deepcopy(patch)
    out = strategic_merge_patch(target, patch, kind=kind)
    assert _at(out, *path) == expected
    assert target == before_t and patch == before_p


def test_strategic_merge_patch_leaves_the_rest_alone() -> None:
    out = strategic_merge_patch(POD, {"metadata": {"labels": {"b": "2"}}}, kind="Pod")
    assert out["spec"] == POD["spec"]
    assert out["status"] == POD["status"]
    assert out["metadata"]["finalizers"] == ["a", "b"]


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"spec": {"containers": [{"image": "no-name"}]}}, 422),
        ({"spec": {"containers": [{"$patch": "delete"}]}}, 422),
        ({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}, 422),
        ({"spec": {"containers": [{"$patch": "merge"}]}}, 422),
        ({"metadata": {"labels": {"$patch": "bogus"}}}, 422),
        ({"metadata": {"labels": {"$retainKeys": ["x"], "y": "1"}}}, 422),
        ({"metadata": {"labels": {"$retainKeys": "x"}}}, 400),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, 400),
    ],
)
def test_strategic_merge_patch_errors(patch: dict[str, Any], code: int) -> None:
    with pytest.raises(PatchError) as e:
        strategic_merge_patch(POD, patch, kind="Pod")
    assert e.value.code == code


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        ("Pod", ("metadata", "finalizers"), ""),
        ("Pod", ("metadata", "ownerReferences"), "uid"),
        ("Pod", ("status", "conditions"), "type"),
        ("Namespace", ("status", "conditions"), "type"),
        ("Pod", ("spec", "containers"), "name"),
        ("Pod", ("spec", "initContainers"), "name"),
        ("Pod", ("spec", "volumes"), "name"),
        ("Pod", ("spec", "containers", "env"), "name"),
        ("Pod", ("spec", "containers", "ports"), "containerPort"),
        ("Service", ("spec", "ports"), "port"),
        ("EndpointSlice", ("ports",), None),
        ("Pod", ("spec", "tolerations"), None),
        ("Namespace", ("spec", "finalizers"), None),
        ("Pod", (), None),
    ],
)
def test_list_merge_strategy(kind: str, path: tuple[str, ...], expected: str | None) -> None:
    assert list_merge_strategy(kind, path) == expected


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        (
            [{"op": "remove", "path": "/spec/missing"}],
            'remove operation does not apply: doc is missing path: "/spec/missing": missing value',
        ),
        (
            [{"op": "move", "from": "/nope", "path": "/x"}],
            'move operation does not apply: doc is missing from path: "/nope": missing value',
        ),
    ],
)
def test_json_patch_error_messages(ops: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PatchError) as e:
        json_patch(DOC, ops)
    assert str(e.value) == message
