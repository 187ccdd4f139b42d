"""``bifrost dev --kubelet``: the devcluster's local kubelet maps ``bifrost:*`` to this
environment's ``bifrost`` the way deploy/Dockerfile builds the image, ``--image PATTERN=COMMAND``
overrides the mapping, the in-process controller is off unless asked and the printed hint is the
``kubectl apply`` of the shipped install manifest."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import typer
from support.waiting import wait_for
from typer.testing import CliRunner

from bifrost.cli.dev import (
    bifrost_executable,
    local_pod_options,
    parse_image_mapping,
    run_dev,
)
from bifrost.cli.main import app
from bifrost.kube import KubeClient
from bifrost.shipped import shipped


def test_bifrost_image_runs_this_environments_bifrost_as_the_dockerfile_does(
    tmp_path: Path,
) -> None:
    options = local_pod_options(tmp_path)
    (image,) = options.images
    assert image.pattern == "bifrost:*"
    assert image.entrypoint == (str(Path(sys.executable).parent / "bifrost"),)
    assert image.entrypoint == (str(bifrost_executable()),)
    assert image.cmd == ("run", "--health-port", "8080")
    # the Dockerfile's ENV, its venv's bin/ first on PATH (here: this environment's)
    venv = {"VIRTUAL_ENV": sys.prefix} if sys.prefix != sys.base_prefix else {}
    assert dict(image.env) == {"HOME": "/tmp", "PYTHONUNBUFFERED": "1",
                               "BIFROST_DATA_DIR": "/var/lib/bifrost",
                               "PYTHONDONTWRITEBYTECODE": "1",
                               "PATH": f"{Path(sys.executable).parent}:/usr/local/sbin:"
                               "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **venv}
    assert options.root == tmp_path
    assert options.sandbox == "auto"
    # what the image is made of stays visible in the sandbox, even under the Pod's /tmp (a CI
    # checkout or a venv in a temporary directory): this environment, its interpreter and
    # where bifrost is imported from (the checkout, for an editable install)
    import bifrost

    for needed in (sys.prefix, sys.base_prefix, Path(bifrost.__file__).parent):
        assert any(Path(needed).resolve().is_relative_to(p) for p in image.paths), needed


def test_image_option_overrides_the_bifrost_mapping_and_adds_others(tmp_path: Path) -> None:
    mine = parse_image_mapping("bifrost:*=/opt/other/bin/bifrost --verbose")
    assert mine.entrypoint == ("/opt/other/bin/bifrost", "--verbose")
    assert mine.cmd == ("run", "--health-port", "8080")  # the Dockerfile's CMD stays
    echo = parse_image_mapping("busybox:*=/bin/sh -c 'sleep 1000'")
    assert (echo.pattern, echo.entrypoint, echo.cmd) == (
        "busybox:*", ("/bin/sh", "-c", "sleep 1000"), ())
    images = local_pod_options(tmp_path, [mine, echo]).images
    assert [i.pattern for i in images] == ["bifrost:*", "busybox:*"]
    assert images[0].entrypoint[0] == "/opt/other/bin/bifrost"


@pytest.mark.parametrize("value", ["bifrost:*", "=bifrost", "bifrost:*=", "x='unclosed"])
def test_a_malformed_image_mapping_is_a_bad_parameter(value: str) -> None:
    with pytest.raises(typer.BadParameter, match="--image|PATTERN=COMMAND|quotation"):
        parse_image_mapping(value)


def test_image_without_kubelet_is_a_usage_error(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    result = CliRunner().invoke(app, ["dev", "--kubeconfig-out", str(tmp_path / "k"),
                                      "--image", "bifrost:*=/bin/true"])
    assert result.exit_code == 2
    assert "--image needs --kubelet" in result.output
    # in-process, dev leaves logging as it found it: a handler left on the root logger would
    # write every later log line of the process into this invocation's closed output
    assert (root.handlers, root.level) == (handlers, level)


def test_help_describes_kubelet_image_and_controller() -> None:
    result = CliRunner().invoke(app, ["dev", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    for text in ("--kubelet", "--image", "PATTERN=COMMAND", "--controller", "--no-controller",
                 "unless --kubelet"):
        assert text in result.output, text


def test_kubelet_dev_prints_the_install_hint_and_starts_no_controller(tmp_path: Path) -> None:
    """With --kubelet the devcluster comes up with the local kubelet, the printed hint is the
    kubectl apply of the shipped dist/install.yaml, the in-process controller is not started
    (bifrost-system stays absent until the manifest is applied) and the temporary per-pod root
    is removed on exit."""
    kubeconfig = tmp_path / "kubeconfig"
    stop = threading.Event()
    out = io.StringIO()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with redirect_stdout(out):
                run_dev(kubeconfig, stop=stop, kubelet=True, peers=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        line = wait_for(lambda: next((x for x in out.getvalue().splitlines()
                                      if x.startswith("local kubelet on")), None),
                        what="the kubelet hint", timeout=60)
        manifest = shipped("dist/install.yaml")
        assert manifest.is_file()
        assert f"kubectl --kubeconfig {kubeconfig} apply -f {manifest}" in line
        root = Path(line.split("(pods under ", 1)[1].split(")", 1)[0])
        assert root.is_dir()
        assert "controller running" not in out.getvalue()
        kube = KubeClient.from_kubeconfig(kubeconfig)
        try:
            assert kube.get("v1", "Namespace", "bifrost-system") is None
            # bifrost's own CRDs are left to the install manifest
            assert kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                            "gatewayclassblueprints.gateway.bifrost.dev") is None
        finally:
            kube.close()
    finally:
        stop.set()
        thread.join(60)
    assert not failure, failure
    assert not root.exists()


@pytest.mark.slow
def test_the_printed_kubectl_apply_runs_the_controller_as_a_pod(tmp_path: Path) -> None:
    """The hint works as printed: kubectl apply of the shipped manifest, then the Deployment
    rolls out with its Pod run by the local kubelet (this environment's bifrost)."""
    kubeconfig = tmp_path / "kubeconfig"
    stop = threading.Event()
    out = io.StringIO()
    thread = threading.Thread(target=lambda: run_dev(kubeconfig, stop=stop, kubelet=True,
                                                     pods_root=tmp_path / "pods"), daemon=True)
    with redirect_stdout(out):
        thread.start()
        try:
            line = wait_for(lambda: next((x for x in out.getvalue().splitlines()
                                          if x.startswith("local kubelet on")), None),
                            what="the kubelet hint", timeout=60)
            command = line.split("`")[1].split()
            assert command[0] == "kubectl"
            kubectl = str(Path(sys.executable).parent / "kubectl")
            subprocess.run([kubectl, *command[1:]], check=True, capture_output=True,
                           timeout=120)
            done = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "rollout",
                                   "status", "-n", "bifrost-system", "deployment/bifrost",
                                   "--timeout=120s"], capture_output=True, text=True,
                                  timeout=150, check=False)
            assert done.returncode == 0, done.stderr
            assert any((tmp_path / "pods").iterdir()), "no per-pod directory under pods_root"
        finally:
            stop.set()
            thread.join(60)
