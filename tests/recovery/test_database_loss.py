"""Losing the database under running Gateways, and restoring an older copy of it, on the
devcluster: the cluster is the truth for what exists, so the new controller adopts what carries
each Gateway's labels — no duplicate certificate, Secret or child, no orphan — the Gateways stay
Programmed, TLS keeps working (real handshakes against the data plane, through the whole
recovery), and then ``bifrost-admin renew`` and a teardown work and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from recovery_kit import GATEWAY_API, Scene, controller
from support.waiting import wait_for

from bifrost.machines.rotation import ROTATION_MACHINE

pytestmark = pytest.mark.slow

GATEWAYS = {"alpha": "alpha.example.com", "beta": "beta.example.com"}


def _programmed_pair(scene: Scene) -> dict[str, str]:
    """Both Gateways applied and Programmed; name → uid."""
    scene.apply_class()
    for name, hostname in GATEWAYS.items():
        scene.apply_gateway(name, hostname)
    for name in GATEWAYS:
        scene.wait_programmed(name)
    return {name: scene.uid(name) for name in GATEWAYS}


def _one_of_each(scene: Scene, uid: str) -> dict[str, list[str]]:
    owned = scene.owned(uid)
    assert [len(owned[k]) for k in ("ConfigMap", "Gateway", "Certificate")] == [1, 1, 1], owned
    return owned


def _renew_and_tear_down(scene: Scene, uids: dict[str, str],
                         before: dict[str, dict[str, list[str]]]) -> None:
    """``bifrost-admin renew`` on alpha replaces its certificate (old one and its Secret gone);
    deleting beta removes every object of it and its certificate Secret."""
    ns = scene.namespace
    (old,) = before["alpha"]["Certificate"]
    renew = scene.admin("renew", f"{ns}/alpha")
    assert renew.returncode == 0, renew.stderr
    print(f"renew: {renew.stdout.strip()}")
    scene.wait_succeeded(uids["alpha"], ROTATION_MACHINE, timeout=90)
    after = _one_of_each(scene, uids["alpha"])
    assert after["Certificate"] != [old]
    (attached,) = scene.attached(uids["alpha"])
    assert attached.object_name == after["Certificate"][0]
    assert f"{old}-tls" not in scene.certificate_secrets()
    assert scene.programmed("alpha")

    (beta_cert,) = before["beta"]["Certificate"]
    scene.kube.delete(GATEWAY_API, "Gateway", "beta", ns)
    wait_for(lambda: scene.gateway("beta") is None, timeout=60, what="beta to be gone")
    assert scene.owned(uids["beta"]) == {"ConfigMap": [], "Gateway": [], "Certificate": []}
    assert scene.certificate_secrets() == [f"{attached.object_name}-tls"]
    assert f"{beta_cert}-tls" not in scene.certificate_secrets()


def test_a_deleted_database_is_rebuilt_from_the_cluster_without_duplicates(
    scene: Scene,
) -> None:
    scene.open_new_store()
    with controller(scene, "ctl-1"):
        uids = _programmed_pair(scene)
    before = {name: _one_of_each(scene, uid) for name, uid in uids.items()}
    secrets = scene.certificate_secrets()
    assert len(secrets) == 2

    scene.delete_database()
    store = scene.open_new_store()
    assert store.list_certificates(gateway_uid=uids["alpha"]) == []
    ca = secrets[0]
    with scene.handshakes(list(GATEWAYS), ca) as loop, controller(scene, "ctl-2"):
        not_programmed: set[str] = set()

        def recovered() -> bool:
            for name in GATEWAYS:
                if not scene.programmed(name):
                    not_programmed.add(name)
            return all(scene.operations(uid, "provision")
                       and scene.operations(uid, "provision")[0].status.value == "succeeded"
                       and scene.programmed(name) for name, uid in uids.items())
        wait_for(recovered, timeout=90, what="both Gateways provisioned again")
        report = loop.report()
        print(f"\nrecovery: {report.handshakes} handshakes, {report.failures} failures; "
              f"Gateways seen not Programmed meanwhile: {sorted(not_programmed)}")
        assert report.failures == 0, report.errors
        assert report.handshakes > 0
        # the provision that rebuilt the store restores what the Gateways are programmed with:
        # they stay Programmed all along (sampled at every poll)
        assert not_programmed == set()
        # nothing new was made: the same objects, the same certificate Secrets
        for name, uid in uids.items():
            assert scene.owned(uid) == before[name]
            (record,) = scene.attached(uid)
            assert [record.object_name] == before[name]["Certificate"]
            assert record.renewal_at is not None and record.fingerprint_sha256
            adopt = [j for j in store.journal(operation_id=scene.operations(uid, "provision")[0].id)
                     if j.step == "adopt" and j.outcome.value == "done"]
            assert adopt and adopt[0].output and adopt[0].output["attached"] == [record.object_name]
        assert scene.certificate_secrets() == secrets
        _renew_and_tear_down(scene, uids, before)


def test_a_backup_from_before_a_rotation_is_reconciled_with_the_cluster(
    scene: Scene, tmp_path: Path,
) -> None:
    scene.open_new_store()
    with controller(scene, "ctl-1"):
        uids = _programmed_pair(scene)
    before = {name: _one_of_each(scene, uid) for name, uid in uids.items()}
    scene.close_store()
    backup = tmp_path / "backup.db"
    scene.backup(backup)

    # after the backup: alpha's certificate is rotated (A → B; A and its Secret deleted)
    store = scene.open_new_store()
    (cert_a,) = scene.attached(uids["alpha"])
    with controller(scene, "ctl-2"):
        renew = scene.admin("renew", f"{scene.namespace}/alpha")
        assert renew.returncode == 0, renew.stderr
        scene.wait_succeeded(uids["alpha"], ROTATION_MACHINE, timeout=90)
    (cert_b,) = scene.attached(uids["alpha"])
    assert cert_b.object_name != cert_a.object_name
    rotated = {**before, "alpha": _one_of_each(scene, uids["alpha"])}
    assert rotated["alpha"]["Certificate"] == [cert_b.object_name]
    secrets = scene.certificate_secrets()

    # the backup comes back: the store says A is attached, the cluster serves B
    store = scene.restore(backup)
    assert [c.object_name for c in scene.attached(uids["alpha"])] == [cert_a.object_name]
    with scene.handshakes(list(GATEWAYS), secrets[0]) as loop, controller(scene, "ctl-3"):
        not_programmed: set[str] = set()

        def reconciled() -> bool:
            not_programmed.update(n for n in GATEWAYS if not scene.programmed(n))
            return [c.object_name for c in scene.attached(uids["alpha"])] == [cert_b.object_name]
        wait_for(reconciled, timeout=90, what="alpha's store to say B is attached")
        # the provision that adopted B ends (Programmed stays True all along, so it is not
        # what tells the end)
        wait_for(lambda: any(o.status.value == "succeeded" and any(
                     j.step == "adopt" and j.outcome.value == "done" and (j.output or {})
                     .get("reason") for j in store.journal(operation_id=o.id))
                     for o in scene.operations(uids["alpha"], "provision")),
                 timeout=60, what="the provision that adopted B to succeed")
        wait_for(lambda: all(scene.programmed(n) for n in GATEWAYS), timeout=60,
                 what="both Gateways Programmed")
        report = loop.report()
        print(f"\nrestore: {report.handshakes} handshakes, {report.failures} failures")
        assert not_programmed == set(), "a Gateway left Programmed during the reconcile"
        # what started the provision is the drift check (alpha's child references B, not what
        # the restored inventory recorded); its adopt step is what set the store right
        adopted = [j.output for o in scene.operations(uids["alpha"], "provision")
                   for j in store.journal(operation_id=o.id)
                   if j.step == "adopt" and j.outcome.value == "done" and j.output
                   and j.output.get("reason")]
        assert adopted, "no provision adopted anything after the restore"
        assert adopted[0]["attached"] == [cert_b.object_name]
        assert adopted[0]["forgotten"] == [cert_a.object_name]
        assert report.failures == 0, report.errors
        (b,) = scene.attached(uids["alpha"])
        # renewal is scheduled from B, A is forgotten
        assert b.renewal_at == cert_b.renewal_at
        assert b.fingerprint_sha256 == cert_b.fingerprint_sha256
        assert cert_a.object_name not in {c.object_name for c in
                                          store.list_certificates(gateway_uid=uids["alpha"])}
        for name, uid in uids.items():
            assert scene.owned(uid) == rotated[name]
        assert scene.certificate_secrets() == secrets
        _renew_and_tear_down(scene, uids, rotated)
