"""The Gateway status writer's write budget: while an operation runs a burst of steps, only a
condition's status/reason/observedGeneration changing is written; details (messages naming the
state and step, addresses of children just created) wait for the burst to end or settle.
(The figures: ``bench/bench_controller.py``.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bifrost.controller.status_writer import SETTLE, settling, worth_writing
from bifrost.records import OperationRecord, OperationStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _op(status: OperationStatus, *, updated: datetime = NOW) -> OperationRecord:
    return OperationRecord(
        id=7, gateway_uid="u1", namespace="shop", name="a", machine="provision",
        machine_version=1, lane="default", state="render_apply", status=status, context={},
        context_raw="{}", step="apply_children" if status.active else None, attempt=1,
        next_run_at=None, lease_owner="me", lease_expires_at=None, version=3, last_error=None,
        created_at=NOW - timedelta(seconds=5), updated_at=updated,
        finished_at=None if status.active else updated,
    )


def _cond(type_: str, status: str, reason: str, message: str = "", gen: int = 1) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": gen, "lastTransitionTime": "2026-03-01T12:00:00Z"}


def _status(*, programmed: tuple[str, str, str] = ("False", "Pending", "state certificates"),
            listener_reason: str = "ResolvedRefs", addresses: list[str] | None = None,
            gen: int = 1) -> dict[str, Any]:
    return {
        "conditions": [
            _cond("Accepted", "True", "Accepted", gen=gen),
            _cond("Programmed", *programmed, gen=gen),
        ],
        "listeners": [{
            "name": "http", "attachedRoutes": 0,
            "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
            "conditions": [_cond("ResolvedRefs", "True", listener_reason, gen=gen)],
        }],
        **({"addresses": [{"type": "Hostname", "value": a} for a in addresses]}
           if addresses else {}),
    }


def test_settling_is_a_running_operation_on_a_fresh_step() -> None:
    assert settling(_op(OperationStatus.RUNNING), NOW)
    assert settling(_op(OperationStatus.RUNNING), NOW + SETTLE - timedelta(milliseconds=1))
    assert not settling(_op(OperationStatus.RUNNING), NOW + SETTLE)  # on one step for a while
    for status in (OperationStatus.PENDING, OperationStatus.WAITING, OperationStatus.PAUSED,
                   OperationStatus.SUCCEEDED, OperationStatus.FAILED):
        assert not settling(_op(status), NOW), status
    assert not settling(None, NOW)


@pytest.mark.parametrize(
    ("new", "written_while_settling"),
    [
        # details only: the step in the Pending message, addresses of a child just created
        (_status(programmed=("False", "Pending", "state render_apply, step apply")), False),
        (_status(addresses=["lb.example"]), False),
        # a condition moves: Programmed, a listener's reason, a new generation
        (_status(programmed=("True", "Programmed", "")), True),
        (_status(listener_reason="InvalidCertificateRef"), True),
        (_status(gen=2), True),
    ],
)
def test_worth_writing(new: dict[str, Any], written_while_settling: bool) -> None:
    old = _status()
    assert worth_writing(old, new, settling=True) is written_while_settling
    assert worth_writing(old, new, settling=False) is True  # outside a burst: any change
    assert worth_writing(old, dict(old), settling=False) is False  # no change: never


def test_a_condition_appearing_is_written_while_settling() -> None:
    old = _status()
    new = _status()
    new["conditions"].append(_cond("gateway.bifrost.dev/Operation", "True", "InProgress"))
    assert worth_writing(old, new, settling=True)
    assert worth_writing(new, old, settling=True)  # and going away too
