"""``bifrost run`` as a subprocess against the devcluster: GatewayClass status from the blueprint
(watch-driven), the Gateway finalizer and store record, other controllers' classes left alone,
and expected start-up failures as one line on stderr. (Deletion and the provision/teardown hooks
are tested in-process with stand-in machines in ``test_controller_hooks.py``, so these tests do
not depend on the real provision/teardown steps.)"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from controller_kit import BIFROST_API, GATEWAY_API, REPO, accepted, blueprint
from support.builders import gateway, gateway_class
from support.controller_process import ControllerProcess
from support.editing import edit
from support.waiting import wait_for

from bifrost.kube.client import KubeClient
from bifrost.store import open_store

FINALIZER = "gateway.bifrost.dev/finalizer"


def _ready(ctl: ControllerProcess) -> None:
    def check() -> bool:
        assert ctl.proc.poll() is None, f"controller exited:\n{ctl.log()}"
        info = ctl.describe()
        return bool(info and info.get("ok") and info.get("leader"))

    wait_for(check, timeout=20, what=f"{ctl.identity} ready and leading")


def test_class_status_follows_the_blueprint(kube: KubeClient, start_controller) -> None:  # type: ignore[no-untyped-def]
    suffix = uuid.uuid4().hex[:6]
    cls, bp = f"cls-{suffix}", f"bp-{suffix}"
    ctl = start_controller("ctl-class")
    _ready(ctl)
    kube.create(gateway_class(cls, bp))

    def condition() -> dict | None:  # type: ignore[type-arg]
        cond = accepted(kube.get(GATEWAY_API, "GatewayClass", cls))
        return cond if cond and cond.get("reason") != "Pending" else None

    cond = wait_for(condition, timeout=15, what="Accepted on the class")
    assert cond["status"] == "False"
    assert cond["reason"] == "InvalidParameters"
    assert f'"{bp}" not found' in cond["message"]
    assert cond["observedGeneration"] == 1

    # An invalid blueprint is named with the problem (a dependsOn on an unknown child).
    bad = blueprint(bp)
    bad["spec"]["children"][0]["dependsOn"] = ["nope"]
    kube.create(bad)
    cond = wait_for(
        lambda: (
            (c := accepted(kube.get(GATEWAY_API, "GatewayClass", cls)))
            and "nope" in c["message"]
            and c
        ),
        timeout=15,
        what="invalid blueprint reported",
    )
    assert cond["status"] == "False" and cond["reason"] == "InvalidParameters"
    assert bp in cond["message"]

    # Fixing the blueprint flips the class to Accepted=True (watch-driven). The controller
    # writes the blueprint's own status meanwhile: read-modify-write retries on a conflict, as
    # any client of a controller-updated object must.
    edit(kube, BIFROST_API, "GatewayClassBlueprint", bp, None,
         lambda live: live["spec"]["children"][0].pop("dependsOn", None))
    cond = wait_for(
        lambda: (
            (c := accepted(kube.get(GATEWAY_API, "GatewayClass", cls)))
            and c["status"] == "True"
            and c
        ),
        timeout=15,
        what="Accepted=True",
    )
    assert cond["reason"] == "Accepted"


def test_gateway_gets_finalizer_and_record(  # type: ignore[no-untyped-def]
    kube: KubeClient, start_controller, namespace: str, db_url: str
) -> None:
    suffix = uuid.uuid4().hex[:6]
    cls, bp = f"cls-{suffix}", f"bp-{suffix}"
    kube.create(blueprint(bp))
    kube.create(gateway_class(cls, bp))
    ctl = start_controller("ctl-gw")
    _ready(ctl)
    created = kube.create(gateway(namespace, "edge", cls))
    uid = created["metadata"]["uid"]

    wait_for(
        lambda: (
            FINALIZER
            in (
                (kube.get(GATEWAY_API, "Gateway", "edge", namespace) or {})
                .get("metadata", {})
                .get("finalizers")
                or []
            )
        ),
        timeout=15,
        what="finalizer on the Gateway",
    )
    store = open_store(db_url)
    try:
        record = wait_for(
            lambda: next(iter(store.find_gateways(namespace, "edge")), None),
            timeout=15,
            what="store record",
        )
        assert record.uid == uid
        assert record.gateway_class == cls
        assert record.generation == 1
    finally:
        store.close()
    live = wait_for(
        lambda: (
            (g := kube.get(GATEWAY_API, "Gateway", "edge", namespace))
            and accepted(g)
            and accepted(g)["status"] == "True"
            and g
        ),  # type: ignore[index]
        timeout=15,
        what="Gateway Accepted=True",
    )
    assert accepted(live)["observedGeneration"] == 1  # type: ignore[index]


def test_other_controllers_classes_are_ignored(  # type: ignore[no-untyped-def]
    kube: KubeClient, start_controller, namespace: str
) -> None:
    suffix = uuid.uuid4().hex[:6]
    other = {
        "apiVersion": GATEWAY_API,
        "kind": "GatewayClass",
        "metadata": {"name": f"o-{suffix}"},
        "spec": {"controllerName": "example.com/other"},
    }
    kube.create(other)
    kube.create(gateway(namespace, "foreign", f"o-{suffix}"))
    # A class of ours created afterwards is a marker: once it is handled, so was the other one.
    kube.create(gateway_class(f"m-{suffix}", None))
    ctl = start_controller("ctl-other")
    _ready(ctl)
    wait_for(
        lambda: (
            (c := accepted(kube.get(GATEWAY_API, "GatewayClass", f"m-{suffix}")))
            and c["reason"] == "InvalidParameters"
        ),
        timeout=15,
        what="marker class handled",
    )
    cond = accepted(kube.get(GATEWAY_API, "GatewayClass", f"o-{suffix}"))
    assert cond is None or cond["reason"] == "Pending"
    foreign = kube.get(GATEWAY_API, "Gateway", "foreign", namespace)
    assert foreign is not None
    assert FINALIZER not in (foreign["metadata"].get("finalizers") or [])


def test_unreachable_cluster_is_one_line_and_exit_1(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: x, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\n"
        "users: [{name: x, user: {}}]\n"
    )
    for args in (
        ["--kubeconfig", str(config)],
        ["--kubeconfig", str(tmp_path / "missing")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bifrost.cli.run", *args, "--database-url", db_url],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("bifrost run: ")


def _run_fails(args: list[str], *, env: dict[str, str] | None = None) -> str:
    import os

    done = subprocess.run(
        [sys.executable, "-m", "bifrost.cli.run", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_missing_bifrost_crds_fail_fast(kubeconfig_path: Path, db_url: str) -> None:
    # The shared devcluster fixture serves the Gateway API but not bifrost's own CRDs.
    line = _run_fails(["--kubeconfig", str(kubeconfig_path), "--database-url", db_url])
    assert "GatewayClassBlueprint" in line and "deploy/crds" in line


def test_missing_lease_namespace_fails_fast(kubeconfig: Path, db_url: str) -> None:
    line = _run_fails(
        ["--kubeconfig", str(kubeconfig), "--database-url", db_url],
        env={"POD_NAMESPACE": "no-such-namespace"},
    )
    assert "'no-such-namespace'" in line and "POD_NAMESPACE" in line


def test_unreachable_database_fails_fast(kubeconfig: Path) -> None:
    line = _run_fails(
        [
            "--kubeconfig",
            str(kubeconfig),
            "--database-url",
            "postgresql+psycopg://u:p@127.0.0.1:9/x",
        ],
    )
    assert line.startswith("bifrost run: ") and "unavailable" in line
    assert ":p@" not in line  # no password in the message
