"""Section "built-in kinds": every stored built-in kind of the catalog round-trips through the
official client's typed APIs (create, read, list, patch, delete) without model validation
errors; built-in kinds are schema-pruned (warning, or 400 with fieldValidation=Strict), type- and
required-checked (422 naming the field) and defaulted as a real server does; kubectl shows the
real table columns."""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import re
import subprocess
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dc_support import KUBECTL, needs_kubectl
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from devcluster import DevCluster
from devcluster.kinds import builtin_types
from devcluster.kinds.resource_type import CREATE_ONLY

JSON = dict[str, Any]


def _kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(
        [KUBECTL, "--request-timeout=10s", *args],
        input=input,
        text=True,
        capture_output=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def _raw(
    cluster: DevCluster, method: str, path: str, body: JSON | None = None
) -> tuple[int, list[str], JSON]:
    """One request with the admin token: (status, Warning headers, decoded body)."""
    url = urllib.parse.urlsplit(cluster.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        headers = {
            "Authorization": f"Bearer {cluster.admin_token}",
            "Content-Type": "application/json",
        }
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        data = json.loads(resp.read() or b"{}")
        # Warning: 299 - "unknown field \"spec.x\""
        warnings = [json.loads(w.split(" - ", 1)[1]) for w in resp.headers.get_all("Warning") or []]
        return resp.status, warnings, data
    finally:
        conn.close()


# ---------------------------------------------------------------- typed objects of every kind


def _meta(name: str) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=name, labels={"suite": "builtin-kinds"})


def _selector() -> client.V1LabelSelector:
    return client.V1LabelSelector(match_labels={"app": "rt"})


def _template(restart: str | None = None) -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": "rt"}),
        spec=client.V1PodSpec(
            restart_policy=restart,
            containers=[
                client.V1Container(
                    name="c",
                    image="nginx:1.27",
                    ports=[client.V1ContainerPort(container_port=80)],
                    resources=client.V1ResourceRequirements(limits={"cpu": "500m"}),
                )
            ],
        ),
    )


def _webhook(cls: Any, name: str) -> Any:
    return cls(
        name=name,
        client_config=client.AdmissionregistrationV1WebhookClientConfig(url="https://hook.test/x"),
        side_effects="None",
        admission_review_versions=["v1"],
        rules=[
            client.V1RuleWithOperations(
                api_groups=[""], api_versions=["v1"], operations=["CREATE"], resources=["pods"]
            )
        ],
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


Factory = Callable[[str, str], Any]

# (group, kind) -> (API class, snake name of the kind in method names, factory(name, ns))
TYPED: dict[tuple[str, str], tuple[type, str, Factory]] = {
    ("", "Namespace"): (
        client.CoreV1Api,
        "namespace",
        lambda n, ns: client.V1Namespace(metadata=_meta(n)),
    ),
    ("", "ConfigMap"): (
        client.CoreV1Api,
        "config_map",
        lambda n, ns: client.V1ConfigMap(metadata=_meta(n), data={"k": "v"}),
    ),
    ("", "Secret"): (
        client.CoreV1Api,
        "secret",
        lambda n, ns: client.V1Secret(
            metadata=_meta(n), data={"a": base64.b64encode(b"x").decode()}, string_data={"b": "y"}
        ),
    ),
    ("", "Service"): (
        client.CoreV1Api,
        "service",
        lambda n, ns: client.V1Service(
            metadata=_meta(n),
            spec=client.V1ServiceSpec(
                selector={"app": "rt"}, ports=[client.V1ServicePort(port=80, target_port="http")]
            ),
        ),
    ),
    ("", "PersistentVolumeClaim"): (
        client.CoreV1Api,
        "persistent_volume_claim",
        lambda n, ns: client.V1PersistentVolumeClaim(
            metadata=_meta(n),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        ),
    ),
    ("", "Event"): (
        client.CoreV1Api,
        "event",
        lambda n, ns: client.CoreV1Event(
            metadata=_meta(n),
            involved_object=client.V1ObjectReference(
                kind="ConfigMap", name="x", namespace=ns, api_version="v1"
            ),
            reason="Tested",
            message="round trip",
            type="Normal",
            first_timestamp=_now(),
            last_timestamp=_now(),
            count=1,
        ),
    ),
    ("", "Pod"): (
        client.CoreV1Api,
        "pod",
        lambda n, ns: client.V1Pod(metadata=_meta(n), spec=_template().spec),
    ),
    ("", "Endpoints"): (
        client.CoreV1Api,
        "endpoints",
        lambda n, ns: client.V1Endpoints(
            metadata=_meta(n),
            subsets=[
                client.V1EndpointSubset(
                    addresses=[client.V1EndpointAddress(ip="10.1.2.3")],
                    ports=[client.CoreV1EndpointPort(port=80)],
                )
            ],
        ),
    ),
    ("", "ServiceAccount"): (
        client.CoreV1Api,
        "service_account",
        lambda n, ns: client.V1ServiceAccount(metadata=_meta(n)),
    ),
    ("", "Node"): (
        client.CoreV1Api,
        "node",
        lambda n, ns: client.V1Node(
            metadata=_meta(n),
            # unschedulable: the simulated scheduler must not place other tests' pods here
            spec=client.V1NodeSpec(unschedulable=True),
        ),
    ),
    ("", "ReplicationController"): (
        client.CoreV1Api,
        "replication_controller",
        lambda n, ns: client.V1ReplicationController(
            metadata=_meta(n),
            spec=client.V1ReplicationControllerSpec(
                replicas=0, selector={"app": "rt"}, template=_template()
            ),
        ),
    ),
    ("apps", "Deployment"): (
        client.AppsV1Api,
        "deployment",
        lambda n, ns: client.V1Deployment(
            metadata=_meta(n),
            spec=client.V1DeploymentSpec(replicas=0, selector=_selector(), template=_template()),
        ),
    ),
    ("apps", "ReplicaSet"): (
        client.AppsV1Api,
        "replica_set",
        lambda n, ns: client.V1ReplicaSet(
            metadata=_meta(n),
            spec=client.V1ReplicaSetSpec(replicas=0, selector=_selector(), template=_template()),
        ),
    ),
    ("apps", "StatefulSet"): (
        client.AppsV1Api,
        "stateful_set",
        lambda n, ns: client.V1StatefulSet(
            metadata=_meta(n),
            spec=client.V1StatefulSetSpec(
                replicas=0, service_name=n, selector=_selector(), template=_template()
            ),
        ),
    ),
    ("apps", "DaemonSet"): (
        client.AppsV1Api,
        "daemon_set",
        lambda n, ns: client.V1DaemonSet(
            metadata=_meta(n),
            spec=client.V1DaemonSetSpec(
                selector=_selector(),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "rt"}),
                    spec=client.V1PodSpec(
                        node_selector={"no-such-node": "true"},  # runs no pods
                        containers=[client.V1Container(name="c", image="busybox")],
                    ),
                ),
            ),
        ),
    ),
    ("apps", "ControllerRevision"): (
        client.AppsV1Api,
        "controller_revision",
        lambda n, ns: client.V1ControllerRevision(metadata=_meta(n), data={"a": 1}, revision=1),
    ),
    ("autoscaling", "HorizontalPodAutoscaler"): (
        client.AutoscalingV2Api,
        "horizontal_pod_autoscaler",
        lambda n, ns: client.V2HorizontalPodAutoscaler(
            metadata=_meta(n),
            spec=client.V2HorizontalPodAutoscalerSpec(
                max_replicas=3,
                scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name="web"
                ),
            ),
        ),
    ),
    ("policy", "PodDisruptionBudget"): (
        client.PolicyV1Api,
        "pod_disruption_budget",
        lambda n, ns: client.V1PodDisruptionBudget(
            metadata=_meta(n),
            spec=client.V1PodDisruptionBudgetSpec(min_available="50%", selector=_selector()),
        ),
    ),
    ("batch", "Job"): (
        client.BatchV1Api,
        "job",
        lambda n, ns: client.V1Job(
            metadata=_meta(n),
            spec=client.V1JobSpec(suspend=True, template=_template(restart="Never")),
        ),
    ),
    ("batch", "CronJob"): (
        client.BatchV1Api,
        "cron_job",
        lambda n, ns: client.V1CronJob(
            metadata=_meta(n),
            spec=client.V1CronJobSpec(
                schedule="*/5 * * * *",
                suspend=True,
                job_template=client.V1JobTemplateSpec(
                    spec=client.V1JobSpec(template=_template(restart="OnFailure"))
                ),
            ),
        ),
    ),
    ("networking.k8s.io", "NetworkPolicy"): (
        client.NetworkingV1Api,
        "network_policy",
        lambda n, ns: client.V1NetworkPolicy(
            metadata=_meta(n),
            spec=client.V1NetworkPolicySpec(
                pod_selector=_selector(),
                ingress=[
                    client.V1NetworkPolicyIngressRule(ports=[client.V1NetworkPolicyPort(port=80)])
                ],
            ),
        ),
    ),
    ("networking.k8s.io", "Ingress"): (
        client.NetworkingV1Api,
        "ingress",
        lambda n, ns: client.V1Ingress(
            metadata=_meta(n),
            spec=client.V1IngressSpec(
                ingress_class_name="nginx",
                rules=[
                    client.V1IngressRule(
                        host="rt.example",
                        http=client.V1HTTPIngressRuleValue(
                            paths=[
                                client.V1HTTPIngressPath(
                                    path="/",
                                    path_type="Prefix",
                                    backend=client.V1IngressBackend(
                                        service=client.V1IngressServiceBackend(
                                            name="web", port=client.V1ServiceBackendPort(number=80)
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ],
            ),
        ),
    ),
    ("networking.k8s.io", "IngressClass"): (
        client.NetworkingV1Api,
        "ingress_class",
        lambda n, ns: client.V1IngressClass(
            metadata=_meta(n), spec=client.V1IngressClassSpec(controller="example.com/ingress")
        ),
    ),
    ("rbac.authorization.k8s.io", "ClusterRole"): (
        client.RbacAuthorizationV1Api,
        "cluster_role",
        lambda n, ns: client.V1ClusterRole(
            metadata=_meta(n),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get"])],
        ),
    ),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (
        client.RbacAuthorizationV1Api,
        "cluster_role_binding",
        lambda n, ns: client.V1ClusterRoleBinding(
            metadata=_meta(n),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"
            ),
            subjects=[client.RbacV1Subject(kind="User", name="alice")],
        ),
    ),
    ("rbac.authorization.k8s.io", "Role"): (
        client.RbacAuthorizationV1Api,
        "role",
        lambda n, ns: client.V1Role(
            metadata=_meta(n),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])],
        ),
    ),
    ("rbac.authorization.k8s.io", "RoleBinding"): (
        client.RbacAuthorizationV1Api,
        "role_binding",
        lambda n, ns: client.V1RoleBinding(
            metadata=_meta(n),
            role_ref=client.V1RoleRef(api_group="", kind="Role", name="reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="robot", namespace=ns)],
        ),
    ),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): (
        client.AdmissionregistrationV1Api,
        "validating_webhook_configuration",
        lambda n, ns: client.V1ValidatingWebhookConfiguration(
            metadata=_meta(n), webhooks=[_webhook(client.V1ValidatingWebhook, "v.hook.test")]
        ),
    ),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): (
        client.AdmissionregistrationV1Api,
        "mutating_webhook_configuration",
        lambda n, ns: client.V1MutatingWebhookConfiguration(
            metadata=_meta(n), webhooks=[_webhook(client.V1MutatingWebhook, "m.hook.test")]
        ),
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): (
        client.AdmissionregistrationV1Api,
        "validating_admission_policy",
        lambda n, ns: client.V1ValidatingAdmissionPolicy(
            metadata=_meta(n),
            spec=client.V1ValidatingAdmissionPolicySpec(
                validations=[client.V1Validation(expression="true")],
                match_constraints=client.V1MatchResources(
                    resource_rules=[
                        client.V1NamedRuleWithOperations(
                            api_groups=["apps"],
                            api_versions=["v1"],
                            operations=["CREATE"],
                            resources=["deployments"],
                        )
                    ]
                ),
            ),
        ),
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): (
        client.AdmissionregistrationV1Api,
        "validating_admission_policy_binding",
        lambda n, ns: client.V1ValidatingAdmissionPolicyBinding(
            metadata=_meta(n),
            spec=client.V1ValidatingAdmissionPolicyBindingSpec(
                policy_name="p", validation_actions=["Deny"]
            ),
        ),
    ),
    ("coordination.k8s.io", "Lease"): (
        client.CoordinationV1Api,
        "lease",
        lambda n, ns: client.V1Lease(
            metadata=_meta(n),
            spec=client.V1LeaseSpec(
                holder_identity="me", lease_duration_seconds=15, renew_time=_now()
            ),
        ),
    ),
    ("events.k8s.io", "Event"): (
        client.EventsV1Api,
        "event",
        lambda n, ns: client.EventsV1Event(
            metadata=_meta(n),
            event_time=_now(),
            reporting_controller="example.com/rt",
            reporting_instance="rt-1",
            action="Test",
            reason="Tested",
            note="round trip",
            type="Normal",
            regarding=client.V1ObjectReference(
                kind="ConfigMap", name="x", namespace=ns, api_version="v1"
            ),
        ),
    ),
    ("discovery.k8s.io", "EndpointSlice"): (
        client.DiscoveryV1Api,
        "endpoint_slice",
        lambda n, ns: client.V1EndpointSlice(
            metadata=_meta(n),
            address_type="IPv4",
            endpoints=[client.V1Endpoint(addresses=["10.1.2.3"])],
            ports=[client.DiscoveryV1EndpointPort(port=80)],
        ),
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        client.ApiextensionsV1Api,
        "custom_resource_definition",
        lambda n, ns: client.V1CustomResourceDefinition(
            metadata=client.V1ObjectMeta(name=f"widgets.{n}.example.com"),
            spec=client.V1CustomResourceDefinitionSpec(
                group=f"{n}.example.com",
                scope="Namespaced",
                names=client.V1CustomResourceDefinitionNames(
                    plural="widgets", singular="widget", kind="Widget"
                ),
                versions=[
                    client.V1CustomResourceDefinitionVersion(
                        name="v1",
                        served=True,
                        storage=True,
                        var_schema=client.V1CustomResourceValidation(
                            open_apiv3_schema=client.V1JSONSchemaProps(
                                type="object", x_kubernetes_preserve_unknown_fields=True
                            )
                        ),
                    )
                ],
            ),
        ),
    ),
}

STORED = [(rt.group, rt.kind) for rt in builtin_types() if rt.verbs != CREATE_ONLY]
NAMESPACED = {(rt.group, rt.kind): rt.namespaced for rt in builtin_types()}


def test_every_stored_builtin_kind_has_a_typed_case() -> None:
    assert sorted(STORED) == sorted(TYPED)


@pytest.mark.parametrize("key", STORED, ids=[f"{g or 'core'}/{k}" for g, k in STORED])
def test_typed_api_round_trips(api_client: client.ApiClient, namespace: str, key: Any) -> None:
    api_cls, snake, factory = TYPED[key]
    api = api_cls(api_client)
    name = f"rt-{uuid.uuid4().hex[:8]}"
    body = factory(name, namespace)
    name = body.metadata.name
    scoped = "namespaced_" if NAMESPACED[key] else ""
    ns_args: tuple[str, ...] = (namespace,) if NAMESPACED[key] else ()

    created = getattr(api, f"create_{scoped}{snake}")(*ns_args, body)
    assert type(created) is type(body)
    assert created.metadata.uid and created.metadata.resource_version

    read = getattr(api, f"read_{scoped}{snake}")(name, *ns_args)
    assert type(read) is type(body)
    assert read.metadata.uid == created.metadata.uid

    listed = getattr(api, f"list_{scoped}{snake}")(*ns_args, field_selector=f"metadata.name={name}")
    assert [item.metadata.name for item in listed.items] == [name]
    assert type(listed.items[0]) is type(body)

    patched = getattr(api, f"patch_{scoped}{snake}")(
        name, *ns_args, {"metadata": {"labels": {"patched": "yes"}}}
    )
    assert type(patched) is type(body)
    assert patched.metadata.labels["patched"] == "yes"

    getattr(api, f"delete_{scoped}{snake}")(name, *ns_args)


# ---------------------------------------------------------------- pruning, types, required


def _deployment_body(name: str, **spec_extra: Any) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "creationTimestamp": None},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
            **spec_extra,
        },
    }


def test_unknown_fields_are_pruned_with_a_warning(devcluster: DevCluster, namespace: str) -> None:
    body = _deployment_body("pruned", bogus=1)
    body["spec"]["template"]["spec"]["containers"][0]["colour"] = "blue"
    status, warnings, obj = _raw(
        devcluster, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body
    )
    assert status == 201, obj
    assert 'unknown field "spec.bogus"' in warnings
    assert 'unknown field "spec.template.spec.containers[0].colour"' in warnings
    assert "bogus" not in obj["spec"]
    assert "colour" not in obj["spec"]["template"]["spec"]["containers"][0]
    status, _, stored = _raw(
        devcluster, "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/pruned"
    )
    assert "bogus" not in stored["spec"]


def test_unknown_fields_with_strict_validation_are_a_400(
    devcluster: DevCluster, namespace: str
) -> None:
    status, _, obj = _raw(
        devcluster,
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments?fieldValidation=Strict",
        _deployment_body("strict", bogus=1),
    )
    assert status == 400
    assert obj["reason"] == "BadRequest"
    assert obj["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.bogus"'
    )


def test_wrong_type_is_a_422_naming_the_field(devcluster: DevCluster, namespace: str) -> None:
    body = _deployment_body("typed")
    body["spec"]["replicas"] = "three"
    status, _, obj = _raw(
        devcluster, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body
    )
    assert status == 422
    assert obj["reason"] == "Invalid"
    assert obj["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "string": spec.replicas in body must be of type integer: '
            '"string"',
            "field": "spec.replicas",
        }
    ]
    assert obj["message"].startswith('Deployment.apps "typed" is invalid: spec.replicas: ')


def test_missing_required_field_is_a_422(devcluster: DevCluster, namespace: str) -> None:
    body = _deployment_body("nameless")
    del body["spec"]["template"]["spec"]["containers"][0]["name"]
    status, _, obj = _raw(
        devcluster, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body
    )
    assert status == 422
    assert obj["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.template.spec.containers[0].name",
        }
    ]


def test_int_or_string_and_quantities_accept_both_forms(
    api_client: client.ApiClient, dynamic_client: DynamicClient, namespace: str
) -> None:
    pods = dynamic_client.resources.get(api_version="v1", kind="Pod")
    pods.create(
        namespace=namespace,
        body={
            "metadata": {"name": "numbers"},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox",
                        "resources": {"limits": {"cpu": 1, "memory": "64Mi"}},
                        "readinessProbe": {"httpGet": {"port": "http"}},
                        "livenessProbe": {"tcpSocket": {"port": 8080}},
                    }
                ]
            },
        },
    )
    # read back through the typed API: quantities are strings again (the model insists)
    pod = client.CoreV1Api(api_client).read_namespaced_pod("numbers", namespace)
    c = pod.spec.containers[0]
    assert c.resources.limits == {"cpu": "1", "memory": "64Mi"}
    assert c.resources.requests == {"cpu": "1", "memory": "64Mi"}  # from the limits
    assert c.readiness_probe.http_get.port == "http"
    assert c.liveness_probe.tcp_socket.port == 8080


# ---------------------------------------------------------------- defaults


def test_deployment_and_pod_template_defaults(api_client: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "defaults"},
            "spec": {
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {
                        "containers": [
                            {"name": "latest", "image": "nginx", "ports": [{"containerPort": 80}]},
                            {"name": "tagged", "image": "registry.test:5000/app:1.2"},
                        ]
                    },
                },
            },
        },
    )
    d = apps.read_namespaced_deployment("defaults", namespace)
    assert d.spec.replicas == 1
    assert d.spec.strategy.type == "RollingUpdate"
    assert (
        d.spec.strategy.rolling_update.max_surge,
        d.spec.strategy.rolling_update.max_unavailable,
    ) == (
        "25%",
        "25%",
    )
    assert d.spec.revision_history_limit == 10
    assert d.spec.progress_deadline_seconds == 600
    pod = d.spec.template.spec
    assert pod.restart_policy == "Always"
    assert pod.dns_policy == "ClusterFirst"
    assert pod.scheduler_name == "default-scheduler"
    assert pod.termination_grace_period_seconds == 30
    assert pod.security_context is not None
    latest, tagged = pod.containers
    assert latest.image_pull_policy == "Always"
    assert tagged.image_pull_policy == "IfNotPresent"
    assert latest.termination_message_path == "/dev/termination-log"
    assert latest.termination_message_policy == "File"
    assert latest.ports[0].protocol == "TCP"


def test_workload_and_policy_defaults(api_client: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api_client)
    job = batch.create_namespaced_job(
        namespace,
        client.V1Job(
            metadata=client.V1ObjectMeta(name="once"),
            spec=client.V1JobSpec(suspend=True, template=_template(restart="Never")),
        ),
    )
    assert (job.spec.backoff_limit, job.spec.completions, job.spec.parallelism) == (6, 1, 1)
    assert job.spec.completion_mode == "NonIndexed"
    assert job.spec.selector.match_labels == {
        "batch.kubernetes.io/controller-uid": job.metadata.uid
    }
    assert job.spec.template.metadata.labels["batch.kubernetes.io/job-name"] == "once"
    cron = batch.create_namespaced_cron_job(
        namespace,
        client.V1CronJob(
            metadata=client.V1ObjectMeta(name="tick"),
            spec=client.V1CronJobSpec(
                schedule="@hourly",
                job_template=client.V1JobTemplateSpec(
                    spec=client.V1JobSpec(template=_template(restart="OnFailure"))
                ),
            ),
        ),
    )
    assert cron.spec.concurrency_policy == "Allow"
    assert cron.spec.suspend is False
    assert (cron.spec.successful_jobs_history_limit, cron.spec.failed_jobs_history_limit) == (3, 1)

    apps = client.AppsV1Api(api_client)
    sts = apps.create_namespaced_stateful_set(
        namespace,
        client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name="db"),
            spec=client.V1StatefulSetSpec(
                replicas=0, service_name="db", selector=_selector(), template=_template()
            ),
        ),
    )
    assert sts.spec.pod_management_policy == "OrderedReady"
    assert sts.spec.update_strategy.type == "RollingUpdate"
    assert sts.spec.update_strategy.rolling_update.partition == 0
    assert sts.spec.revision_history_limit == 10
    assert sts.status.replicas == 0  # the zero status a new object is served with

    hpa = client.AutoscalingV2Api(api_client).create_namespaced_horizontal_pod_autoscaler(
        namespace,
        client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name="scale"),
            spec=client.V2HorizontalPodAutoscalerSpec(
                max_replicas=4,
                scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name="web"
                ),
            ),
        ),
    )
    assert hpa.spec.min_replicas == 1
    assert hpa.spec.metrics[0].resource.name == "cpu"
    assert hpa.spec.metrics[0].resource.target.average_utilization == 80

    net = client.NetworkingV1Api(api_client)
    only_in = net.create_namespaced_network_policy(
        namespace,
        client.V1NetworkPolicy(
            metadata=client.V1ObjectMeta(name="in"),
            spec=client.V1NetworkPolicySpec(pod_selector=client.V1LabelSelector()),
        ),
    )
    assert only_in.spec.policy_types == ["Ingress"]
    both = net.create_namespaced_network_policy(
        namespace,
        client.V1NetworkPolicy(
            metadata=client.V1ObjectMeta(name="both"),
            spec=client.V1NetworkPolicySpec(
                pod_selector=client.V1LabelSelector(),
                egress=[
                    client.V1NetworkPolicyEgressRule(ports=[client.V1NetworkPolicyPort(port=53)])
                ],
            ),
        ),
    )
    assert both.spec.policy_types == ["Ingress", "Egress"]
    assert both.spec.egress[0].ports[0].protocol == "TCP"

    binding = client.RbacAuthorizationV1Api(api_client).create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "rb"},
            "roleRef": {"apiGroup": "", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "User", "name": "alice"}],
        },
    )
    assert binding.role_ref.api_group == "rbac.authorization.k8s.io"
    assert binding.subjects[0].api_group == "rbac.authorization.k8s.io"


# ---------------------------------------------------------------- kubectl columns


def _sections(out: str) -> list[list[str]]:
    """The header of each table kubectl printed, split into column names."""
    blocks = [b for b in re.split(r"\n\s*\n", out.strip()) if b.strip()]
    return [re.split(r"\s{2,}", b.splitlines()[0].strip()) for b in blocks]


@needs_kubectl
def test_kubectl_get_shows_the_real_columns(
    kubeconfig_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    if not core.list_node().items:
        core.create_node(
            client.V1Node(
                metadata=client.V1ObjectMeta(name="columns-node"),
                spec=client.V1NodeSpec(unschedulable=True),
            )
        )
    client.AppsV1Api(api_client).create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(replicas=0, selector=_selector(), template=_template()),
        ),
    )
    core.create_namespaced_pod(
        namespace, client.V1Pod(metadata=client.V1ObjectMeta(name="p1"), spec=_template().spec)
    )
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="s1"),
            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
        ),
    )
    core.create_namespaced_event(
        namespace,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="e1"),
            involved_object=client.V1ObjectReference(kind="Pod", name="p1", namespace=namespace),
            reason="Started",
            message="Started container c",
            type="Normal",
            first_timestamp=_now(),
            last_timestamp=_now(),
        ),
    )
    out = _kubectl(kubeconfig_path, "-n", namespace, "get", "deploy,events,pods,svc,nodes")
    assert _sections(out) == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
    ]
    assert re.search(r"deployment\.apps/web\s+0/0\s+0\s+0\s", out)
    assert re.search(r"Normal\s+Started\s+pod/p1\s+Started container c", out)
    assert re.search(r"service/s1\s+ClusterIP\s+\S+\s+<none>\s+80/TCP\s", out)
    out = _kubectl(kubeconfig_path, "-n", namespace, "get", "events.events.k8s.io")
    assert _sections(out)[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    out = _kubectl(kubeconfig_path, "-n", namespace, "get", "deploy", "-o", "wide")
    assert _sections(out)[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert re.search(r"web\s+0/0\s+0\s+0\s+\S+\s+c\s+nginx:1\.27\s+app=rt", out)
