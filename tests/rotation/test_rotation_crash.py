"""Crash resume of a certificate rotation, measured with real TLS handshakes.

``bifrost run`` runs as a subprocess against the rotation devcluster and is SIGKILLed, then
restarted (same identity, so it is the leader again at once; it resumes an operation once the
dead process's operation lease — ``BIFROST_RUNNER_LEASE_SECONDS`` — expired):

1. at every step of the rotation's success path: the test polls the store (read-only) and kills
   the controller as soon as the operation's step in flight (the engine's write-ahead) is a step
   not killed yet (polling starts while ``bifrost-admin renew`` creates the operation). A step
   that went by between two polls would be taken in the next rotation; in practice all seven are
   hit in the first;
2. at 30+ seeded random points: over 6+ further rotations (alternating listeners) the controller
   is killed a few times per rotation, each time at a random delay in [0, 2] s after the
   operation started or after the restarted controller resumed it (its first write to the
   operation), then the rotation is left to finish.

After every rotation: it succeeded; the store has exactly one certificate per listener, attached;
the namespace has exactly one cert-manager ``Certificate`` per listener and no other (nothing
orphaned by a crashed attempt), the replaced one and its Secret are gone, every certificate
Secret belongs to a current certificate; the child gateway refers to exactly the current
Secrets; the journal has exactly one ``done`` row per success-path step and no rollback. A
handshake loop (SNI for both hostnames every 20 ms, chain/name/validity verified) runs through
the whole test and must see 0 failures.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from rotation_kit import CERT_API, REPO, UID_LABEL, Env, example_blueprint, https_gateway
from support.builders import gateway_class
from support.controller_process import ControllerProcess
from support.waiting import wait_for

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
    ROTATION_MACHINE,
    VERIFY_SERVED,
)
from bifrost.records import CertificateRecord, JournalOutcome, OperationRecord, OperationStatus
from bifrost.store import SqlStore, migrate, open_store
from devcluster.handshakes import HandshakeLoop

# The global 300 s per-test timeout is too tight on a loaded machine (~2.5 min when idle).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20260505
SUCCESS_STEPS = (CREATE_CERTIFICATE, AWAIT_ISSUED, ATTACH_NEW, VERIFY_SERVED, DRAIN, DETACH_OLD,
                 DELETE_OLD)
HOSTNAMES = ("a.example.com", "b.example.com")
LISTENERS = ("https-0", "https-1")
RUNNER_LEASE_S = 2.0
MIN_RANDOM_KILLS = 30
MIN_RANDOM_ROTATIONS = 6
#: A guard against kills that never land (not the property under test): how many rotations the
#: random phase may take to land MIN_RANDOM_KILLS kills. How many land per rotation depends on how
#: long a rotation takes against MAX_KILL_DELAY_S; 18-20 rotations for 28-31 kills is typical.
MAX_RANDOM_ROTATIONS = 40
MAX_KILL_DELAY_S = 2.0
SECRET_CERT_ANNOTATION = "cert-manager.io/certificate-name"
# the dead process's operation lease expires soon, renewals are looked for every second
CONTROLLER_SETTINGS = {"BIFROST_RUNNER_LEASE_SECONDS": str(RUNNER_LEASE_S),
                       "BIFROST_RENEWAL_POLL_SECONDS": "1", "BIFROST_RENEWAL_JITTER_SECONDS": "0"}


@dataclass
class Renewal:
    """``bifrost-admin renew`` — the operator's path — in a subprocess."""

    proc: subprocess.Popen[str]
    op_id: int

    def confirm(self) -> None:
        """The command succeeded and reported the operation the test followed."""
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, f"bifrost-admin renew failed: {out}{err}"
        assert json.loads(out).get("operation_id") == self.op_id, out


def _renew(store: SqlStore, db_url: str, namespace: str, uid: str, listener: str) -> Renewal:
    """Start a rotation with ``bifrost-admin renew``; returns as soon as the operation is in the
    store, so the test sees its first step although the command may still be exiting."""
    before = max((o.id for o in store.list_operations(gateway_uid=uid, limit=1)), default=0)
    admin = Path(sys.executable).with_name("bifrost-admin")
    cmd = [str(admin)] if admin.exists() else [sys.executable, "-m", "bifrost.cli.admin"]
    proc = subprocess.Popen(
        [*cmd, "renew", f"{namespace}/edge", "--listener", listener, "--actor", "crash-test",
         "-o", "json", "--database-url", db_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)

    def created() -> int | None:
        for op in store.list_operations(gateway_uid=uid, limit=5):
            if op.id > before and op.machine == ROTATION_MACHINE:
                return op.id
        if proc.poll() is not None and proc.returncode != 0:
            raise AssertionError(f"bifrost-admin renew failed: {proc.communicate()}")
        return None

    op_id = wait_for(created, timeout=60, interval=0.002, what="bifrost-admin renew")
    return Renewal(proc, int(op_id))


def _finished(store: SqlStore, op_id: int, ctl: ControllerProcess, *,
              timeout: float = 90) -> OperationRecord:
    def check() -> OperationRecord | None:
        op = store.get_operation(op_id)
        return op if op.status.terminal else None
    try:
        return wait_for(check, timeout=timeout, what=f"rotation {op_id} to finish")  # type: ignore[no-any-return]
    except AssertionError as e:
        op = store.get_operation(op_id)
        raise AssertionError(f"{e}: state {op.state} step {op.step} attempt {op.attempt} "
                             f"status {op.status.value} last_error {op.last_error}; kills "
                             f"{ctl.kills}\n{ctl.log_tail()}") from None


def _resumed(store: SqlStore, op_id: int, version: int) -> OperationRecord:
    """The operation once a (restarted) controller wrote to it again, or once it ended."""
    def check() -> OperationRecord | None:
        op = store.get_operation(op_id)
        return op if op.version != version or op.status.terminal else None
    return wait_for(check, timeout=30, interval=0.005,  # type: ignore[no-any-return]
                    what=f"a controller to resume operation {op_id}")


def _current(env: Env, uid: str) -> dict[str, CertificateRecord]:
    """The attached certificate of each listener (exactly one each)."""
    by_listener: dict[str, list[CertificateRecord]] = {}
    for record in env.certificates(uid):
        if record.attached:
            by_listener.setdefault(record.listener, []).append(record)
    assert sorted(by_listener) == list(LISTENERS), by_listener
    assert all(len(v) == 1 for v in by_listener.values()), by_listener
    return {listener: records[0] for listener, records in by_listener.items()}


def _check_rotation(env: Env, uid: str, op: OperationRecord, old: CertificateRecord,
                    untouched: CertificateRecord, why: str) -> dict[str, CertificateRecord]:
    """Everything a finished rotation must leave behind; the current certificates."""
    assert op.status is OperationStatus.SUCCEEDED, f"{why}: {op.status.value} {op.last_error}"
    current = _current(env, uid)
    new = current[old.listener]
    other = next(listener for listener in LISTENERS if listener != old.listener)
    assert new.object_name != old.object_name, why
    assert new.fingerprint_sha256 and new.fingerprint_sha256 != old.fingerprint_sha256, why
    assert current[other] == untouched, f"{why}: the other listener's certificate changed"
    names = {r.object_name for r in current.values()}
    secrets = {r.secret_name for r in current.values()}
    # the store knows exactly the current certificates, and so does the inventory
    assert {r.object_name for r in env.certificates(uid)} == names, why
    inventory = {c.child_id for c in env.store.list_children(uid) if c.child_id.startswith("tls:")}
    assert inventory == {f"tls:{n}" for n in names}, why
    # the cluster: one Certificate per listener, nothing else (no orphan of a crashed attempt)
    items, _ = env.kube.list(CERT_API, "Certificate", env.namespace)
    objects = {o["metadata"]["name"]: o for o in items}
    assert set(objects) == names, f"{why}: Certificates {sorted(objects)}, expected {names}"
    assert all(o["metadata"]["labels"].get(UID_LABEL) == uid for o in objects.values()), why
    assert old.secret_name and not env.secret_exists(old.secret_name), why
    found, _ = env.kube.list("v1", "Secret", env.namespace)
    certificate_secrets = {
        s["metadata"]["name"]: (s["metadata"].get("annotations") or {}).get(SECRET_CERT_ANNOTATION)
        for s in found
        if SECRET_CERT_ANNOTATION in (s["metadata"].get("annotations") or {})
        or UID_LABEL in (s["metadata"].get("labels") or {})}
    assert set(certificate_secrets) == secrets, f"{why}: certificate Secrets {certificate_secrets}"
    assert set(certificate_secrets.values()) == names, why
    # the child gateway refers to exactly the current Secrets
    child = env.child_gateway("edge")
    refs = {x["name"]: [r["name"] for r in x["tls"]["certificateRefs"]]
            for x in child["spec"]["listeners"]}
    assert refs == {listener: [current[listener].secret_name] for listener in LISTENERS}, why
    # the journal: each success-path step finished exactly once, no rollback ran
    rows = env.store.journal(operation_id=op.id, limit=100_000)
    done = Counter(r.step for r in rows if r.outcome is JournalOutcome.DONE and r.step)
    assert done == Counter(SUCCESS_STEPS), f"{why}: done rows {dict(done)}"
    assert not [r for r in rows if r.step in (DETACH_NEW, DELETE_NEW)], why
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1)), why
    return current


def test_rotation_survives_sigkill_at_every_step_and_at_random_points(
        rotation_cluster: Path, tmp_path: Path) -> None:
    began = time.monotonic()
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    kube = KubeClient.from_kubeconfig(rotation_cluster)
    namespace = f"rc-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    env = Env(kube, store, namespace)
    logs = tmp_path / "logs"
    logs.mkdir()
    ctl = ControllerProcess(rotation_cluster, url, logs, identity=f"crash-{namespace}",
                            lease_duration=4, environment=CONTROLLER_SETTINGS)
    loop: HandshakeLoop | None = None
    try:
        kube.apply(example_blueprint(f"bp-{namespace}", drainSeconds=1))
        kube.apply(gateway_class(f"gc-{namespace}", f"bp-{namespace}"))
        kube.apply(https_gateway(namespace, "edge", f"gc-{namespace}", HOSTNAMES))
        ctl.start()
        uid = env.programmed("edge", timeout=60)["metadata"]["uid"]
        wait_for(lambda: len([c for c in env.certificates(uid) if c.attached]) == 2,
                 timeout=30, what="both listeners' certificates attached")
        current = _current(env, uid)
        loop = env.handshakes("edge", HOSTNAMES, current["https-0"]).start()
        wait_for(lambda: loop is not None and loop.report().handshakes >= 2 * len(HOSTNAMES),
                 timeout=10, what="the handshake loop to get going")
        rotations = 0

        # 1. a kill at every step of the success path
        uncovered = list(SUCCESS_STEPS)
        step_kills: list[str] = []
        while uncovered:
            assert rotations < 5, f"steps never caught in flight: {uncovered} ({step_kills})"
            old, untouched = current["https-0"], current["https-1"]
            renewal = _renew(store, url, namespace, uid, "https-0")
            op_id = renewal.op_id
            rotations += 1
            while True:
                op = store.get_operation(op_id)
                if op.status.terminal:
                    break
                if op.step in uncovered:
                    where = f"rotation {rotations} (op {op_id}) at step {op.step} " \
                            f"attempt {op.attempt}"
                    ctl.restart_after_kill(where)
                    uncovered.remove(op.step)
                    step_kills.append(where)
                    continue
                time.sleep(0.003)
            renewal.confirm()
            op = _finished(store, op_id, ctl)
            current = _check_rotation(env, uid, op, old, untouched,
                                      f"after the step kills {step_kills}")
        killed_steps = [w.split(" at step ")[1].split()[0] for w in step_kills]
        assert sorted(killed_steps) == sorted(SUCCESS_STEPS), step_kills

        # 2. kills at seeded random points
        rng = random.Random(SEED)
        random_kills: list[str] = []
        random_rotations = 0
        while len(random_kills) < MIN_RANDOM_KILLS or random_rotations < MIN_RANDOM_ROTATIONS:
            assert random_rotations < MAX_RANDOM_ROTATIONS, \
                f"seed {SEED}: too few kills landed: {random_kills}"
            listener = LISTENERS[(random_rotations + 1) % 2]  # https-1 first: https-0 just went
            other = LISTENERS[random_rotations % 2]
            old, untouched = current[listener], current[other]
            renewal = _renew(store, url, namespace, uid, listener)
            op_id = renewal.op_id
            rotations += 1
            random_rotations += 1
            anchor = time.monotonic()
            # drawn up front, so the seed alone fixes every rotation's kill delays
            plan = [rng.uniform(0, MAX_KILL_DELAY_S) for _ in range(rng.randint(4, 6))]
            for delay in plan:
                op = store.get_operation(op_id)
                while not op.status.terminal and time.monotonic() < anchor + delay:
                    time.sleep(0.003)
                    op = store.get_operation(op_id)
                if op.status.terminal:
                    break
                where = f"seed {SEED} rotation {rotations} (op {op_id}, {listener}) " \
                        f"+{delay:.3f}s"
                ctl.kill(where)
                op = store.get_operation(op_id)  # nothing moves it now
                if op.status.terminal:
                    ctl.start()  # it finished just before the kill: not a kill in the rotation
                    break
                random_kills.append(f"{where} at step {op.step} attempt {op.attempt} "
                                    f"({op.state}, {op.status.value})")
                ctl.start()
                op = _resumed(store, op_id, op.version)
                anchor = time.monotonic()
            renewal.confirm()
            op = _finished(store, op_id, ctl)
            current = _check_rotation(env, uid, op, old, untouched,
                                      f"seed {SEED}, kills {random_kills}")
        assert len(random_kills) >= MIN_RANDOM_KILLS

        report = loop.stop()
        elapsed = time.monotonic() - began
        at = Counter(k.split(" at step ")[1].split()[0] for k in random_kills)
        print(f"\nrotation crash test: {rotations} rotations, {len(ctl.kills)} SIGKILLs "
              f"({len(step_kills)} at every step, {len(random_kills)} random, seed {SEED}; "
              f"step kills {step_kills}; random ones at {dict(at)}), {ctl.runs} controller "
              f"runs; "
              f"{report.handshakes} handshakes, {report.failures} failures, longest gap "
              f"{report.longest_gap * 1000:.1f} ms, {len(report.fingerprints)} leaves seen; "
              f"{elapsed:.1f} s")
        assert report.failures == 0, (report.errors, ctl.kills)
        # the two first leaves and every rotation's new one were served, nothing else
        assert len(report.fingerprints) == rotations + 2, report.fingerprints
        assert ctl.stop() == 0, ctl.log_tail()
        ops = [o for o in store.list_operations(gateway_uid=uid, limit=1000)
               if o.machine == ROTATION_MACHINE]
        assert len(ops) == rotations
        assert all(o.status is OperationStatus.SUCCEEDED for o in ops)
    finally:
        if loop is not None:
            loop.stop()
        ctl.stop()
        with contextlib.suppress(Exception):
            kube.delete("v1", "Namespace", namespace)
        kube.close()
        store.close()
