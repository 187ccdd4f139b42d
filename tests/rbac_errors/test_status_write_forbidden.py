"""A status write bifrost's ServiceAccount may not make (``gateways/status`` taken out of the
``bifrost`` ClusterRole) is logged at WARNING naming the verb, the subresource, the namespace,
the identity and the fix, and retried with back-off — one WARNING, the retries at DEBUG; granting
it back, the Gateway's status is written by the same controller (one INFO line)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from forbidden_kit import (
    GATEWAY_API,
    IDENTITY,
    condition,
    controller_as_service_account,
    controller_role,
    in_cluster_example,
    sqlite_store,
    without_resource,
)
from support.waiting import wait_for

from bifrost.kube import KubeClient

pytestmark = pytest.mark.slow

FIX = (f"fix: grant patch on gateway.networking.k8s.io/gateways/status to {IDENTITY}, "
       "see deploy/base/rbac*.yaml")


def test_forbidden_status_write_is_logged_with_its_fix_and_written_once_granted(
    admin: KubeClient, sa_kubeconfig: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bifrost")
    caplog.set_level(logging.DEBUG, logger="bifrost.controller.manager")
    role = controller_role()
    admin.apply(without_resource(role, "gateways/status"))
    try:
        with sqlite_store(tmp_path) as store, controller_as_service_account(sa_kubeconfig, store):
            for doc in in_cluster_example():
                admin.apply(doc)
            line = wait_for(lambda: next((r.getMessage() for r in caplog.records
                                          if FIX in r.getMessage()), None),
                            what="a WARNING naming the status write's fix", timeout=60)
            assert 'cannot patch resource "gateways/status"' in line
            assert 'in the namespace "apps"' in line
            assert condition(admin.get(GATEWAY_API, "Gateway", "edge", "apps"),
                             "Programmed").get("status") != "True"

            def denied() -> list[logging.LogRecord]:
                return [r for r in caplog.records if FIX in r.getMessage()]

            wait_for(lambda: len(denied()) >= 3, what="three denied status writes", timeout=60)
            assert [r.levelno for r in denied()[:3]] == [
                logging.WARNING, logging.DEBUG, logging.DEBUG], [r.getMessage() for r in denied()]

            admin.apply(role)
            wait_for(lambda: condition(admin.get(GATEWAY_API, "Gateway", "edge", "apps"),
                                       "Programmed").get("status") == "True",
                     what="Programmed=True once the status write is granted", timeout=90)
            # logged once that pass returned (just after its status write became visible)
            wait_for(lambda: any(r.levelno == logging.INFO and r.getMessage().endswith(
                "apps/edge: observed again") for r in caplog.records),
                what="one INFO line saying the Gateway is observed again", timeout=10)
    finally:
        admin.apply(role)
