"""The pure parts of Gateway acceptance: :func:`judge_gateway`'s order of precedence,
:func:`judged_gateway` (managed listeners), :func:`gateway_parameters` against a cache, and the
status the writers derive (lost class, class without blueprint, paused operation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from support.builders import blueprint, gateway, gateway_class

from bifrost.api import GatewayClassBlueprint, parse_resource
from bifrost.api.blueprint import BlueprintTLS
from bifrost.api.conditions import OPERATION_CONDITION
from bifrost.api.objects import Obj
from bifrost.clock import ManualClock
from bifrost.controller.acceptance import judge_gateway, judged_gateway, listener_verdicts
from bifrost.controller.classes import resolve_class
from bifrost.controller.gateway_view import GatewayView
from bifrost.controller.informers import Cache
from bifrost.controller.operation_status import OperationStatusWriter
from bifrost.controller.parameters import gateway_parameters
from bifrost.controller.status_writer import GatewayApiStatusWriter
from bifrost.kube.ports import Kube
from bifrost.records import OperationRecord, OperationStatus
from bifrost.status.listeners import CERTIFICATE_OPTION, evaluate_listeners
from bifrost.status.policies import ValuesRules

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HTTP = {"name": "http", "protocol": "HTTP", "port": 80}
TCP = {"name": "tcp", "protocol": "TCP", "port": 9000}
MANAGED = {"name": "web", "protocol": "HTTPS", "port": 443, "hostname": "web.example.com",
           "tls": {"certificateRefs": [{"name": "placeholder"}]}}


def _meta(raw: Obj, uid: str = "u1") -> Obj:
    return {**raw, "metadata": {**raw["metadata"], "uid": uid, "generation": 1,
                                "resourceVersion": "1",
                                "creationTimestamp": "2026-01-01T00:00:00Z"}}


def _verdicts(*listeners: Obj) -> Any:
    return evaluate_listeners(gateway("ns", "gw", "c", list(listeners)), secrets={}, grants=())


def test_judgement_order_class_lost_then_class_then_parameters_then_listeners() -> None:
    good = _verdicts(HTTP)
    lost = judge_gateway(class_name="c", class_exists=False, class_error="x",
                         parameters_error="y", verdicts=good)
    assert (lost.accepted, lost.reason) == (False, "Invalid")
    assert 'GatewayClass "c" does not exist' in lost.message
    cls = judge_gateway(class_name="c", class_exists=True, class_error="no blueprint",
                        parameters_error="y", verdicts=good)
    assert (cls.reason, cls.message) == ("InvalidParameters",
                                         'GatewayClass "c" is not accepted: no blueprint')
    params = judge_gateway(class_name="c", class_exists=True, class_error=None,
                           parameters_error="bad ref", verdicts=good)
    assert (params.reason, params.message) == ("InvalidParameters", "bad ref")
    assert params.rejected_before_listeners
    listeners = judge_gateway(class_name="c", class_exists=True, class_error=None,
                              parameters_error=None, verdicts=_verdicts(TCP))
    assert (listeners.accepted, listeners.reason) == (False, "ListenersNotValid")
    assert not listeners.rejected_before_listeners
    partial = judge_gateway(class_name="c", class_exists=True, class_error=None,
                            parameters_error=None, verdicts=_verdicts(HTTP, TCP))
    assert partial.accepted


def test_a_managed_listener_before_its_first_certificate_counts_as_served() -> None:
    gw = gateway("ns", "gw", "c", [MANAGED])
    tls = BlueprintTLS.model_validate({"certificateTemplate": "kind: Certificate"})
    pending = judged_gateway(gw, {}, tls)
    [listener] = pending["spec"]["listeners"]
    assert "certificateRefs" not in listener["tls"]
    assert listener["tls"]["options"][CERTIFICATE_OPTION] == "blueprint"
    [verdict] = evaluate_listeners(cast(Obj, pending), secrets={}, grants=())
    assert verdict.usable and verdict.valid
    # Attached certificates stand in for the placeholder; without spec.tls nothing changes.
    attached = judged_gateway(gw, {"web": ("web-cert-1",)}, tls)
    assert attached["spec"]["listeners"][0]["tls"]["certificateRefs"][0]["name"] == "web-cert-1"
    assert judged_gateway(gw, {}, None) is gw
    passthrough = BlueprintTLS.model_validate(
        {"certificateTemplate": "kind: Certificate", "source": "ListenerSecret"})
    assert judged_gateway(gw, {}, passthrough) is gw
    assert not listener_verdicts(Cache(), gw)[0].usable


def _config(name: str, *, target: str = "gw", default: Any = None, **spec: Any) -> Obj:
    body: dict[str, Any] = {
        "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": target},
        "default": default if default is not None else {"tier": "gold"}, **spec}
    return _meta({"apiVersion": "gateway.bifrost.dev/v1alpha1", "kind": "GatewayConfig",
                  "metadata": {"name": name, "namespace": "ns"}, "spec": body})


def _ref(kind: str = "GatewayConfig", name: str = "p",
         group: str = "gateway.bifrost.dev") -> Obj:
    gw = gateway("ns", "gw", "c")
    gw["spec"]["infrastructure"] = {"parametersRef": {"group": group, "kind": kind,
                                                      "name": name}}
    return _meta(gw)


@pytest.mark.parametrize(
    ("ref", "configs", "problem"),
    [
        (_ref(), [], 'GatewayConfig "ns/p" not found — create it'),
        (_ref("ConfigMap", group=""), [], "a kind bifrost does not accept"),
        (_ref(), [_config("p", target="other")], 'targets Gateway "other", not this Gateway'),
        (_ref(), [_config("p", default={"tier": 3})], 'the values of GatewayConfig "ns/p"'),
    ],
    ids=["missing", "unsupported kind", "targets another Gateway", "values break the schema"],
)
def test_unusable_parameters_refs(ref: Obj, configs: list[Obj], problem: str) -> None:
    cache = Cache()
    for config in configs:
        cache.apply("GatewayConfig", "ADDED", config)
    parsed = parse_resource(GatewayClassBlueprint, _meta(blueprint(
        "bp", [{"id": "x", "template": "kind: ConfigMap"}],
        values={"schema": {"type": "object", "properties": {"tier": {"type": "string"}}},
                "tenantKeys": ["tier"]})))
    rules = ValuesRules("bp", parsed.spec.values)
    found = gateway_parameters(cache, ref, rules=rules, controller_namespace="bifrost-system")
    assert found.config is None and found.error is not None
    assert problem in found.error
    assert "spec.infrastructure.parametersRef" in found.error


def test_a_usable_parameters_ref_and_none() -> None:
    cache = Cache()
    cache.apply("GatewayConfig", "ADDED", _config("p"))
    found = gateway_parameters(cache, _ref(), rules=None, controller_namespace="bifrost-system")
    assert found.error is None and found.config is not None
    assert found.config.spec.default == {"tier": "gold"}
    none = gateway_parameters(cache, _meta(gateway("ns", "gw", "c")), rules=None,
                              controller_namespace="bifrost-system")
    assert none.config is None and none.error is None


def test_the_cache_wakes_the_gateway_naming_a_config() -> None:
    cache = Cache()
    cache.apply("GatewayClass", "ADDED", _meta(gateway_class("c", "bp")))
    cache.apply("Gateway", "ADDED", _ref())
    keys = cache.apply("GatewayConfig", "ADDED", _config("p", target="elsewhere"))
    assert ("Gateway", "ns", "gw") in {tuple(k) for k in keys}


def _op(status: OperationStatus) -> OperationRecord:
    return OperationRecord(
        id=9, gateway_uid="u1", namespace="ns", name="gw", machine="provision",
        machine_version=1, lane="default", state="wait_ready", status=status, context={},
        context_raw="{}", step="wait_ready", attempt=1, next_run_at=None, lease_owner=None,
        lease_expires_at=None, version=1, last_error=None, created_at=NOW, updated_at=NOW,
        finished_at=None)


def _conds(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c.get("message", ""))
            for c in status.get("conditions") or []}


def test_status_of_a_paused_operation_says_who_and_why() -> None:
    cache = Cache()
    gw = _meta(gateway("ns", "gw", "c", [HTTP]))
    writer = GatewayApiStatusWriter(cast(Kube, None), ManualClock(NOW))
    view = GatewayView(gw, None, _op(OperationStatus.PAUSED), cache,
                       paused="paused by alice: freeze (at 2026-12-01T11:00:00Z)")
    op = _conds(writer.desired(view))[OPERATION_CONDITION]
    assert op[:2] == ("True", "Paused")
    assert "provision operation 9 is paused in state wait_ready, step wait_ready" in op[2]
    assert "paused by alice: freeze" in op[2] and "bifrost-admin resume ns/gw" in op[2]
    fallback = OperationStatusWriter(cast(Kube, None), ManualClock(NOW))
    [cond] = [c for c in fallback.desired(view) if c.type == OPERATION_CONDITION]
    assert (cond.reason, "paused by alice: freeze" in cond.message) == ("Paused", True)
    running = _conds(writer.desired(GatewayView(gw, None, _op(OperationStatus.RUNNING), cache)))
    assert running[OPERATION_CONDITION][:2] == ("True", "InProgress")


def test_status_of_a_class_without_its_blueprint_names_it_on_the_listeners() -> None:
    cache = Cache()
    cls = _meta(gateway_class("c", "missing-bp"))
    cache.apply("GatewayClass", "ADDED", cls)
    gw = _meta(gateway("ns", "gw", "c", [HTTP]))
    writer = GatewayApiStatusWriter(cast(Kube, None), ManualClock(NOW))
    status = writer.desired(GatewayView(gw, resolve_class(cache, cls), None, cache,
                                        provisioned_before=False))
    conds = _conds(status)
    assert conds["Accepted"][:2] == ("False", "InvalidParameters")
    assert conds["Programmed"][:2] == ("False", "Invalid")
    [listener] = status["listeners"]
    programmed = _conds(listener)["Programmed"]
    assert programmed[:2] == ("False", "Invalid")
    assert 'GatewayClassBlueprint "missing-bp" not found' in programmed[2]
    assert "waiting for the provision" not in programmed[2]


def test_status_of_a_lost_class() -> None:
    cache = Cache()
    gw = _meta(gateway("ns", "gw", "gone", [HTTP]))
    writer = GatewayApiStatusWriter(cast(Kube, None), ManualClock(NOW))
    lost = judge_gateway(class_name="gone", class_exists=False, class_error=None,
                         parameters_error=None, verdicts=())
    conds = _conds(writer.desired(GatewayView(gw, None, None, cache, acceptance=lost)))
    assert conds["Accepted"][:2] == ("False", "Invalid")
    assert 'GatewayClass "gone" does not exist' in conds["Accepted"][2]
    assert conds["Programmed"][:2] == ("False", "Invalid")
    assert "last provisioned children are kept" in conds["Programmed"][2]
