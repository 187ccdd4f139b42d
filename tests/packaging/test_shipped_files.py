"""What bifrost ships: the upstream CRD bundle matches its SOURCES.yaml (and the reference copies
it was made from), and the wheel carries migrations, bifrost's CRDs, the examples and the bundle
(nothing outside the installed package is read at run time)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from bifrost.shipped import shipped
from devcluster.bundle import UPSTREAM_CRDS, upstream_crd_dirs

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def sources() -> list[dict[str, str]]:
    files = yaml.safe_load((UPSTREAM_CRDS / "SOURCES.yaml").read_text())["files"]
    assert isinstance(files, list)
    return files


def test_the_bundle_matches_its_sources_file() -> None:
    listed = {entry["file"] for entry in sources()}
    present = {str(p.relative_to(UPSTREAM_CRDS)) for d in upstream_crd_dirs()
               for p in d.glob("*.yaml")}
    assert listed == present
    for entry in sources():
        data = (UPSTREAM_CRDS / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert entry["version"] and entry["source"].startswith("https://")


def test_the_bundle_is_the_reference_copies() -> None:
    if not SHARED.is_dir():
        pytest.skip("no ../shared beside the repository")
    origin = {"gateway-api": SHARED / "gateway-api" / "v1.6.1",
              "cert-manager": SHARED / "cert-manager"}
    for entry in sources():
        folder, name = entry["file"].split("/", 1)
        assert (origin[folder] / name).read_bytes() == (UPSTREAM_CRDS / entry["file"]).read_bytes()


def test_shipped_folders_resolve_in_a_checkout() -> None:
    assert (shipped("migrations") / "env.py").is_file()
    assert any(shipped("deploy/crds").glob("*.yaml"))
    assert (shipped("examples/in-cluster") / "10-blueprint.yaml").is_file()


@pytest.mark.slow
def test_the_wheel_carries_what_bifrost_reads_at_run_time(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp_path), str(REPO)], check=True)
    (wheel,) = tmp_path.glob("bifrost-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "bifrost/_shipped/migrations/env.py",
        "bifrost/_shipped/migrations/versions/0001_initial.py",
        "bifrost/_shipped/deploy/crds/gateway.bifrost.dev_gatewayclassblueprints.yaml",
        "bifrost/_shipped/examples/in-cluster/10-blueprint.yaml",
        "bifrost/_shipped/examples/cloud-edge/10-blueprint.yaml",
        "devcluster/crds/SOURCES.yaml",
        *(f"devcluster/crds/{entry['file']}" for entry in sources()),
    }
    assert expected <= names, sorted(expected - names)
    assert not any("__pycache__" in n for n in names)
