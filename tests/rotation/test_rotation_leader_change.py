"""A leader change in the middle of a certificate rotation: the new leader finishes it, exactly
once, while a client keeps handshaking with the data plane.

Two ``bifrost run`` processes with different identities (``ctl-a-…``, ``ctl-b-…``) share one
SQLite store and the rotation devcluster; they elect a leader through the ``bifrost-controller``
Lease (``--lease-duration 3``) and only the leader runs the engine. Operation leases are short
(``BIFROST_RUNNER_LEASE_SECONDS=2``), so a step left in flight by a dead leader is re-run soon.

1. ``test_new_leader_finishes_a_rotation_whose_leader_was_killed``: the rotation is started and
   the leader is SIGKILLed mid-way — either while its runner has ``attach_new`` in flight (the
   step is begun, its lease held: the new leader must wait out the operation lease and re-run
   the step) or while the operation waits out its drain (no lease held: a clean hand-over).
2. ``test_a_paused_leader_is_deposed_and_its_late_commit_is_fenced``: the leader is SIGSTOPped
   while its runner has a given step in flight (``create_certificate``, ``await_issued``,
   ``attach_new`` or ``verify_served``: it holds the operation's lease), its Lease expires, the
   other one leads and runs the operation on; the paused one is SIGCONTed while the rotation
   drains (so its late *cluster* writes — same certificate object, old + new rendered — are
   still correct), its runner finishes the step it was in: the step's own late *store* writes
   and the engine commit are rejected (fencing by lease owner, row version and step attempt),
   it steps down, and the rotation still finishes exactly once. Before the step writes were
   fenced, a deposed leader resumed in ``await_issued`` recorded the new certificate as not
   attached after the new leader had attached it, and the listener lost its certificate when
   the old one was detached (handshakes failed).
3. ``test_a_late_step_write_of_a_deposed_runner_is_fenced``: the store-level fence, without a
   cluster: a step's certificate/children writes carry its attempt's fence and are refused
   once another runner took the operation over.

After each: the Lease changed hands; the operation succeeded; the journal shows the steps the
old leader's runners finished and the rest finished by the new leader's; every success-path step
has exactly one ``done`` row; exactly one new certificate object (the old one and its Secret are
gone, nothing orphaned); the store, the inventory and the child gateway agree; the handshake loop
(SNI for both hostnames every 20 ms, chain/name/validity verified) saw 0 failures.

Everything waits on observable state (store rows, the Lease, the controllers' logs) with bounded
polling.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rotation_kit import CERT_API, UID_LABEL, Env, example_blueprint, https_gateway
from support.builders import gateway_class
from support.controller_process import ControllerProcess as Controller
from support.waiting import wait_for

from bifrost.controller.manager import LEASE_NAME
from bifrost.kube import KubeClient
from bifrost.machines.rotation import (
    ATTACH_NEW,
    AWAIT_ISSUED,
    CREATE_CERTIFICATE,
    DELETE_NEW,
    DELETE_OLD,
    DETACH_NEW,
    DETACH_OLD,
    DRAIN,
    VERIFY_SERVED,
)
from bifrost.records import (
    CertificateRecord,
    ChildRecord,
    JournalOutcome,
    JournalRecord,
    NewOperation,
    OperationRecord,
    OperationStatus,
)
from bifrost.store import LeaseLost, SqlStore, migrate, open_store
from bifrost.store.fence import StepFence, step_fence
from devcluster.handshakes import HandshakeLoop

SUCCESS_STEPS = (CREATE_CERTIFICATE, AWAIT_ISSUED, ATTACH_NEW, VERIFY_SERVED, DRAIN, DETACH_OLD,
                 DELETE_OLD)
HOSTNAMES = ("a.example.com", "b.example.com")
LISTENERS = ("https-0", "https-1")
LEASE_API = "coordination.k8s.io/v1"
LEASE_NAMESPACE = "bifrost-system"
LEASE_DURATION_S = 3
RUNNER_LEASE_S = 2.0
SECRET_CERT_ANNOTATION = "cert-manager.io/certificate-name"
STARTED_BY = "leader-change-test"
CONTROLLER_ENVIRONMENT = {"BIFROST_RUNNER_LEASE_SECONDS": str(RUNNER_LEASE_S),
                          "BIFROST_RENEWAL_POLL_SECONDS": "1",
                          "BIFROST_RENEWAL_JITTER_SECONDS": "0"}


@dataclass
class Scene:
    env: Env
    db_path: Path
    a: Controller
    b: Controller
    began: float
    uid: str = ""
    loop: HandshakeLoop | None = None
    rotations: int = 0

    def holder(self) -> str | None:
        lease = self.env.kube.get(LEASE_API, "Lease", LEASE_NAME, LEASE_NAMESPACE)
        return ((lease or {}).get("spec") or {}).get("holderIdentity") or None

    def controller(self, identity: str | None) -> Controller | None:
        return {self.a.identity: self.a, self.b.identity: self.b}.get(identity or "")

    def leader(self) -> tuple[Controller, Controller]:
        """(leader, standby) once one of the two holds the Lease."""
        held = wait_for(lambda: self.controller(self.holder()), timeout=30,
                        what="ctl-a or ctl-b to hold the Lease")
        return held, (self.b if held is self.a else self.a)

    def logs(self) -> str:
        return "\n".join(f"--- {c.identity} ({c.signals}) ---\n{c.log_tail()}"
                         for c in (self.a, self.b))

    def op(self, op_id: int) -> OperationRecord:
        return self.env.store.get_operation(op_id)

    def journal(self, op_id: int) -> list[JournalRecord]:
        return self.env.store.journal(operation_id=op_id, limit=100_000)

    def current(self) -> dict[str, CertificateRecord]:
        """The attached certificate of each listener (exactly one each)."""
        by_listener: dict[str, list[CertificateRecord]] = {}
        for record in self.env.certificates(self.uid):
            if record.attached:
                by_listener.setdefault(record.listener, []).append(record)
        assert sorted(by_listener) == list(LISTENERS), by_listener
        assert all(len(v) == 1 for v in by_listener.values()), by_listener
        return {listener: records[0] for listener, records in by_listener.items()}

    def start_rotation(self, old: CertificateRecord) -> int:
        self.rotations += 1
        return self.env.start_rotation(old, reason="leader change test").id

    def poll_until(self, op_id: int, hit: Callable[[OperationRecord], bool],
                   what: str) -> OperationRecord:
        """Poll the operation (every 2 ms, read-only) until ``hit``; fails if it ends first.
        120 s: on a loaded 2-core CI machine a takeover (Lease expiry, operation lease expiry,
        the re-run step's TLS probe) was seen to pass 60 s once."""
        deadline = time.monotonic() + 120
        while True:
            op = self.op(op_id)
            if hit(op):
                return op
            assert not op.status.terminal, \
                f"operation {op_id} ended ({op.status.value}) before {what}\n{self.logs()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n{self.logs()}"
            time.sleep(0.002)

    def finished(self, op_id: int, *, timeout: float = 90) -> OperationRecord:
        def check() -> OperationRecord | None:
            op = self.op(op_id)
            return op if op.status.terminal else None
        try:
            return wait_for(check, timeout=timeout,  # type: ignore[no-any-return]
                            what=f"rotation {op_id} to finish")
        except AssertionError as e:
            op = self.op(op_id)
            raise AssertionError(f"{e}: state {op.state} step {op.step} attempt {op.attempt} "
                                 f"status {op.status.value} owner {op.lease_owner} last_error "
                                 f"{op.last_error}\n{self.logs()}") from None

    def write_lock_free(self) -> bool:
        """True if nobody holds the SQLite database's write lock right now (a stopped process
        holding it would block every writer: that is not the scenario under test)."""
        conn = sqlite3.connect(self.db_path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                return False
            raise
        finally:
            conn.close()

    def check_rotation(self, op_id: int, old: CertificateRecord, untouched: CertificateRecord,
                       why: str) -> CertificateRecord:
        """Everything a finished rotation must leave behind; the new certificate."""
        env = self.env
        op = self.op(op_id)
        assert op.status is OperationStatus.SUCCEEDED, \
            f"{why}: {op.status.value} {op.last_error}\n{self.logs()}"
        current = self.current()
        new = current[old.listener]
        other = next(listener for listener in LISTENERS if listener != old.listener)
        assert new.object_name != old.object_name, why
        assert new.fingerprint_sha256 and new.fingerprint_sha256 != old.fingerprint_sha256, why
        assert current[other] == untouched, f"{why}: the other listener's certificate changed"
        names = {r.object_name for r in current.values()}
        secrets = {r.secret_name for r in current.values()}
        # the store knows exactly the current certificates, and so does the inventory
        assert {r.object_name for r in env.certificates(self.uid)} == names, why
        inventory = {c.child_id for c in env.store.list_children(self.uid)
                     if c.child_id.startswith("tls:")}
        assert inventory == {f"tls:{n}" for n in names}, why
        assert [c.child_id for c in env.store.list_children(self.uid) if not c.ready] == [], why
        # the cluster: exactly one new Certificate object, the old one and its Secret gone
        items, _ = env.kube.list(CERT_API, "Certificate", env.namespace)
        objects = {o["metadata"]["name"]: o for o in items}
        assert set(objects) == names, f"{why}: Certificates {sorted(objects)}, expected {names}"
        assert all(o["metadata"]["labels"].get(UID_LABEL) == self.uid
                   for o in objects.values()), why
        assert old.secret_name and not env.secret_exists(old.secret_name), why
        found, _ = env.kube.list("v1", "Secret", env.namespace)
        certificate_secrets = {
            s["metadata"]["name"]:
                (s["metadata"].get("annotations") or {}).get(SECRET_CERT_ANNOTATION)
            for s in found
            if SECRET_CERT_ANNOTATION in (s["metadata"].get("annotations") or {})
            or UID_LABEL in (s["metadata"].get("labels") or {})}
        assert set(certificate_secrets) == secrets, \
            f"{why}: certificate Secrets {certificate_secrets}"
        assert set(certificate_secrets.values()) == names, why
        # the child gateway refers to exactly the current Secrets
        child = env.child_gateway("edge")
        refs = {x["name"]: [r["name"] for r in x["tls"]["certificateRefs"]]
                for x in child["spec"]["listeners"]}
        assert refs == {listener: [current[listener].secret_name] for listener in LISTENERS}, why
        # the journal: each success-path step finished exactly once, no rollback, no gaps
        rows = self.journal(op_id)
        done = Counter(r.step for r in rows if r.outcome is JournalOutcome.DONE and r.step)
        assert done == Counter(SUCCESS_STEPS), f"{why}: done rows {dict(done)}"
        assert not [r for r in rows if r.step in (DETACH_NEW, DELETE_NEW)], why
        failed = (JournalOutcome.FAILED, JournalOutcome.RETRY)
        assert not [r for r in rows if r.outcome in failed], \
            f"{why}: {[(r.step, r.outcome.value, r.message) for r in rows]}"
        assert [r.sequence for r in rows] == list(range(1, len(rows) + 1)), why
        # the test's rotations of this gateway and no other; nothing else is running
        ops = env.store.list_operations(gateway_uid=self.uid, limit=1000)
        rotations = [o for o in ops if o.machine == op.machine]
        assert rotations[0].id == op_id and len(rotations) == self.rotations, why
        assert all(o.status is OperationStatus.SUCCEEDED for o in rotations), why
        assert all(o.status.terminal for o in ops), why
        return new

    def who_ran(self, op_id: int) -> str:
        """Per step: the outcomes and which controller's runner wrote them."""
        names = {self.a.identity: "ctl-a", self.b.identity: "ctl-b"}

        def runner(actor: str) -> str:
            identity, _, index = actor.partition("/")
            return names.get(identity, identity) + (f"/{index}" if index else "")
        rows = self.journal(op_id)
        return "\n".join(
            f"  {step}: " + ", ".join(f"{r.outcome.value}#{r.attempt}@{runner(r.actor)}"
                                      for r in rows if r.step == step)
            for step in SUCCESS_STEPS)


@pytest.fixture
def scene(rotation_cluster: Path, tmp_path: Path) -> Iterator[Scene]:
    """Two controllers on one store, the Gateway programmed with both listeners' certificates
    attached, and a handshake loop running against its data plane."""
    began = time.monotonic()
    db_path = tmp_path / "store.db"
    url = f"sqlite:///{db_path.as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(rotation_cluster)
    namespace = f"lc-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    env = Env(kube, store, namespace)
    logs = tmp_path / "logs"
    logs.mkdir()
    suffix = namespace.removeprefix("lc-")
    a = Controller(rotation_cluster, url, logs, identity=f"ctl-a-{suffix}",
                   lease_duration=LEASE_DURATION_S, environment=CONTROLLER_ENVIRONMENT)
    b = Controller(rotation_cluster, url, logs, identity=f"ctl-b-{suffix}",
                   lease_duration=LEASE_DURATION_S, environment=CONTROLLER_ENVIRONMENT)
    loop: HandshakeLoop | None = None
    try:
        # the paused-leader test resumes the old leader during the drain and needs its late
        # commit and its step-down (a renew period) to happen before the drain ends: 8 s leaves
        # room on a loaded machine
        kube.apply(example_blueprint(f"bp-{namespace}", drainSeconds=8))
        kube.apply(gateway_class(f"gc-{namespace}", f"bp-{namespace}"))
        kube.apply(https_gateway(namespace, "edge", f"gc-{namespace}", HOSTNAMES))
        a.start()
        b.start()
        scene = Scene(env, db_path, a, b, began)
        scene.leader()
        scene.uid = uid = env.programmed("edge", timeout=60)["metadata"]["uid"]
        wait_for(lambda: len([c for c in env.certificates(uid) if c.attached]) == 2,
                 timeout=30, what="both listeners' certificates attached")
        loop = env.handshakes("edge", HOSTNAMES, scene.current()["https-0"]).start()
        wait_for(lambda: loop is not None and loop.report().handshakes >= 2 * len(HOSTNAMES),
                 timeout=10, what="the handshake loop to get going")
        scene.loop = loop
        yield scene
    finally:
        if loop is not None:
            loop.stop()
        for c in (a, b):
            c.stop()
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
        store.close()


def _report(scene: Scene, title: str, op_id: int, extra: str) -> None:
    assert scene.loop is not None
    report = scene.loop.stop()
    print(f"\n{title}: {extra}; {report.handshakes} handshakes, {report.failures} failures, "
          f"longest gap {report.longest_gap * 1000:.1f} ms, {len(report.fingerprints)} leaves "
          f"seen; {time.monotonic() - scene.began:.1f} s\n{scene.who_ran(op_id)}")
    assert report.failures == 0, report.errors
    # the two first leaves and every rotation's new one were served, nothing else
    assert len(report.fingerprints) == 2 + scene.rotations, report.fingerprints


@dataclass(frozen=True)
class Stopped:
    """Where a rotation's leader was stopped."""

    op_id: int
    old: CertificateRecord
    untouched: CertificateRecord
    at: OperationRecord  # the operation, read once the leader was stopped
    journal: list[JournalRecord]  # its journal then
    misses: list[str]


def _stop_leader(scene: Scene, leader: Controller, hit: Callable[[OperationRecord], bool],
                 step: str, what: str) -> Stopped:
    """Start rotations of ``https-0`` until ``leader`` is stopped (SIGSTOP, every thread
    stopped) while the operation matches ``hit`` — polled, then confirmed by reading it once
    the leader is stopped and can no longer move it — and not holding the SQLite write lock (a
    stopped writer would block every other one: not the scenario here). Otherwise it is resumed
    and the next chance taken; if ``step`` finished meanwhile, that rotation runs to its end
    (checked) and another one starts."""
    misses: list[str] = []

    def went_by(op: OperationRecord) -> bool:
        return op.status.terminal or any(
            r.step == step and r.outcome is JournalOutcome.DONE for r in scene.journal(op.id))
    for _rotation in range(5):
        current = scene.current()
        old, untouched = current["https-0"], current["https-1"]
        op_id = scene.start_rotation(old)
        while True:
            op = scene.poll_until(op_id, lambda o: hit(o) or went_by(o), what)
            if not hit(op):
                break
            leader.pause()
            at = scene.op(op_id)
            if hit(at) and scene.write_lock_free():
                return Stopped(op_id, old, untouched, at, scene.journal(op_id), misses)
            misses.append(f"op {op_id}: {'write lock held' if hit(at) else 'moved on'}")
            leader.signal(signal.SIGCONT)
        misses.append(f"op {op_id}: {what} went by")
        scene.finished(op_id)
        scene.check_rotation(op_id, old, untouched, "a rotation without a leader change")
    raise AssertionError(f"could not stop {leader.identity} at {what}: {misses}")


@pytest.mark.parametrize("kill_at", ["attach_new in flight", "drain wait"])
def test_new_leader_finishes_a_rotation_whose_leader_was_killed(scene: Scene,
                                                                 kill_at: str) -> None:
    leader, standby = scene.leader()
    if kill_at == "attach_new in flight":
        # the leader's runner began attach_new (write-ahead committed, lease held) and has not
        # committed its outcome: killed now, the step must be re-run by the new leader
        def hit(op: OperationRecord) -> bool:
            return (op.step == ATTACH_NEW and op.status is OperationStatus.RUNNING
                    and leader.owns(op.lease_owner))
        step = ATTACH_NEW
    else:
        # the drain's first wait is committed: no step in flight, no lease held
        def hit(op: OperationRecord) -> bool:
            return (op.state == "drain" and op.status is OperationStatus.WAITING
                    and op.lease_owner is None)
        step = DRAIN
    stopped = _stop_leader(scene, leader, hit, step, kill_at)
    leader.kill()
    op_id, old, untouched = stopped.op_id, stopped.old, stopped.untouched
    at_kill, killed_rows = stopped.at, stopped.journal
    assert scene.journal(op_id) == killed_rows  # nothing moved it: only the leader ran it
    last_seq = killed_rows[-1].sequence

    # the standby takes the Lease and finishes the rotation
    wait_for(lambda: scene.holder() == standby.identity, timeout=4 * LEASE_DURATION_S + 10,
             what=f"{standby.identity} to take the Lease")
    op = scene.finished(op_id)
    new = scene.check_rotation(op_id, old, untouched, f"killed at {kill_at}")

    rows = scene.journal(op_id)
    assert rows[: len(killed_rows)] == killed_rows, "the journal is append-only"
    before, after = rows[: len(killed_rows)], rows[len(killed_rows):]
    # before the kill: the operation's creation, then only the old leader's runners
    assert all(leader.owns(r.actor) for r in before if r.actor != "test"), \
        [(r.sequence, r.actor) for r in before]
    # after it: only the new leader's runners, and it finished what was left
    assert after and all(standby.owns(r.actor) for r in after), \
        [(r.sequence, r.actor) for r in after]
    done_by = {r.step: r.actor for r in rows if r.outcome is JournalOutcome.DONE and r.step}
    old_leader_steps = [s for s in SUCCESS_STEPS if leader.owns(done_by[s])]
    new_leader_steps = [s for s in SUCCESS_STEPS if standby.owns(done_by[s])]
    assert old_leader_steps + new_leader_steps == list(SUCCESS_STEPS)
    if kill_at == "attach_new in flight":
        assert old_leader_steps == [CREATE_CERTIFICATE, AWAIT_ISSUED]
        # the old leader's attempt was begun (write-ahead) and never finished; the new leader
        # re-ran the step as the next attempt
        assert [(r.outcome, r.attempt) for r in before if r.step == ATTACH_NEW] == \
            [(JournalOutcome.STARTED, at_kill.attempt)]
        assert [r.attempt for r in after if r.step == ATTACH_NEW
                and r.outcome is JournalOutcome.STARTED][0] == at_kill.attempt + 1
    else:
        assert old_leader_steps == [CREATE_CERTIFICATE, AWAIT_ISSUED, ATTACH_NEW, VERIFY_SERVED]
        assert [r.outcome for r in before if r.step == DRAIN][-1] is JournalOutcome.WAIT
    assert op.status is OperationStatus.SUCCEEDED
    assert scene.holder() == standby.identity
    assert standby.stop() == 0, standby.log_tail()
    _report(scene, f"leader change (SIGKILL at {kill_at})", op_id,
            f"{leader.identity} killed at journal row {last_seq} ({at_kill.state}/"
            f"{at_kill.step}; misses {stopped.misses}), {standby.identity} took over and "
            f"finished; new certificate {new.object_name}")


@pytest.mark.parametrize("paused_in", [CREATE_CERTIFICATE, AWAIT_ISSUED, ATTACH_NEW,
                                       VERIFY_SERVED])
def test_a_paused_leader_is_deposed_and_its_late_commit_is_fenced(scene: Scene,
                                                                  paused_in: str) -> None:
    leader, standby = scene.leader()

    def in_flight(op: OperationRecord) -> bool:
        return (op.step == paused_in and op.status is OperationStatus.RUNNING
                and leader.owns(op.lease_owner))
    stopped = _stop_leader(scene, leader, in_flight, paused_in, f"{paused_in} in flight")
    op_id, old, untouched = stopped.op_id, stopped.old, stopped.untouched
    paused_rows = stopped.journal
    paused_attempt, paused_owner = stopped.at.attempt, stopped.at.lease_owner

    # its Lease expires, the other one leads, takes the operation over once its lease expired
    # and re-runs the step the paused one had in flight
    wait_for(lambda: scene.holder() == standby.identity, timeout=4 * LEASE_DURATION_S + 10,
             what=f"{standby.identity} to take the Lease")

    def draining(op: OperationRecord) -> bool:
        return op.state == "drain" and op.status is OperationStatus.WAITING
    scene.poll_until(op_id, draining, f"{standby.identity} to get the rotation to its drain")
    journal = scene.journal(op_id)
    assert not [r for r in journal[len(paused_rows):] if not standby.owns(r.actor)], \
        "only the new leader ran the operation while the old one was stopped"
    assert [r for r in journal if r.step == paused_in and r.outcome is JournalOutcome.DONE
            and standby.owns(r.actor)], f"{standby.identity} did not finish {paused_in}"

    # resumed while the rotation drains: the paused runner finishes its step and tries to commit
    # it; the store rejects it (lease owner and version moved on) and the process steps down
    leader.signal(signal.SIGCONT)
    fenced = f"operation {op_id}: lease lost, dropping the work"
    wait_for(lambda: fenced in leader.log(), timeout=30,
             what=f"{leader.identity}'s late commit to be rejected\n{scene.logs()}")
    wait_for(lambda: f"{leader.identity} stopped leading" in leader.log(), timeout=30,
             what=f"{leader.identity} to step down\n{scene.logs()}")
    # the late commit was tried (and rejected) while the rotation was still draining
    assert scene.op(op_id).state == "drain", scene.op(op_id)
    assert scene.holder() == standby.identity

    op = scene.finished(op_id)
    new = scene.check_rotation(op_id, old, untouched, f"paused in {paused_in}")
    rows = scene.journal(op_id)
    assert rows[: len(paused_rows)] == paused_rows, "the journal is append-only"
    # nothing the deposed leader did after it was resumed reached the journal
    after = rows[len(paused_rows):]
    assert after and all(standby.owns(r.actor) for r in after), \
        [(r.sequence, r.actor) for r in after]
    assert [(r.step, r.outcome, r.attempt) for r in paused_rows if r.actor == paused_owner][-1] \
        == (paused_in, JournalOutcome.STARTED, paused_attempt)
    assert op.status is OperationStatus.SUCCEEDED
    # the deposed leader is a healthy standby again; both shut down cleanly
    assert leader.proc is not None and leader.proc.poll() is None, leader.log_tail()
    assert standby.stop() == 0, standby.log_tail()
    assert leader.stop() == 0, leader.log_tail()
    rejected = next(line for line in leader.log().splitlines() if fenced in line)
    _report(scene, f"leader change (SIGSTOP in {paused_in}, late commit fenced)", op_id,
            f"{leader.identity} stopped in {paused_in} attempt {paused_attempt} "
            f"(misses {stopped.misses}), {standby.identity} took over and finished, the late "
            f"work was rejected: {rejected.split(' INFO ', 1)[-1]}; new certificate "
            f"{new.object_name}")


def test_a_late_step_write_of_a_deposed_runner_is_fenced(store: SqlStore) -> None:
    """On every backend (the root conftest's ``store``: SQLite and PostgreSQL)."""
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    lease = timedelta(seconds=RUNNER_LEASE_S)
    store.upsert_gateway(uid="g", namespace="ns", name="edge", now=t0)
    op = store.create_operation(NewOperation(
        gateway_uid="g", namespace="ns", name="edge", machine="rotate_certificate",
        machine_version=1, state="request"), now=t0, actor="test")
    (claimed,) = store.claim_due(owner="ctl-a/1", now=t0, lease_for=lease)
    begun = store.begin_step(op.id, owner="ctl-a/1", version=claimed.version, now=t0,
                             step=AWAIT_ISSUED, attempt=1)
    deposed = StepFence(op.id, "ctl-a/1", begun.version, AWAIT_ISSUED, 1)
    issued = CertificateRecord(
        gateway_uid="g", listener="https-0", object_name="new", secret_name="new-tls",
        serial="1", fingerprint_sha256="f", dns_names=("a.example.com",), not_before=t0,
        not_after=t0 + timedelta(days=47), renewal_at=None, attached=False, state="issued",
        updated_at=t0)
    child = ChildRecord(gateway_uid="g", child_id="tls:new", api_version=CERT_API,
                        kind="Certificate", namespace="ns", name="new", uid=None,
                        applied_hash=None, ready=True, updated_at=t0)
    with step_fence(deposed):  # still its own: written
        store.upsert_certificate(issued)
        store.upsert_child(child)
    # its lease expires; another runner claims the operation, re-runs the step, goes on
    t1 = t0 + lease + timedelta(seconds=1)
    (claimed,) = store.claim_due(owner="ctl-b", now=t1, lease_for=lease)
    begun = store.begin_step(op.id, owner="ctl-b", version=claimed.version, now=t1,
                             step=AWAIT_ISSUED, attempt=2)
    with step_fence(StepFence(op.id, "ctl-b", begun.version, AWAIT_ISSUED, 2)):
        store.upsert_certificate(issued)
    attached = store.upsert_certificate(  # (what attach_new does next)
        issued.model_copy(update={"attached": True, "state": "attached"}))
    # the deposed runner resumes: every late write of its step is refused, nothing written
    with step_fence(deposed):
        for write in (lambda: store.upsert_certificate(issued),
                      lambda: store.delete_certificate("g", "new"),
                      lambda: store.upsert_child(child.model_copy(update={"ready": False})),
                      lambda: store.delete_child("g", "tls:new")):
            with pytest.raises(LeaseLost):
                write()
    assert store.list_certificates(gateway_uid="g") == [attached]
    assert store.list_children("g") == [child]
    # outside a step nothing is fenced
    store.delete_child("g", "tls:new")
    assert store.list_children("g") == []
