"""bifrost's CRDs install into the devcluster and the API server validates objects against them.

A real client over HTTP, as the controller will use it: what the server stores (after pruning
and defaulting) must parse through the models into exactly what the input parsed into — that
checks the CRD defaults and the model defaults agree — and invalid objects are refused with 422
naming the field.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_examples import CLASS_WIDE_CONFIG, EDGE_BLUEPRINT, GATEWAY_CONFIG, MESH_BLUEPRINT

from bifrost.api import (
    API_VERSION,
    BlueprintConditionType,
    BlueprintReason,
    GatewayClassBlueprint,
    GatewayClassConfig,
    GatewayConfig,
    PolicyAttachment,
    PolicyReason,
    PolicyStatus,
    condition,
    parse_resource,
    set_condition,
)
from bifrost.kube.client import KubeClient
from bifrost.kube.errors import Invalid
from devcluster.server import DevCluster

CRDS = Path(__file__).resolve().parents[2] / "deploy" / "crds"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, Path]]:
    dc = DevCluster(crd_paths=[CRDS])
    dc.start()
    try:
        yield dc, dc.write_kubeconfig(tmp_path_factory.mktemp("api-kube") / "config")
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"


@pytest.fixture(scope="module")
def kube(cluster: tuple[DevCluster, Path]) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(cluster[1])
    for ns in ("bifrost-system", "shop"):
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        yield client
    finally:
        client.close()


def _renamed(obj: dict[str, Any], name: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["name"] = name
    return out


def test_kinds_are_served_with_their_scope(kube: KubeClient) -> None:
    assert kube.is_namespaced(API_VERSION, "GatewayClassBlueprint") is False
    assert kube.is_namespaced(API_VERSION, "GatewayClassConfig") is True
    assert kube.is_namespaced(API_VERSION, "GatewayConfig") is True


@pytest.mark.parametrize(
    ("model", "example"),
    [
        (GatewayClassBlueprint, EDGE_BLUEPRINT),
        (GatewayClassBlueprint, MESH_BLUEPRINT),
        (GatewayClassConfig, CLASS_WIDE_CONFIG),
        (GatewayConfig, GATEWAY_CONFIG),
    ],
    ids=["edge", "mesh", "class-config", "gateway-config"],
)
def test_examples_round_trip_through_the_server(
    kube: KubeClient, model: type[Any], example: dict[str, Any]
) -> None:
    created = kube.create(example)
    stored = kube.get(
        API_VERSION,
        example["kind"],
        example["metadata"]["name"],
        example["metadata"].get("namespace"),
    )
    assert stored is not None and stored["metadata"]["uid"] == created["metadata"]["uid"]
    parsed = parse_resource(model, stored)
    expected = parse_resource(model, example)
    assert parsed.spec == expected.spec  # server defaults == model defaults
    assert parsed.metadata.generation == 1


def test_server_defaults_match_model_defaults(kube: KubeClient) -> None:
    obj = _renamed(MESH_BLUEPRINT, "defaults")
    obj["spec"]["tls"] = {
        "certificateTemplate": "x",
        "verify": {},
        "maintenanceWindows": [{"days": ["Sat"], "start": "01:00", "end": "05:00"}],
    }
    stored = kube.create(obj)
    tls = stored["spec"]["tls"]
    assert tls["verify"] == {"mode": "tlsProbe", "timeoutSeconds": 60}
    assert tls["maintenanceWindows"][0]["timezone"] == "UTC"
    assert (
        parse_resource(GatewayClassBlueprint, stored).spec
        == parse_resource(GatewayClassBlueprint, obj).spec
    )


def test_unknown_fields_are_pruned_except_in_values(kube: KubeClient) -> None:
    obj = _renamed(MESH_BLUEPRINT, "pruned")
    obj["spec"]["children"][0]["colour"] = "blue"
    obj["spec"]["defaults"] = {"anything": {"goes": [1, 2]}}
    stored = kube.create(obj)
    assert "colour" not in stored["spec"]["children"][0]
    assert stored["spec"]["defaults"] == {"anything": {"goes": [1, 2]}}
    parse_resource(GatewayClassBlueprint, stored)  # extra="forbid" never sees pruned fields


def _invalid(kube: KubeClient, obj: dict[str, Any]) -> Invalid:
    with pytest.raises(Invalid) as info:
        kube.create(obj)
    assert info.value.status == 422
    return info.value


def test_invalid_child_id_is_refused_with_the_field_path(kube: KubeClient) -> None:
    obj = _renamed(EDGE_BLUEPRINT, "bad-id")
    obj["spec"]["children"][1]["id"] = "Listener_443"
    err = _invalid(kube, obj)
    assert "spec.children[1].id" in {c.field for c in err.causes}, err.causes
    assert "spec.children[1].id" in err.message


def test_missing_child_id_and_template_are_refused(kube: KubeClient) -> None:
    obj = _renamed(MESH_BLUEPRINT, "no-id")
    del obj["spec"]["children"][1]["id"]
    del obj["spec"]["children"][0]["template"]
    err = _invalid(kube, obj)
    fields = {c.field for c in err.causes}
    assert "spec.children[1].id" in fields
    assert any(f.startswith("spec.children[") and f.endswith("].template") for f in fields), fields


def test_duplicate_child_ids_are_refused(kube: KubeClient) -> None:
    obj = _renamed(MESH_BLUEPRINT, "dup")
    obj["spec"]["children"][1]["id"] = "gateway"
    err = _invalid(kube, obj)
    assert any("spec.children" in c.field for c in err.causes), err.causes


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s["tls"]["verify"].update(mode="curl"), "spec.tls.verify.mode"),
        (
            lambda s: s["tls"]["renewBefore"].update(percentage=100),
            "spec.tls.renewBefore.percentage",
        ),
        (lambda s: s["tls"]["renewBefore"].update(duration="1h"), "spec.tls.renewBefore"),
        (lambda s: s["tls"].update(drainSeconds=-5), "spec.tls.drainSeconds"),
        (
            lambda s: s["tls"]["maintenanceWindows"][0].update(days=["Someday"]),
            "spec.tls.maintenanceWindows[0].days[0]",
        ),
        (
            lambda s: s["tls"]["maintenanceWindows"][0].update(end="24:00"),
            "spec.tls.maintenanceWindows[0].end",
        ),
    ],
)
def test_tls_fields_are_validated(kube: KubeClient, mutate: Any, field: str) -> None:
    obj = _renamed(EDGE_BLUEPRINT, "bad-tls")
    mutate(obj["spec"])
    err = _invalid(kube, obj)
    assert field in {c.field for c in err.causes}, err.causes


def test_policy_target_kind_is_validated(kube: KubeClient) -> None:
    obj = _renamed(GATEWAY_CONFIG, "bad-target")
    obj["spec"]["targetRef"]["kind"] = "HTTPRoute"
    err = _invalid(kube, obj)
    assert "spec.targetRef.kind" in {c.field for c in err.causes}
    obj = _renamed(CLASS_WIDE_CONFIG, "no-target")
    del obj["spec"]["targetRef"]
    err = _invalid(kube, obj)
    assert "spec.targetRef" in {c.field for c in err.causes}


def test_status_subresource_carries_conditions_and_attachment(kube: KubeClient) -> None:
    kube.create(_renamed(CLASS_WIDE_CONFIG, "status"))
    status = PolicyStatus(
        conditions=set_condition(
            (),
            condition(
                "Accepted",
                True,
                reason=PolicyReason.ACCEPTED,
                message="attached",
                generation=1,
                now=NOW,
            ),
        ),
        attached_to=(
            PolicyAttachment(group="gateway.networking.k8s.io", kind="GatewayClass", name="edge"),
        ),
        observed_generation=1,
    )
    kube.patch_status(
        API_VERSION, "GatewayClassConfig", "status", "bifrost-system", status.to_api()
    )
    stored = kube.get(API_VERSION, "GatewayClassConfig", "status", "bifrost-system")
    assert stored is not None
    parsed = parse_resource(GatewayClassConfig, stored)
    assert parsed.status == status
    assert parsed.metadata.generation == 1  # a status write does not bump the generation


def test_blueprint_status_and_kubectl_columns(
    kube: KubeClient, cluster: tuple[DevCluster, Path]
) -> None:
    kube.create(_renamed(MESH_BLUEPRINT, "columns"))
    conds = set_condition(
        (),
        condition(
            BlueprintConditionType.VALID, True, reason=BlueprintReason.VALID, generation=1, now=NOW
        ),
    )
    conds = set_condition(
        conds,
        condition(
            BlueprintConditionType.ACCEPTED,
            True,
            reason=BlueprintReason.ACCEPTED,
            generation=1,
            now=NOW,
        ),
    )
    kube.patch_status(
        API_VERSION,
        "GatewayClassBlueprint",
        "columns",
        None,
        {"conditions": [c.to_api() for c in conds], "observedGeneration": 1},
    )
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    out = subprocess.run(
        [kubectl, "--kubeconfig", str(cluster[1]), "get", "gcbp", "columns"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split("\n")
    assert out[0].split() == ["NAME", "ACCEPTED", "VALID", "AGE"], out
    assert out[1].split()[:3] == ["columns", "True", "True"], out
