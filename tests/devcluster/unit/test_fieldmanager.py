"""Server-side apply and managedFields bookkeeping (table-driven where it reads well)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.fieldmanager import (
    ApplyConflict,
    ListTypeFn,
    apply,
    builtin_list_type,
    fields_to_paths,
    paths_to_fields,
    record_update,
)
from devcluster.schema import StructuralSchema

GATEWAYS_CRD = Path("/work/shared/gateway-api/v1.6.1/gateway.networking.k8s.io_gateways.yaml")
GV = "gateway.networking.k8s.io/v1"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def gateway_list_type() -> ListTypeFn:
    if not GATEWAYS_CRD.is_file():
        pytest.skip("shared CRDs not available")
    doc = yaml.load(GATEWAYS_CRD.read_text(), Loader=_LOADER)
    v1 = next(v for v in doc["spec"]["versions"] if v["name"] == "v1")
    return StructuralSchema(v1["schema"]["openAPIV3Schema"]).list_type


def gw(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": GV,
        "kind": "Gateway",
        "metadata": {"name": "g", "namespace": "default", **meta},
        "spec": spec
        if spec is not None
        else {
            "gatewayClassName": "bifrost",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }
    return obj


def do_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    *,
    force: bool = False,
    now: str = "2026-01-01T00:00:00Z",
    subresource: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    return apply(
        live,
        applied,
        manager=manager,
        force=force,
        api_version=GV,
        now=now,
        list_type=gateway_list_type(),
        subresource=subresource,
        **kw,
    )


def do_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    now: str = "2026-01-01T00:00:01Z",
    subresource: str | None = None,
) -> dict[str, Any]:
    """Write ``new`` over ``old`` as a PUT would and return the stored object."""
    out = copy.deepcopy(new)
    out.setdefault("metadata", {})
    mf = record_update(
        old,
        new,
        manager=manager,
        api_version=GV,
        now=now,
        list_type=gateway_list_type(),
        subresource=subresource,
    )
    out["metadata"]["managedFields"] = mf
    return out


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (e["manager"], e["operation"] + ("/" + e["subresource"] if "subresource" in e else "")): e
        for e in obj["metadata"].get("managedFields", [])
    }


def fields(obj: dict[str, Any], manager: str, op: str = "Apply") -> dict[str, Any]:
    return entries(obj)[(manager, op)]["fieldsV1"]  # type: ignore[no-any-return]


def edit(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)


# --------------------------------------------------------------------------------------------
# encoding


def test_create_by_apply_records_the_applied_field_set() -> None:
    out = do_apply(None, gw(labels={"app": "x"}), "bifrost")
    assert out["spec"] == gw()["spec"]
    assert out["metadata"]["managedFields"] == [
        {
            "manager": "bifrost",
            "operation": "Apply",
            "apiVersion": GV,
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:gatewayClassName": {},
                    "f:listeners": {
                        'k:{"name":"http"}': {
                            ".": {},
                            "f:name": {},
                            "f:port": {},
                            "f:protocol": {},
                        }
                    },
                },
            },
        }
    ]


def test_create_by_post_records_update_with_markers() -> None:
    obj = gw(labels={"app": "x"}, uid="u", resourceVersion="1", generation=1)
    obj["metadata"]["finalizers"] = ["f"]
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    mf = record_update(
        None, obj, manager="kubectl", api_version=GV, now="T", list_type=gateway_list_type()
    )
    assert mf == [
        {
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": GV,
            "time": "T",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:finalizers": {".": {}, 'v:"f"': {}},
                    "f:labels": {".": {}, "f:app": {}},
                },
                "f:spec": {
                    ".": {},
                    "f:gatewayClassName": {},
                    "f:listeners": {
                        ".": {},
                        'k:{"name":"http"}': {
                            ".": {},
                            "f:name": {},
                            "f:port": {},
                            "f:protocol": {},
                        },
                    },
                },
            },
        }
    ]


def test_fields_round_trip() -> None:
    paths = {
        ("f:spec",),
        ("f:spec", "f:x"),
        ("f:spec", "f:l", 'k:{"name":"a"}'),
        ("f:spec", "f:l", 'k:{"name":"a"}', "f:v"),
        ("f:metadata", "f:finalizers", 'v:"x"'),
        ("f:spec", "f:atomic", "i:0"),
    }
    encoded = paths_to_fields(paths)
    assert encoded["f:spec"]["."] == {}
    assert list(encoded["f:spec"]) == [".", "f:atomic", "f:l", "f:x"]
    assert fields_to_paths(encoded) == paths
    assert fields_to_paths(json.loads(json.dumps(encoded))) == paths


# --------------------------------------------------------------------------------------------
# apply: conflicts, co-ownership, force


def _two_managers() -> dict[str, Any]:
    live = do_apply(None, gw(), "bifrost")
    new = edit(live)
    new["spec"]["listeners"][0]["port"] = 8080
    new["spec"]["listeners"][0]["hostname"] = "a.example.com"
    return do_update(live, new, "kubectl-edit")


def test_update_takes_changed_fields_from_the_applier() -> None:
    obj = _two_managers()
    listener = 'k:{"name":"http"}'
    assert fields(obj, "bifrost")["f:spec"]["f:listeners"][listener] == {
        ".": {},
        "f:name": {},
        "f:protocol": {},
    }
    assert fields(obj, "kubectl-edit", "Update") == {
        "f:spec": {"f:listeners": {listener: {"f:hostname": {}, "f:port": {}}}}
    }


def test_conflict_single() -> None:
    obj = _two_managers()
    with pytest.raises(ApplyConflict) as e:
        do_apply(obj, gw(), "bifrost")
    assert str(e.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using '
        'gateway.networking.k8s.io/v1: .spec.listeners[name="http"].port'
    )
    assert e.value.conflicts == [("kubectl-edit", '.spec.listeners[name="http"].port')]
    assert e.value.causes() == [
        {
            "type": "FieldManagerConflict",
            "message": 'conflict with "kubectl-edit" using gateway.networking.k8s.io/v1',
            "field": '.spec.listeners[name="http"].port',
        }
    ]
    assert e.value.api_versions == {"kubectl-edit": GV}


def test_conflicts_grouped_per_manager() -> None:
    live = do_apply(None, gw(), "a")
    live = do_apply(
        live, gw({"gatewayClassName": "bifrost", "addresses": [{"value": "1.1.1.1"}]}), "b"
    )
    new = edit(live)
    new["spec"]["listeners"][0]["port"] = 81
    new["spec"]["listeners"][0]["protocol"] = "HTTPS"
    live = do_update(live, new, "c")
    desired = gw(
        {
            "gatewayClassName": "other",
            "addresses": [{"value": "2.2.2.2"}],
            "listeners": [{"name": "http", "port": 82, "protocol": "TLS"}],
        }
    )
    with pytest.raises(ApplyConflict) as e:
        do_apply(live, desired, "d")
    # "a" and "b" co-own gatewayClassName; "c" took the listener fields with its PUT.
    assert str(e.value) == (
        "Apply failed with 5 conflicts: "
        'conflicts with "a":\n'
        "- .spec.gatewayClassName\n"
        'conflicts with "b":\n'
        "- .spec.addresses\n"
        "- .spec.gatewayClassName\n"
        'conflicts with "c" using gateway.networking.k8s.io/v1:\n'
        '- .spec.listeners[name="http"].port\n'
        '- .spec.listeners[name="http"].protocol'
    )
    assert [(c["message"], c["field"]) for c in e.value.causes()] == [
        ('conflict with "a"', ".spec.gatewayClassName"),
        ('conflict with "b"', ".spec.addresses"),
        ('conflict with "b"', ".spec.gatewayClassName"),
        (
            'conflict with "c" using gateway.networking.k8s.io/v1',
            '.spec.listeners[name="http"].port',
        ),
        (
            'conflict with "c" using gateway.networking.k8s.io/v1',
            '.spec.listeners[name="http"].protocol',
        ),
    ]
    # Forcing takes everything; managers left without fields ("b", "c") disappear.
    out = do_apply(live, desired, "d", force=True)
    assert set(entries(out)) == {("a", "Apply"), ("d", "Apply")}
    assert "f:gatewayClassName" not in fields(out, "a")["f:spec"]


def test_force_moves_ownership() -> None:
    obj = _two_managers()
    out = do_apply(obj, gw(), "bifrost", force=True, now="2026-01-02T00:00:00Z")
    assert out["spec"]["listeners"][0]["port"] == 80
    assert out["spec"]["listeners"][0]["hostname"] == "a.example.com"
    listener = 'k:{"name":"http"}'
    assert fields(out, "bifrost")["f:spec"]["f:listeners"][listener] == {
        ".": {},
        "f:name": {},
        "f:port": {},
        "f:protocol": {},
    }
    assert fields(out, "kubectl-edit", "Update") == {
        "f:spec": {"f:listeners": {listener: {"f:hostname": {}}}}
    }
    assert entries(out)[("bifrost", "Apply")]["time"] == "2026-01-02T00:00:00Z"


def test_same_value_is_co_ownership() -> None:
    live = do_apply(None, gw(), "a")
    out = do_apply(live, gw(), "b")
    assert fields(out, "a") == fields(out, "b")
    assert out["spec"] == live["spec"]
    # Now "a" may not change what "b" co-owns ...
    changed = gw({"gatewayClassName": "other", "listeners": gw()["spec"]["listeners"]})
    with pytest.raises(ApplyConflict) as e:
        do_apply(out, changed, "a")
    assert e.value.conflicts == [("b", ".spec.gatewayClassName")]
    assert str(e.value).endswith('conflict with "b": .spec.gatewayClassName')


def test_own_update_entry_conflicts_with_own_apply() -> None:
    live = do_apply(None, gw(), "bifrost")
    new = edit(live)
    new["spec"]["gatewayClassName"] = "edited"
    live = do_update(live, new, "bifrost")
    with pytest.raises(ApplyConflict) as e:
        do_apply(live, gw(), "bifrost")
    assert e.value.conflicts == [("bifrost", ".spec.gatewayClassName")]


def test_reapply_is_a_noop_and_keeps_time() -> None:
    live = do_apply(None, gw(), "bifrost", now="T1")
    again = do_apply(live, gw(), "bifrost", now="T2")
    assert again == live
    assert entries(again)[("bifrost", "Apply")]["time"] == "T1"


def test_inputs_are_not_modified() -> None:
    live = _two_managers()
    applied = gw()
    before = copy.deepcopy((live, applied))
    do_apply(live, applied, "bifrost", force=True)
    assert (live, applied) == before


# --------------------------------------------------------------------------------------------
# apply: removal of fields no longer applied


def test_omitted_field_is_removed() -> None:
    live = do_apply(None, gw(labels={"a": "1", "b": "2"}), "bifrost")
    out = do_apply(live, gw(labels={"a": "1"}), "bifrost")
    assert out["metadata"]["labels"] == {"a": "1"}
    assert fields(out, "bifrost")["f:metadata"] == {"f:labels": {"f:a": {}}}


def test_omitted_field_owned_by_another_manager_stays() -> None:
    live = do_apply(None, gw(labels={"a": "1", "b": "2"}), "bifrost")
    live = do_apply(live, gw(labels={"b": "2"}), "other")
    out = do_apply(live, gw(labels={"a": "1"}), "bifrost")
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_omitted_list_item_is_removed_others_stay() -> None:
    two = gw(
        {
            "gatewayClassName": "bifrost",
            "listeners": [
                {"name": "a", "port": 80, "protocol": "HTTP"},
                {"name": "b", "port": 81, "protocol": "HTTP"},
            ],
        }
    )
    live = do_apply(None, two, "bifrost")
    # Someone else adds listener "c" with a PUT.
    new = edit(live)
    new["spec"]["listeners"].append({"name": "c", "port": 82, "protocol": "HTTP"})
    live = do_update(live, new, "kubectl")
    one = gw(
        {
            "gatewayClassName": "bifrost",
            "listeners": [{"name": "a", "port": 80, "protocol": "HTTP"}],
        }
    )
    out = do_apply(live, one, "bifrost")
    assert [listener["name"] for listener in out["spec"]["listeners"]] == ["a", "c"]


def test_unowned_server_defaults_survive_reapply() -> None:
    live = do_apply(None, gw(), "bifrost")
    live["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {"from": "Same"}}
    live["status"] = {"conditions": [{"type": "Accepted", "status": "Unknown"}]}
    out = do_apply(live, gw(), "bifrost")
    assert out["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    assert out["status"] == live["status"]


def test_list_order_follows_live_for_live_only_items() -> None:
    live = do_apply(
        None,
        gw(
            {
                "gatewayClassName": "x",
                "listeners": [
                    {"name": "a", "port": 1, "protocol": "HTTP"},
                    {"name": "b", "port": 2, "protocol": "HTTP"},
                ],
            }
        ),
        "m1",
    )
    applied = gw(
        {
            "gatewayClassName": "x",
            "listeners": [
                {"name": "c", "port": 3, "protocol": "HTTP"},
                {"name": "b", "port": 2, "protocol": "HTTP"},
            ],
        }
    )
    out = do_apply(live, applied, "m2")
    assert [item["name"] for item in out["spec"]["listeners"]] == ["a", "c", "b"]


# --------------------------------------------------------------------------------------------
# status subresource and ignored fields


def test_status_apply_touches_only_status() -> None:
    live = do_apply(None, gw(), "bifrost")
    applied = gw({"gatewayClassName": "ignored"})
    applied["status"] = {
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]
    }
    out = do_apply(live, applied, "bifrost-status", subresource="status")
    assert out["spec"] == live["spec"]
    assert out["status"] == applied["status"]
    e = entries(out)[("bifrost-status", "Apply/status")]
    assert e["subresource"] == "status"
    assert e["fieldsV1"] == {
        "f:status": {
            "f:conditions": {
                'k:{"type":"Accepted"}': {
                    ".": {},
                    "f:reason": {},
                    "f:status": {},
                    "f:type": {},
                }
            }
        }
    }
    # A different status manager changing the same condition conflicts.
    other = gw()
    other["status"] = {"conditions": [{"type": "Accepted", "status": "False", "reason": "No"}]}
    with pytest.raises(ApplyConflict) as err:
        do_apply(out, other, "lb", subresource="status")
    assert str(err.value).startswith(
        'Apply failed with 2 conflicts: conflicts with "bifrost-status" with subresource "status":'
    )


def test_ignored_fields_are_not_applied() -> None:
    applied = gw()
    applied["status"] = {"conditions": []}
    out = do_apply(None, applied, "bifrost", ignored_fields=("status",))
    assert "status" not in out
    assert "f:status" not in fields(out, "bifrost")


def test_status_update_records_subresource() -> None:
    live = do_apply(None, gw(), "bifrost")
    new = edit(live)
    new["status"] = {"addresses": [{"value": "127.0.0.1"}]}
    new["spec"]["gatewayClassName"] = "not looked at"
    mf = record_update(
        live,
        new,
        manager="lb",
        api_version=GV,
        now="T",
        list_type=gateway_list_type(),
        subresource="status",
    )
    lb = [m for m in mf if m["manager"] == "lb"]
    assert lb == [
        {
            "manager": "lb",
            "operation": "Update",
            "apiVersion": GV,
            "time": "T",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {".": {}, "f:addresses": {}}},
            "subresource": "status",
        }
    ]


# --------------------------------------------------------------------------------------------
# record_update


def test_noop_update_changes_nothing() -> None:
    live = do_apply(None, gw(), "bifrost", now="T1")
    new = edit(live)
    new["metadata"]["resourceVersion"] = "99"
    mf = record_update(
        live, new, manager="x", api_version=GV, now="T2", list_type=gateway_list_type()
    )
    assert mf == live["metadata"]["managedFields"]


def test_removed_fields_leave_every_manager_and_empty_managers_vanish() -> None:
    live = do_apply(None, gw(labels={"a": "1"}), "one")
    live = do_apply(live, gw(labels={"a": "1"}), "two")
    new = edit(live)
    del new["metadata"]["labels"]
    del new["spec"]
    mf = record_update(
        live, new, manager="x", api_version=GV, now="T", list_type=gateway_list_type()
    )
    assert mf == []


def test_update_merges_into_existing_update_entry() -> None:
    live = do_update(None, gw(), "kubectl", now="T1")
    new = edit(live)
    new["metadata"]["labels"] = {"z": "1"}
    out = do_update(live, new, "kubectl", now="T2")
    (entry,) = out["metadata"]["managedFields"]
    assert entry["time"] == "T2"
    assert entry["fieldsV1"]["f:metadata"] == {"f:labels": {".": {}, "f:z": {}}}
    assert "f:spec" in entry["fieldsV1"]


def test_update_with_another_api_version_is_another_manager() -> None:
    live = do_update(None, gw(), "kubectl", now="T1")
    new = edit(live)
    new["spec"]["gatewayClassName"] = "b"
    mf = record_update(
        live,
        new,
        manager="kubectl",
        api_version="gateway.networking.k8s.io/v1beta1",
        now="T2",
        list_type=gateway_list_type(),
    )
    assert [(m["manager"], m["apiVersion"]) for m in mf] == [
        ("kubectl", GV),
        ("kubectl", "gateway.networking.k8s.io/v1beta1"),
    ]


def test_reset_managed_fields() -> None:
    live = do_apply(None, gw(), "bifrost")
    new = edit(live)
    new["metadata"]["managedFields"] = [{}]
    assert (
        record_update(
            live, new, manager="x", api_version=GV, now="T", list_type=gateway_list_type()
        )
        == []
    )


def test_server_owned_metadata_is_never_recorded() -> None:
    live = do_apply(None, gw(), "bifrost")
    new = edit(live)
    new["metadata"].update(
        uid="u",
        resourceVersion="7",
        generation=3,
        creationTimestamp="2026-01-01T00:00:00Z",
        deletionTimestamp="2026-01-01T00:00:00Z",
    )
    mf = record_update(
        live, new, manager="x", api_version=GV, now="T", list_type=gateway_list_type()
    )
    assert [m["manager"] for m in mf] == ["bifrost"]


# --------------------------------------------------------------------------------------------
# built-in kinds


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        ("Pod", ("status", "conditions"), ("map", ("type",))),
        ("Namespace", ("status", "conditions"), ("map", ("type",))),
        ("Pod", ("spec", "containers"), ("map", ("name",))),
        ("Pod", ("spec", "containers", "*", "env"), ("map", ("name",))),
        ("Pod", ("spec", "containers", "*", "ports"), ("map", ("containerPort", "protocol"))),
        ("Pod", ("spec", "volumes"), ("map", ("name",))),
        ("Service", ("spec", "ports"), ("map", ("port", "protocol"))),
        ("Service", ("spec", "selector"), ("atomic", ())),
        ("ConfigMap", ("metadata", "ownerReferences"), ("map", ("uid",))),
        ("Lease", ("metadata", "finalizers"), ("set", ())),
        ("EndpointSlice", ("endpoints",), None),
        ("Pod", ("spec", "tolerations"), None),
        ("Pod", (), None),
    ],
)
def test_builtin_list_type(
    kind: str, path: tuple[str, ...], expected: tuple[str, tuple[str, ...]] | None
) -> None:
    assert builtin_list_type(kind)(path) == expected


def test_builtin_apply_conditions_and_finalizers() -> None:
    lt = builtin_list_type("Service")
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "finalizers": ["a"]},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "x"}},
    }
    out = apply(None, svc, manager="m", force=False, api_version="v1", now="T", list_type=lt)
    f = out["metadata"]["managedFields"][0]["fieldsV1"]
    assert f["f:metadata"] == {"f:finalizers": {'v:"a"': {}}}
    assert f["f:spec"] == {
        "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:protocol": {}}},
        "f:selector": {},
    }
    other = copy.deepcopy(svc)
    other["metadata"]["finalizers"] = ["b"]
    other["spec"] = {"selector": {"app": "x"}}
    out2 = apply(out, other, manager="n", force=False, api_version="v1", now="T", list_type=lt)
    assert out2["metadata"]["finalizers"] == ["a", "b"]
    assert out2["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]


def test_apply_never_takes_server_owned_metadata() -> None:
    live = do_apply(None, gw(), "bifrost")
    live["metadata"].update(uid="real", resourceVersion="5", generation=2)
    applied = gw(uid="fake", resourceVersion="1", generation=9, labels={"a": "1"})
    out = do_apply(live, applied, "bifrost")
    assert (out["metadata"]["uid"], out["metadata"]["resourceVersion"]) == ("real", "5")
    assert out["metadata"]["generation"] == 2
    assert fields(out, "bifrost")["f:metadata"] == {"f:labels": {"f:a": {}}}
