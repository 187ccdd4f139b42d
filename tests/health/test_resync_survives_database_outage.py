"""The leader's resync thread outlives a database outage at the start of its term.

The renewal scheduler reads the store when a term starts; with the database unavailable then,
that read raises :class:`StoreUnavailable`. The resync thread must retry with back-off (and log
it) rather than end: a dead resync thread is not restarted and renewals would never be
scheduled again. The store's ``due_renewals`` fails its first calls (the seam is our own store
interface); the controller runs in-process against the devcluster."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from support.inprocess import cluster, kube, kubeconfig, running_controller, sqlite_store
from support.waiting import wait_for

from bifrost.kube import KubeClient
from bifrost.records import CertificateRecord
from bifrost.store import SqlStore
from bifrost.store.errors import StoreUnavailable

__all__ = ["cluster", "kube", "kubeconfig"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with sqlite_store(tmp_path) as opened:
        yield opened


def test_resync_thread_retries_the_schedule_until_the_database_answers(
        kube: KubeClient, store: SqlStore, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    real = store.due_renewals

    def flaky(*, before: datetime | None = None, limit: int = 1000) -> list[CertificateRecord]:
        calls.append("call")
        if len(calls) <= 2:
            raise StoreUnavailable("the database is unavailable (test)")
        return real(before=before, limit=limit)

    monkeypatch.setattr(store, "due_renewals", flaky)
    caplog.set_level(logging.WARNING, logger="bifrost.controller.manager")
    with running_controller(kube, store, name="resync-outage") as controller:
        wait_for(lambda: controller.scheduler is not None and controller.scheduler.running,
                 timeout=15, what="the renewal scheduler running after two failed reads")
        resync = [t for t in threading.enumerate() if t.name == "resync"]
        assert resync and all(t.is_alive() for t in resync)
        assert len(calls) >= 3
        retries = [r for r in caplog.records if "renewal schedule not built" in r.getMessage()]
        assert len(retries) == 2
        assert "retrying in 1 s" in retries[0].getMessage()
        assert "retrying in 2 s" in retries[1].getMessage()
