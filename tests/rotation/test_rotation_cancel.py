"""Outside a rotation every managed listener has exactly one attached certificate.

``bifrost-admin cancel`` of a rotation during its drain runs the rotation's compensation (the
new certificate is detached and deleted; the old one, never detached, is what the data plane
serves); ``--no-compensate`` ends it where it stands, with both attached — and the controller
then repairs the listener, keeping the newest valid certificate. A store that says two are
attached (e.g. restored from a backup) is repaired the same way."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from rotation_kit import Env, example_blueprint, https_gateway, resync_observed
from support.builders import gateway_class
from support.waiting import wait_for
from typer.testing import CliRunner

from bifrost.cli.admin import AdminEnv, app
from bifrost.records import OperationRecord, OperationStatus

HOST = ("c.example.com",)


def _setup(env: Env, name: str) -> str:
    ns = env.namespace
    # A long drain: the rotation stays in it until the test cancels it.
    env.kube.apply(example_blueprint(f"bp-{ns}-{name}", drainSeconds=600))
    env.kube.apply(gateway_class(f"gc-{ns}-{name}", f"bp-{ns}-{name}"))
    env.kube.apply(https_gateway(ns, name, f"gc-{ns}-{name}", HOST))
    return str(env.programmed(name)["metadata"]["uid"])


def _draining(env: Env, op_id: int) -> OperationRecord:
    def check() -> OperationRecord | None:
        op = env.store.get_operation(op_id)
        assert not op.status.terminal, (op.state, op.last_error)
        return op if op.state == "drain" and op.status is OperationStatus.WAITING else None
    return wait_for(check, timeout=60, what="the rotation to drain")  # type: ignore[no-any-return]


def _cancel(env: Env, tmp_path: Path, name: str, *flags: str) -> dict[str, Any]:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"  # the env fixture's store
    result = CliRunner().invoke(
        app, ["--database-url", url, "-o", "json", "cancel", f"{env.namespace}/{name}",
              "--actor", "ops@test", "--reason", "wrong change window", *flags],
        obj=AdminEnv())
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _served(env: Env, name: str, record: Any) -> str:
    loop = env.handshakes(name, HOST, record)
    return loop.handshake(loop.targets[0])


def _events(env: Env, name: str, reason: str) -> list[dict[str, Any]]:
    items, _ = env.kube.list("events.k8s.io/v1", "Event", env.namespace)
    return [e for e in items if e.get("reason") == reason
            and (e.get("regarding") or {}).get("name") == name]


def test_cancel_during_drain_compensates_to_the_old_certificate(env: Env, tmp_path: Path) -> None:
    uid = _setup(env, "undo")
    (old,) = env.attached(uid, "https-0")
    with env.handshakes("undo", HOST, old) as loop:
        op = env.start_rotation(old)
        _draining(env, op.id)
        assert len(env.attached(uid, "https-0")) == 2  # both, by design, while it drains
        doc = _cancel(env, tmp_path, "undo")
        assert (doc["from_status"], doc["to_status"]) == ("waiting", "waiting")
        assert "compensating from drain" in doc["message"]
        done = env.finished(op.id)
    report = loop.report()
    assert (done.status, done.state) == (OperationStatus.CANCELLED, "cancelled")
    assert report.failures == 0 and report.handshakes > 0, report.errors
    # Exactly one certificate attached — the old one — and the data plane serves it.
    assert [c.object_name for c in env.attached(uid, "https-0")] == [old.object_name]
    assert _served(env, "undo", old) == old.fingerprint_sha256
    assert [o["metadata"]["name"] for o in env.certificate_objects(uid)] == [old.object_name]
    steps = [(j.state, j.step) for j in env.store.journal(operation_id=op.id)
             if j.outcome.value == "done"]
    assert steps[-2:] == [("cancelling", "detach_new"), ("cancelled", "delete_new")]
    admin = [j for j in env.store.journal(operation_id=op.id) if j.outcome.value == "admin"]
    assert [(j.actor, j.message) for j in admin] == [
        ("ops@test", "cancelled by ops@test: wrong change window; compensating: drain → "
                     "cancelling")]
    # Nothing else runs for it afterwards: no repair is needed (checked once a pass over every
    # Gateway has been observed; resync only enqueues it).
    assert env.controller is not None
    resync_observed(env.controller)
    assert [o.id for o in env.rotations(uid)] == [op.id]


def test_cancel_without_compensation_is_repaired_to_the_newest_valid_certificate(
    env: Env, tmp_path: Path
) -> None:
    uid = _setup(env, "keep")
    (old,) = env.attached(uid, "https-0")
    op = env.start_rotation(old)
    drained = _draining(env, op.id)
    new_name = drained.context["new"]
    doc = _cancel(env, tmp_path, "keep", "--no-compensate")
    assert (doc["from_status"], doc["to_status"]) == ("waiting", "cancelled")

    def repaired() -> OperationRecord | None:
        later = [o for o in env.rotations(uid) if o.id != op.id]
        return later[0] if later and later[0].status.terminal else None

    repair = wait_for(repaired, timeout=60, what="the controller's certificate repair")
    assert repair.status is OperationStatus.SUCCEEDED, repair.last_error
    assert (repair.context["old"], repair.context["new"]) == (old.object_name, new_name)
    (kept,) = env.attached(uid, "https-0")
    assert kept.object_name == new_name
    assert _served(env, "keep", kept) == kept.fingerprint_sha256
    assert [o["metadata"]["name"] for o in env.certificate_objects(uid)] == [new_name]
    assert not env.secret_exists(str(old.secret_name))
    steps = [j.step for j in env.store.journal(operation_id=repair.id)
             if j.outcome.value == "done"]
    assert steps == ["detach_old", "delete_old"]
    (started,) = wait_for(lambda: [e for e in _events(env, "keep", "RotateCertificateStarted")
                                   if f"operation {repair.id} " in str(e.get("note"))],
                          timeout=15, what="the repair's Started Event")
    assert f"keeping {new_name} (the newest valid one), detaching {old.object_name}" in str(
        started["note"])


def test_a_store_with_two_attached_certificates_is_repaired(env: Env) -> None:
    uid = _setup(env, "seeded")
    (real,) = env.attached(uid, "https-0")
    assert real.not_before is not None and real.not_after is not None
    # As a restored backup might say: an older, still valid certificate attached beside it.
    stale = real.model_copy(update={
        "object_name": f"{real.object_name}-restored", "secret_name": "restored-tls",
        "fingerprint_sha256": "ab" * 32, "not_before": real.not_before - timedelta(days=3)})
    env.store.upsert_certificate(stale)
    assert len(env.attached(uid, "https-0")) == 2
    env.controller.resync()  # type: ignore[union-attr]

    def repaired() -> list[OperationRecord]:
        return [o for o in env.rotations(uid) if o.status is OperationStatus.SUCCEEDED]

    (repair,) = wait_for(repaired, timeout=60, what="the repair of the seeded store")
    assert (repair.context["old"], repair.context["new"]) == (stale.object_name,
                                                              real.object_name)
    assert [c.object_name for c in env.attached(uid, "https-0")] == [real.object_name]
    assert _served(env, "seeded", real) == real.fingerprint_sha256
