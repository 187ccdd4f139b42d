"""The recovery scene: the in-cluster example's blueprint, Gateways with HTTPS listeners, a
SQLite store file the test can delete or replace by a backup copy, bifrost's Controller run
in-process on it (started and stopped as a controller process would be), and the reads the
checks need: every object carrying a Gateway's uid label, certificate Secrets, TLS handshakes
against the devcluster's data plane."""

from __future__ import annotations

import base64
import copy
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from rotation.rotation_kit import condition
from support.builders import gateway_class
from support.waiting import wait_for

from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.kube import KubeClient
from bifrost.records import CertificateRecord, OperationRecord
from bifrost.store import SqlStore, migrate, open_store
from devcluster.handshakes import HandshakeLoop, Target

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "in-cluster"
GATEWAY_API = "gateway.networking.k8s.io/v1"
CERT_API = "cert-manager.io/v1"
PORT_ANNOTATION = "devcluster.bifrost.dev/dataplane-port"
UID_LABEL = "gateway.bifrost.dev/gateway-uid"
#: The kinds the example blueprint makes for a Gateway (children and certificates).
OWNED_KINDS = (("v1", "ConfigMap"), (GATEWAY_API, "Gateway"), (CERT_API, "Certificate"))


@dataclass
class Scene:
    kube: KubeClient
    namespace: str
    db_path: Path
    store: SqlStore | None = None
    hostnames: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db_path.as_posix()}"

    # ---- the store ----------------------------------------------------------------------

    def open_new_store(self) -> SqlStore:
        """Migrate a new database at ``db_path`` and open it."""
        migrate.upgrade(self.url)
        self.store = open_store(self.url)
        return self.store

    def close_store(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def delete_database(self) -> None:
        self.close_store()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)

    def backup(self, to: Path) -> None:
        """A copy of the SQLite file (taken with the store closed, as a volume snapshot)."""
        assert self.store is None, "close the store first"
        shutil.copyfile(self.db_path, to)

    def restore(self, backup: Path) -> SqlStore:
        self.delete_database()
        shutil.copyfile(backup, self.db_path)
        migrate.upgrade(self.url)
        self.store = open_store(self.url)
        return self.store

    def close(self) -> None:
        self.close_store()

    # ---- the Gateways ---------------------------------------------------------------------

    def apply_class(self, drain_seconds: int = 1) -> str:
        doc = copy.deepcopy(yaml.safe_load((EXAMPLE / "10-blueprint.yaml").read_text()))
        name = f"bp-{self.namespace}"
        doc["metadata"] = {"name": name}
        doc["spec"]["tls"]["drainSeconds"] = drain_seconds
        self.kube.apply(doc)
        self.kube.apply(gateway_class(f"gc-{self.namespace}", name))
        return f"gc-{self.namespace}"

    def apply_gateway(self, name: str, hostname: str) -> None:
        self.hostnames[name] = hostname
        self.kube.apply({
            "apiVersion": GATEWAY_API, "kind": "Gateway",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"gatewayClassName": f"gc-{self.namespace}", "listeners": [
                {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": hostname,
                 "tls": {"certificateRefs": [{"name": f"{name}-user-tls"}]}}]},
        })

    def gateway(self, name: str) -> dict[str, Any] | None:
        return self.kube.get(GATEWAY_API, "Gateway", name, self.namespace)

    def programmed(self, name: str) -> bool:
        c = condition(self.gateway(name), "Programmed")
        return bool(c and c["status"] == "True")

    def wait_programmed(self, name: str, timeout: float = 60) -> dict[str, Any]:
        wait_for(lambda: self.programmed(name), timeout=timeout,
                 what=f"Gateway {name} Programmed")
        gateway = self.gateway(name)
        assert gateway is not None
        return gateway

    def uid(self, name: str) -> str:
        gateway = self.gateway(name)
        assert gateway is not None
        return str(gateway["metadata"]["uid"])

    # ---- what exists ----------------------------------------------------------------------

    def owned(self, uid: str) -> dict[str, list[str]]:
        """Kind → sorted names of every object carrying the Gateway's uid label."""
        out: dict[str, list[str]] = {}
        for api_version, kind in OWNED_KINDS:
            items, _ = self.kube.list(api_version, kind, None,
                                      label_selector=f"{UID_LABEL}={uid}")
            out[kind] = sorted(str(o["metadata"]["name"]) for o in items)
        return out

    def certificate_secrets(self) -> list[str]:
        """Names of the Secrets of the namespace the issuer made (``<certificate>-tls``)."""
        items, _ = self.kube.list("v1", "Secret", self.namespace)
        return sorted(str(o["metadata"]["name"]) for o in items
                      if (o["metadata"].get("annotations") or {})
                      .get("cert-manager.io/certificate-name"))

    def attached(self, uid: str) -> list[CertificateRecord]:
        assert self.store is not None
        return [c for c in self.store.list_certificates(gateway_uid=uid) if c.attached]

    def operations(self, uid: str, machine: str) -> list[OperationRecord]:
        assert self.store is not None
        return [o for o in self.store.list_operations(gateway_uid=uid) if o.machine == machine]

    def wait_succeeded(self, uid: str, machine: str, timeout: float = 60) -> OperationRecord:
        def done() -> OperationRecord | None:
            ops = self.operations(uid, machine)
            failed = [o for o in ops if o.status.value == "failed"]
            assert not failed, failed[0].last_error
            return next((o for o in ops if o.status.value == "succeeded"), None)
        def state() -> str:
            ops = [(o.id, o.machine, o.status.value, o.state, o.step, o.last_error)
                   for o in self.operations(uid, machine)]
            return f"a {machine} of {uid} to succeed (operations: {ops})"
        found: OperationRecord = wait_for(done, timeout=timeout, what=state)
        return found

    # ---- TLS --------------------------------------------------------------------------------

    def handshakes(self, names: list[str], ca_secret: str) -> HandshakeLoop:
        targets = []
        for name in names:
            child = self.kube.get(GATEWAY_API, "Gateway", f"{name}-child", self.namespace)
            assert child is not None
            port = int(child["metadata"]["annotations"][PORT_ANNOTATION])
            targets.append(Target("127.0.0.1", port, self.hostnames[name]))
        secret = self.kube.get("v1", "Secret", ca_secret, self.namespace)
        assert secret is not None
        ca = base64.b64decode(secret["data"]["ca.crt"]).decode()
        return HandshakeLoop(targets, ca_pem=ca, interval=0.05)

    # ---- bifrost-admin ----------------------------------------------------------------------

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "bifrost-admin"), *args]
        env = {**os.environ, "BIFROST_DATABASE_URL": self.url}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60,
                              check=False)


@contextmanager
def controller(scene: Scene, identity: str) -> Iterator[Controller]:
    """bifrost's Controller on the scene's store, leading, until the block ends (a stop)."""
    assert scene.store is not None
    ctl = Controller(scene.kube, scene.store, options=ControllerOptions(
        identity=identity, lease_name=f"bifrost-{scene.namespace}",
        lease_namespace="bifrost-system", controller_namespace="bifrost-system",
        lease_duration=3, renew_deadline=2, retry_period=0.3,
        runner_idle=timedelta(milliseconds=50), renewal_poll=timedelta(seconds=0.5),
        renewal_jitter=0.0))
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: ctl.is_leader, timeout=20, what=f"{identity} leading")
        yield ctl
    finally:
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive(), f"{identity} did not stop"
