"""Protobuf request bodies: what kubectl's typed clientset sends is decoded and stored as sent.

The imperative ``kubectl create`` commands run against the devcluster; the review and token
bodies (whose handlers live elsewhere) are bodies captured from kubectl 1.37 with ``-v=9``-style
request capture and decoded directly. Bodies are also built by hand here (a few lines of wire
format) for the cases kubectl does not produce on demand: unknown fields, unknown kinds,
protobuf DeleteOptions.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dc_support import kubectl, needs_kubectl
from kubernetes import client

from devcluster import DevCluster
from devcluster.protobuf import ProtobufError, decode_object, go_duration

PROTOBUF = "application/vnd.kubernetes.protobuf"


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return b"k8s\x00" + field(1, type_meta) + field(2, raw)


def send(cluster: DevCluster, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        cluster.url + path,
        data=body,
        method=method,
        headers={"Content-Type": PROTOBUF, "Authorization": f"Bearer {cluster.admin_token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---------------------------------------------------------------- bodies captured from kubectl

# kubectl auth can-i create deployments.apps --subresource=scale -n kube-system
SSAR_RESOURCE = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374"
    "41636365737352657669657712530a100a0012001a0022002a0032003800420012350a330a0b6b7562652d73"
    "797374656d12066372656174651a046170707322002a0b6465706c6f796d656e747332057363616c653a001a"
    "08080012001a0020001a002200"
)
# kubectl auth can-i get /healthz
SSAR_NON_RESOURCE = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374"
    "416363657373526576696577122f0a100a0012001a0022002a003200380042001211120f0a082f6865616c74"
    "687a12036765741a08080012001a0020001a002200"
)
# kubectl auth can-i --list -n kube-public
SSRR = bytes.fromhex(
    "6b3873000a310a17617574686f72697a6174696f6e2e6b38732e696f2f7631121653656c665375626a656374"
    "52756c657352657669657712270a100a0012001a0022002a00320038004200120d0a0b6b7562652d7075626c"
    "69631a04180022001a002200"
)
# kubectl create token sa1 --audience=a --audience=b --duration=10m
#   --bound-object-kind=Secret --bound-object-name=s1
TOKEN_REQUEST = bytes.fromhex(
    "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e5265717565"
    "737412370a100a0012001a0022002a00320038004200121d0a01610a01621a120a0653656372657412027631"
    "1a027331220020d8041a040a0012001a002200"
)


def test_kubectl_auth_can_i_review_decodes() -> None:
    obj = decode_object(SSAR_RESOURCE)
    assert obj["apiVersion"] == "authorization.k8s.io/v1"
    assert obj["kind"] == "SelfSubjectAccessReview"
    assert obj["spec"] == {
        "resourceAttributes": {
            "namespace": "kube-system",
            "verb": "create",
            "group": "apps",
            "resource": "deployments",
            "subresource": "scale",
        }
    }
    obj = decode_object(SSAR_NON_RESOURCE)
    assert obj["spec"] == {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}


def test_kubectl_auth_can_i_list_review_decodes() -> None:
    obj = decode_object(SSRR)
    assert (obj["kind"], obj["spec"]) == ("SelfSubjectRulesReview", {"namespace": "kube-public"})


def test_kubectl_create_token_request_decodes() -> None:
    obj = decode_object(TOKEN_REQUEST)
    assert obj["kind"] == "TokenRequest"
    assert obj["spec"] == {
        "audiences": ["a", "b"],
        "expirationSeconds": 600,
        "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s1"},
    }


def test_truncated_body_is_a_protobuf_error() -> None:
    with pytest.raises(ProtobufError):
        decode_object(TOKEN_REQUEST[:-7])


def test_go_duration_strings() -> None:
    second = 1_000_000_000
    assert go_duration(0) == "0s"
    assert go_duration(90 * second) == "1m30s"
    assert go_duration(3600 * second) == "1h0m0s"
    assert go_duration(1500 * 1_000_000) == "1.5s"
    assert go_duration(250 * 1_000_000) == "250ms"


# ---------------------------------------------------------------- kubectl create, end to end

Check = Callable[[client.ApiClient, str], None]


def _deployment(api: client.ApiClient, ns: str) -> None:
    d = client.AppsV1Api(api).read_namespaced_deployment("web", ns)
    assert d.spec.replicas == 0  # an explicit zero survives (a pointer on the wire)
    assert d.spec.selector.match_labels == {"app": "web"}
    assert d.spec.template.metadata.labels == {"app": "web"}
    c1, c2 = d.spec.template.spec.containers
    assert (c1.name, c1.image, c1.ports[0].container_port) == ("nginx", "nginx:1.27", 8080)
    assert (c2.name, c2.image) == ("busybox", "busybox")
    # (the deployment controller writes its status and revision annotation as well)
    managers = {m.manager for m in d.metadata.managed_fields} - {"kube-controller-manager"}
    assert managers == {"kubectl-create"}


def _serviceaccount(api: client.ApiClient, ns: str) -> None:
    sa = client.CoreV1Api(api).read_namespaced_service_account("robot", ns)
    assert sa.metadata.name == "robot"


def _role(api: client.ApiClient, ns: str) -> None:
    role = client.RbacAuthorizationV1Api(api).read_namespaced_role("reader", ns)
    rules = [(r.api_groups, r.resources, r.verbs, r.resource_names) for r in role.rules]
    assert rules == [
        ([""], ["pods"], ["get", "list"], ["x"]),
        (["apps"], ["deployments"], ["get", "list"], ["x"]),
    ]


def _rolebinding(api: client.ApiClient, ns: str) -> None:
    rb = client.RbacAuthorizationV1Api(api).read_namespaced_role_binding("rb", ns)
    assert (rb.role_ref.kind, rb.role_ref.name) == ("Role", "reader")
    assert [(s.kind, s.name, s.namespace) for s in rb.subjects] == [
        ("User", "alice", None),
        ("Group", "devs", None),
        ("ServiceAccount", "robot", ns),
    ]


def _job(api: client.ApiClient, ns: str) -> None:
    job = client.BatchV1Api(api).read_namespaced_job("once", ns)
    (c,) = job.spec.template.spec.containers
    assert (c.image, c.command) == ("busybox", ["echo", "hi"])
    assert job.spec.template.spec.restart_policy == "Never"


def _cronjob(api: client.ApiClient, ns: str) -> None:
    cj = client.BatchV1Api(api).read_namespaced_cron_job("tick", ns)
    assert cj.spec.schedule == "*/5 * * * *"
    (c,) = cj.spec.job_template.spec.template.spec.containers
    assert (c.image, c.command) == ("busybox", ["date"])


def _service(api: client.ApiClient, ns: str) -> None:
    svc = client.CoreV1Api(api).read_namespaced_service("front", ns)
    assert svc.spec.type == "ClusterIP"
    ports = [(p.name, p.port, p.target_port, p.protocol) for p in svc.spec.ports]
    assert ports == [("80-8080", 80, 8080, "TCP"), ("443", 443, 443, "TCP")]
    assert svc.spec.selector == {"app": "front"}


def _ingress(api: client.ApiClient, ns: str) -> None:
    ing = client.NetworkingV1Api(api).read_namespaced_ingress("edge", ns)
    assert ing.spec.ingress_class_name == "nginx"
    (rule,) = ing.spec.rules
    (path,) = rule.http.paths
    assert (rule.host, path.path, path.path_type) == ("foo.com", "/bar", "Prefix")
    assert (path.backend.service.name, path.backend.service.port.number) == ("front", 8080)
    assert [(t.hosts, t.secret_name) for t in ing.spec.tls] == [(["foo.com"], "my-cert")]


def _pdb(api: client.ApiClient, ns: str) -> None:
    pdb = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("budget", ns)
    assert pdb.spec.min_available == "50%"  # IntOrString, string form
    assert pdb.spec.selector.match_labels == {"app": "web"}
    pdb2 = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("budget2", ns)
    assert pdb2.spec.max_unavailable == 1  # IntOrString, int form


CREATES: list[tuple[list[list[str]], Check]] = [
    (
        [
            [
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--image=busybox",
                "--replicas=0",
                "--port=8080",
            ]
        ],
        _deployment,
    ),
    ([["create", "serviceaccount", "robot"]], _serviceaccount),
    (
        [
            [
                "create",
                "role",
                "reader",
                "--verb=get,list",
                "--resource=pods,deployments.apps",
                "--resource-name=x",
            ]
        ],
        _role,
    ),
    (
        [
            [
                "create",
                "rolebinding",
                "rb",
                "--role=reader",
                "--user=alice",
                "--group=devs",
                "--serviceaccount={ns}:robot",
            ]
        ],
        _rolebinding,
    ),
    ([["create", "job", "once", "--image=busybox", "--", "echo", "hi"]], _job),
    (
        [["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"]],
        _cronjob,
    ),
    ([["create", "service", "clusterip", "front", "--tcp=80:8080", "--tcp=443"]], _service),
    (
        [
            [
                "create",
                "ingress",
                "edge",
                "--class=nginx",
                "--rule=foo.com/bar*=front:8080,tls=my-cert",
            ]
        ],
        _ingress,
    ),
    (
        [
            [
                "create",
                "poddisruptionbudget",
                "budget",
                "--selector=app=web",
                "--min-available=50%",
            ],
            ["create", "pdb", "budget2", "--selector=app=web", "--max-unavailable=1"],
        ],
        _pdb,
    ),
]


@needs_kubectl
@pytest.mark.parametrize(("commands", "check"), CREATES, ids=[c[0][0][1] for c in CREATES])
def test_kubectl_create_stores_the_sent_fields(
    kubeconfig_path: Path, api_client: client.ApiClient, namespace: str, commands, check
) -> None:
    for cmd in commands:
        args = [a.format(ns=namespace) for a in cmd]
        out = kubectl(kubeconfig_path, "-n", namespace, *args).stdout
        assert "created" in out
    check(api_client, namespace)


# ---------------------------------------------------------------- hand-built bodies


def _configmap_body(name: str, extra: bytes = b"") -> bytes:
    meta = field(1, name) + field(2, "") + field(3, "")
    entry = field(1, "k") + field(2, "v")
    return envelope("v1", "ConfigMap", field(1, meta) + field(2, entry) + extra)


def test_unknown_fields_are_skipped(devcluster: DevCluster, namespace: str) -> None:
    body = _configmap_body("with-future-field", field(99, "from a newer release"))
    code, obj = send(devcluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert code == 201, obj
    assert obj["data"] == {"k": "v"}
    assert obj["metadata"]["name"] == "with-future-field"
    assert "generateName" not in obj["metadata"]  # the zero values on the wire are not fields


def test_undecodable_protobuf_is_415(devcluster: DevCluster, namespace: str) -> None:
    body = envelope("v1", "PodTemplate", field(1, field(1, "x")))
    code, obj = send(devcluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert code == 415
    assert obj["reason"] == "UnsupportedMediaType"
    code, _ = send(
        devcluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"k8s\x00\x0a\xff"
    )
    assert code == 415


def test_protobuf_delete_options_are_honoured(
    devcluster: DevCluster, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "keep-deps"}})
    opts = envelope("v1", "DeleteOptions", field(4, "Orphan"))
    code, obj = send(
        devcluster, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/keep-deps", opts
    )
    assert code == 200, obj
    # Orphan: the GC's orphan finalizer holds the object; it is answered with deletionTimestamp
    assert obj["kind"] == "ConfigMap"
    assert obj["metadata"]["deletionTimestamp"]
    assert "orphan" in obj["metadata"]["finalizers"]
