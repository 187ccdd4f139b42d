"""A child write bifrost's ServiceAccount may not make (``patch`` on ``configmaps`` taken out of
the in-cluster example's aggregated ClusterRole) is a clear error: the Gateway's Programmed
condition, a Warning Event and one WARNING log line per attempt all name the verb, the resource,
the namespace, the identity and the fix. Granting the permission back recovers the Gateway
without restarting the controller: the failed provision is started again after its back-off."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from forbidden_kit import (
    GATEWAY_API,
    IDENTITY,
    RBAC_API,
    USER,
    condition,
    controller_as_service_account,
    in_cluster_example,
    sqlite_store,
    without_verb,
)
from support.waiting import wait_for

from bifrost.kube import KubeClient
from bifrost.machines.provision import PROVISION_MACHINE
from bifrost.records import OperationStatus

pytestmark = pytest.mark.slow

FIX = f"fix: grant patch on configmaps to {IDENTITY}, see deploy/base/rbac*.yaml"
DENIAL = (f'User "{USER}" cannot patch resource "configmaps" in API group "" '
          'in the namespace "apps"')


def _aggregated(admin: KubeClient, verbs_have_patch: bool) -> bool:
    role = admin.get(RBAC_API, "ClusterRole", "bifrost-children") or {}
    for rule in role.get("rules") or []:
        if "configmaps" in rule.get("resources", []):
            return ("patch" in rule.get("verbs", [])) == verbs_have_patch
    return False


def _warning_events(admin: KubeClient) -> list[dict[str, Any]]:
    events, _ = admin.list("v1", "Event", "apps")
    return [e for e in events if e.get("type") == "Warning"]


def test_forbidden_child_write_is_named_with_its_fix_and_recovers_once_granted(
    admin: KubeClient, sa_kubeconfig: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bifrost")
    example = in_cluster_example()
    (role,) = [d for d in example if d["kind"] == "ClusterRole"]
    admin.apply(without_verb(role, "configmaps", "patch"))
    wait_for(lambda: _aggregated(admin, False), what="configmaps without patch aggregated",
             timeout=30)
    with sqlite_store(tmp_path) as store, controller_as_service_account(
            sa_kubeconfig, store) as controller:
        for doc in example:
            if doc["kind"] != "ClusterRole":
                admin.apply(doc)

        def failed() -> dict[str, Any]:
            cond = condition(admin.get(GATEWAY_API, "Gateway", "edge", "apps"), "Programmed")
            return cond if cond.get("status") == "False" and FIX in cond.get("message", "") \
                else {}

        programmed = wait_for(failed, what="Programmed=False naming the 403", timeout=60)
        assert DENIAL in programmed["message"]
        # not the Gateway's fault, and tried again by itself: Pending, not Invalid
        assert programmed["reason"] == "Pending"
        assert programmed["message"].endswith("(tried again every 10 s doubling to 5 min)")
        events = wait_for(lambda: [e for e in _warning_events(admin)
                                   if FIX in str(e.get("message") or e.get("note"))],
                          what="a Warning Event with the fix", timeout=30)
        assert DENIAL in str(events[0].get("message") or events[0].get("note"))
        lines = [r.getMessage() for r in caplog.records
                 if r.levelno == logging.WARNING and FIX in r.getMessage()]
        assert lines and DENIAL in lines[0]
        failures = len([r for r in caplog.records
                        if r.name == "bifrost.engine.runner" and FIX in r.getMessage()])
        assert failures >= 1

        admin.apply(role)  # grant it back: no restart of the controller
        wait_for(lambda: condition(admin.get(GATEWAY_API, "Gateway", "edge", "apps"),
                                   "Programmed").get("status") == "True",
                 what="Programmed=True after the permission is granted", timeout=90)
        assert controller.is_leader
        gateway = admin.get(GATEWAY_API, "Gateway", "edge", "apps")
        assert gateway is not None
        ops = [o for o in store.list_operations(gateway_uid=gateway["metadata"]["uid"])
               if o.machine == PROVISION_MACHINE]
        statuses = [o.status for o in sorted(ops, key=lambda o: o.id)]
        assert statuses[0] is OperationStatus.FAILED
        assert statuses[-1] is OperationStatus.SUCCEEDED
