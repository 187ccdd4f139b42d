"""``bifrost dev`` starts a devcluster the real kubectl can use — and, unless
``--no-controller``, the bifrost controller against it — and stops cleanly on SIGINT."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from bifrost.kube.client import KubeClient
from bifrost.store import open_store

BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
BIFROST = BIN / "bifrost"
REPO = Path(__file__).resolve().parents[2]


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _drained(*pumps: threading.Thread) -> None:
    """Wait for the pumps to reach the end of the exited process's output: its last lines are
    in the pipe, not yet in the queue, when ``wait`` returns."""
    for pump in pumps:
        pump.join(timeout=10)
        assert not pump.is_alive(), "the process's output did not end"


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIFROST_")}
    env.update(KUBECONFIG="/nonexistent", HOME=str(tmp_path),
               BIFROST_DATA_DIR=str(tmp_path / "data"))
    return env


def test_bifrost_dev_serves_kubectl_and_stops_on_sigint(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "out" / "kubeconfig"
    env = _env(tmp_path)
    proc = subprocess.Popen(
        [str(BIFROST), "dev", "--kubeconfig-out", str(kubeconfig), "--no-controller"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    pump.start()
    try:
        try:
            first = lines.get(timeout=30)
        except queue.Empty:
            proc.kill()
            raise AssertionError(
                f"no output from bifrost dev; stderr: {proc.stderr.read()}"
            ) from None
        assert str(kubeconfig) in first, first
        assert kubeconfig.exists()

        got = kubectl(kubeconfig, "get", "namespaces")
        assert got.returncode == 0, got.stderr
        names = [row.split()[0] for row in got.stdout.splitlines()[1:]]
        assert {"default", "kube-system"} <= set(names), got.stdout

        # The default CRDs from ../shared/ are loaded and the peers are running.
        crds = kubectl(kubeconfig, "get", "crd", "-o", "name")
        assert crds.returncode == 0, crds.stderr
        assert (
            "customresourcedefinition.apiextensions.k8s.io/gateways.gateway.networking.k8s.io"
            in (crds.stdout)
        )
        assert "certificates.cert-manager.io" in crds.stdout
        assert "gatewayclassblueprints.gateway.bifrost.dev" in crds.stdout  # bifrost's own
        second = lines.get(timeout=10)
        assert "controller not started (--no-controller)" in second, second
        deadline = time.monotonic() + 10
        while True:
            cm = kubectl(
                kubeconfig, "get", "configmap", "devcluster-ca", "-n", "kube-public", "-o", "json"
            )
            if cm.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert cm.returncode == 0, cm.stderr
        assert "BEGIN CERTIFICATE" in json.loads(cm.stdout)["data"]["ca.crt"]

        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=15)
        stopped_in = time.monotonic() - t0
        stderr = proc.stderr.read()
        assert rc == 0, stderr
        assert "Traceback" not in stderr, stderr
        print(f"bifrost dev stopped {stopped_in:.2f}s after SIGINT")
        _drained(pump)
        rest = ""
        while not lines.empty():
            rest += lines.get()
        assert "devcluster stopped" in rest
        # The API server is gone.
        after = kubectl(kubeconfig, "get", "namespaces", "--request-timeout=2s")
        assert after.returncode != 0
        assert not (tmp_path / "data").exists()  # no controller: no store
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bifrost_dev_runs_the_controller(tmp_path: Path) -> None:
    """The default ``bifrost dev``: the controller runs in-process against the devcluster with
    SQLite under BIFROST_DATA_DIR, so the in-cluster example applied with kubectl becomes
    Programmed; SIGINT stops the controller (its Lease released) and the cluster, exit 0."""
    kubeconfig = tmp_path / "out" / "kubeconfig"
    proc = subprocess.Popen(
        [str(BIFROST), "dev", "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    lines: queue.Queue[str] = queue.Queue()
    errors: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, errors), daemon=True)]
    for pump in pumps:
        pump.start()

    def stderr() -> str:
        out = ""
        while not errors.empty():
            out += errors.get()
        return out

    try:
        try:
            first = lines.get(timeout=30)
            second = lines.get(timeout=30)
        except queue.Empty:
            proc.kill()
            proc.wait()
            raise AssertionError(f"bifrost dev did not start; stderr: {stderr()}") from None
        assert str(kubeconfig) in first, first
        store = tmp_path / "data" / "bifrost.db"
        assert "controller running" in second and str(store) in second, second
        assert store.is_file()

        applied = kubectl(kubeconfig, "apply", "-f", str(REPO / "examples" / "in-cluster"))
        assert applied.returncode == 0, applied.stderr
        waited = kubectl(
            kubeconfig, "wait", "-n", "apps", "gateway/edge", "--for=condition=Programmed",
            "--timeout=25s",
        )
        assert waited.returncode == 0, (waited.stderr, stderr())
        got = kubectl(kubeconfig, "get", "-n", "apps", "gateway/edge", "-o", "json")
        gateway = json.loads(got.stdout)
        assert "gateway.bifrost.dev/finalizer" in gateway["metadata"]["finalizers"]
        uid = gateway["metadata"]["uid"]
        # The store under BIFROST_DATA_DIR has the inventory; every child is in the cluster.
        opened = open_store(f"sqlite:///{store.as_posix()}")
        kube = KubeClient.from_kubeconfig(kubeconfig)
        try:
            inventory = opened.list_children(uid)
            assert inventory, "no children in the store's inventory"
            for child in inventory:
                live = kube.get(child.api_version, child.kind, child.name, child.namespace)
                assert live is not None, child
                assert live["metadata"]["uid"] == child.uid
                assert live["metadata"]["labels"]["gateway.bifrost.dev/gateway-uid"] == uid
        finally:
            kube.close()
            opened.close()
        lease = kubectl(kubeconfig, "get", "lease", "bifrost-controller", "-n", "default",
                        "-o", "json")
        assert lease.returncode == 0, lease.stderr
        assert json.loads(lease.stdout)["spec"].get("holderIdentity")

        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        _drained(*pumps)
        err = stderr()
        assert rc == 0, err
        assert "Traceback" not in err, err
        assert "shutting down" in err  # the controller stopped before the cluster
        rest = ""
        while not lines.empty():
            rest += lines.get()
        assert "devcluster stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
