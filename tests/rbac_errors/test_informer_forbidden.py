"""An informer whose list bifrost's ServiceAccount may not make (``httproutes`` taken out of the
``bifrost`` ClusterRole) is retried with back-off and logged once — one WARNING naming the verb,
the resource, the identity and the fix, the retries at DEBUG — not a crash loop; the controller
is not ready meanwhile. Granting it back recovers the informer in the same process (one INFO
line) and the controller becomes ready."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from forbidden_kit import IDENTITY, controller_as_service_account, controller_role, sqlite_store
from forbidden_kit import without_resource as without
from support.waiting import wait_for

from bifrost.kube import KubeClient

pytestmark = pytest.mark.slow

FIX = (f"fix: grant list on gateway.networking.k8s.io/httproutes to {IDENTITY}, "
       "see deploy/base/rbac*.yaml")


def test_forbidden_list_is_one_warning_retried_until_granted(
    admin: KubeClient, sa_kubeconfig: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="bifrost.kube.watch")
    role = controller_role()
    admin.apply(without(role, "httproutes"))
    try:
        with sqlite_store(tmp_path) as store, controller_as_service_account(
                sa_kubeconfig, store) as controller:

            def failures() -> list[logging.LogRecord]:
                return [r for r in caplog.records if r.getMessage().startswith(
                    "list HTTPRoute failed")]

            wait_for(lambda: len(failures()) >= 3, what="three failed lists of HTTPRoute",
                     timeout=30)
            warnings = [r for r in failures() if r.levelno == logging.WARNING]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]
            text = warnings[0].getMessage()
            assert 'cannot list resource "httproutes"' in text
            assert FIX in text
            assert all(r.levelno == logging.DEBUG for r in failures()[1:])
            assert not controller.ready()

            admin.apply(role)
            wait_for(controller.ready, what="the controller ready once list is granted",
                     timeout=60)
            assert any(r.getMessage() == "list HTTPRoute works again" and
                       r.levelno == logging.INFO for r in caplog.records)
    finally:
        admin.apply(role)
