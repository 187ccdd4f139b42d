"""A 403's text says what to grant (bifrost.kube.forbidden), and a provision failed on one is
due again after a back-off that doubles per failure in a row (bifrost.triggers.forbidden_retry)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bifrost.kube import Forbidden
from bifrost.kube.errors import map_error
from bifrost.kube.forbidden import denied_access, is_forbidden_text
from bifrost.machines.provision import PROVISION_MACHINE
from bifrost.records import OperationRecord, OperationStatus
from bifrost.triggers.forbidden_retry import forbidden_retry_in

SA = "system:serviceaccount:bifrost-system:bifrost"


@pytest.mark.parametrize(("message", "fix"), [
    (f'configmaps "s" is forbidden: User "{SA}" cannot create resource "configmaps" in API '
     'group "" in the namespace "apps"',
     "grant create on configmaps to ServiceAccount bifrost-system/bifrost"),
    (f'gateways.gateway.networking.k8s.io "edge" is forbidden: User "{SA}" cannot update '
     'resource "gateways/status" in API group "gateway.networking.k8s.io" in the namespace "a"',
     "grant update on gateway.networking.k8s.io/gateways/status to ServiceAccount "
     "bifrost-system/bifrost"),
    ('gatewayclasses.gateway.networking.k8s.io is forbidden: User "alice" cannot watch '
     'resource "gatewayclasses" in API group "gateway.networking.k8s.io" at the cluster scope',
     'grant watch on gateway.networking.k8s.io/gatewayclasses to user "alice"'),
])
def test_an_rbac_denial_ends_with_what_to_grant(message: str, fix: str) -> None:
    answer = type("ApiException", (Exception,), {
        "status": 403, "reason": "Forbidden", "headers": None,
        "body": json.dumps({"kind": "Status", "message": message, "reason": "Forbidden"})})()
    error = map_error(answer)
    assert isinstance(error, Forbidden)
    text = str(error)
    assert text.startswith("403 Forbidden: ")
    assert text.endswith(f"; fix: {fix}, see deploy/base/rbac*.yaml")
    assert is_forbidden_text(f"operation 1 failed: {text}")


def test_the_denied_request_is_read_back() -> None:
    access = denied_access(f'x is forbidden: User "{SA}" cannot patch resource "configmaps" '
                           'in API group "" in the namespace "apps"')
    assert access is not None
    assert (access.verb, access.resource, access.namespace, access.identity, access.where) == (
        "patch", "configmaps", "apps", "ServiceAccount bifrost-system/bifrost",
        'in namespace "apps"')


def test_a_403_that_is_no_rbac_denial_has_no_fix() -> None:
    text = str(Forbidden('configmaps "x" is forbidden: unable to create new content in '
                         'namespace apps because it is being terminated', status=403,
                         reason="Forbidden"))
    assert "fix:" not in text
    assert not is_forbidden_text(text)


NOW = datetime(2026, 1, 1, tzinfo=UTC)
DENIED = "403 Forbidden: ...; fix: grant patch on configmaps to X, see deploy/base/rbac*.yaml"


def _op(op_id: int, status: OperationStatus, error: str | None, ago: float) -> OperationRecord:
    at = NOW - timedelta(seconds=ago)
    return OperationRecord(
        id=op_id, gateway_uid="u", namespace="n", name="g", machine=PROVISION_MACHINE,
        machine_version=1, lane="main", state="failed", status=status, context={},
        context_raw="{}", step=None, attempt=0, next_run_at=None, lease_owner=None,
        lease_expires_at=None, version=1, last_error=error, created_at=at, updated_at=at,
        finished_at=at)


def test_a_provision_failed_on_a_403_is_due_after_a_doubling_back_off() -> None:
    failed = OperationStatus.FAILED
    assert forbidden_retry_in([_op(1, failed, DENIED, ago=4)], NOW) == pytest.approx(6)
    assert forbidden_retry_in([_op(1, failed, DENIED, ago=40)], NOW) == 0
    two = [_op(1, failed, DENIED, ago=30), _op(2, failed, DENIED, ago=5)]
    assert forbidden_retry_in(two, NOW) == pytest.approx(15)
    many = [_op(i, failed, DENIED, ago=1) for i in range(1, 12)]
    assert forbidden_retry_in(many, NOW) == pytest.approx(299)  # capped at 5 minutes
    assert forbidden_retry_in([_op(1, failed, "template broken", ago=400)], NOW) is None
    assert forbidden_retry_in([_op(1, failed, DENIED, ago=400),
                               _op(2, OperationStatus.SUCCEEDED, None, ago=1)], NOW) is None
    assert forbidden_retry_in([], NOW) is None
