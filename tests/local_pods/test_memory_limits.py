"""``resources.limits.memory`` on the local kubelet: a memory cgroup per container run, the OOM
killer's kill reported as ``OOMKilled`` (and restarted), a program under its limit untouched,
no cgroup left behind; the memory quantities and the cgroup paths; the Warning where no cgroup
can be made."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client, config  # type: ignore[import-untyped]
from local_pods_kit import IMAGE, container_status, events_of, pod_body, wait_ready
from support.waiting import wait_for

from devcluster.localpods import LocalPodOptions, cgroups
from devcluster.server import DevCluster

HIERARCHY = cgroups.hierarchy()
needs_cgroup = pytest.mark.skipif(
    HIERARCHY is None,
    reason="no writable memory cgroup (v2 with the memory controller, or v1) on this machine",
)


def _allocating_pod(name: str, limit: str, megabytes: int = 200) -> dict[str, object]:
    env = [
        {"name": "APP_MODE", "value": "allocate"},
        {"name": "APP_ALLOCATE_MB", "value": str(megabytes)},
    ]
    body = pod_body(name, env=env, probes={})
    container = body["spec"]["containers"][0]  # type: ignore[index]
    container["resources"] = {"limits": {"memory": limit}}
    return body


def _leftovers(uid: str) -> list[Path]:
    """The cgroups of pod ``uid`` still present."""
    assert HIERARCHY is not None
    parent = cgroups.parent_dir(HIERARCHY)
    if not parent.is_dir():
        return []
    return [p for p in parent.iterdir() if p.is_dir() and p.name.startswith(uid)]


def _app_cgroup(uid: str) -> Path:
    """The cgroup directory the pod's app process is in (from /proc)."""
    assert HIERARCHY is not None

    def find() -> Path | None:
        for p in _leftovers(uid):
            if cgroups.ContainerCgroup(p, HIERARCHY.version, 0).procs():
                return p
        return None

    return wait_for(find, what=f"a process of pod {uid} in its cgroup", timeout=20)


def _limit_of(path: Path) -> int:
    assert HIERARCHY is not None
    name = "memory.max" if HIERARCHY.version == 2 else "memory.limit_in_bytes"
    return int((path / name).read_text())


def _log(core: client.CoreV1Api, namespace: str, name: str) -> str:
    """The pod's log so far ("" before its container started)."""
    try:
        return str(core.read_namespaced_pod_log(name, namespace, container="app"))
    except client.ApiException:
        return ""


# ------------------------------------------------------------------------------------ units


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("64Mi", 64 * 2**20),
        ("1Gi", 2**30),
        ("1.5Gi", 3 * 2**29),
        ("512Ki", 512 * 1024),
        ("100M", 100_000_000),
        ("2G", 2_000_000_000),
        ("3k", 3000),
        ("128974848", 128974848),
        ("1e3", 1000),
        ("0.5", 1),  # rounded up, as Quantity.Value()
    ],
)
def test_memory_quantities(quantity: str, expected: int) -> None:
    assert cgroups.memory_bytes(quantity) == expected


@pytest.mark.parametrize("quantity", ["lots", "64MB", "0", "-1Mi"])
def test_a_bad_memory_quantity_is_named(quantity: str) -> None:
    with pytest.raises(ValueError, match=f"invalid memory quantity '{quantity}'"):
        cgroups.memory_bytes(quantity)


def test_cgroup_paths() -> None:
    h = cgroups.Hierarchy(1, Path("/sys/fs/cgroup/memory/some/where"))
    parent = cgroups.parent_dir(h, pid=4242)
    assert parent == Path("/sys/fs/cgroup/memory/some/where/devcluster-4242")
    assert cgroups.cgroup_name("0f1e-uid", "app", 3) == "0f1e-uid-app-3"
    cg = cgroups.ContainerCgroup(parent / "u-app-0", 1, 64 * 2**20)
    assert cg.wrap(["bwrap", "--", "python", "a b.py"]) == [
        "/bin/sh",
        "-c",
        "echo $$ > /sys/fs/cgroup/memory/some/where/devcluster-4242/u-app-0/cgroup.procs"
        ' && exec "$@"',
        "sh",
        "bwrap",
        "--",
        "python",
        "a b.py",
    ]


def test_memory_limits_option_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="memory_limits: 'on' is not 'auto' or 'off'"):
        LocalPodOptions(images=(IMAGE,), root=tmp_path, memory_limits="on")


# ------------------------------------------------------------------------------------ pods


@needs_cgroup
def test_a_container_past_its_memory_limit_is_oom_killed_and_restarted(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _allocating_pod("hog", "64Mi"))
    uid = core.read_namespaced_pod("hog", namespace).metadata.uid

    def oom_restarted() -> dict[str, object] | None:
        cs = container_status(core, namespace, "hog")
        last = (cs.get("lastState") or {}).get("terminated") or {}
        return cs if last.get("reason") == "OOMKilled" and cs["restartCount"] >= 2 else None

    cs = wait_for(oom_restarted, what="hog OOMKilled and restarted twice", timeout=30)
    last = cs["lastState"]["terminated"]  # type: ignore[index]
    assert last["exitCode"] == 137, cs
    log = core.read_namespaced_pod_log("hog", namespace, container="app", previous=True)
    assert "app starting mode=allocate" in log and "allocated" not in log, log

    core.delete_namespaced_pod("hog", namespace, grace_period_seconds=0)
    wait_for(
        lambda: not core.list_namespaced_pod(namespace).items and not _leftovers(uid),
        what=lambda: f"hog deleted and its cgroups removed: {_leftovers(uid)}",
        timeout=15,
    )


@needs_cgroup
def test_a_container_under_its_memory_limit_runs(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, _allocating_pod("fits", "512Mi"))
    uid = core.read_namespaced_pod("fits", namespace).metadata.uid
    wait_for(
        lambda: "app listening" in _log(core, namespace, "fits"),
        what="fits allocated its 200 MB and serves",
        timeout=20,
    )
    assert "app allocated 200 MB" in core.read_namespaced_pod_log("fits", namespace)
    assert _limit_of(_app_cgroup(uid)) == 512 * 2**20
    cs = container_status(core, namespace, "fits")
    assert cs["restartCount"] == 0 and "running" in cs["state"], cs

    core.delete_namespaced_pod("fits", namespace, grace_period_seconds=1)
    wait_for(
        lambda: not core.list_namespaced_pod(namespace).items and not _leftovers(uid),
        what=lambda: f"fits deleted and its cgroups removed: {_leftovers(uid)}",
        timeout=15,
    )


@pytest.fixture()
def no_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process behaves as a machine without a writable memory cgroup."""
    monkeypatch.setattr(cgroups, "_probed", True)
    monkeypatch.setattr(cgroups, "_found", None)


def test_without_a_cgroup_the_limit_is_not_enforced_and_said_once(
    core: client.CoreV1Api, namespace: str, no_cgroup: None
) -> None:
    body = _allocating_pod("unlimited", "64Mi", megabytes=100)
    body["spec"]["containers"].append(  # type: ignore[index]
        {
            "name": "second",
            "image": "probe-app:1",
            "env": [{"name": "APP_PORT", "value": "8081"}],
            "resources": {"limits": {"memory": "64Mi"}},
        }
    )
    core.create_namespaced_pod(namespace, body)
    wait_ready(core, namespace, "unlimited")
    wait_for(
        lambda: "app listening" in _log(core, namespace, "unlimited"),
        what="unlimited allocated its 100 MB past its 64Mi limit and serves",
        timeout=20,
    )
    assert "app allocated 100 MB" in _log(core, namespace, "unlimited")
    assert container_status(core, namespace, "unlimited")["restartCount"] == 0
    warnings = [
        m for r, m in events_of(core, namespace, "unlimited") if r == "MemoryLimitNotEnforced"
    ]
    assert len(warnings) == 1, warnings
    assert "resources.limits.memory (64Mi) is not enforced on this machine" in warnings[0]


@needs_cgroup
def test_stopping_the_cluster_removes_the_cgroups(tmp_path: Path) -> None:
    options = LocalPodOptions(images=(IMAGE,), root=tmp_path, backoff_base=0.2, backoff_cap=1.0)
    dc = DevCluster(local_pods=options)
    dc.start()
    try:
        api = config.new_client_from_config(str(dc.write_kubeconfig(tmp_path / "kubeconfig")))
        core = client.CoreV1Api(api)
        if not core.list_namespaced_service_account("default").items:
            core.create_namespaced_service_account("default", {"metadata": {"name": "default"}})
        core.create_namespaced_pod("default", _allocating_pod("kept", "256Mi", megabytes=10))
        uid = core.read_namespaced_pod("kept", "default").metadata.uid
        assert _limit_of(_app_cgroup(uid)) == 256 * 2**20
    finally:
        dc.stop()
    assert _leftovers(uid) == []
