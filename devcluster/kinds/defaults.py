"""Defaults of the built-in kinds: what the real API server's defaulting functions
(``pkg/apis/<group>/<version>/defaults.go`` and the ``+default`` tags) and the few per-kind
create strategies that clients can see (a Job's generated selector, a new object's zero status)
fill in.

:func:`admit` runs on every create and update of a built-in kind, after its schema checks, and
changes the object in place. Covered: Pod and every pod template (Deployment, ReplicaSet,
StatefulSet, DaemonSet, ReplicationController, Job, CronJob): pod spec, containers, ports,
probes, volumes, env field references, resource quantities; Deployment, ReplicaSet,
StatefulSet, DaemonSet, ReplicationController, Job, CronJob, HorizontalPodAutoscaler,
NetworkPolicy, IngressClass, RoleBinding, ClusterRoleBinding, the admission webhook
configurations and ValidatingAdmissionPolicy(Binding), Endpoints, EndpointSlice, Node (allocatable),
Service (traffic policies and IP families; type, cluster IP and ports are the handlers' own).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from devcluster.kinds.resource_type import ResourceType

__all__ = ["admit", "canonical_quantity", "image_pull_policy"]

JSON = dict[str, Any]

_RBAC = "rbac.authorization.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"


def admit(rt: ResourceType, obj: JSON) -> None:
    """Default (in place) the fields a real server defaults for the built-in kind ``rt``."""
    fn = _BY_KIND.get((rt.group, rt.kind))
    if fn is not None:
        fn(obj)
    if rt.status and "status" not in obj and (rt.group, rt.kind) not in _OWN_STATUS:
        skeleton = _zero_status(rt, obj)
        if skeleton is not None:
            obj["status"] = skeleton


# --------------------------------------------------------------------------------------------
# helpers


def _dict(parent: JSON, key: str) -> JSON | None:
    v = parent.get(key)
    return v if isinstance(v, dict) else None


def _dicts(parent: JSON | None, key: str) -> list[JSON]:
    if parent is None:
        return []
    v = parent.get(key)
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _set(parent: JSON, key: str, value: Any) -> None:
    """Set ``key`` when it is missing (or null): the Go defaulters' ``if x == nil``."""
    if parent.get(key) is None:
        parent[key] = copy.deepcopy(value)


def _set_empty(parent: JSON, key: str, value: Any) -> None:
    """Set ``key`` when it is missing or empty: the Go defaulters' ``if x == ""``."""
    if parent.get(key) in (None, "", [], {}):
        parent[key] = copy.deepcopy(value)


# --------------------------------------------------------------------------------------------
# quantities


_SUFFIXES = [(Decimal(10) ** 18, "E"), (Decimal(10) ** 15, "P"), (Decimal(10) ** 12, "T")]
_SUFFIXES += [(Decimal(10) ** 9, "G"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k")]


def canonical_quantity(value: Any) -> Any:
    """A JSON number given for a ``resource.Quantity`` as the server stores it: a string in
    canonical decimal form (``1`` -> ``"1"``, ``0.5`` -> ``"500m"``, ``2000`` -> ``"2k"``).
    Strings are left as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    d = Decimal(str(value))
    if d == d.to_integral_value():
        n = int(d)
        for factor, suffix in _SUFFIXES:
            if n != 0 and n % int(factor) == 0:
                return f"{n // int(factor)}{suffix}"
        return str(n)
    for factor, suffix in ((Decimal(1000), "m"), (Decimal(10**6), "u"), (Decimal(10**9), "n")):
        scaled = d * factor
        if scaled == scaled.to_integral_value():
            return f"{int(scaled)}{suffix}"
    return f"{int((d * Decimal(10**9)).to_integral_value(rounding='ROUND_CEILING'))}n"


def _quantities(resources: JSON | None, *keys: str) -> None:
    if resources is None:
        return
    for key in keys:
        m = _dict(resources, key)
        if m is not None:
            for name in list(m):
                m[name] = canonical_quantity(m[name])


# --------------------------------------------------------------------------------------------
# pods


def image_pull_policy(image: str) -> str:
    """``Always`` for a ``:latest`` or untagged image (without digest), else ``IfNotPresent``."""
    if not image:
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _probe(probe: JSON | None) -> None:
    if probe is None:
        return
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if not probe.get(key):
            probe[key] = value
    _handler(probe)


def _handler(handler: JSON | None) -> None:
    """HTTPGetAction defaults in a probe or lifecycle handler."""
    if handler is None:
        return
    get = _dict(handler, "httpGet")
    if get is not None:
        _set_empty(get, "path", "/")
        _set_empty(get, "scheme", "HTTP")


def _field_ref(source: JSON | None) -> None:
    if source is None:
        return
    ref = _dict(source, "fieldRef")
    if ref is not None:
        _set_empty(ref, "apiVersion", "v1")


def _container(c: JSON) -> None:
    _set_empty(c, "imagePullPolicy", image_pull_policy(str(c.get("image") or "")))
    _set_empty(c, "terminationMessagePath", "/dev/termination-log")
    _set_empty(c, "terminationMessagePolicy", "File")
    _set(c, "resources", {})
    _quantities(_dict(c, "resources"), "limits", "requests")
    for port in _dicts(c, "ports"):
        _set_empty(port, "protocol", "TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(_dict(c, key))
    lifecycle = _dict(c, "lifecycle")
    if lifecycle is not None:
        for key in ("postStart", "preStop"):
            _handler(_dict(lifecycle, key))
    for env in _dicts(c, "env"):
        _field_ref(_dict(env, "valueFrom"))


_VOLUME_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")


def _volume(v: JSON) -> None:
    if not any(k != "name" and v.get(k) is not None for k in v):
        v["emptyDir"] = {}
    for key in _VOLUME_SOURCES_WITH_MODE:
        src = _dict(v, key)
        if src is not None:
            _set(src, "defaultMode", 420)
    empty_dir = _dict(v, "emptyDir")
    if empty_dir is not None and "sizeLimit" in empty_dir:
        empty_dir["sizeLimit"] = canonical_quantity(empty_dir["sizeLimit"])
    host_path = _dict(v, "hostPath")
    if host_path is not None:
        _set(host_path, "type", "")
    for item in _dicts(_dict(v, "downwardAPI"), "items"):
        _field_ref(item)
    for source in _dicts(_dict(v, "projected"), "sources"):
        token = _dict(source, "serviceAccountToken")
        if token is not None:
            _set(token, "expirationSeconds", 3600)
        for item in _dicts(_dict(source, "downwardAPI"), "items"):
            _field_ref(item)
    ephemeral = _dict(v, "ephemeral")
    template = _dict(ephemeral, "volumeClaimTemplate") if ephemeral is not None else None
    if template is not None:
        _pvc_spec(_dict(template, "spec"))


def _pvc_spec(spec: JSON | None) -> None:
    if spec is None:
        return
    _set(spec, "volumeMode", "Filesystem")
    _quantities(_dict(spec, "resources"), "limits", "requests")


def _pod_spec(spec: JSON | None) -> None:
    """``SetDefaults_PodSpec`` and what it reaches: every pod spec, in Pods and templates."""
    if spec is None:
        return
    _set_empty(spec, "dnsPolicy", "ClusterFirst")
    _set_empty(spec, "restartPolicy", "Always")
    _set(spec, "securityContext", {})
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set_empty(spec, "schedulerName", "default-scheduler")
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in _dicts(spec, key):
            _container(c)
    for v in _dicts(spec, "volumes"):
        _volume(v)
    if "overhead" in spec:
        _quantities(spec, "overhead")
    _quantities(_dict(spec, "resources"), "limits", "requests")


def _template(parent: JSON | None) -> None:
    """The pod spec inside ``parent.template``."""
    if parent is None:
        return
    template = _dict(parent, "template")
    if template is not None:
        _pod_spec(_dict(template, "spec"))


def _pod(pod: JSON) -> None:
    spec = _dict(pod, "spec")
    _pod_spec(spec)
    if spec is None:
        return
    for key in ("containers", "initContainers"):
        for c in _dicts(spec, key):
            resources = _dict(c, "resources")
            limits = _dict(resources, "limits") if resources is not None else None
            if resources is not None and limits:
                requests = resources.setdefault("requests", {})
                for name, value in limits.items():
                    requests.setdefault(name, value)
    _set(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for c in _dicts(spec, key):
                for port in _dicts(c, "ports"):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    if not _dict(pod, "status"):
        pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: JSON) -> str:
    containers = _dicts(spec, "containers") + _dicts(spec, "initContainers")
    any_set = False
    guaranteed = True
    for c in containers:
        resources = _dict(c, "resources") or {}
        requests = _dict(resources, "requests") or {}
        limits = _dict(resources, "limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# --------------------------------------------------------------------------------------------
# workloads


def _deployment(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set(spec, "replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        _set_empty(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            _set(strategy, "rollingUpdate", {})
            rolling = strategy["rollingUpdate"]
            if isinstance(rolling, dict):
                _set(rolling, "maxUnavailable", "25%")
                _set(rolling, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _template(spec)


def _replica_set(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set(spec, "replicas", 1)
    _template(spec)


def _stateful_set(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set_empty(spec, "podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            _set(strategy, "rollingUpdate", {})
        rolling = _dict(strategy, "rollingUpdate")
        if strategy["type"] == "RollingUpdate" and rolling is not None:
            _set(rolling, "partition", 0)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    if isinstance(retention, dict):
        _set_empty(retention, "whenDeleted", "Retain")
        _set_empty(retention, "whenScaled", "Retain")
    _set(spec, "replicas", 1)
    _set(spec, "revisionHistoryLimit", 10)
    _template(spec)
    for claim in _dicts(spec, "volumeClaimTemplates"):
        _pvc_spec(_dict(claim, "spec"))
        _set(claim, "status", {})
        _set_empty(claim["status"], "phase", "Pending")


def _daemon_set(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict):
        _set_empty(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            _set(strategy, "rollingUpdate", {})
            rolling = strategy["rollingUpdate"]
            if isinstance(rolling, dict):
                _set(rolling, "maxUnavailable", 1)
                _set(rolling, "maxSurge", 0)
    _set(spec, "revisionHistoryLimit", 10)
    _template(spec)


def _replication_controller(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set(spec, "replicas", 1)
    template = _dict(spec, "template")
    labels = (_dict(template, "metadata") or {}).get("labels") if template is not None else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = obj.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    _template(spec)


def _job_spec(spec: JSON) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _set(spec, "parallelism", 1)
    _set(spec, "backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(
        spec,
        "podReplacementPolicy",
        "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed",
    )


def _job(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _job_spec(spec)
    meta = obj.setdefault("metadata", {})
    template = _dict(spec, "template")
    uid = meta.get("uid")
    if template is not None and uid and not spec.get("manualSelector") and not spec.get("selector"):
        # the Job strategy's generated selector (PrepareForCreate)
        tmeta = template.setdefault("metadata", {})
        labels = tmeta.setdefault("labels", {})
        name = meta.get("name", "")
        for prefix in ("batch.kubernetes.io/", ""):
            labels[f"{prefix}controller-uid"] = uid
            labels[f"{prefix}job-name"] = name
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template_labels = ((template or {}).get("metadata") or {}).get("labels")
    if isinstance(template_labels, dict) and template_labels and not meta.get("labels"):
        meta["labels"] = dict(template_labels)
    _template(spec)


def _cron_job(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set_empty(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    job_template = _dict(spec, "jobTemplate")
    if job_template is not None:
        _template(_dict(job_template, "spec"))


_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _hpa(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    for metric in _dicts(spec, "metrics"):
        for source in metric.values():
            if isinstance(source, dict):
                target = _dict(source, "target")
                if target is not None:
                    for key in ("value", "averageValue"):
                        if key in target:
                            target[key] = canonical_quantity(target[key])
    behavior = _dict(spec, "behavior")
    if behavior is not None:
        for key, rules in (("scaleUp", _SCALE_UP), ("scaleDown", _SCALE_DOWN)):
            given = _dict(behavior, key) or {}
            merged = copy.deepcopy(rules)
            merged.update({k: v for k, v in given.items() if v is not None})
            behavior[key] = merged


# --------------------------------------------------------------------------------------------
# networking, RBAC, admission, endpoints, nodes, services


def _network_policy(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    for key in ("ingress", "egress"):
        for rule in _dicts(spec, key):
            for port in _dicts(rule, "ports"):
                _set(port, "protocol", "TCP")


def _ingress_class(obj: JSON) -> None:
    params = _dict(_dict(obj, "spec") or {}, "parameters")
    if params is not None:
        _set(params, "scope", "Cluster")


def _binding(obj: JSON) -> None:
    ref = _dict(obj, "roleRef")
    if ref is not None:
        _set_empty(ref, "apiGroup", _RBAC)
    for subject in _dicts(obj, "subjects"):
        if not subject.get("apiGroup"):
            if subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""
            elif subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = _RBAC


def _match_resources(match: JSON | None) -> None:
    if match is None:
        return
    _set(match, "matchPolicy", "Equivalent")
    _set(match, "namespaceSelector", {})
    _set(match, "objectSelector", {})
    for key in ("resourceRules", "excludeResourceRules"):
        for rule in _dicts(match, key):
            _set(rule, "scope", "*")


def _webhooks(mutating: bool) -> Callable[[JSON], None]:
    def default(obj: JSON) -> None:
        for hook in _dicts(obj, "webhooks"):
            _set(hook, "failurePolicy", "Fail")
            _set(hook, "matchPolicy", "Equivalent")
            _set(hook, "namespaceSelector", {})
            _set(hook, "objectSelector", {})
            _set(hook, "timeoutSeconds", 10)
            if mutating:
                _set(hook, "reinvocationPolicy", "Never")
            for rule in _dicts(hook, "rules"):
                _set(rule, "scope", "*")
            service = _dict(_dict(hook, "clientConfig") or {}, "service")
            if service is not None:
                _set(service, "port", 443)

    return default


def _admission_policy(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set(spec, "failurePolicy", "Fail")
    _match_resources(_dict(spec, "matchConstraints"))


def _admission_policy_binding(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _match_resources(_dict(spec, "matchResources"))
    param_ref = _dict(spec, "paramRef")
    if param_ref is not None:
        _set(param_ref, "parameterNotFoundAction", "Deny")


def _endpoints(obj: JSON) -> None:
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _set_empty(port, "protocol", "TCP")


def _endpoint_slice(obj: JSON) -> None:
    for port in _dicts(obj, "ports"):
        _set(port, "name", "")
        _set(port, "protocol", "TCP")


def _node(obj: JSON) -> None:
    status = _dict(obj, "status")
    if status is None:
        return
    _quantities(status, "capacity", "allocatable")
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def _service(obj: JSON) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    kind = spec.get("type") or "ClusterIP"
    if kind in ("NodePort", "LoadBalancer"):
        _set_empty(spec, "externalTrafficPolicy", "Cluster")
    if kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        _set(spec, "internalTrafficPolicy", "Cluster")
        if spec.get("clusterIP") != "None" or spec.get("selector"):
            _set(spec, "ipFamilies", ["IPv4"])
            _set(spec, "ipFamilyPolicy", "SingleStack")
    if kind == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)


_BY_KIND: dict[tuple[str, str], Callable[[JSON], None]] = {
    ("", "Pod"): _pod,
    ("", "ReplicationController"): _replication_controller,
    ("", "Endpoints"): _endpoints,
    ("", "Node"): _node,
    ("", "Service"): _service,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io", "IngressClass"): _ingress_class,
    (_RBAC, "RoleBinding"): _binding,
    (_RBAC, "ClusterRoleBinding"): _binding,
    (_ADMISSION, "ValidatingWebhookConfiguration"): _webhooks(mutating=False),
    (_ADMISSION, "MutatingWebhookConfiguration"): _webhooks(mutating=True),
    (_ADMISSION, "ValidatingAdmissionPolicy"): _admission_policy,
    (_ADMISSION, "ValidatingAdmissionPolicyBinding"): _admission_policy_binding,
    ("discovery.k8s.io", "EndpointSlice"): _endpoint_slice,
}


# --------------------------------------------------------------------------------------------
# a new object's status

# Kinds whose new status is someone else's business: the handlers' (Namespace, CRD), the pod
# defaults' (Pod) or the kubelet's (Node, whose status has many required parts).
_OWN_STATUS = {
    ("", "Namespace"),
    ("", "Pod"),
    ("", "Node"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
}


def _zero_status(rt: ResourceType, obj: JSON) -> JSON | None:
    """The status a real server serves for a new object: Go zero values of the status fields
    that are always serialized (the required integers and booleans of the kind's status type,
    and the load balancer of a Service or Ingress)."""
    version = str(obj.get("apiVersion", "")).rpartition("/")[2] or rt.storage_version
    schema = rt.schema(version)
    if schema is None:
        return None
    status_schema = (schema.schema.get("properties") or {}).get("status")
    if not isinstance(status_schema, dict):
        return None
    props = status_schema.get("properties") or {}
    out: JSON = {}
    for name in status_schema.get("required") or ():
        t = (props.get(name) or {}).get("type")
        if t == "integer":
            out[name] = 0
        elif t == "boolean":
            out[name] = False
    if "loadBalancer" in props:
        out["loadBalancer"] = {}
    return out
