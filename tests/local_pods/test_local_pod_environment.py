"""A local pod's environment and in-cluster identity: literal values with $(VAR) expansion,
the downward API (fieldRef), Secret and ConfigMap keys, the kubernetes Service variables, and
the ServiceAccount token the kubernetes client's in-cluster config uses (RBAC decides)."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client  # type: ignore[import-untyped]
from local_pods_kit import container_status, http_json, pod_body, wait_ready
from support.waiting import wait_for

from devcluster.server import DevCluster

pytestmark = pytest.mark.slow


def test_env_from_values_fields_secrets_and_config_maps(
    core: client.CoreV1Api, namespace: str, cluster: DevCluster
) -> None:
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "creds"}, "data": {"url": base64.b64encode(b"pg://x").decode()}},
    )
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"level": "debug"}}
    )
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
        {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "url"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
        {"name": "GREETING", "value": "hi $(POD_NAME) in $(POD_NAMESPACE), $$(POD_NAME) $(NOPE)"},
        {
            "name": "MISSING",
            "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
        },
    ]
    body = pod_body("env", env=env, labels={"app": "env", "tier": "front"})
    body["spec"]["containers"][0]["args"] = ["--name=$(POD_NAME)"]
    core.create_namespaced_pod(namespace, body)
    status = wait_ready(core, namespace, "env")
    ip = status["podIP"]
    got = http_json(ip, "/env")
    assert got["POD_NAME"] == "env"
    assert got["POD_NAMESPACE"] == namespace
    assert got["POD_IP"] == ip and ip.startswith("127.")
    assert got["TIER"] == "front"
    assert got["DB"] == "pg://x"
    assert got["LEVEL"] == "debug"
    assert got["GREETING"] == f"hi env in {namespace}, $(POD_NAME) $(NOPE)"
    assert "MISSING" not in got
    assert got["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert got["KUBERNETES_SERVICE_PORT"] == str(cluster.port)
    assert http_json(ip, "/id")["argv"][1:] == ["--name=env"]


def test_a_missing_secret_is_create_container_config_error(
    core: client.CoreV1Api, namespace: str
) -> None:
    env = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "nothere", "key": "url"}}}]
    core.create_namespaced_pod(namespace, pod_body("nosecret", env=env))

    def waiting() -> object:
        return (container_status(core, namespace, "nosecret").get("state") or {}).get("waiting")

    state = wait_for(lambda: (w := waiting()) and w.get("reason") != "ContainerCreating" and w)
    assert state == {
        "reason": "CreateContainerConfigError",
        "message": 'secret "nothere" not found',
    }
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "nothere"}, "data": {"other": base64.b64encode(b"1").decode()}},
    )
    wait_for(
        lambda: (
            (waiting() or {}).get("message")
            == f"couldn't find key url in Secret {namespace}/nothere"
        )
    )


def test_in_cluster_client_uses_the_pod_service_account_under_rbac(
    core: client.CoreV1Api, api_client: client.ApiClient, namespace: str
) -> None:
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "visible"}, "data": {}})
    core.create_namespaced_pod(
        namespace, pod_body("incluster", spec={"serviceAccountName": "reader"})
    )
    ip = wait_ready(core, namespace, "incluster")["podIP"]
    assert http_json(ip, "/k8s") == {"status": 403}  # authenticated, but no Role yet
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "cm-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "cm-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    answer = wait_for(lambda: (a := http_json(ip, "/k8s")).get("status") == 200 and a)
    assert "visible" in answer["names"]
