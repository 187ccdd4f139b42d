"""``kubectl apply -f dist/install.yaml`` on the devcluster runs the real controller in its Pod.

The devcluster's local kubelet runs the Deployment's Pod as a process (image ``bifrost:*`` is
this environment's ``bifrost``), sandboxed as the manifest asks where the machine allows it:
UID 65532, read-only root, ``/tmp`` and the data volume writable, the ServiceAccount token and
CA at the standard paths. Nothing else runs bifrost: the Gateway of ``examples/in-cluster`` is
programmed by the Pod, which authenticates with its ServiceAccount token, so the ClusterRoles
of ``deploy/`` are what allows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from in_cluster_kit import EXAMPLE, INSTALL, NAMESPACE, local_cluster
from support.waiting import wait_for

pytestmark = pytest.mark.slow


def test_install_manifest_runs_the_controller_pod_which_programs_the_example(
        tmp_path: Path) -> None:
    with local_cluster(tmp_path) as lc:
        lc.kubectl("apply", "-f", str(INSTALL))
        lc.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/bifrost",
                   "--timeout=120s", timeout=150)
        (pod,) = lc.pods()
        name = pod["metadata"]["name"]
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] is True and status["restartCount"] == 0, status
        assert "running" in status["state"], status

        # the Pod leads: its name (POD_NAME from the Downward API) holds the Lease
        wait_for(lambda: lc.lease_holder() == name, timeout=30, what="the Pod leading")
        lc.kubectl("apply", "-f", str(EXAMPLE))
        lc.wait_programmed("apps", "edge")

        logs = lc.kubectl("logs", "-n", NAMESPACE, "deployment/bifrost").stdout
        lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert lines, f"no JSON log lines from the Pod:\n{logs[:2000]}"
        messages = " | ".join(str(line.get("message", "")) for line in lines)
        assert f"{name} leads" in messages, messages[:2000]
        assert any("edge" in str(line.get("gateway", "")) for line in lines), messages[:2000]
        table = lc.kubectl("get", "pods,gateways", "-A").stdout
        assert name in table and "edge" in table
