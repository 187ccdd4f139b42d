"""``bifrost dev`` starts a devcluster the real kubectl can use, and stops cleanly on SIGINT."""

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

BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
BIFROST = BIN / "bifrost"


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_bifrost_dev_serves_kubectl_and_stops_on_sigint(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "out" / "kubeconfig"
    env = dict(os.environ, KUBECONFIG="/nonexistent", HOME=str(tmp_path))
    proc = subprocess.Popen(
        [str(BIFROST), "dev", "--kubeconfig-out", str(kubeconfig), "--no-controller"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
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
        rest = ""
        while not lines.empty():
            rest += lines.get()
        assert "devcluster stopped" in rest
        # The API server is gone.
        after = kubectl(kubeconfig, "get", "namespaces", "--request-timeout=2s")
        assert after.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
