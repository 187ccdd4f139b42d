"""Status of bifrost's own objects, written by the in-process controller against the devcluster:
policies (``GatewayClassConfig``/``GatewayConfig``) say whether and where they are attached —
to their namespace, their Gateway, their class — or why not (target not found, not bifrost's,
misplaced, lost a conflict to a named policy); blueprints say ``Accepted``/``Valid`` and name the
child and field of a bad template, and recover when it is fixed. A converged resync writes
nothing. Every wait polls with a deadline."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from controller_kit import BIFROST_API, GATEWAY_API, SYSTEM_NAMESPACE, blueprint
from support.builders import gateway, gateway_class
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore, migrate, open_store
from devcluster.server import DevCluster

TIMEOUT = 20.0
GROUP = "gateway.networking.k8s.io"


@pytest.fixture(scope="module")
def running(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    url = f"sqlite:///{(tmp_path_factory.mktemp('own-status-db') / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store: SqlStore = open_store(url)
    suffix = uuid.uuid4().hex[:6]
    controller = Controller(
        kube,
        store,
        options=ControllerOptions(
            identity=f"own-{suffix}",
            lease_name=f"own-{suffix}",
            lease_namespace=SYSTEM_NAMESPACE,
            controller_namespace=SYSTEM_NAMESPACE,
            lease_duration=3.0,
            renew_deadline=2.0,
            retry_period=0.3,
            workers=2,
            runner_idle=timedelta(seconds=0.05),
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: controller.is_leader and controller.ready(), timeout=15,
                 what="in-process controller leading and synced")
        yield controller
    finally:
        stop.set()
        thread.join(15)
        store.close()
        assert not thread.is_alive()


@pytest.fixture
def class_name(kube: KubeClient, running: Controller) -> str:
    """A bifrost GatewayClass whose blueprint renders one ConfigMap holding the address."""
    suffix = uuid.uuid4().hex[:6]
    bp = blueprint(f"bp-{suffix}", children=[{
        "id": "config",
        "template": "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: '{{ gateway.metadata.name }}-config'}\n"
        "data: {address: 192.0.2.10}\n",
    }])
    bp["spec"]["addresses"] = '[{"type": "IPAddress", "value": children.config.data.address}]'
    kube.create(bp)
    kube.create(gateway_class(f"cls-{suffix}", f"bp-{suffix}"))
    return f"cls-{suffix}"


# ---------------------------------------------------------------- helpers


def policy(kind: str, ns: str, name: str, target_kind: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": BIFROST_API,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "targetRef": {"group": "" if target_kind == "Namespace" else GROUP,
                          "kind": target_kind, "name": target},
            "default": {"replicas": 2},
        },
    }


def _status(kube: KubeClient, kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
    obj = kube.get(BIFROST_API, kind, name, ns)
    assert obj is not None, f"{kind} {ns}/{name} is gone"
    return dict(obj.get("status") or {})


def _accepted(status: dict[str, Any], type_: str = "Accepted") -> tuple[str, str, str] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return str(cond["status"]), str(cond["reason"]), str(cond.get("message", ""))
    return None


def _message(status: dict[str, Any]) -> str:
    return (_accepted(status) or ("", "", ""))[2]


def wait_policy(
    kube: KubeClient, kind: str, ns: str, name: str, status: str, reason: str
) -> dict[str, Any]:
    """Wait until the policy's Accepted condition has ``status``/``reason``; its status."""

    def check() -> dict[str, Any] | None:
        current = _status(kube, kind, name, ns)
        got = _accepted(current)
        return current if got and got[:2] == (status, reason) else None

    result: dict[str, Any] = wait_for(
        check, timeout=TIMEOUT,
        what=f"{kind} {ns}/{name} Accepted={status}/{reason} "
        f"(now {_accepted(_status(kube, kind, name, ns))})",
    )
    return result


def _generation(kube: KubeClient, kind: str, name: str, ns: str | None = None) -> int:
    obj = kube.get(BIFROST_API, kind, name, ns)
    assert obj is not None
    return int(obj["metadata"]["generation"])


def _programmed(kube: KubeClient, ns: str, name: str) -> bool:
    obj = kube.get(GATEWAY_API, "Gateway", name, ns) or {}
    return any(c.get("type") == "Programmed" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


# ---------------------------------------------------------------- policies


def test_namespace_policies_attach_to_their_namespace(kube: KubeClient, running: Controller,
                                                      namespace: str) -> None:
    kube.create(policy("GatewayConfig", namespace, "team", "Namespace", namespace))
    kube.create(policy("GatewayClassConfig", namespace, "platform", "Namespace", namespace))
    for kind, name in (("GatewayConfig", "team"), ("GatewayClassConfig", "platform")):
        status = wait_policy(kube, kind, namespace, name, "True", "Accepted")
        assert status["attachedTo"] == [{"group": "", "kind": "Namespace", "name": namespace}]
        gen = _generation(kube, kind, name, namespace)
        assert status["observedGeneration"] == gen
        assert status["conditions"][0]["observedGeneration"] == gen
        assert f'attached to Namespace "{namespace}"' in status["conditions"][0]["message"]
    # one targeting another namespace is misplaced: Invalid, attached nowhere
    kube.create(policy("GatewayConfig", namespace, "elsewhere", "Namespace", SYSTEM_NAMESPACE))
    status = wait_policy(kube, "GatewayConfig", namespace, "elsewhere", "False", "Invalid")
    assert not status.get("attachedTo")
    assert "create it in the namespace it targets" in _message(status)


def test_gateway_policy_attaches_when_its_gateway_appears(
    kube: KubeClient, running: Controller, namespace: str, class_name: str
) -> None:
    # The target does not exist yet: TargetNotFound, naming it.
    kube.create(policy("GatewayConfig", namespace, "tune", "Gateway", "web"))
    status = wait_policy(kube, "GatewayConfig", namespace, "tune", "False", "TargetNotFound")
    message = _message(status)
    assert f'Gateway "{namespace}/web" not found' in message
    assert not status.get("attachedTo")
    # The Gateway is created: the watch alone attaches the policy.
    kube.create(gateway(namespace, "web", class_name))
    status = wait_policy(kube, "GatewayConfig", namespace, "tune", "True", "Accepted")
    assert status["attachedTo"] == [
        {"group": GROUP, "kind": "Gateway", "namespace": namespace, "name": "web"}
    ]
    # A spec change: a new generation, observed.
    edit(kube, BIFROST_API, "GatewayConfig", "tune", namespace,
         lambda obj: obj["spec"].update(default={"replicas": 3}))
    gen = _generation(kube, "GatewayConfig", "tune", namespace)
    assert gen >= 2
    wait_for(lambda: _status(kube, "GatewayConfig", "tune", namespace)
             .get("observedGeneration") == gen, timeout=TIMEOUT, what="observedGeneration")
    # The Gateway goes away: not attached any more.
    kube.delete(GATEWAY_API, "Gateway", "web", namespace)
    wait_policy(kube, "GatewayConfig", namespace, "tune", "False", "TargetNotFound")


def test_policies_on_targets_bifrost_does_not_manage(
    kube: KubeClient, running: Controller, namespace: str
) -> None:
    foreign = f"foreign-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": GATEWAY_API, "kind": "GatewayClass", "metadata": {"name": foreign},
                 "spec": {"controllerName": "example.com/other"}})
    kube.create(gateway(namespace, "theirs", foreign))
    kube.create(policy("GatewayConfig", namespace, "on-theirs", "Gateway", "theirs"))
    wait_policy(kube, "GatewayConfig", namespace, "on-theirs", "False", "TargetNotFound")
    # the class may reach the cache after the policy was first judged ("does not exist"); the
    # class's arrival re-judges it
    wait_for(lambda: "managed by controller 'example.com/other', not by bifrost" in _message(
        _status(kube, "GatewayConfig", "on-theirs", namespace)), timeout=TIMEOUT,
        what="the policy to name the other controller")
    kube.create(policy("GatewayClassConfig", SYSTEM_NAMESPACE, f"wide-{foreign}", "GatewayClass",
                       foreign))
    wait_policy(kube, "GatewayClassConfig", SYSTEM_NAMESPACE, f"wide-{foreign}", "False",
                "TargetNotFound")
    kube.create(policy("GatewayClassConfig", SYSTEM_NAMESPACE, "no-such-class", "GatewayClass",
                       f"missing-{foreign}"))
    status = wait_policy(kube, "GatewayClassConfig", SYSTEM_NAMESPACE, "no-such-class", "False",
                         "TargetNotFound")
    assert f'GatewayClass "missing-{foreign}" not found' in _message(status)


def test_class_wide_policy_and_a_conflict_on_one_gateway(
    kube: KubeClient, running: Controller, namespace: str, class_name: str
) -> None:
    wide = f"wide-{class_name}"
    kube.create(policy("GatewayClassConfig", SYSTEM_NAMESPACE, wide, "GatewayClass", class_name))
    status = wait_policy(kube, "GatewayClassConfig", SYSTEM_NAMESPACE, wide, "True", "Accepted")
    assert status["attachedTo"] == [{"group": GROUP, "kind": "GatewayClass", "name": class_name}]
    # a class-wide one outside the controller's namespace is misplaced
    kube.create(policy("GatewayClassConfig", namespace, "wide", "GatewayClass", class_name))
    wait_policy(kube, "GatewayClassConfig", namespace, "wide", "False", "Invalid")

    # Two GatewayConfigs on one Gateway: "a-first" is older (or, created in the same second,
    # first by name), so it wins; the loser names it.
    kube.create(gateway(namespace, "web", class_name))
    kube.create(policy("GatewayConfig", namespace, "a-first", "Gateway", "web"))
    kube.create(policy("GatewayConfig", namespace, "b-second", "Gateway", "web"))
    wait_policy(kube, "GatewayConfig", namespace, "a-first", "True", "Accepted")
    status = wait_policy(kube, "GatewayConfig", namespace, "b-second", "False", "Conflicted")
    message = _message(status)
    assert f'GatewayConfig "{namespace}/a-first"' in message
    assert "oldest (creationTimestamp, then name) applies" in message
    assert not status.get("attachedTo")
    # The winner is deleted: the other one takes over.
    kube.delete(BIFROST_API, "GatewayConfig", "a-first", namespace)
    status = wait_policy(kube, "GatewayConfig", namespace, "b-second", "True", "Accepted")
    assert status["attachedTo"] == [
        {"group": GROUP, "kind": "Gateway", "namespace": namespace, "name": "web"}
    ]


# ---------------------------------------------------------------- blueprints


def test_blueprint_with_a_bad_template_and_its_fix(kube: KubeClient, running: Controller) -> None:
    name = f"bp-{uuid.uuid4().hex[:6]}"
    good = blueprint(name)
    bad = blueprint(name, children=[
        good["spec"]["children"][0],
        {"id": "dns", "template": "kind: DNSRecord\nname: {{ gateway.metadata.name \n"},
    ])
    kube.create(bad)

    def conds(type_: str) -> tuple[str, str, str] | None:
        return _accepted(_status(kube, "GatewayClassBlueprint", name), type_)

    wait_for(lambda: (conds("Accepted") or ())[:2] == ("False", "InvalidTemplate"),
             timeout=TIMEOUT, what="blueprint Accepted=False/InvalidTemplate")
    accepted = conds("Accepted")
    assert accepted is not None
    assert "child 'dns' (spec.children[dns].template, line 2): template syntax error" in accepted[2]
    assert (conds("Valid") or ())[:2] == ("False", "InvalidTemplate")
    assert _status(kube, "GatewayClassBlueprint", name)["observedGeneration"] == _generation(
        kube, "GatewayClassBlueprint", name)

    # Fixed, but no bifrost GatewayClass uses it yet: Valid, not Accepted (NotReferenced).
    edit(kube, BIFROST_API, "GatewayClassBlueprint", name, None,
         lambda live: live.update(spec=good["spec"]))
    wait_for(lambda: (conds("Valid") or ())[:2] == ("True", "Valid"), timeout=TIMEOUT,
             what="blueprint Valid=True after the fix")
    assert (conds("Accepted") or ())[:2] == ("False", "NotReferenced")
    # A class refers to it: Accepted, naming the class.
    cls = f"cls-{name}"
    kube.create(gateway_class(cls, name))
    wait_for(lambda: (conds("Accepted") or ())[:2] == ("True", "Accepted"), timeout=TIMEOUT,
             what="blueprint Accepted=True")
    assert f'used by GatewayClass "{cls}"' in (conds("Accepted") or ("", "", ""))[2]
    # A bad CEL expression: InvalidExpression, naming child and field.
    edit(kube, BIFROST_API, "GatewayClassBlueprint", name, None,
         lambda live: live["spec"]["children"][0].update(readyWhen="object.data.ready =="))
    wait_for(lambda: (conds("Accepted") or ())[:2] == ("False", "InvalidExpression"),
             timeout=TIMEOUT, what="blueprint Accepted=False/InvalidExpression")
    assert "spec.children[config].readyWhen" in (conds("Accepted") or ("", "", ""))[2]


# ---------------------------------------------------------------- steady state


def test_converged_resync_writes_nothing(
    kube: KubeClient, running: Controller, cluster: DevCluster, namespace: str, class_name: str
) -> None:
    kube.create(gateway(namespace, "steady", class_name))
    kube.create(policy("GatewayConfig", namespace, "steady", "Gateway", "steady"))
    kube.create(policy("GatewayConfig", namespace, "steady-2", "Gateway", "steady"))
    kube.create(policy("GatewayConfig", namespace, "nowhere", "Gateway", "nowhere"))
    wait_policy(kube, "GatewayConfig", namespace, "steady", "True", "Accepted")
    wait_policy(kube, "GatewayConfig", namespace, "steady-2", "False", "Conflicted")
    wait_policy(kube, "GatewayConfig", namespace, "nowhere", "False", "TargetNotFound")
    wait_for(lambda: _programmed(kube, namespace, "steady"), timeout=TIMEOUT,
             what="Gateway Programmed")
    # every Gateway of the module's earlier tests has settled too
    wait_for(lambda: all(
        _programmed(kube, g["metadata"]["namespace"], g["metadata"]["name"])
        for g in kube.list(GATEWAY_API, "Gateway")[0]
        if str((g.get("spec") or {}).get("gatewayClassName", "")).startswith("cls-")
    ), timeout=TIMEOUT, what="every bifrost Gateway Programmed")

    def api_writes() -> int:
        log = cluster.request_log
        return log.count(writes_only=True) - log.count(
            writes_only=True, resources={"leases", "events"})

    def quiet() -> bool:
        # longer than the observer's active re-check and the status writer's detail delay (2 s)
        before = api_writes()
        threading.Event().wait(3.0)
        return api_writes() == before and not len(running.queue)

    wait_for(quiet, timeout=TIMEOUT, what="no more writes")
    before_writes = api_writes()
    before = running.stats["observed"]
    keys = running.resync()
    own = [k for k in running.cache.work_keys()
           if k.kind in ("GatewayConfig", "GatewayClassConfig", "GatewayClassBlueprint")]
    assert len(own) >= 4
    wait_for(lambda: running.stats["observed"] >= before + keys and not len(running.queue),
             timeout=TIMEOUT, what="resync observed")
    assert api_writes() == before_writes
