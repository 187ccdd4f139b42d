"""Section "OpenAPI v3": the documents under ``/openapi/v3`` describe every served kind (built-in
and CRD) with resolvable ``$ref``s, so the real ``kubectl explain`` prints documentation, and
they still make kubectl validate on the server; a CRD change yields a new document; client-side
apply of built-ins keeps computing the right patches."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from dc_support import KUBECTL, needs_kubectl
from kubernetes import client

from devcluster import DevCluster

JSON = dict[str, Any]


def _kubectl(
    kubeconfig: Path, cache: Path, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [KUBECTL, "--request-timeout=10s", f"--cache-dir={cache}", *args],
        input=input,
        text=True,
        capture_output=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _get(cluster: DevCluster, path: str) -> JSON:
    url = urllib.parse.urlsplit(cluster.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {cluster.admin_token}"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body
        return json.loads(body)  # type: ignore[no-any-return]
    finally:
        conn.close()


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


# ---------------------------------------------------------------- the documents


def test_every_group_version_document_describes_its_kinds(devcluster: DevCluster) -> None:
    index = _get(devcluster, "/openapi/v3")["paths"]
    assert "api/v1" in index and "apis/apps/v1" in index
    assert "apis/gateway.networking.k8s.io/v1" in index
    for gv_path, entry in index.items():
        assert "?hash=" in entry["serverRelativeURL"]
        doc = _get(devcluster, entry["serverRelativeURL"])
        schemas = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.rsplit("/", 1)[1] in schemas, (gv_path, ref)
        documented = {
            (g["group"], g["version"], g["kind"])
            for s in schemas.values()
            for g in s.get("x-kubernetes-group-version-kind", [])
        }
        group, _, version = gv_path.removeprefix("apis/").removeprefix("api/").rpartition("/")
        resources = _get(devcluster, f"/{gv_path}")["resources"]
        for r in resources:
            if "/" not in r["name"]:
                assert (group, version, r["kind"]) in documented, (gv_path, r["kind"])
        for path in doc["paths"].values():
            patch = path.get("patch")
            if patch is not None:  # kubectl validates on the server only if it may
                assert "fieldValidation" in {p["name"] for p in patch["parameters"]}


def test_builtin_and_crd_schemas_are_named_and_linked_like_a_real_servers(
    devcluster: DevCluster,
) -> None:
    apps = _get(devcluster, "/openapi/v3/apis/apps/v1")["components"]["schemas"]
    deployment = apps["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert deployment["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    spec = apps["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["properties"]["replicas"]["type"] == "integer"
    assert "Number of desired pods" in spec["properties"]["replicas"]["description"]
    assert set(spec["required"]) == {"selector", "template"}
    assert spec["properties"]["template"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"}
    ]
    gw = _get(devcluster, "/openapi/v3/apis/gateway.networking.k8s.io/v1")["components"]
    gateway = gw["schemas"]["io.k8s.networking.gateway.v1.Gateway"]
    assert gateway["x-kubernetes-group-version-kind"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "version": "v1"}
    ]
    assert "listeners" in gateway["properties"]["spec"]["properties"]


# ---------------------------------------------------------------- kubectl explain


@needs_kubectl
def test_kubectl_explain_prints_the_documentation(kubeconfig_path: Path, tmp_path: Path) -> None:
    out = _kubectl(kubeconfig_path, tmp_path, "explain", "deployment.spec.replicas").stdout
    assert "KIND:       Deployment" in out
    assert "FIELD: replicas <integer>" in out
    assert "Number of desired pods." in out
    out = _kubectl(kubeconfig_path, tmp_path, "explain", "pods").stdout
    assert "Pod is a collection of containers that can run on a host." in out
    assert "spec\t<PodSpec>" in out
    out = _kubectl(
        kubeconfig_path, tmp_path, "explain", "deployment.spec.template.spec.containers.ports"
    ).stdout
    assert "containerPort\t<integer> -required-" in out
    out = _kubectl(kubeconfig_path, tmp_path, "explain", "gateway.spec.listeners").stdout
    assert "GROUP:      gateway.networking.k8s.io" in out
    assert "Listeners associated with this Gateway." in out


def _crd(group: str, doc: str) -> JSON:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "description": doc}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


@needs_kubectl
def test_a_crd_change_gives_a_new_document(
    devcluster: DevCluster, kubeconfig_path: Path, api_client: client.ApiClient, tmp_path: Path
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(_crd(group, "How big the gadget is."))
    gv = f"apis/{group}/v1"
    try:
        first_url = _get(devcluster, "/openapi/v3")["paths"][gv]["serverRelativeURL"]
        out = _kubectl(kubeconfig_path, tmp_path, "explain", f"gadgets.{group}.spec.size").stdout
        assert "How big the gadget is." in out
        crd = ext.read_custom_resource_definition(f"gadgets.{group}")
        body = _crd(group, "The gadget's size, in gadget units.")
        body["metadata"]["resourceVersion"] = crd.metadata.resource_version
        ext.replace_custom_resource_definition(f"gadgets.{group}", body)
        second_url = _get(devcluster, "/openapi/v3")["paths"][gv]["serverRelativeURL"]
        assert second_url != first_url
        out = _kubectl(kubeconfig_path, tmp_path, "explain", f"gadgets.{group}.spec.size").stdout
        assert "The gadget's size, in gadget units." in out
    finally:
        ext.delete_custom_resource_definition(f"gadgets.{group}")
    assert gv not in _get(devcluster, "/openapi/v3")["paths"]


# ---------------------------------------------------------------- kubectl apply


def _deployment(containers: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: twice
spec:
  replicas: 0
  selector:
    matchLabels: {{app: twice}}
  template:
    metadata:
      labels: {{app: twice}}
    spec:
      containers:
{containers}
"""


@needs_kubectl
def test_apply_twice_with_a_changed_container_list(
    kubeconfig_path: Path, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    def apply(containers: str) -> list[tuple[str, str, list[str]]]:
        _kubectl(
            kubeconfig_path,
            tmp_path,
            "-n",
            namespace,
            "apply",
            "-f",
            "-",
            input=_deployment(containers),
        )
        d = client.AppsV1Api(api_client).read_namespaced_deployment("twice", namespace)
        return [
            (c.name, c.image, [f"{e.name}={e.value}" for e in c.env or []])
            for c in d.spec.template.spec.containers
        ]

    first = """\
      - name: a
        image: nginx:1.26
        env: [{name: FOO, value: "1"}, {name: BAR, value: "2"}]
      - name: b
        image: busybox"""
    assert apply(first) == [("a", "nginx:1.26", ["FOO=1", "BAR=2"]), ("b", "busybox", [])]
    second = """\
      - name: a
        image: nginx:1.27
        env: [{name: BAR, value: "3"}]
      - name: c
        image: redis"""
    assert apply(second) == [("a", "nginx:1.27", ["BAR=3"]), ("c", "redis", [])]
    third = """\
      - name: c
        image: redis:7"""
    assert apply(third) == [("c", "redis:7", [])]


@needs_kubectl
def test_apply_of_a_builtin_with_an_unknown_field_fails_on_the_server(
    kubeconfig_path: Path, namespace: str, tmp_path: Path
) -> None:
    manifest = _deployment("      - {name: a, image: nginx, colour: blue}")
    proc = _kubectl(
        kubeconfig_path,
        tmp_path,
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=manifest,
        check=False,
    )
    assert proc.returncode != 0
    assert 'strict decoding error: unknown field "spec.template.spec.containers[0].colour"' in (
        proc.stderr
    )
    proc = _kubectl(
        kubeconfig_path,
        tmp_path,
        "-n",
        namespace,
        "apply",
        "--validate=warn",
        "-f",
        "-",
        input=manifest,
    )
    assert 'unknown field "spec.template.spec.containers[0].colour"' in proc.stderr
