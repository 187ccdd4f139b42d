"""When a rotation starts (pure decisions, "now" frozen with freezegun where it is the clock's
time) and the one function that starts it, with its preconditions, on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from bifrost.api.blueprint import TLSSource
from bifrost.clock import ManualClock
from bifrost.engine import LaneBusy, start_operation
from bifrost.machines.provision import ProvisionContext, provision_spec
from bifrost.machines.registry import MachineRegistry
from bifrost.machines.rotation import (
    REASON_HOSTNAMES_CHANGED,
    REASON_SOURCE_CHANGED,
    ROTATION_MACHINE,
    rotation_spec,
)
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import CertificateRecord, OperationRecord, OperationStatus
from bifrost.store import SqlStore
from bifrost.triggers.rotation import (
    ROTATION_RETRY_AFTER,
    certificate_to_replace,
    listener_change,
    make_due_now,
    not_renewable,
    recently_failed,
    renewal_due,
    renewal_due_at,
    rotation_machine,
    start_rotation,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
UID = "uid-1"


def cert(name: str = "web-cert", *, renewal_at: datetime | None = T0, attached: bool = True,
         dns: tuple[str, ...] = ("shop.example.com",), fingerprint: str | None = "aa",
         not_before: datetime | None = None) -> CertificateRecord:
    return CertificateRecord(
        gateway_uid=UID, listener="https", object_name=name, secret_name=f"{name}-tls",
        serial=None, fingerprint_sha256=fingerprint, dns_names=dns, not_before=not_before,
        not_after=None, renewal_at=renewal_at, attached=attached, state="attached",
        updated_at=T0,
    )


def listener(hostname: str = "shop.example.com") -> dict[str, Any]:
    return {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": hostname}


def live(uid: str = UID, *, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "namespace": "infra", "uid": uid}
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-25T12:00:00Z"
    return {"metadata": metadata}


# ---- when --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("frozen_at", "record", "due"),
    [
        (T0 - timedelta(seconds=1), cert(), False),
        (T0, cert(), True),
        (T0 + timedelta(days=3), cert(), True),  # a missed renewal time is due at once
        (T0 + timedelta(days=3), cert(attached=False), False),
        (T0 + timedelta(days=3), cert(renewal_at=None), False),
    ],
    ids=["before", "at", "missed", "detached", "no-renewal-time"],
)
def test_renewal_is_due_once_its_time_has_come(
    frozen_at: datetime, record: CertificateRecord, due: bool
) -> None:
    with freeze_time(frozen_at):
        assert renewal_due(record, now=datetime.now(UTC), jitter_seconds=0) is due


def test_the_jitter_delays_a_renewal_by_less_than_its_bound() -> None:
    due_at = renewal_due_at(cert(), jitter_seconds=60)
    assert T0 <= due_at < T0 + timedelta(seconds=60)
    with freeze_time(due_at - timedelta(microseconds=1)):
        assert not renewal_due(cert(), now=datetime.now(UTC), jitter_seconds=60)
    with freeze_time(due_at):
        assert renewal_due(cert(), now=datetime.now(UTC), jitter_seconds=60)
    with pytest.raises(ValueError, match="has no renewal time"):
        renewal_due_at(cert(renewal_at=None), jitter_seconds=60)


@pytest.mark.parametrize(
    ("hostname", "attached", "source", "served", "reason"),
    [
        ("shop.example.com", [cert()], TLSSource.REQUEST, None, None),
        ("new.example.com", [cert()], TLSSource.REQUEST, None, REASON_HOSTNAMES_CHANGED),
        ("new.example.com", [cert(), cert("other", dns=("new.example.com",))],
         TLSSource.REQUEST, None, None),
        ("new.example.com", [], TLSSource.REQUEST, None, None),  # provision issues the first
        ("shop.example.com", [cert()], TLSSource.LISTENER_SECRET, "aa", None),
        ("shop.example.com", [cert()], TLSSource.LISTENER_SECRET, "bb", REASON_SOURCE_CHANGED),
        ("shop.example.com", [cert()], TLSSource.LISTENER_SECRET, None, None),  # unreadable
    ],
    ids=["covered", "hostname-changed", "another-covers-it", "none-attached", "same-secret",
         "secret-changed", "secret-missing"],
)
def test_a_listener_change_names_why_it_rotates(
    hostname: str, attached: list[CertificateRecord], source: TLSSource, served: str | None,
    reason: str | None,
) -> None:
    asked: list[bool] = []

    def served_fingerprint() -> str | None:
        asked.append(True)
        return served

    assert listener_change(listener(hostname), attached, source=source,
                           served_fingerprint=served_fingerprint) == reason
    # the Secret (whose data costs an API read) is looked at only for ListenerSecret
    if source is not TLSSource.LISTENER_SECRET:
        assert asked == []


def _op(machine: str, status: OperationStatus, finished_at: datetime | None) -> OperationRecord:
    return OperationRecord(
        id=1, gateway_uid=UID, namespace="infra", name="web", machine=machine,
        machine_version=1, lane="default", state="s", status=status, context={},
        context_raw="{}", step=None, attempt=0, next_run_at=None, lease_owner=None,
        lease_expires_at=None, version=1, last_error=None, created_at=T0, updated_at=T0,
        finished_at=finished_at,
    )


@pytest.mark.parametrize(
    ("operation", "elapsed", "paused"),
    [
        (_op(ROTATION_MACHINE, OperationStatus.FAILED, T0), timedelta(minutes=1), True),
        (_op(ROTATION_MACHINE, OperationStatus.FAILED, T0), ROTATION_RETRY_AFTER, False),
        (_op(ROTATION_MACHINE, OperationStatus.CANCELLED, T0), timedelta(minutes=1), True),
        (_op(ROTATION_MACHINE, OperationStatus.SUCCEEDED, T0), timedelta(minutes=1), False),
        (_op("provision", OperationStatus.FAILED, T0), timedelta(minutes=1), False),
        (_op(ROTATION_MACHINE, OperationStatus.RUNNING, None), timedelta(minutes=1), False),
    ],
    ids=["failed-just-now", "failed-long-ago", "cancelled", "succeeded", "another-machine",
         "running"],
)
def test_a_failed_rotation_pauses_the_next_one(
    operation: OperationRecord, elapsed: timedelta, paused: bool
) -> None:
    with freeze_time(T0 + elapsed):
        assert recently_failed([operation], now=datetime.now(UTC)) is paused


def test_the_newest_attached_certificate_is_replaced() -> None:
    older = cert("older", not_before=T0 - timedelta(days=40))
    newer = cert("newer", not_before=T0 - timedelta(days=2))
    unknown = cert("unknown", not_before=None)
    assert certificate_to_replace([older, newer, unknown]).object_name == "newer"
    assert certificate_to_replace([unknown]).object_name == "unknown"


def test_what_makes_a_gateway_not_renewable(store: SqlStore) -> None:
    gw = store.upsert_gateway(uid=UID, namespace="infra", name="web", now=T0)
    assert not_renewable(None) == "is not recorded"
    assert not_renewable(gw) is None
    # a caller that watches Gateways also needs the live object, unchanged and not deleting
    assert not_renewable(gw, live=live(), watched=True) is None
    assert not_renewable(gw, live=None, watched=True) == "is gone or was re-created"
    assert not_renewable(gw, live=live("uid-2"), watched=True) == "is gone or was re-created"
    assert not_renewable(gw, live=live(deleting=True), watched=True) == (
        "is being deleted; teardown removes its certificates")
    deleting = store.set_gateway_state(UID, lifecycle_state="deleting", now=T0)
    assert not_renewable(deleting) == (
        "is deleting; its certificates are being removed, not renewed")


def test_the_rotation_machine_counts_only_if_it_can_renew_a_certificate() -> None:
    assert rotation_machine(None) is None
    assert rotation_machine(MachineRegistry()) is None
    assert rotation_machine(MachineRegistry([rotation_spec()])) == rotation_spec()
    no_renewal = MachineSpec(
        name=ROTATION_MACHINE, version=1, initial="go", context_model=ProvisionContext,
        states=(StateSpec(name="go", steps=(StepSpec(name="x"),), on_done="done"),
                StateSpec(name="done", terminal=OperationStatus.SUCCEEDED)),
    )
    assert rotation_machine(MachineRegistry([no_renewal])) is None


# ---- how ---------------------------------------------------------------------------------------

def test_start_rotation_starts_once_and_returns_the_running_one(store: SqlStore) -> None:
    clock = ManualClock(T0)
    store.upsert_gateway(uid=UID, namespace="infra", name="web", now=T0)
    old = store.upsert_certificate(cert())
    start = start_rotation(store, rotation_spec(), old, reason="renewal requested by alice",
                           clock=clock, actor="alice@laptop")
    assert start.operation is not None and not start.already_running
    op = start.operation
    assert (op.machine, op.namespace, op.name, op.status) == (
        ROTATION_MACHINE, "infra", "web", OperationStatus.PENDING)
    assert op.context is not None
    assert (op.context["old"], op.context["reason"]) == ("web-cert", "renewal requested by alice")
    [created] = store.journal(operation_id=op.id)
    assert (created.message, created.actor) == ("created", "alice@laptop")

    again = start_rotation(store, rotation_spec(), old, reason="renewal due", clock=clock,
                           actor="controller", live_gateway=lambda ns, name: live())
    assert again.already_running and again.operation is not None
    assert again.operation.id == op.id
    assert len(store.list_operations(gateway_uid=UID)) == 1


def test_start_rotation_starts_nothing_for_a_gateway_going_away(store: SqlStore) -> None:
    clock = ManualClock(T0)
    orphan = cert()  # its Gateway is not recorded
    assert start_rotation(store, rotation_spec(), orphan, reason="r", clock=clock,
                          actor="a").not_renewable == "is not recorded"
    store.upsert_gateway(uid=UID, namespace="infra", name="web", now=T0)
    seen: list[tuple[str, str]] = []

    def being_deleted(namespace: str, name: str) -> dict[str, Any]:
        seen.append((namespace, name))
        return live(deleting=True)

    start = start_rotation(store, rotation_spec(), cert(), reason="r", clock=clock, actor="a",
                           live_gateway=being_deleted)
    assert (start.operation, start.not_renewable) == (
        None, "is being deleted; teardown removes its certificates")
    assert seen == [("infra", "web")]
    assert store.list_operations(gateway_uid=UID) == []


def test_start_rotation_waits_while_the_listener_has_extra_attached_certificates(
    store: SqlStore,
) -> None:
    """Rotating one of two attached certificates would leave three: the repair goes first."""
    clock = ManualClock(T0)
    store.upsert_gateway(uid=UID, namespace="infra", name="web", now=T0)
    due = store.upsert_certificate(cert("web-a"))
    store.upsert_certificate(cert("web-b"))
    start = start_rotation(store, rotation_spec(), due, reason="renewal due", clock=clock,
                           actor="controller")
    assert start.operation is None and start.not_renewable is None
    assert start.later == ("has 2 certificates attached to listener https outside a rotation; "
                           "the controller detaches the extras first")
    assert store.list_operations(gateway_uid=UID) == []
    # once one is detached, the renewal starts
    store.upsert_certificate(cert("web-b", attached=False))
    assert start_rotation(store, rotation_spec(), due, reason="renewal due", clock=clock,
                          actor="controller").operation is not None


def test_start_rotation_raises_when_another_machine_holds_the_lane(store: SqlStore) -> None:
    clock = ManualClock(T0)
    store.upsert_gateway(uid=UID, namespace="infra", name="web", now=T0)
    provision = start_operation(
        store, provision_spec(), gateway_uid=UID, namespace="infra", name="web",
        context=ProvisionContext(namespace="infra", gateway="web", gateway_uid=UID,
                                 blueprint="bp"),
        clock=clock, actor="controller")
    with pytest.raises(LaneBusy) as busy:
        start_rotation(store, rotation_spec(), cert(), reason="r", clock=clock, actor="a")
    assert busy.value.holder.id == provision.id


def test_without_a_rotation_machine_a_request_makes_the_renewal_due_now(
    store: SqlStore,
) -> None:
    store.upsert_gateway(uid=UID, namespace="infra", name="web", now=T0)
    later = store.upsert_certificate(cert("later", renewal_at=T0 + timedelta(days=10)))
    due = store.upsert_certificate(cert("due", renewal_at=T0 - timedelta(days=1)))
    unset = store.upsert_certificate(cert("unset", renewal_at=None))
    assert make_due_now(store, [later, due, unset], now=T0) == ["later", "unset"]
    renewal = {c.object_name: c.renewal_at for c in store.list_certificates(gateway_uid=UID)}
    assert renewal == {"later": T0, "due": T0 - timedelta(days=1), "unset": T0}
