"""Store contract: the writes a step makes itself (certificates, the child inventory) are fenced
while the step runs — by the operation's lease owner, version and step attempt in flight — and
unchecked outside a step; the check before a step's cluster write (``check_step_lease``) also
needs the lease unexpired."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from store_kit import T0, cert, child

from bifrost.records import NewOperation, OperationRecord
from bifrost.store import LeaseLost, SqlStore
from bifrost.store.fence import StepFence, step_fence

LEASE = timedelta(seconds=30)


def _in_flight(store: SqlStore) -> OperationRecord:
    """An operation of gateway u1 (with one certificate and one child) running step 'apply'."""
    store.upsert_gateway(uid="u1", namespace="ns", name="gw", now=T0)
    store.upsert_certificate(cert("u1", "kept"))
    store.upsert_child(child("u1", "kept"))
    store.create_operation(
        NewOperation(gateway_uid="u1", namespace="ns", name="gw", machine="provision",
                     machine_version=1, state="render"),
        now=T0, actor="c",
    )
    [op] = store.claim_due(owner="w1", now=T0, lease_for=LEASE)
    return store.begin_step(op.id, owner="w1", version=op.version, now=T0, step="apply",
                            attempt=1)


def _writes(store: SqlStore) -> dict[str, Callable[[], object]]:
    return {
        "upsert_certificate": lambda: store.upsert_certificate(cert("u1", "new")),
        "delete_certificate": lambda: store.delete_certificate("u1", "kept"),
        "upsert_child": lambda: store.upsert_child(child("u1", "new")),
        "delete_child": lambda: store.delete_child("u1", "kept"),
    }


def _names(store: SqlStore) -> tuple[list[str], list[str]]:
    return ([c.object_name for c in store.list_certificates(gateway_uid="u1")],
            [c.child_id for c in store.list_children("u1")])


WRITES = ["upsert_certificate", "delete_certificate", "upsert_child", "delete_child"]


@pytest.mark.parametrize("write", WRITES)
def test_a_write_inside_the_step_its_runner_still_holds_goes_through(
    store: SqlStore, write: str
) -> None:
    op = _in_flight(store)
    with step_fence(StepFence(op.id, "w1", op.version, "apply", 1)):
        _writes(store)[write]()
    assert _names(store) != (["kept"], ["kept"])


STALE: dict[str, Callable[[StepFence], StepFence]] = {
    "owner": lambda f: replace(f, owner="w2"),  # another runner took the operation over
    "version": lambda f: replace(f, version=f.version - 1),  # the row moved on since
    "step": lambda f: replace(f, step="render"),  # another step is in flight
    "attempt": lambda f: replace(f, attempt=2),  # another attempt of the step is in flight
}


@pytest.mark.parametrize("stale", sorted(STALE))
@pytest.mark.parametrize("write", WRITES)
def test_a_write_of_a_step_that_lost_its_operation_is_fenced_off(
    store: SqlStore, write: str, stale: str
) -> None:
    op = _in_flight(store)
    fence = STALE[stale](StepFence(op.id, "w1", op.version, "apply", 1))
    with step_fence(fence), pytest.raises(LeaseLost):
        _writes(store)[write]()
    assert _names(store) == (["kept"], ["kept"])  # nothing written


@pytest.mark.parametrize("write", WRITES)
def test_a_write_outside_a_step_is_not_fenced(store: SqlStore, write: str) -> None:
    _in_flight(store)
    _writes(store)[write]()
    assert _names(store) != (["kept"], ["kept"])


def test_the_cluster_write_check_passes_while_the_lease_is_held(store: SqlStore) -> None:
    op = _in_flight(store)
    store.check_step_lease(StepFence(op.id, "w1", op.version, "apply", 1),
                           now=T0 + LEASE - timedelta(milliseconds=1))


@pytest.mark.parametrize("stale", sorted(STALE))
def test_the_cluster_write_check_refuses_a_step_that_lost_its_operation(
    store: SqlStore, stale: str
) -> None:
    op = _in_flight(store)
    with pytest.raises(LeaseLost, match="cluster write is fenced off"):
        store.check_step_lease(STALE[stale](StepFence(op.id, "w1", op.version, "apply", 1)),
                               now=T0)


def test_the_cluster_write_check_refuses_an_expired_lease_nobody_took_yet(
    store: SqlStore,
) -> None:
    """Unlike the step's store writes (fenced by the row only), a cluster write needs the
    lease unexpired: once it expired anyone may claim the operation at any moment."""
    op = _in_flight(store)
    with pytest.raises(LeaseLost, match="expired"):
        store.check_step_lease(StepFence(op.id, "w1", op.version, "apply", 1), now=T0 + LEASE)
    assert store.get_operation(op.id).version == op.version  # the check writes nothing


def test_a_cluster_write_check_extends_a_lease_running_low_without_a_new_version(
    store: SqlStore,
) -> None:
    op = _in_flight(store)  # leased until T0 + 30 s
    fence = StepFence(op.id, "w1", op.version, "apply", 1, lease_for=LEASE)
    store.check_step_lease(fence, now=T0 + timedelta(seconds=10))  # 20 s left: untouched
    assert store.get_operation(op.id).lease_expires_at == T0 + LEASE
    later = T0 + timedelta(seconds=20)  # 10 s left, less than half
    store.check_step_lease(fence, now=later)
    after = store.get_operation(op.id)
    assert after.lease_expires_at == later + LEASE
    assert after.version == op.version  # the step's fence (and the runner's commit) still hold
    with step_fence(fence):
        store.upsert_child(child("u1", "new"))
    with pytest.raises(LeaseLost, match="expired"):  # a check after expiry extends nothing
        store.check_step_lease(fence, now=later + LEASE)
    assert store.get_operation(op.id).lease_expires_at == later + LEASE


def test_a_step_store_write_extends_a_lease_running_low(store: SqlStore) -> None:
    op = _in_flight(store)  # leased until T0 + 30 s
    later = T0 + timedelta(seconds=20)
    fence = StepFence(op.id, "w1", op.version, "apply", 1, now=lambda: later, lease_for=LEASE)
    with step_fence(fence):
        store.upsert_child(child("u1", "new"))
    after = store.get_operation(op.id)
    assert (after.lease_expires_at, after.version) == (later + LEASE, op.version)
