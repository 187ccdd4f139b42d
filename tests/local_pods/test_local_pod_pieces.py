"""The local kubelet's pure pieces: $(VAR) expansion, the environment's precedence and errors,
the command line, image matching and the --local-image syntax, the volume plan, the bwrap
command line, and the probe state machine on a fake clock."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from devcluster.localpods import ImageCommand
from devcluster.localpods.environment import (
    ContainerConfigError,
    PodNetwork,
    command_line,
    container_env,
    expand,
)
from devcluster.localpods.images import local_images, parse_image_mapping
from devcluster.localpods.probes import ProbeState
from devcluster.localpods.sandbox import SandboxSpec, bwrap_argv
from devcluster.localpods.volumes import SA_MOUNT, Mount, plan_volumes

JSON = dict[str, Any]
NET = PodNetwork("127.1.0.7", "172.18.0.2", "127.0.0.1", 6443)
IMAGE = ImageCommand("app:*", ("/bin/app",), ("serve",), {"HOME": "/home/app", "A": "image"})
POD: JSON = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"x": "1"}},
    "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "app:1"}]},
}
OBJECTS: dict[tuple[str, str], JSON] = {
    ("secrets", "s"): {"data": {"k": base64.b64encode(b"secret").decode()}},
    ("configmaps", "cm"): {"data": {"k": "conf", "A": "from-cm", "bad-name!": "x"}},
}


def lookup(plural: str, ns: str, name: str) -> JSON | None:
    return OBJECTS.get((plural, name))


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)-$(B)", "a-b"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$A $", "$A $"),
        ("$(A", "$(A"),
        ("$$$(A)", "$a"),
    ],
)
def test_expand(text: str, expanded: str) -> None:
    assert expand(text, {"A": "a", "B": "b"}) == expanded


def test_env_precedence_and_sources() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": ""}],
        "env": [
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['x']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "REF", "value": "$(S)/$(LATER)"},
            {"name": "LATER", "value": "l"},
            {"name": "SVC", "value": "$(KUBERNETES_SERVICE_HOST)"},
        ],
        "args": ["--x=$(N)"],
    }
    env = container_env(POD, container, IMAGE, NET, lookup)
    assert env["A"] == "from-cm"  # envFrom overrides the image's ENV
    assert env["HOME"] == "/home/app"
    assert "bad-name!" not in env
    assert (env["S"], env["N"], env["L"], env["IP"]) == ("secret", "n1", "1", "127.1.0.7")
    assert env["REF"] == "secret/$(LATER)"  # only variables defined before
    assert env["SVC"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert env["KUBERNETES_PORT_6443_TCP_ADDR"] == "127.0.0.1"
    assert command_line(container, IMAGE, env) == ["/bin/app", "--x=n1"]
    assert command_line({"command": ["/x"]}, IMAGE, env) == ["/x"]
    assert command_line({}, IMAGE, env) == ["/bin/app", "serve"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
        ({"secretKeyRef": {"name": "s", "key": "url"}}, "couldn't find key url in Secret ns/s"),
        ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
        ({"configMapKeyRef": {"name": "cm", "key": "z"}}, "couldn't find key z in ConfigMap ns/cm"),
    ],
)
def test_env_errors(ref: JSON, message: str) -> None:
    container = {"env": [{"name": "V", "valueFrom": ref}]}
    with pytest.raises(ContainerConfigError) as e:
        container_env(POD, container, IMAGE, NET, lookup)
    assert str(e.value) == message
    (kind,) = ref
    optional = {kind: {**ref[kind], "optional": True}}
    assert "V" not in container_env(
        POD, {"env": [{"name": "V", "valueFrom": optional}]}, IMAGE, NET, lookup
    )


def test_image_matching_and_the_flag() -> None:
    assert parse_image_mapping("bifrost:*=/venv/bin/bifrost --x") == ImageCommand(
        "bifrost:*", ("/venv/bin/bifrost", "--x")
    )
    for bad in ("bifrost:*", "=/bin/x", "bifrost:*="):
        with pytest.raises(ValueError, match="PATTERN=COMMAND"):
            parse_image_mapping(bad)
    assert local_images(POD, [IMAGE]) == {"c": IMAGE}
    mixed = {
        "spec": {"containers": [{"name": "c", "image": "app:1"}, {"name": "d", "image": "nginx"}]}
    }
    assert local_images(mixed, [IMAGE]) is None


def test_volume_plan(tmp_path: Path) -> None:
    pod = {
        **POD,
        "spec": {
            "volumes": [
                {"name": "e", "emptyDir": {}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "claim"}},
                {"name": "s", "secret": {"secretName": "s", "defaultMode": 0o400}},
            ]
        },
    }
    plan = plan_volumes(
        pod,
        tmp_path / "pod",
        tmp_path,
        lookup,
        net=NET,
        ca_pem=b"CA",
        token=lambda p: "T",
        automount=True,
    )
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "e", "mountPath": "/tmp"},
            {"name": "d", "mountPath": "/var/lib/x", "subPath": "sub"},
            {"name": "s", "mountPath": "/etc/s", "readOnly": True},
        ],
    }
    assert plan.mounts(container, service_account=True) == [
        Mount(tmp_path / "pod" / "volumes" / "e", "/tmp", False),
        Mount(tmp_path / "volumes" / "ns" / "claim" / "sub", "/var/lib/x", False),
        Mount(tmp_path / "pod" / "volumes" / "s", "/etc/s", True),
        Mount(tmp_path / "pod" / "volumes" / "kube-api-access-devcluster", SA_MOUNT, True),
    ]
    assert plan.files[tmp_path / "pod" / "volumes" / "s"] == {"k": (b"secret", 0o400)}
    sa = plan.files[tmp_path / "pod" / "volumes" / "kube-api-access-devcluster"]
    assert {k: v[0] for k, v in sa.items()} == {"token": b"T", "ca.crt": b"CA", "namespace": b"ns"}
    with pytest.raises(ContainerConfigError, match="no such volume"):
        plan.mounts(
            {"name": "c", "volumeMounts": [{"name": "zz", "mountPath": "/z"}]},
            service_account=False,
        )


def test_bwrap_argv_expands_only_the_way_to_mount_targets(tmp_path: Path) -> None:
    spec = SandboxSpec(
        [Mount(tmp_path, "/var/lib/app", False), Mount(tmp_path, SA_MOUNT, True)],
        read_only_root=True,
        uid=65532,
        gid=65532,
        env={"K": "V"},
        cwd="/",
    )
    argv = bwrap_argv("bwrap", spec, ["/bin/app"])
    pairs = list(zip(argv, argv[1:], strict=False))
    assert ("--dir", "/var") in pairs and ("--dir", "/var/lib") in pairs
    assert ("--ro-bind", "/usr") in pairs  # not on the way: one bind
    assert ("--bind", str(tmp_path)) in pairs and ("--ro-bind", str(tmp_path)) in pairs
    assert "/run/secrets/kubernetes.io/serviceaccount" in argv  # /var/run resolved to /run
    assert ("--tmpfs", "/tmp") in pairs
    assert argv.index("--remount-ro") > argv.index("--bind")
    assert ("--uid", "65532") in pairs and ("--setenv", "K") in pairs
    assert argv[-2:] == ["--", "/bin/app"] or argv[-1] == "/bin/app"
    assert "/proc" not in [b for a, b in pairs if a == "--ro-bind"]


def test_probe_state_machine() -> None:
    readiness = ProbeState("readiness", {"periodSeconds": 2, "initialDelaySeconds": 1}, 100.0)
    assert not readiness.due(100.5) and readiness.due(101.0) and not readiness.result
    assert readiness.record(True, "", 101.0) and readiness.result
    assert readiness.next_due == 103.0
    assert not readiness.record(False, "x", 103.0) and not readiness.record(False, "x", 105.0)
    assert readiness.record(False, "x", 107.0) and not readiness.result  # third failure
    liveness = ProbeState("liveness", {"failureThreshold": 2}, 0.0)
    assert liveness.result and not liveness.failed
    liveness.record(False, "x", 0.0)
    assert not liveness.failed
    liveness.record(False, "x", 10.0)
    assert liveness.failed and not liveness.result
    startup = ProbeState("startup", {"failureThreshold": 1}, 0.0)
    assert not startup.result
    startup.record(False, "x", 0.0)
    assert startup.failed


def test_listening_addresses_finds_a_listener_on_a_loopback_address() -> None:
    """Pod IPs skip what something on the machine already listens on (another devcluster's
    Pods): the listeners are read from /proc/net/tcp."""
    import socket

    from devcluster.localpods.runtime import listening_addresses

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.3.4.5", 0))
        assert "127.3.4.5" not in listening_addresses()  # bound, not listening
        s.listen()
        assert "127.3.4.5" in listening_addresses()
    assert "127.3.4.5" not in listening_addresses()
