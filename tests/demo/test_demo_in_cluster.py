"""``bifrost demo --in-cluster``: the shipped install manifest runs bifrost as the devcluster's
Pod (local kubelet), which programs examples/in-cluster's Gateway; a Deployment that never
becomes Available is one line naming its Pod's status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bifrost.cli.demo_in_cluster import InClusterError, run_in_cluster_demo
from bifrost.cli.dev import parse_image_mapping

pytestmark = pytest.mark.slow

BIFROST = Path(sys.executable).parent / "bifrost"


def test_in_cluster_demo_installs_the_manifest_and_the_pod_programs_the_gateway(
    tmp_path: Path,
) -> None:
    done = subprocess.run([str(BIFROST), "demo", "--in-cluster", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["ok"] is True
    (pod,) = report["pods"]
    assert pod["NAME"].startswith("bifrost-")
    assert (pod["READY"], pod["STATUS"], pod["RESTARTS"]) == ("1/1", "Running", "0")
    (gateway,) = report["gateways"]
    assert (gateway["NAMESPACE"], gateway["NAME"], gateway["CLASS"], gateway["PROGRAMMED"]) == (
        "apps", "edge", "bifrost-in-cluster", "True")
    assert gateway["ADDRESS"]
    assert report["log"], "pods/log answered nothing"
    assert any(f"{pod['NAME']} became leader" in line for line in report["log"])
    # the human-readable tables went to stderr with --json
    assert "NAME" in done.stderr and "PROGRAMMED" in done.stderr
    assert not list(tmp_path.iterdir()), "the demo wrote into the working directory"


def test_a_deployment_never_available_is_one_line_naming_the_pods_status() -> None:
    lines: list[str] = []
    with pytest.raises(InClusterError) as failure:
        run_in_cluster_demo(timeout=25, progress=lines.append,
                            images=[parse_image_mapping("bifrost:*=/bin/false")])
    text = str(failure.value)
    assert "\n" not in text
    assert text.startswith("Deployment bifrost-system/bifrost did not become Available in "
                           "time: Pod bifrost-system/bifrost-"), text
    assert "exit 1" in text or "CrashLoopBackOff" in text or "Error" in text, text


def test_without_bubblewrap_the_in_cluster_demo_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devcluster.localpods.sandbox as sandbox

    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    with pytest.raises(InClusterError, match=r"bifrost-gateway\[kubelet\]"):
        run_in_cluster_demo(timeout=5, progress=lambda _line: None)
