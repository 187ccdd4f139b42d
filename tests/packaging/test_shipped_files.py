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


def _repo_files(relative: str) -> set[str]:
    """The files of a top-level folder as the wheel must carry them under bifrost/_shipped/."""
    root = REPO / relative
    return {f"bifrost/_shipped/{relative}/{p.relative_to(root).as_posix()}"
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.mark.slow
def test_the_wheel_carries_what_bifrost_reads_at_run_time(tmp_path: Path) -> None:
    """The wheel lists every migration, bifrost's CRDs, the examples and the vendored upstream
    CRD bundle, whose files in the wheel have the SHA-256 SOURCES.yaml records; its metadata
    names the bifrost-gateway distribution, its licence and both commands."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp_path), str(REPO)], check=True)
    (wheel,) = tmp_path.glob("bifrost_gateway-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())

    migrations = _repo_files("migrations")
    assert {n for n in migrations if "/versions/0" in n} >= {
        "bifrost/_shipped/migrations/versions/0001_initial.py"}
    crds = _repo_files("deploy/crds")
    assert "bifrost/_shipped/deploy/crds/gateway.bifrost.dev_gatewayclassblueprints.yaml" in crds
    examples = _repo_files("examples")
    assert {"bifrost/_shipped/examples/in-cluster/10-blueprint.yaml",
            "bifrost/_shipped/examples/cloud-edge/10-blueprint.yaml"} <= examples
    bundle = {"devcluster/crds/SOURCES.yaml",
              *(f"devcluster/crds/{entry['file']}" for entry in sources())}
    expected = migrations | crds | examples | bundle
    assert expected <= names, sorted(expected - names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)

    for entry in sources():  # the bundle in the wheel is byte for byte what SOURCES.yaml says
        data = archive.read(f"devcluster/crds/{entry['file']}")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
    for name in migrations | crds | examples:  # and the shipped folders are the repository's
        relative = name.removeprefix("bifrost/_shipped/")
        assert archive.read(name) == (REPO / relative).read_bytes(), relative

    (dist_info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert "\nName: bifrost-gateway\n" in metadata
    assert "License :: OSI Approved :: Apache Software License" in metadata
    assert any(n.startswith(f"{dist_info}/") and "LICENSE" in n for n in names)
    entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert "bifrost = bifrost.cli.entry:bifrost" in entry_points
    assert "bifrost-admin = bifrost.cli.entry:bifrost_admin" in entry_points
