"""Helpers for the rotation tests: the in-cluster example's blueprint under test names, a
running bifrost ``Controller`` against the devcluster, and reads of what a rotation left behind.
"""

from __future__ import annotations

import base64
import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from support.waiting import wait_for

from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.engine import start_operation
from bifrost.kube import KubeClient
from bifrost.machines.rotation import ROTATION_MACHINE, RotationContext, rotation_spec
from bifrost.records import CertificateRecord, OperationRecord
from bifrost.store import SqlStore
from devcluster.handshakes import HandshakeLoop, Target

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "in-cluster"
GATEWAY_API = "gateway.networking.k8s.io/v1"
BIFROST_API = "gateway.bifrost.dev/v1alpha1"
CERT_API = "cert-manager.io/v1"
PORT_ANNOTATION = "devcluster.bifrost.dev/dataplane-port"
UID_LABEL = "gateway.bifrost.dev/gateway-uid"


def example_blueprint(name: str, **tls: Any) -> dict[str, Any]:
    """The in-cluster example's blueprint named ``name``, ``spec.tls`` fields overridden."""
    doc = yaml.safe_load((EXAMPLE / "10-blueprint.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["metadata"] = {"name": name}
    doc["spec"]["tls"].update(tls)
    return dict(doc)


def https_gateway(namespace: str, name: str, class_name: str,
                  hostnames: tuple[str, ...]) -> dict[str, Any]:
    listeners = [{"name": f"https-{i}", "protocol": "HTTPS", "port": 443, "hostname": h,
                  "tls": {"certificateRefs": [{"name": f"{name}-user-tls"}]}}
                 for i, h in enumerate(hostnames)]
    return {"apiVersion": GATEWAY_API, "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": class_name, "listeners": listeners}}


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


@dataclass
class Env:
    kube: KubeClient
    store: SqlStore
    namespace: str
    controller: Controller | None = None

    def gateway(self, name: str) -> dict[str, Any] | None:
        return self.kube.get(GATEWAY_API, "Gateway", name, self.namespace)

    def programmed(self, name: str, *, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            gw = self.gateway(name)
            c = condition(gw, "Programmed")
            return gw if c and c["status"] == "True" else None
        try:
            return dict(wait_for(check, timeout=timeout, what=f"Gateway {name} Programmed"))
        except AssertionError as exc:
            status = (self.gateway(name) or {}).get("status") or {}
            raise AssertionError(f"{exc}; conditions: {status.get('conditions')}") from None

    def certificates(self, uid: str) -> list[CertificateRecord]:
        return self.store.list_certificates(gateway_uid=uid)

    def attached(self, uid: str, listener: str) -> list[CertificateRecord]:
        return [c for c in self.certificates(uid) if c.attached and c.listener == listener]

    def certificate_objects(self, uid: str) -> list[dict[str, Any]]:
        items, _ = self.kube.list(CERT_API, "Certificate", self.namespace)
        return [o for o in items
                if ((o.get("metadata") or {}).get("labels") or {}).get(UID_LABEL) == uid]

    def secret_exists(self, name: str) -> bool:
        return self.kube.get("v1", "Secret", name, self.namespace) is not None

    def child_gateway(self, gateway: str) -> dict[str, Any]:
        child = self.kube.get(GATEWAY_API, "Gateway", f"{gateway}-child", self.namespace)
        assert child is not None
        return child

    def targets(self, gateway: str, hostnames: tuple[str, ...]) -> list[Target]:
        child = self.child_gateway(gateway)
        port = int(child["metadata"]["annotations"][PORT_ANNOTATION])
        return [Target("127.0.0.1", port, h) for h in hostnames]

    def ca_pem(self, record: CertificateRecord) -> str:
        assert record.secret_name
        secret = self.kube.get("v1", "Secret", record.secret_name, self.namespace)
        assert secret is not None
        return base64.b64decode(secret["data"]["ca.crt"]).decode()

    def handshakes(self, gateway: str, hostnames: tuple[str, ...], record: CertificateRecord,
                   *, interval: float = 0.02) -> HandshakeLoop:
        return HandshakeLoop(self.targets(gateway, hostnames), ca_pem=self.ca_pem(record),
                             interval=interval)

    def start_rotation(self, certificate: CertificateRecord, *, reason: str = "test",
                       **context: Any) -> OperationRecord:
        from bifrost.clock import SystemClock

        gw = self.store.get_gateway(certificate.gateway_uid)
        ctx = RotationContext.for_renewal(certificate, reason=reason)
        if context:
            ctx = ctx.model_copy(update=context)
        return start_operation(self.store, rotation_spec(), gateway_uid=gw.uid,
                               namespace=gw.namespace, name=gw.name, context=ctx,
                               clock=SystemClock(), actor="test")

    def finished(self, op_id: int, *, timeout: float = 60) -> OperationRecord:
        def check() -> OperationRecord | None:
            op = self.store.get_operation(op_id)
            return op if op.status.terminal else None
        return wait_for(check, timeout=timeout, what=f"operation {op_id} to finish")  # type: ignore[no-any-return]

    def rotations(self, uid: str) -> list[OperationRecord]:
        return [o for o in self.store.list_operations(gateway_uid=uid)
                if o.machine == ROTATION_MACHINE]


def resync_observed(controller: Controller, *, timeout: float = 30) -> None:
    """Enqueue every known key again (``Controller.resync``) and wait until at least that many
    observations finished after it and no key is ready in the queue. A check that a pass did
    nothing (no write, no operation started) then runs after the pass, not before it: the
    resync only enqueues, the workers observe later."""
    before = controller.stats["observed"]
    keys = controller.resync()
    wait_for(lambda: controller.stats["observed"] >= before + keys and not len(controller.queue),
             timeout=timeout, what=f"the resync's {keys} keys observed")


@contextmanager
def running_controller(kube: KubeClient, store: SqlStore, *, identity: str = "rotation-test",
                       lease_namespace: str = "bifrost-system") -> Iterator[Controller]:
    controller = Controller(kube, store, options=ControllerOptions(
        identity=identity, lease_namespace=lease_namespace, lease_duration=5, renew_deadline=4,
        retry_period=0.5, runner_idle=timedelta(milliseconds=50),
        renewal_poll=timedelta(seconds=0.5), renewal_jitter=0.0))
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield controller
    finally:
        stop.set()
        thread.join(timeout=20)
