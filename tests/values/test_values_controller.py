"""Typed values end to end, with the in-process controller against the devcluster: a Gateway
whose blueprint declares ``spec.values`` is provisioned with a tenant's valid namespace policy;
the tenant then breaks the policy (a string with a quote and YAML lines where an integer belongs,
then a key only the platform may set) — the policy turns ``Accepted=False``/``Invalid`` naming
the field and the rule and not the value, the Gateway gets an ``InvalidValues`` Event and keeps
its last good child (no new provision starts); fixing the policy provisions again. Every wait
polls with a deadline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support import inprocess
from support.builders import (
    BIFROST_API,
    GATEWAY_API,
    blueprint,
    gateway,
    gateway_class,
    namespace_policy,
)
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.manager import Controller
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore

TIMEOUT = 30.0
HOSTILE = '3"\nkind: Secret\nmetadata:\n  name: injected\n  namespace: kube-system'


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    with inprocess.sqlite_store(tmp_path_factory.mktemp("values-db")) as opened:
        yield opened


@pytest.fixture(scope="module")
def running(kube: KubeClient, store: SqlStore) -> Iterator[Controller]:
    with inprocess.running_controller(kube, store, name="values") as controller:
        yield controller


def _typed_class(kube: KubeClient) -> str:
    name = f"typed-{uuid.uuid4().hex[:6]}"
    values = {
        "schema": {
            "type": "object", "additionalProperties": False,
            "required": ["replicas", "tier"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                "tier": {"type": "string", "enum": ["gold", "silver"]},
            },
        },
        "tenantKeys": ["replicas"],
    }
    child = {
        "id": "config",
        "template": "apiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: '{{ gateway.metadata.name }}-config'\n"
        "data:\n  replicas: 'n={{ values.replicas }}'\n  tier: 't={{ values.tier }}'\n",
    }
    kube.create(blueprint(name, [child], defaults={"replicas": 1, "tier": "silver"},
                          values=values))
    kube.create(gateway_class(name, name))
    return name


def _accepted(kube: KubeClient, ns: str, name: str) -> tuple[str, str, str, int | None]:
    obj = kube.get(BIFROST_API, "GatewayConfig", name, ns) or {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Accepted":
            return (str(cond["status"]), str(cond["reason"]), str(cond.get("message", "")),
                    cond.get("observedGeneration"))
    return ("", "", "", None)


def _set_policy(kube: KubeClient, ns: str, default: dict[str, Any]) -> int:
    """Create or update the tenant's namespace policy; its new generation."""
    if kube.get(BIFROST_API, "GatewayConfig", "team", ns) is None:
        return int(kube.create(namespace_policy(ns, "team", default))["metadata"]["generation"])
    changed = edit(kube, BIFROST_API, "GatewayConfig", "team", ns,
                   lambda obj: obj["spec"].update(default=default))
    return int(changed["metadata"]["generation"])


def _wait_policy(kube: KubeClient, ns: str, generation: int, status: str,
                 reason: str) -> str:
    def check() -> str | None:
        got = _accepted(kube, ns, "team")
        return got[2] or "-" if got[:2] == (status, reason) and got[3] == generation else None

    message: str = wait_for(check, what=f"GatewayConfig Accepted={status}/{reason} at "
                            f"generation {generation} (now {_accepted(kube, ns, 'team')})",
                            timeout=TIMEOUT)
    return message


def _config(kube: KubeClient, ns: str) -> dict[str, Any] | None:
    return kube.get("v1", "ConfigMap", "edge-config", ns)


def _values_condition(kube: KubeClient, ns: str) -> tuple[str, str, str]:
    gw = kube.get(GATEWAY_API, "Gateway", "edge", ns) or {}
    for cond in (gw.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "gateway.bifrost.dev/Values":
            return str(cond["status"]), str(cond["reason"]), str(cond.get("message", ""))
    return ("", "", "")


def _provisions(store: SqlStore, uid: str) -> list[Any]:
    return [o for o in store.list_operations(gateway_uid=uid, limit=100)
            if o.machine == "provision"]


def test_a_bad_tenant_policy_is_invalid_and_the_gateway_keeps_its_children(
    kube: KubeClient, running: Controller, store: SqlStore, namespace: str
) -> None:
    class_name = _typed_class(kube)
    gen = _set_policy(kube, namespace, {"replicas": 3})
    edge = kube.create(gateway(namespace, "edge", class_name))
    uid = str(edge["metadata"]["uid"])
    assert "attached to Namespace" in _wait_policy(kube, namespace, gen, "True", "Accepted")
    wait_for(lambda: (c := _config(kube, namespace)) is not None
             and c.get("data", {}).get("replicas") == "n=3",
             what="the child rendered with the tenant's replicas", timeout=TIMEOUT)
    wait_for(lambda: _provisions(store, uid) and all(
        o.status.terminal for o in _provisions(store, uid)), what="the provision ended",
        timeout=TIMEOUT)
    provisions = len(_provisions(store, uid))
    good = _config(kube, namespace)
    assert good is not None and good["data"] == {"replicas": "n=3", "tier": "t=silver"}

    def held_events() -> list[dict[str, Any]]:
        events, _ = kube.list("events.k8s.io/v1", "Event", namespace)
        return [e for e in events if e.get("reason") == "InvalidValues"
                and (e.get("regarding") or {}).get("uid") == uid]

    # 1. a string with a quote and YAML lines where an integer belongs
    gen = _set_policy(kube, namespace, {"replicas": HOSTILE})
    message = _wait_policy(kube, namespace, gen, "False", "Invalid")
    assert "spec.default.replicas: must be an integer, not a string" in message
    assert "not applied" in message
    # (not '3"' alone: the random suffix of the blueprint's name, quoted in the message, may
    # end in a 3)
    assert "Secret" not in message and "injected" not in message and HOSTILE not in message
    assert '3"\nkind' not in message
    [event] = wait_for(held_events, what="an InvalidValues Event on the Gateway", timeout=TIMEOUT)
    note = str(event.get("note", ""))
    assert 'GatewayConfig "' + namespace + '/team": spec.default.replicas' in note
    assert "Secret" not in note and "injected" not in note
    status, reason, says = wait_for(
        lambda: (c := _values_condition(kube, namespace))[:2] == ("False", "InvalidValues") and c,
        what="the Gateway's Values condition False/InvalidValues", timeout=TIMEOUT)
    assert "spec.default.replicas: must be an integer" in says and "Secret" not in says
    # the Gateway keeps its last good children: no provision started, the child unchanged
    assert len(_provisions(store, uid)) == provisions
    now = _config(kube, namespace)
    assert now is not None and now["data"] == good["data"]
    assert now["metadata"]["resourceVersion"] == good["metadata"]["resourceVersion"]
    assert kube.get("v1", "Secret", "injected", "kube-system") is None

    # 2. a key only the platform may set (valid for the schema, but not a tenant key)
    gen = _set_policy(kube, namespace, {"replicas": 4, "tier": "gold"})
    message = _wait_policy(kube, namespace, gen, "False", "Invalid")
    assert "spec.default.tier: may not be set by a GatewayConfig" in message
    wait_for(lambda: len(held_events()) >= 2 or any(
        "spec.default.tier" in str(e.get("note")) for e in held_events()),
        what="the Event names the new problem", timeout=TIMEOUT)
    assert len(_provisions(store, uid)) == provisions
    now = _config(kube, namespace)
    assert now is not None and now["data"] == {"replicas": "n=3", "tier": "t=silver"}

    # 3. fixed: accepted again and provisioned with the new value
    gen = _set_policy(kube, namespace, {"replicas": 4})
    _wait_policy(kube, namespace, gen, "True", "Accepted")
    wait_for(lambda: (c := _config(kube, namespace)) is not None
             and c.get("data", {}).get("replicas") == "n=4",
             what="the child re-rendered with the fixed policy", timeout=TIMEOUT)
    assert len(_provisions(store, uid)) == provisions + 1
    wait_for(lambda: _values_condition(kube, namespace)[:2] == ("True", "Valid"),
             what="the Gateway's Values condition True/Valid again", timeout=TIMEOUT)
