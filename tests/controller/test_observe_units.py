"""Pure parts of observe: blueprint resolution messages, input hashing and the interim status
writer's conditions (no API server; the cache is filled by hand)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from controller_kit import blueprint
from support.builders import gateway, gateway_class

from bifrost.clock import ManualClock
from bifrost.controller.gateway_view import GatewayView
from bifrost.controller.informers import Cache
from bifrost.controller.observe import Observer
from bifrost.controller.operation_status import OperationStatusWriter
from bifrost.kube.client import KubeClient
from bifrost.machines.registry import MachineRegistry
from bifrost.records import OperationRecord, OperationStatus
from bifrost.store.interface import OperationStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _obj(raw: dict[str, Any], *, uid: str = "u1", generation: int = 1) -> dict[str, Any]:
    raw = dict(raw)
    raw["metadata"] = {
        **raw["metadata"],
        "uid": uid,
        "generation": generation,
        "resourceVersion": "1",
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    return raw


@pytest.fixture
def cache() -> Cache:
    c = Cache()
    c.apply("GatewayClass", "ADDED", _obj(gateway_class("edge", "edge-bp")))
    c.apply("GatewayClass", "ADDED", _obj(gateway_class("bare", None)))
    c.apply("GatewayClass", "ADDED", _obj(gateway_class("broken", "broken-bp")))
    c.apply("GatewayClassBlueprint", "ADDED", _obj(blueprint("edge-bp", defaults={"a": 1})))
    bad = blueprint("broken-bp")
    bad["spec"]["children"].append(dict(bad["spec"]["children"][0]))  # duplicate id
    c.apply("GatewayClassBlueprint", "ADDED", _obj(bad))
    c.apply(
        "Gateway",
        "ADDED",
        _obj(
            gateway(
                "shop",
                "a",
                "edge",
                listeners=[
                    {
                        "name": "https",
                        "protocol": "HTTPS",
                        "port": 443,
                        "tls": {"certificateRefs": [{"name": "a-tls"}]},
                    }
                ],
            )
        ),
    )
    return c


@pytest.fixture
def observer(cache: Cache) -> Observer:
    return Observer(
        cache=cache,
        kube=cast(KubeClient, None),
        store=cast(OperationStore, None),
        registry=MachineRegistry(),
        clock=ManualClock(NOW),
        actor="test",
    )


def test_resolution_messages_name_the_problem(cache: Cache, observer: Observer) -> None:
    ok = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "edge")))
    assert ok.accepted and ok.blueprint is not None and ok.blueprint_name == "edge-bp"
    bare = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "bare")))
    assert bare.error is not None and "spec.parametersRef is not set" in bare.error
    broken = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "broken")))
    assert broken.error is not None
    assert 'GatewayClassBlueprint "broken-bp"' in broken.error and "duplicate" in broken.error
    cache.apply("GatewayClassBlueprint", "DELETED", _obj(blueprint("edge-bp")))
    gone = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "edge")))
    assert gone.error == (
        'GatewayClassBlueprint "edge-bp" not found — create it or fix '
        'spec.parametersRef.name of GatewayClass "edge"'
    )


def test_input_hash_tracks_generation_values_and_secret_versions(
    cache: Cache, observer: Observer
) -> None:
    gw = cast(dict[str, Any], cache.get("Gateway", "shop", "a"))
    res = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "edge")))
    base = observer.input_hash(gw, res, {"a": 1})
    assert observer.input_hash(gw, res, {"a": 1}) == base
    assert observer.input_hash(gw, res, {"a": 2}) != base
    newer = {**gw, "metadata": {**gw["metadata"], "generation": 2}}
    assert observer.input_hash(newer, res, {"a": 1}) != base
    secret: dict[str, Any] = {
        "kind": "Secret",
        "metadata": {"name": "a-tls", "namespace": "shop", "resourceVersion": "7"},
    }
    cache.apply("Secret", "ADDED", secret)
    with_secret = observer.input_hash(gw, res, {"a": 1})
    assert with_secret != base
    cache.apply(
        "Secret", "MODIFIED", {**secret, "metadata": {**secret["metadata"], "resourceVersion": "8"}}
    )
    assert observer.input_hash(gw, res, {"a": 1}) != with_secret


def _op(status: OperationStatus, *, error: str | None = None) -> OperationRecord:
    return OperationRecord(
        id=7,
        gateway_uid="u1",
        namespace="shop",
        name="a",
        machine="provision",
        machine_version=1,
        lane="default",
        state="wait_ready",
        status=status,
        context={},
        context_raw="{}",
        step="wait_ready" if status.active else None,
        attempt=1,
        next_run_at=None,
        lease_owner=None,
        lease_expires_at=None,
        version=1,
        last_error=error,
        created_at=NOW,
        updated_at=NOW,
        finished_at=None if status.active else NOW,
    )


def _conds(writer: OperationStatusWriter, view: GatewayView) -> dict[str, tuple[str, str, str]]:
    return {c.type: (c.status.value, c.reason, c.message) for c in writer.desired(view)}


def test_interim_status_from_the_operation(cache: Cache, observer: Observer) -> None:
    writer = OperationStatusWriter(cast(KubeClient, None), ManualClock(NOW))
    gw = cast(dict[str, Any], cache.get("Gateway", "shop", "a"))
    res = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "edge")))
    running = _conds(writer, GatewayView(gw, res, _op(OperationStatus.RUNNING), cache))
    assert running["Accepted"][:2] == ("True", "Accepted")
    assert running["Programmed"][:2] == ("Unknown", "Pending")
    assert "operation 7 (provision) in state wait_ready" in running["Programmed"][2]
    assert running["gateway.bifrost.dev/Operation"][0] == "True"
    done = _conds(writer, GatewayView(gw, res, _op(OperationStatus.SUCCEEDED), cache))
    assert done["Programmed"][:2] == ("True", "Programmed")
    failed = _conds(writer, GatewayView(gw, res, _op(OperationStatus.FAILED, error="boom"), cache))
    assert failed["Programmed"][:2] == ("False", "Invalid") and "boom" in failed["Programmed"][2]
    broken = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "broken")))
    invalid = _conds(writer, GatewayView(gw, broken, None, cache))
    assert invalid["Accepted"][:2] == ("False", "InvalidParameters")
    assert all(
        c.observed_generation == 1 for c in writer.desired(GatewayView(gw, res, None, cache))
    )


def _policy(
    kind: str,
    ns: str,
    name: str,
    target_kind: str,
    target: str,
    *,
    created: str = "2026-01-01T00:00:00Z",
    default: dict[str, Any] | None = None,
    override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    group = "" if target_kind == "Namespace" else "gateway.networking.k8s.io"
    return {
        "apiVersion": "gateway.bifrost.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "spec": {
            "targetRef": {"group": group, "kind": target_kind, "name": target},
            "default": default or {},
            "override": override or {},
        },
    }


def test_merged_values_follow_the_levels(cache: Cache, observer: Observer) -> None:
    policies = [
        _policy(
            "GatewayClassConfig",
            "bifrost-system",
            "cls",
            "GatewayClass",
            "edge",
            default={"lvl": "class", "c": 1},
            override={"o": "class"},
        ),
        # a class-wide policy outside the controller namespace is not attached
        _policy(
            "GatewayClassConfig",
            "shop",
            "misplaced",
            "GatewayClass",
            "edge",
            default={"lvl": "misplaced"},
            override={"o": "misplaced"},
        ),
        _policy(
            "GatewayClassConfig",
            "shop",
            "ns-platform",
            "Namespace",
            "shop",
            default={"lvl": "ns-platform", "p": 1},
            override={"o2": "platform"},
        ),
        _policy(
            "GatewayConfig",
            "shop",
            "ns-app",
            "Namespace",
            "shop",
            default={"lvl": "ns-app"},
            override={"o2": "app", "o3": "app"},
        ),
        _policy(
            "GatewayConfig",
            "shop",
            "gw-old",
            "Gateway",
            "a",
            default={"lvl": "gateway"},
            override={"o": "gateway", "o3": "gateway"},
        ),
        # same kind, level and target: the oldest wins, the newer one is ignored
        _policy(
            "GatewayConfig",
            "shop",
            "gw-new",
            "Gateway",
            "a",
            created="2026-02-01T00:00:00Z",
            default={"lvl": "newer"},
        ),
    ]
    for p in policies:
        cache.apply(p["kind"], "ADDED", p)
    gw = cast(dict[str, Any], cache.get("Gateway", "shop", "a"))
    res = observer.resolve_class(cast(dict[str, Any], cache.get("GatewayClass", "", "edge")))
    assert observer.merged_values(gw, res) == {
        "a": 1,  # blueprint default
        "c": 1,  # class default
        "p": 1,  # namespace default (platform)
        "lvl": "gateway",  # the most specific default wins
        "o": "class",  # the most general override wins
        "o2": "app",  # within the namespace level the GatewayConfig applies on top
        "o3": "app",  # namespace override beats gateway override
    }
