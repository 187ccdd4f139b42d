"""Durability with ``--state-file``: the watch history survives a restart, writes survive a crash.

A restarted devcluster serves ``watch?resourceVersion=<rv from before the restart>`` from its
persisted history window (410 only beyond it, as after an etcd compaction), continues the
resourceVersions, keeps every write it acknowledged when the process is killed, and drops a
torn or corrupt journal tail on load.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch

from devcluster import DevCluster
from devcluster.journal import decode_records, journal_files
from devcluster.storage import Expired, Store


@contextmanager
def running(state: Path, **kwargs: object) -> Iterator[tuple[DevCluster, client.ApiClient]]:
    """A devcluster on ``state`` and an official client for it (from the kubeconfig it
    writes, so the client authenticates as the admin)."""
    with DevCluster(state_file=state, **kwargs) as c:  # type: ignore[arg-type]
        kubeconfig = c.write_kubeconfig(state.parent / f"kubeconfig-{c.port}")
        api = config.new_client_from_config(str(kubeconfig))
        try:
            yield c, api
        finally:
            api.close()


def _events_after(api: client.ApiClient, rv: str, until: int) -> list[tuple[str, str]]:
    """(type, name) of the configmap events in ``default`` after ``rv``, ``until`` of them."""
    core = client.CoreV1Api(api)
    w = watch.Watch()
    out: list[tuple[str, str]] = []
    for ev in w.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10
    ):
        out.append((ev["type"], ev["object"].metadata.name))
        if len(out) >= until:
            w.stop()
    return out


def test_a_watch_resumed_from_before_a_restart_receives_the_events_after_it(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    with running(state) as (_, api):
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
        core.create_namespaced_config_map("default", {"metadata": {"name": "gone"}})
        resume = core.list_namespaced_config_map("default").metadata.resource_version
        core.patch_namespaced_config_map("before", "default", {"data": {"k": "v"}})
        core.create_namespaced_config_map("default", {"metadata": {"name": "later"}})
        core.delete_namespaced_config_map("gone", "default")
        last_rv = int(core.read_namespaced_config_map("later", "default").metadata.resource_version)
    with running(state) as (_, api):
        core = client.CoreV1Api(api)
        created = core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
        assert int(created.metadata.resource_version) > last_rv  # resourceVersions continue
        assert _events_after(api, resume, 4) == [
            ("MODIFIED", "before"),
            ("ADDED", "later"),
            ("DELETED", "gone"),
            ("ADDED", "after"),
        ]
        # a list at an old resourceVersion is served from the same history
        old = core.list_namespaced_config_map(
            "default", resource_version=resume, resource_version_match="Exact"
        )
        assert sorted(i.metadata.name for i in old.items) == ["before", "gone"]


def test_a_resume_beyond_the_persisted_window_is_410(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with running(state, history_size=10) as (_, api):
        core = client.CoreV1Api(api)
        created = [
            core.create_namespaced_config_map("default", {"metadata": {"name": f"h{i}"}})
            for i in range(15)
        ]
        first = created[0]
        recent = created[-3].metadata.resource_version
    with running(state, history_size=10) as (c, api):
        core = client.CoreV1Api(api)
        with pytest.raises(client.ApiException) as ei:
            core.list_namespaced_config_map(
                "default",
                resource_version=first.metadata.resource_version,
                resource_version_match="Exact",
            )
        assert ei.value.status == 410
        assert _events_after(api, recent, 2) == [("ADDED", "h13"), ("ADDED", "h14")]
        assert c.store.compacted_rv >= int(first.metadata.resource_version)


def _cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}}


def test_history_spans_a_snapshot_and_the_journal_after_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = Store(state_file=state)
    first.load()
    key = ("", "configmaps")
    resume = first.commit(key, "ADDED", _cm("s0"), None)["metadata"]["resourceVersion"]
    first.commit(key, "ADDED", _cm("s1"), None)
    first.save()  # a compaction: snapshot + a new journal generation, older journals removed
    first.commit(key, "ADDED", _cm("s2"), None)  # only in the journal
    assert len(journal_files(state)) == 1
    # the first store is abandoned without a shutdown (as if the process had died)
    second = Store(state_file=state)
    second.load()
    assert second.resource_version == first.resource_version
    _, backlog, _ = second.watch(key, "ns", int(resume))
    assert [(e.type, e.obj["metadata"]["name"]) for e in backlog] == [
        ("ADDED", "s1"),
        ("ADDED", "s2"),
    ]
    assert backlog[0].old is None


def test_a_compaction_is_remembered_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = Store(state_file=state)
    first.load()
    key = ("", "configmaps")
    before = int(first.commit(key, "ADDED", _cm("x0"), None)["metadata"]["resourceVersion"])
    first.compact()  # journaled: history before now is gone
    after = int(first.commit(key, "ADDED", _cm("x1"), None)["metadata"]["resourceVersion"])
    second = Store(state_file=state)  # the first one is abandoned, as if the process died
    second.load()
    with pytest.raises(Expired):
        second.watch(key, "ns", before - 1)
    _, backlog, _ = second.watch(key, "ns", before)
    assert [e.obj["metadata"]["name"] for e in backlog] == ["x1"]
    assert second.resource_version == after


@contextmanager
def killed_afterwards(state: Path) -> Iterator[client.ApiClient]:
    """``python -m devcluster --state-file`` in its own process, SIGKILLed on exit (no
    shutdown, no final snapshot: only what was fsynced survives)."""
    kubeconfig = state.parent / "kubeconfig-killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devcluster",
            "--port",
            "0",
            "--state-file",
            str(state),
            "--kubeconfig-out",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        api = config.new_client_from_config(str(kubeconfig))
        try:
            yield api
        finally:
            api.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def _journal_with_records(state: Path) -> Path:
    (path,) = [p for _, p in journal_files(state) if p.stat().st_size]
    return path


def _configmaps(api: client.ApiClient) -> set[str]:
    return {
        i.metadata.name for i in client.CoreV1Api(api).list_namespaced_config_map("default").items
    }


def test_acknowledged_writes_survive_a_killed_process(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with killed_afterwards(state) as api:
        core = client.CoreV1Api(api)
        acked = []
        for i in range(20):
            cm = core.create_namespaced_config_map(
                "default", {"metadata": {"name": f"k{i}"}, "data": {"i": str(i)}}
            )
            acked.append((cm.metadata.name, cm.metadata.resource_version))
        patched = core.patch_namespaced_config_map("k0", "default", {"data": {"i": "patched"}})
    with running(state) as (c, api):
        core = client.CoreV1Api(api)
        for name, rv in acked[1:]:
            assert core.read_namespaced_config_map(name, "default").metadata.resource_version == rv
        k0 = core.read_namespaced_config_map("k0", "default")
        assert k0.data == {"i": "patched"}
        assert k0.metadata.resource_version == patched.metadata.resource_version
        assert c.store.resource_version >= int(patched.metadata.resource_version)


def test_a_torn_journal_tail_is_dropped_on_load(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with killed_afterwards(state) as api:
        for n in ("t0", "t1", "t2"):
            client.CoreV1Api(api).create_namespaced_config_map("default", {"metadata": {"name": n}})
    path = _journal_with_records(state)
    data = path.read_bytes()
    records, good = decode_records(data)
    assert good == len(data) and records[-1].obj is not None
    rv = records[-1].rv
    assert records[-1].obj["metadata"]["name"] == "t2"
    path.write_bytes(data[:-7])  # the last record was being written when the power went
    with running(state) as (c, api):
        assert c.store.resource_version == rv - 1
        names = _configmaps(api)
        assert {"t0", "t1"} <= names and "t2" not in names
        again = client.CoreV1Api(api).create_namespaced_config_map(
            "default", {"metadata": {"name": "t2"}}
        )
        assert int(again.metadata.resource_version) == rv
    with running(state) as (c, _):  # the repaired state loads cleanly again
        assert c.store.resource_version == rv


def test_a_corrupt_journal_record_drops_it_and_everything_after(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with killed_afterwards(state) as api:
        for n in ("c0", "c1", "c2"):
            client.CoreV1Api(api).create_namespaced_config_map("default", {"metadata": {"name": n}})
    path = _journal_with_records(state)
    lines = path.read_bytes().splitlines(keepends=True)
    names = [json.loads(line[9:])["o"]["metadata"]["name"] for line in lines]
    i = names.index("c1")
    broken = bytearray(lines[i])
    broken[-3] ^= 0x01  # one flipped bit inside c1's record: its checksum no longer matches
    path.write_bytes(b"".join([*lines[:i], bytes(broken), *lines[i + 1 :]]))
    rv_c0 = json.loads(lines[i - 1][9:])["rv"]
    with running(state) as (c, api):
        assert c.store.resource_version == rv_c0
        names_now = _configmaps(api)
        assert "c0" in names_now and not {"c1", "c2"} & names_now


def test_an_old_style_state_file_still_loads(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "legacy",
            "namespace": "default",
            "uid": "0b5e2a34-0000-4000-8000-000000000001",
            "resourceVersion": "41",
            "creationTimestamp": "2024-01-01T00:00:00Z",
        },
        "data": {"k": "v"},
    }
    state.write_text(
        json.dumps(
            {
                "resourceVersion": 41,
                "objects": [{"group": "", "plural": "configmaps", "object": cm}],
            }
        )
    )
    with running(state) as (c, api):
        got = client.CoreV1Api(api).read_namespaced_config_map("legacy", "default")
        assert got.data == {"k": "v"}
        assert c.store.resource_version >= 41
