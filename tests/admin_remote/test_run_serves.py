"""``bifrost run --admin-bind-address`` (here through ``BIFROST_ADMIN_BIND_ADDRESS``, as a pod's
environment could set it) serves the admin API beside the controller, on its store: a
bifrost-admin with a token gets the controller's documents, and nothing is served without
one."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from support.controller_process import SYSTEM_NAMESPACE, ControllerProcess
from support.waiting import wait_for
from typer.testing import CliRunner

from bifrost.cli.admin import app
from bifrost.kube import KubeClient
from bifrost.store import migrate
from devcluster.server import DevCluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bifrost_run_serves_the_admin_api(cluster: DevCluster, kubeconfig: Path,
                                          kube: KubeClient, tmp_path: Path) -> None:
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}})
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    port = _free_port()
    controller = ControllerProcess(
        kubeconfig, url, tmp_path, f"admin-api-{uuid.uuid4().hex[:6]}",
        environment={"BIFROST_ADMIN_BIND_ADDRESS": f"127.0.0.1:{port}"},
    ).start()
    server = f"http://127.0.0.1:{port}"
    try:
        def answers() -> int | None:
            request = urllib.request.Request(server + "/v1/gateways")  # no token
            try:
                urllib.request.urlopen(request, timeout=2)  # noqa: S310 - a local test URL
            except urllib.error.HTTPError as exc:
                return exc.code
            except OSError:
                assert controller.proc is not None and controller.proc.poll() is None, \
                    controller.log_tail()
                return None
            return 200

        assert wait_for(answers, timeout=30, what="the admin API to answer") == 401
        result = CliRunner().invoke(app, ["--server", server, "--token", cluster.admin_token,
                                          "-o", "json", "gateways"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["kind"] == "GatewayList"
    finally:
        controller.stop()
    assert "admin API: GET /v1/gateways list by kubernetes-admin → 200" in controller.log()
