"""A local pod's filesystem: emptyDir, Secret and ConfigMap volumes, a PersistentVolumeClaim
whose data outlives the pod, and the sandbox's runAsUser and readOnlyRootFilesystem."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client  # type: ignore[import-untyped]
from local_pods_kit import http, http_json, pod_body, wait_ready
from support.waiting import wait_for

pytestmark = pytest.mark.slow

VOLUMES = [
    {"name": "scratch", "emptyDir": {}},
    {"name": "tmp", "emptyDir": {}},
    {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
    {"name": "settings", "configMap": {"name": "settings", "items": [{"key": "a", "path": "x/a"}]}},
    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
]
MOUNTS = [
    {"name": "scratch", "mountPath": "/scratch"},
    {"name": "tmp", "mountPath": "/tmp"},
    {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
    {"name": "settings", "mountPath": "/etc/settings"},
    {"name": "data", "mountPath": "/var/lib/app"},
]
SECURE = {"runAsUser": 65532, "runAsGroup": 65532, "readOnlyRootFilesystem": True}


def _objects(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "creds"}, "data": {"password": base64.b64encode(b"s3").decode()}},
    )
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"a": "1", "b": "2"}}
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )


def _run(core: client.CoreV1Api, namespace: str, name: str) -> str:
    core.create_namespaced_pod(
        namespace, pod_body(name, volumes=VOLUMES, mounts=MOUNTS, security=SECURE)
    )
    return str(wait_ready(core, namespace, name)["podIP"])


def test_volumes_and_a_read_only_root_as_a_non_root_user(
    core: client.CoreV1Api, namespace: str
) -> None:
    _objects(core, namespace)
    ip = _run(core, namespace, "vols")
    ident = http_json(ip, "/id")
    assert (ident["uid"], ident["gid"]) == (65532, 65532)
    assert http(ip, "/read?path=/etc/creds/password") == (200, "s3")
    assert http(ip, "/read?path=/etc/settings/x/a") == (200, "1")
    assert http(ip, "/read?path=/etc/settings/b")[0] == 404  # only the listed items
    token = http(ip, "/read?path=/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    assert token == (200, namespace)
    for writable in ("/scratch/f", "/tmp/f", "/var/lib/app/f"):
        assert http(ip, f"/write?path={writable}") == (200, "ok"), writable
    for read_only in ("/etc/f", "/f", "/var/f", "/etc/creds/f", "/usr/f"):
        assert http(ip, f"/write?path={read_only}")[1].startswith("OSError: Read-only"), read_only


def test_a_claim_keeps_its_data_across_pods_and_an_empty_dir_does_not(
    core: client.CoreV1Api, namespace: str
) -> None:
    _objects(core, namespace)
    ip = _run(core, namespace, "first")
    assert http(ip, "/write?path=/var/lib/app/state&data=kept") == (200, "ok")
    assert http(ip, "/write?path=/scratch/state&data=lost") == (200, "ok")
    core.delete_namespaced_pod("first", namespace, grace_period_seconds=1)
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, what="first pod gone")
    ip = _run(core, namespace, "second")
    assert http(ip, "/read?path=/var/lib/app/state") == (200, "kept")
    assert http(ip, "/read?path=/scratch/state")[0] == 404


def test_without_a_read_only_root_the_root_is_writable(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, pod_body("rw"))
    ip = wait_ready(core, namespace, "rw")["podIP"]
    assert http_json(ip, "/id")["uid"] == 0
    assert http(ip, "/write?path=/f") == (200, "ok")
    assert http(ip, "/write?path=/etc/f")[1].startswith("OSError: Read-only")  # host dirs stay ro
