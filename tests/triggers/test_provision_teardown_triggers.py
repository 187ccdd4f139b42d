"""When provision and teardown start (pure decisions) and the one function that starts each, on
a real store: a provision with older inputs is reported, not duplicated; a teardown cancels what
else runs in its lane and never starts twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bifrost.clock import ManualClock
from bifrost.engine import LaneBusy, start_operation
from bifrost.machines.provision import ProvisionContext, provision_spec
from bifrost.machines.rotation import rotation_spec
from bifrost.machines.teardown import TeardownContext, teardown_spec
from bifrost.records import CertificateRecord, OperationStatus
from bifrost.store import SqlStore
from bifrost.triggers.context import gateway_candidate, operation_context
from bifrost.triggers.provision import input_hash, needs_provision, start_provision
from bifrost.triggers.rotation import start_rotation
from bifrost.triggers.teardown import (
    CANCEL_REASON,
    in_the_way,
    nothing_left,
    running,
    start_teardown,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
UID = "uid-1"


def gateway(generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "infra", "uid": UID,
                         "generation": generation}}


def route(name: str, generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "apps", "generation": generation}}


def _hash(gw: dict[str, Any] | None = None, **changes: Any) -> str:
    args: dict[str, Any] = {"blueprint_name": "bp", "blueprint_generation": 1,
                            "values": {"a": 1}, "secrets": [("infra", "tls", "7")],
                            "routes": ()}
    args.update(changes)
    return input_hash(gw or gateway(), **args)


def test_the_input_hash_changes_with_every_input_and_nothing_else() -> None:
    base = _hash()
    assert _hash() == base and needs_provision(base, _hash()) is False
    assert needs_provision(None, base)  # never provisioned
    changed = [
        _hash(gateway(generation=2)),
        _hash(blueprint_name="other"),
        _hash(blueprint_generation=2),
        _hash(values={"a": 2}),
        _hash(secrets=[("infra", "tls", "8")]),
        _hash(routes=[route("r")]),
    ]
    assert len({base, *changed}) == len(changed) + 1
    assert _hash(routes=[route("r", generation=2)]) != _hash(routes=[route("r")])
    # no routes hashes as before routes were known (route-less Gateways keep their hash)
    assert _hash(routes=[]) == base


def test_start_provision_reports_a_provision_with_older_inputs(store: SqlStore) -> None:
    clock = ManualClock(T0)
    store.upsert_gateway(uid=UID, namespace="infra", name="web", now=T0)
    spec = provision_spec()

    def context(values: dict[str, Any]) -> Any:
        return operation_context(spec, gateway_candidate(gateway(), UID, "bp", values,
                                                         [route("r")]))

    first = start_provision(store, spec, gateway_uid=UID, namespace="infra", name="web",
                            context=context({"a": 1}), clock=clock, actor="controller")
    assert first.started and first.current
    assert first.operation.context is not None
    assert first.operation.context["routes"] == ["apps/r"]
    same = start_provision(store, spec, gateway_uid=UID, namespace="infra", name="web",
                           context=context({"a": 1}), clock=clock, actor="controller")
    assert (same.operation.id, same.started, same.current) == (first.operation.id, False, True)
    newer = start_provision(store, spec, gateway_uid=UID, namespace="infra", name="web",
                            context=context({"a": 2}), clock=clock, actor="controller")
    assert (newer.operation.id, newer.started, newer.current) == (first.operation.id, False,
                                                                  False)


def test_start_teardown_cancels_what_is_in_its_lane_and_starts_once(store: SqlStore) -> None:
    clock = ManualClock(T0)
    store.upsert_gateway(uid=UID, namespace="infra", name="web", now=T0)
    provision = start_operation(
        store, provision_spec(), gateway_uid=UID, namespace="infra", name="web",
        context=ProvisionContext(namespace="infra", gateway="web", gateway_uid=UID,
                                 blueprint="bp"),
        clock=clock, actor="controller")
    spec = teardown_spec()
    assert nothing_left([], []) and running([], spec) is None
    active = [o for o in store.list_operations(gateway_uid=UID) if o.status.active]
    assert not nothing_left([], active) and running(active, spec) is None
    assert [o.id for o in in_the_way(active, spec)] == [provision.id]
    context = TeardownContext(namespace="infra", gateway="web", gateway_uid=UID)

    start = start_teardown(store, spec, gateway_uid=UID, namespace="infra", name="web",
                           context=context, active=active, clock=clock, actor="controller")
    assert start.started and start.cancelled == ("provision",)
    assert start.operation is not None and start.operation.machine == "teardown"
    cancelled = store.get_operation(provision.id)
    assert cancelled.status is OperationStatus.CANCELLED
    assert any(CANCEL_REASON in (r.message or "")
               for r in store.journal(operation_id=provision.id))

    active = [o for o in store.list_operations(gateway_uid=UID) if o.status.active]
    again = start_teardown(store, spec, gateway_uid=UID, namespace="infra", name="web",
                           context=context, active=active, clock=clock, actor="controller")
    assert (again.started, again.cancelled) == (False, ())
    assert again.operation is not None and again.operation.id == start.operation.id
    # a rotation cannot start while teardown holds the lane
    certificate = store.upsert_certificate(CertificateRecord(
        gateway_uid=UID, listener="https", object_name="c", secret_name="c-tls", serial=None,
        fingerprint_sha256=None, not_before=None, not_after=None, renewal_at=T0,
        attached=True, state="attached", updated_at=T0))
    with pytest.raises(LaneBusy) as busy:
        start_rotation(store, rotation_spec(), certificate, reason="r", clock=clock, actor="a")
    assert busy.value.holder.machine == "teardown"
