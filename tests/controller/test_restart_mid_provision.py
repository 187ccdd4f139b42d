"""Restart: ``bifrost run`` is SIGKILLed in the middle of provisioning a Gateway and started
again; the provision resumes where it was and finishes without duplicate children.

The blueprint has a settings ConfigMap, a cert-manager Certificate (ready when issued) and a
child Gateway that depends on the Certificate. The devcluster's issuer is held back (not started)
until the first controller is dead, so "mid-way" is an observable, stable state — the ConfigMap
and the Certificate exist, the child does not, the provision operation waits — not a race won by
timing. The load-balancer peer runs throughout (it programs the child Gateway once it exists).
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from controller_kit import GATEWAY_API, blueprint
from support.builders import gateway, gateway_class
from support.controller_process import ControllerProcess
from support.waiting import wait_for

from bifrost.kube.client import KubeClient
from bifrost.records import OperationStatus
from bifrost.store import SqlStore, open_store
from devcluster.peers import Peers

GATEWAY_UID_LABEL = "gateway.bifrost.dev/gateway-uid"
CHILD_ID_LABEL = "gateway.bifrost.dev/child-id"
#: The kinds the blueprint below renders (what to list by the gateway-uid label).
CHILD_KINDS = (
    ("v1", "ConfigMap"),
    ("cert-manager.io/v1", "Certificate"),
    (GATEWAY_API, "Gateway"),
)

CHILDREN: list[dict[str, Any]] = [
    {
        "id": "settings",
        "template": "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: '{{ gateway.metadata.name }}-settings'}\n"
        "data: {replicas: '2'}\n",
    },
    {
        "id": "cert",
        "template": "apiVersion: cert-manager.io/v1\nkind: Certificate\n"
        "metadata: {name: '{{ gateway.metadata.name }}-cert'}\n"
        "spec:\n"
        "  secretName: '{{ gateway.metadata.name }}-tls'\n"
        "  dnsNames: [app.example.com]\n"
        "  issuerRef: {name: devcluster-ca, kind: ClusterIssuer}\n",
        "readyWhen": 'object.status.conditions.exists(c, c.type == "Ready" '
        '&& c.status == "True")',
    },
    {
        "id": "child",
        "dependsOn": ["cert"],
        "template": "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
        "metadata: {name: '{{ gateway.metadata.name }}-child'}\n"
        "spec:\n"
        "  gatewayClassName: devcluster\n"
        "  listeners:\n"
        "    - name: https\n"
        "      protocol: HTTPS\n"
        "      port: 443\n"
        "      hostname: app.example.com\n"
        "      tls: {certificateRefs: [{name: '{{ gateway.metadata.name }}-tls'}]}\n",
        "readyWhen": 'object.status.conditions.exists(c, c.type == "Programmed" '
        '&& c.status == "True")',
    },
]


@pytest.fixture
def peers(kubeconfig: Path) -> Iterator[Peers]:
    """The devcluster's peers, the load balancer started, the issuer not yet (tests start it)."""
    held = Peers(kubeconfig, dataplane=False, publish_ca=False)
    held.loadbalancer.start()
    try:
        yield held
    finally:
        held.loadbalancer.stop()
        held.issuer.stop()
        held.stop()  # closes the peers' clients


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def _children_in_cluster(kube: KubeClient, uid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for api_version, kind in CHILD_KINDS:
        items, _ = kube.list(api_version, kind, None, label_selector=f"{GATEWAY_UID_LABEL}={uid}")
        found.extend(items)
    return found


def _by_child_id(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        out.setdefault(obj["metadata"]["labels"][CHILD_ID_LABEL], []).append(obj)
    return out


def _programmed(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Programmed":
            return dict(cond)
    return None


def _leading(ctl: ControllerProcess) -> bool:
    assert ctl.proc.poll() is None, f"controller {ctl.identity} exited:\n{ctl.log()}"
    info = ctl.describe()
    return bool(info and info.get("ok") and info.get("leader"))


def test_sigkill_mid_provision_then_restart_resumes_without_duplicates(
    kube: KubeClient,
    namespace: str,
    store: SqlStore,
    peers: Peers,
    start_controller: Callable[..., ControllerProcess],
) -> None:
    suffix = uuid.uuid4().hex[:6]
    cls, bp = f"cls-{suffix}", f"bp-{suffix}"
    kube.create(blueprint(bp, children=CHILDREN))
    kube.create(gateway_class(cls, bp))
    first = start_controller("ctl-first", lease_duration=3.0)
    wait_for(lambda: _leading(first), timeout=20, what="first controller leading")
    uid = kube.create(gateway(namespace, "edge", cls))["metadata"]["uid"]

    # Mid-way: the settings and the certificate are applied (and in the inventory with their
    # uids), the child is pending on the unissued certificate, the provision waits.
    def midway() -> bool:
        ops = [o for o in store.list_operations(gateway_uid=uid) if o.machine == "provision"]
        inventory = {c.child_id: c.uid for c in store.list_children(uid)}
        return (
            len(ops) == 1
            and ops[0].status is OperationStatus.WAITING
            and set(inventory) == {"settings", "cert"}
            and all(inventory.values())
            and set(_by_child_id(_children_in_cluster(kube, uid))) == {"settings", "cert"}
        )

    wait_for(midway, timeout=30, what="provision waiting with 2 of 3 children applied")
    before = {c["metadata"]["labels"][CHILD_ID_LABEL]: c["metadata"]["uid"]
              for c in _children_in_cluster(kube, uid)}
    (operation,) = store.list_operations(gateway_uid=uid)
    assert operation.state != "done"
    recorded_hash = store.get_gateway(uid).input_hash
    assert recorded_hash is not None  # the first controller recorded the provision's inputs

    first.proc.send_signal(signal.SIGKILL)
    assert first.proc.wait(timeout=10) == -signal.SIGKILL

    # The dependency becomes ready while no controller runs; then a new process takes over.
    peers.issuer.start()
    wait_for(
        lambda: _certificate_ready(kube, namespace),
        timeout=20,
        what="certificate issued by the issuer peer",
    )
    second = start_controller("ctl-second", lease_duration=3.0)
    live = wait_for(
        lambda: (
            (g := kube.get(GATEWAY_API, "Gateway", "edge", namespace))
            and (_programmed(g) or {}).get("status") == "True"
            and g
        ),
        timeout=45,
        what=f"Gateway Programmed after the restart\n{second.log()}",
    )
    assert _leading(second)
    assert (_programmed(live) or {}).get("observedGeneration") == 1

    # Exactly one object per child id; the ones made before the kill were neither deleted nor
    # re-created (same uid).
    in_cluster = _by_child_id(_children_in_cluster(kube, uid))
    assert {cid: len(objs) for cid, objs in in_cluster.items()} == {
        "settings": 1, "cert": 1, "child": 1,
    }
    after = {cid: objs[0]["metadata"]["uid"] for cid, objs in in_cluster.items()}
    assert {cid: after[cid] for cid in before} == before

    # The store's inventory is exactly what is in the cluster.
    inventory = {
        c.child_id: (c.api_version, c.kind, c.namespace, c.name, c.uid)
        for c in store.list_children(uid)
    }
    assert inventory == {
        cid: (
            objs[0]["apiVersion"], objs[0]["kind"], objs[0]["metadata"].get("namespace"),
            objs[0]["metadata"]["name"], objs[0]["metadata"]["uid"],
        )
        for cid, objs in in_cluster.items()
    }

    # The one provision operation resumed and finished; the restart started no other one (the
    # input hash of the first is in the store).
    ops = store.list_operations(gateway_uid=uid)
    assert [(o.id, o.machine) for o in ops] == [(operation.id, "provision")]
    assert ops[0].status is OperationStatus.SUCCEEDED
    assert store.get_gateway(uid).input_hash == recorded_hash
    actors = {j.actor for j in store.journal(operation_id=operation.id)}
    assert {"ctl-first", "ctl-second"} <= actors


def _certificate_ready(kube: KubeClient, namespace: str) -> bool:
    cert = kube.get("cert-manager.io/v1", "Certificate", "edge-cert", namespace)
    conditions = ((cert or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
