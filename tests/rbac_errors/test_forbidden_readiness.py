"""How a failed provision shows in the Gateway's Programmed condition: ``Invalid`` when the
Gateway (or its blueprint) is at fault, ``Pending`` when the controller lacks a permission —
that one is tried again by itself once the verb is granted (bifrost.triggers.forbidden_retry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bifrost.controller.status_writer import gateway_readiness
from bifrost.kube.errors import Forbidden
from bifrost.records import OperationRecord, OperationStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DENIED = "applying child 'config' (ConfigMap apps/edge-config): " + str(Forbidden(
    'configmaps "edge-config" is forbidden: User "system:serviceaccount:bifrost-system:bifrost" '
    'cannot patch resource "configmaps" in API group "" in the namespace "apps"', status=403,
    reason="Forbidden"))


def failed(last_error: str, status: OperationStatus = OperationStatus.FAILED) -> OperationRecord:
    return OperationRecord(
        id=7, gateway_uid="u1", namespace="apps", name="edge", machine="provision",
        machine_version=2, lane="default", state="render_apply", status=status, context={},
        context_raw="{}", step=None, attempt=1, next_run_at=None, lease_owner=None,
        lease_expires_at=None, version=3, last_error=last_error,
        created_at=NOW - timedelta(seconds=5), updated_at=NOW, finished_at=NOW,
    )


@pytest.mark.parametrize(("last_error", "status", "reason"), [
    (DENIED, OperationStatus.FAILED, "Pending"),
    ("child 'config' (ConfigMap apps/edge-config) was rejected by the API server: bad",
     OperationStatus.FAILED, "Invalid"),
    (DENIED, OperationStatus.CANCELLED, "Invalid"),  # cancelled by hand: not retried
])
def test_programmed_reason_of_a_failed_provision(
        last_error: str, status: OperationStatus, reason: str) -> None:
    readiness = gateway_readiness(failed(last_error, status), ())
    assert (readiness.programmed, readiness.reason) == (False, reason)
    assert f"operation 7 (provision) in state render_apply {status.value}: " \
        f"{last_error}" in readiness.message


def test_a_denied_provision_says_it_is_tried_again_within_the_message_limit() -> None:
    readiness = gateway_readiness(failed(DENIED + " " + "x" * 2000), ())
    assert len(readiness.message) <= 1024
    assert readiness.message.endswith(" (tried again every 10 s doubling to 5 min)")
    assert readiness.message.startswith("operation 7 (provision) in state render_apply failed: ")
