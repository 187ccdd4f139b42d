"""An image's own files under a volume's mount path stay visible in the sandbox.

``bifrost dev --kubelet`` maps ``bifrost:*`` to this environment's venv; a venv under ``/tmp``
(a wheel installed in a temporary directory) would be hidden by the Pod's ``/tmp`` volume unless
the image's ``paths`` are bound on top of the volumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devcluster.localpods.sandbox import SandboxSpec, bwrap_argv, find_bwrap
from devcluster.localpods.volumes import Mount


def run(image: Path, volume: Path, *, image_paths: bool) -> subprocess.CompletedProcess[str]:
    bwrap = find_bwrap()
    if bwrap is None:
        pytest.skip("no working bubblewrap on this machine")
    mounts = [Mount(volume, "/tmp", False)]
    if image_paths:
        mounts.append(Mount(image, str(image), True))
    spec = SandboxSpec(mounts, read_only_root=True, uid=65532, gid=65532,
                       env={"PATH": "/usr/bin:/bin"}, cwd="/")
    # the interpreter itself, not this venv's link to it (the venv may lie under /tmp too)
    argv = bwrap_argv(bwrap, spec, [os.path.realpath(sys.executable), str(image / "hello.py")])
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_an_image_under_tmp_is_bound_over_the_pods_tmp_volume(tmp_path: Path) -> None:
    assert str(tmp_path).startswith("/tmp/"), "pytest's tmp_path is expected under /tmp"
    image = tmp_path / "image"
    image.mkdir()
    (image / "hello.py").write_text(
        "import os\nopen('/tmp/written', 'w').write('x')\nprint('hello', os.getuid())\n")
    volume = tmp_path / "volume"
    volume.mkdir()

    hidden = run(image, volume, image_paths=False)
    assert hidden.returncode != 0 and "hello.py" in hidden.stderr, hidden

    shown = run(image, volume, image_paths=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "hello 65532"
    assert (volume / "written").read_text() == "x"  # /tmp is still the Pod's volume
    assert not (image / "written").exists()
