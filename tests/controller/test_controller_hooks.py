"""The controller in-process against the devcluster, with stand-in ``provision``/``teardown``
machines plugged into the hooks: merged values reach the provision context (DESIGN §2
precedence), unchanged inputs start nothing on resync, a referenced Secret's change starts a new
provision (watch-driven), the default status writer reports Programmed from the operation, and
deletion runs teardown, then releases the finalizer once the inventory is empty."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from controller_kit import BIFROST_API, GATEWAY_API, SYSTEM_NAMESPACE, blueprint
from pydantic import BaseModel, ConfigDict, Field
from support.builders import gateway, gateway_class
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.informers import Cache
from bifrost.controller.ledger import StoreLedger
from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.controller.operation_status import OperationStatusWriter
from bifrost.engine import Done, Step, StepContext, StepOutcome
from bifrost.kube.client import KubeClient
from bifrost.machines.registry import MachineRegistry
from bifrost.machines.retry import RetryPolicy
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import ChildRecord, OperationStatus
from bifrost.store import SqlStore, open_store
from bifrost.store.interface import OperationStore
from devcluster.server import DevCluster

FINALIZER = "gateway.bifrost.dev/finalizer"


class FakeContext(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    namespace: str
    gateway: str
    gateway_uid: str
    blueprint: str = ""
    values: dict[str, Any] = Field(default_factory=dict)


def _spec(name: str, step: str) -> MachineSpec:
    return MachineSpec(
        name=name,
        version=1,
        initial="run",
        context_model=FakeContext,
        states=(
            StateSpec(
                name="run",
                steps=(
                    StepSpec(
                        name=step,
                        retry=RetryPolicy(max_attempts=3, initial_backoff=timedelta(seconds=0.1)),
                    ),
                ),
                on_done="done",
            ),
            StateSpec(name="done", terminal=OperationStatus.SUCCEEDED),
        ),
    )


class FakeProvision:
    """Records its contexts and puts one child in the inventory."""

    def __init__(self, store: OperationStore) -> None:
        self.store = store
        self.contexts: list[FakeContext] = []

    def run(self, ctx: StepContext[Any], input: dict[str, Any] | None) -> StepOutcome:
        c: FakeContext = ctx.context
        self.contexts.append(c)
        self.store.upsert_child(
            ChildRecord(
                gateway_uid=c.gateway_uid,
                child_id="config",
                api_version="v1",
                kind="ConfigMap",
                namespace=c.namespace,
                name=f"{c.gateway}-config",
                uid=None,
                applied_hash="x",
                ready=True,
                updated_at=ctx.now(),
            )
        )
        return Done()


class FakeTeardown:
    def __init__(self, store: OperationStore) -> None:
        self.store = store
        self.runs = 0

    def run(self, ctx: StepContext[Any], input: dict[str, Any] | None) -> StepOutcome:
        self.runs += 1
        for child in self.store.list_children(ctx.context.gateway_uid):
            self.store.delete_child(child.gateway_uid, child.child_id)
        return Done()


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def _controller(
    kube: KubeClient, store: SqlStore, provision: FakeProvision, teardown: FakeTeardown
) -> Controller:
    def steps(_kube: KubeClient, _store: OperationStore, _cache: Cache) -> Mapping[str, Step]:
        return {"fake_provision": provision, "fake_teardown": teardown}

    return Controller(
        kube,
        store,
        # this test is about the hooks; it checks the interim operation-driven status writer
        # (the Gateway API writer is tested in test_status_gateway_api.py)
        status_writer_factory=OperationStatusWriter,
        options=ControllerOptions(
            identity=f"inproc-{uuid.uuid4().hex[:6]}",
            lease_name=f"hooks-{uuid.uuid4().hex[:6]}",
            lease_namespace=SYSTEM_NAMESPACE,
            controller_namespace=SYSTEM_NAMESPACE,
            lease_duration=3.0,
            renew_deadline=2.0,
            retry_period=0.3,
            workers=2,
            runner_idle=timedelta(seconds=0.05),
        ),
        registry=MachineRegistry(
            [_spec("provision", "fake_provision"), _spec("teardown", "fake_teardown")]
        ),
        steps_factory=steps,
    )


@contextlib.contextmanager
def _running(controller: Controller) -> Iterator[Controller]:
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: controller.is_leader and controller.ready(),
            timeout=15,
            what="in-process controller leading and synced",
        )
        yield controller
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive()


@pytest.fixture
def running(
    kube: KubeClient, store: SqlStore
) -> Iterator[tuple[Controller, FakeProvision, FakeTeardown]]:
    provision, teardown = FakeProvision(store), FakeTeardown(store)
    with _running(_controller(kube, store, provision, teardown)) as controller:
        yield controller, provision, teardown


def _programmed(obj: dict[str, Any] | None) -> str | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Programmed":
            return str(cond.get("status"))
    return None


def _wait_accepted(
    kube: KubeClient, api_version: str, kind: str, name: str, namespace: str | None
) -> None:
    def accepted() -> bool:
        conditions = ((kube.get(api_version, kind, name, namespace) or {}).get("status")
                      or {}).get("conditions") or []
        return any(c.get("type") == "Accepted" and c.get("status") == "True"
                   for c in conditions)

    wait_for(accepted, timeout=15, what=f"{kind} {namespace or ''}/{name} Accepted=True")


def test_provision_teardown_hooks(
    cluster: DevCluster,
    kube: KubeClient,
    namespace: str,
    store: SqlStore,
    running: tuple[Controller, FakeProvision, FakeTeardown],
) -> None:
    controller, provision, teardown = running
    suffix = uuid.uuid4().hex[:6]
    cls, bp = f"cls-{suffix}", f"bp-{suffix}"
    kube.create(blueprint(bp, defaults={"size": "small", "tags": {"a": 1}}))
    kube.create(gateway_class(cls, bp))
    kube.create(
        {
            "apiVersion": BIFROST_API,
            "kind": "GatewayClassConfig",
            "metadata": {"name": f"class-{suffix}", "namespace": SYSTEM_NAMESPACE},
            "spec": {
                "targetRef": {
                    "group": "gateway.networking.k8s.io",
                    "kind": "GatewayClass",
                    "name": cls,
                },
                "default": {"size": "medium"},
                "override": {"tags": {"locked": True}},
            },
        }
    )
    kube.create(
        {
            "apiVersion": BIFROST_API,
            "kind": "GatewayConfig",
            "metadata": {"name": "gw", "namespace": namespace},
            "spec": {
                "targetRef": {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": "edge",
                },
                "default": {"size": "large", "tags": {"locked": False}},
            },
        }
    )
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "edge-tls", "namespace": namespace},
            "data": {"tls.crt": "", "tls.key": ""},
        }
    )
    created = kube.create(
        gateway(
            namespace,
            "edge",
            cls,
            listeners=[
                {
                    "name": "https",
                    "protocol": "HTTPS",
                    "port": 443,
                    "hostname": "edge.example",
                    "tls": {"certificateRefs": [{"name": "edge-tls"}]},
                },
                # the Secret holds no certificate: without a servable listener the Gateway
                # would not be accepted, and an unaccepted Gateway is not provisioned
                {"name": "http", "protocol": "HTTP", "port": 80},
            ],
        )
    )
    uid = created["metadata"]["uid"]

    wait_for(lambda: len(provision.contexts) == 1, timeout=15, what="provision ran")
    first = provision.contexts[0]
    assert (first.namespace, first.gateway, first.gateway_uid, first.blueprint) == (
        namespace,
        "edge",
        uid,
        bp,
    )
    # gateway default beats class default; the class override beats the gateway default
    assert first.values == {"size": "large", "tags": {"a": 1, "locked": True}}
    wait_for(
        lambda: _programmed(kube.get(GATEWAY_API, "Gateway", "edge", namespace)) == "True",
        timeout=15,
        what="Programmed=True from the succeeded operation",
    )

    def reasons() -> set[str]:
        events, _ = kube.list("events.k8s.io/v1", "Event", namespace)
        return {e.get("reason", "") for e in events if (e.get("regarding") or {}).get("uid") == uid}

    wait_for(
        lambda: {"ProvisionStarted", "ProvisionSucceeded"} <= reasons(),
        timeout=10,
        what="operation Events on the Gateway",
    )

    # Converged first: the class, the blueprint and both policies have their status written on
    # their own keys, by the other worker as well, and the blueprint's and the GatewayConfig's
    # once more when the class and the Gateway appear (NotReferenced, TargetNotFound ->
    # Accepted). Nothing orders those writes before the Gateway's Programmed and Events.
    for api_version, kind, name, ns in (
        (GATEWAY_API, "GatewayClass", cls, None),
        (BIFROST_API, "GatewayClassBlueprint", bp, None),
        (BIFROST_API, "GatewayClassConfig", f"class-{suffix}", SYSTEM_NAMESPACE),
        (BIFROST_API, "GatewayConfig", "gw", namespace),
    ):
        _wait_accepted(kube, api_version, kind, name, ns)

    # A resync of a converged Gateway writes nothing: no API write (leases aside), no new
    # operation, no store update.
    def api_writes() -> int:
        log = cluster.request_log
        return log.count(writes_only=True) - log.count(writes_only=True, resources={"leases"})

    record_before = store.get_gateway(uid)
    writes_before = api_writes()
    before = controller.stats["observed"]
    assert controller.resync() >= 2
    wait_for(lambda: controller.stats["observed"] >= before + 2, timeout=10, what="resync observed")
    assert api_writes() == writes_before
    assert store.get_gateway(uid) == record_before
    assert len(provision.contexts) == 1
    assert len([o for o in store.list_operations(gateway_uid=uid) if o.machine == "provision"]) == 1

    # The referenced Secret changes: a new provision, driven by the watch alone.
    secret = kube.get("v1", "Secret", "edge-tls", namespace)
    assert secret is not None
    secret["data"] = {"tls.crt": "YQ==", "tls.key": "Yg=="}
    kube.replace(secret)
    wait_for(lambda: len(provision.contexts) == 2, timeout=15, what="re-provision on secret")

    # A policy change that changes the merged values starts a new provision.
    edit(kube, BIFROST_API, "GatewayConfig", "gw", namespace,
         lambda policy: policy["spec"].update(default={"size": "xl"}))
    wait_for(lambda: len(provision.contexts) == 3, timeout=15, what="re-provision on policy")
    assert provision.contexts[2].values == {"size": "xl", "tags": {"a": 1, "locked": True}}

    # Deletion: teardown runs, empties the inventory, then the finalizer goes.
    wait_for(
        lambda: not any(o.status.active for o in store.list_operations(gateway_uid=uid)),
        timeout=15,
        what="provision finished",
    )
    assert store.list_children(uid)
    kube.delete(GATEWAY_API, "Gateway", "edge", namespace)
    wait_for(
        lambda: kube.get(GATEWAY_API, "Gateway", "edge", namespace) is None,
        timeout=20,
        what="Gateway gone after teardown",
    )
    assert teardown.runs == 1
    assert store.list_children(uid) == []
    machines = [(o.machine, o.status) for o in store.list_operations(gateway_uid=uid)]
    assert ("teardown", OperationStatus.SUCCEEDED) in machines
    assert {"TeardownStarted", "TeardownSucceeded"} <= reasons()


def test_restarted_controller_does_not_provision_an_unchanged_gateway(
    cluster: DevCluster, kube: KubeClient, namespace: str, store: SqlStore
) -> None:
    """The input hash of the last provision is in the store (gateways.input_hash): a new
    Controller on the same store and cluster starts nothing for a converged Gateway, and its
    resyncs make no store writes; a changed input still provisions."""
    suffix = uuid.uuid4().hex[:6]
    cls, bp = f"cls-{suffix}", f"bp-{suffix}"
    kube.create(blueprint(bp, defaults={"size": "small"}))
    kube.create(gateway_class(cls, bp))
    uid = kube.create(gateway(namespace, "edge", cls))["metadata"]["uid"]

    first = FakeProvision(store)
    with _running(_controller(kube, store, first, FakeTeardown(store))):
        wait_for(
            lambda: _programmed(kube.get(GATEWAY_API, "Gateway", "edge", namespace)) == "True",
            timeout=15,
            what="Programmed=True",
        )
    assert len(first.contexts) == 1
    recorded = store.get_gateway(uid)
    assert recorded.input_hash is not None and len(recorded.input_hash) == 64
    provisions_before = [o.id for o in store.list_operations(gateway_uid=uid)]

    second = FakeProvision(store)
    restarted = _controller(kube, store, second, FakeTeardown(store))
    ledger = restarted.observer.ledger
    assert isinstance(ledger, StoreLedger)  # the Controller's default
    with _running(restarted):
        # The new leader's initial resync observes the Gateway (and its class) once at least.
        # (an empty queue alone does not say the Gateway's observation ended: a worker may
        # hold it; its ledger read is what the Gateway's observation makes)
        wait_for(
            lambda: restarted.stats["observed"] >= 2 and not len(restarted.queue)
            and ledger.stats["reads"] >= 1,
            timeout=15,
            what="initial resync observed",
        )
        assert ledger.stats == {"reads": 1, "writes": 0}
        # A converged resync: no store read or write for the hash.
        before = restarted.stats["observed"]
        assert restarted.resync() >= 2
        wait_for(
            lambda: restarted.stats["observed"] >= before + 2,
            timeout=10,
            what="resync observed",
        )
        assert ledger.stats == {"reads": 1, "writes": 0}
        assert second.contexts == []
        assert [o.id for o in store.list_operations(gateway_uid=uid)] == provisions_before
        assert store.get_gateway(uid) == recorded

        # A changed input still provisions, and the new hash is recorded.
        edit(kube, GATEWAY_API, "Gateway", "edge", namespace,
             lambda live: live["spec"]["listeners"][0].update(port=8080))
        wait_for(lambda: len(second.contexts) == 1, timeout=15, what="re-provision on change")
        wait_for(
            lambda: store.get_gateway(uid).input_hash not in (None, recorded.input_hash),
            timeout=10,
            what="new input hash recorded",
        )
        assert ledger.stats["writes"] == 1
