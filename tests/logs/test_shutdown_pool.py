"""Shutdown writes no ``Connection pool is full, discarding connection``: the client's
connection pool holds as many connections as the controller's threads use at once (watches,
workers, runners, elector), so the watches' connections coming back at shutdown are kept, not
discarded with a warning each."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support.inprocess import cluster, kube, kubeconfig, running_controller, sqlite_store

from bifrost.kube import KubeClient

__all__ = ["cluster", "kube", "kubeconfig"]


def test_controller_shutdown_discards_no_pooled_connection(
    kube: KubeClient, kubeconfig: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    client = KubeClient.from_kubeconfig(kubeconfig)  # its own pool, closed after the controller
    try:
        with sqlite_store(tmp_path) as store, running_controller(
                client, store, name="pool", workers=4, engine_workers=4):
            pass
    finally:
        client.close()
    full = [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]
    assert full == []
