"""``bifrost run`` with ``BIFROST_LOG_FORMAT=json`` (as ``--log-format json``) writes only JSON
lines to its log, from the start-up lines it held back to the shutdown, with no third-party
INFO chatter and no "Connection pool is full" at shutdown."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

from support.controller_process import ControllerProcess
from support.inprocess import cluster, kube, kubeconfig
from support.waiting import wait_for

from bifrost.kube import KubeClient
from bifrost.store import migrate

__all__ = ["cluster", "kube", "kubeconfig"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bifrost_run_logs_json_lines_from_start_to_shutdown(
        kube: KubeClient, kubeconfig: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    controller = ControllerProcess(kubeconfig, url, tmp_path, f"json-{uuid.uuid4().hex[:6]}",
                                   lease_duration=3.0, health_port=free_port(),
                                   environment={"BIFROST_LOG_FORMAT": "json"}).start()
    try:
        wait_for(lambda: (d := controller.describe()) is not None and d["ok"], timeout=30,
                 what=lambda: f"/readyz ok; log:\n{controller.log_tail()}")
        wait_for(lambda: "initial resync" in controller.log(), timeout=30,
                 what=lambda: f"the initial resync; log:\n{controller.log_tail()}")
    finally:
        code = controller.stop()
    assert code == 0, controller.log_tail()
    lines = [line for line in controller.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    # a held start-up line, written once running
    assert any("bifrost controller" in r["message"] and "starting against" in r["message"]
               for r in records)
    assert any("shutting down" in r["message"] for r in records)
    chatter = [r for r in records if not r["logger"].startswith(("bifrost", "__main__"))
               and r["level"] in ("DEBUG", "INFO")]
    assert chatter == []
    assert not any("pool is full" in r["message"] for r in records)
