"""``kubectl exec`` into a local pod, end to end over the WebSocket ``pods/exec``: stdout and
stderr, the exit code, the container's user, environment and PID namespace, the errors for a
missing container or a simulated pod, and RBAC (``create`` on ``pods/exec`` is needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client  # type: ignore[import-untyped]
from local_pods_kit import pod_body, token_allowed, wait_ready

from devcluster.server import DevCluster

pytestmark = pytest.mark.slow

KUBECTL = str(Path(sys.executable).parent / "kubectl")


def _kubectl(
    cluster: DevCluster, pods_root: Path, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    kubeconfig = cluster.write_kubeconfig(pods_root / "kubeconfig")
    extra = [f"--token={token}"] if token else []
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *extra, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture()
def shell_pod(core: client.CoreV1Api, namespace: str) -> str:
    body = pod_body(
        "shell",
        env=[{"name": "GREETING", "value": "hello from the pod"}],
        security={"runAsUser": 1234, "runAsGroup": 1234},
    )
    core.create_namespaced_pod(namespace, body)
    wait_ready(core, namespace, "shell")
    return "shell"


def test_exec_prints_stdout_and_stderr_and_exits_with_the_commands_code(
    cluster: DevCluster, pods_root: Path, namespace: str, shell_pod: str
) -> None:
    done = _kubectl(
        cluster,
        pods_root,
        "-n",
        namespace,
        "exec",
        shell_pod,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2",
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")

    failed = _kubectl(
        cluster,
        pods_root,
        "-n",
        namespace,
        "exec",
        shell_pod,
        "-c",
        "app",
        "--",
        "sh",
        "-c",
        "echo partial; exit 3",
    )
    assert failed.returncode == 3
    assert failed.stdout == "partial\n"
    assert "command terminated with exit code 3" in failed.stderr

    # more than one read of the pipe and one WebSocket frame of the largest length encoding
    big = _kubectl(
        cluster,
        pods_root,
        "-n",
        namespace,
        "exec",
        shell_pod,
        "--",
        "sh",
        "-c",
        "head -c 300000 /dev/zero | tr '\\0' a",
    )
    assert (big.returncode, big.stdout) == (0, "a" * 300000), big.stderr


def test_exec_runs_in_the_containers_sandbox_as_its_user_with_its_env(
    cluster: DevCluster, pods_root: Path, namespace: str, shell_pod: str
) -> None:
    done = _kubectl(
        cluster,
        pods_root,
        "-n",
        namespace,
        "exec",
        shell_pod,
        "--",
        "sh",
        "-c",
        'id -u; id -g; echo "$GREETING"; ls /proc | grep -c "^[0-9]"',
    )
    assert done.returncode == 0, done.stderr
    uid, gid, greeting, pids = done.stdout.splitlines()
    assert (uid, gid, greeting) == ("1234", "1234", "hello from the pod")
    # the sandbox's PID namespace: its init, the app, and the exec'd shell and its pipeline
    assert int(pids) < 10, done.stdout


def test_exec_into_a_missing_container_or_a_simulated_pod_is_an_error(
    cluster: DevCluster, core: client.CoreV1Api, pods_root: Path, namespace: str, shell_pod: str
) -> None:
    missing = _kubectl(
        cluster, pods_root, "-n", namespace, "exec", shell_pod, "-c", "nope", "--", "true"
    )
    assert missing.returncode != 0
    assert f"container nope is not valid for pod {shell_pod}" in missing.stderr

    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "simulated"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
        },
    )
    simulated = _kubectl(cluster, pods_root, "-n", namespace, "exec", "simulated", "--", "true")
    assert simulated.returncode != 0
    assert "container web is not running" in simulated.stderr
    assert "does not run pod" in simulated.stderr


def test_exec_needs_create_on_pods_exec(
    cluster: DevCluster, core: client.CoreV1Api, pods_root: Path, namespace: str, shell_pod: str
) -> None:
    token = token_allowed(core, namespace, "viewer", [
        {"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get"]}])
    refused = _kubectl(
        cluster, pods_root, "-n", namespace, "exec", shell_pod, "--", "true", token=token
    )
    assert refused.returncode != 0
    assert 'cannot create resource "pods/exec"' in refused.stderr, refused.stderr
