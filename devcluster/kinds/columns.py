"""kubectl columns of the built-in kinds, as the real API server's table printers
(``pkg/printers/internalversion``) define and fill them.

:func:`columns_for` gives a kind's full column list, ``Name`` included (it is not always first:
Events show it last, in the wide view): each column is a ``TableColumnDefinition`` (name, type,
format, description, priority; priority 1 columns only show with ``-o wide``) plus a ``cell``:
a function of the object that computes what kubectl prints (``1/3``, ``80/TCP``, ``<none>``,
an age). :func:`devcluster.tables.render_table` calls them.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

__all__ = ["Cell", "columns_for", "human_duration", "since"]

JSON = dict[str, Any]
Cell = Callable[[JSON], Any]

_RBAC = "rbac.authorization.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"


# --------------------------------------------------------------------------------------------
# values


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _list(obj: Any, *path: str) -> list[Any]:
    v = _get(obj, *path)
    return v if isinstance(v, list) else []


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _parse_time(ts: Any) -> datetime.datetime | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=datetime.UTC)


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: ``45s``, ``3m20s``, ``15m``, ``5h30m``, ``2d4h``, ``1y20d``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def since(ts: Any) -> str:
    """Age of a timestamp (``translateTimestampSince``): ``<unknown>`` without one."""
    t = _parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.UTC) - t).total_seconds())


def _age(obj: JSON) -> str:
    return since(_get(obj, "metadata", "creationTimestamp"))


def _name(obj: JSON) -> Any:
    return _get(obj, "metadata", "name")


def _format_labels(labels: Any) -> str:
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _format_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``."""
    if not isinstance(selector, dict):
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for req in selector.get("matchExpressions") or []:
        key, op = req.get("key", ""), req.get("operator", "")
        values = sorted(req.get("values") or [])
        if op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
    return ",".join(parts) if parts else "<none>"


def _template_spec(obj: JSON) -> Any:
    if _get(obj, "kind") == "CronJob" or _get(obj, "spec", "jobTemplate") is not None:
        return _get(obj, "spec", "jobTemplate", "spec", "template", "spec")
    return _get(obj, "spec", "template", "spec")


def _containers(obj: JSON) -> str:
    return ",".join(str(c.get("name", "")) for c in _list(_template_spec(obj), "containers"))


def _images(obj: JSON) -> str:
    return ",".join(str(c.get("image", "")) for c in _list(_template_spec(obj), "containers"))


# --------------------------------------------------------------------------------------------
# column definitions


def _col(
    name: str, cell: Cell, type_: str = "string", description: str = "", priority: int = 0
) -> JSON:
    return {
        "name": name,
        "type": type_,
        "format": "name" if name == "Name" else "",
        "description": description,
        "priority": priority,
        "cell": cell,
    }


_NAME = _col("Name", _name, description="Name must be unique within a namespace.")
_AGE = _col("Age", _age, description="CreationTimestamp is when this object was created.")
_CREATED_AT = _col(
    "Created At",
    lambda o: _get(o, "metadata", "creationTimestamp"),
    "date",
    "CreationTimestamp is when this object was created.",
)
_CONTAINERS = _col("Containers", _containers, description="Names of each container.", priority=1)
_IMAGES = _col("Images", _images, description="Images referenced by each container.", priority=1)


def _selector_col(path: tuple[str, ...] = ("spec", "selector")) -> JSON:
    return _col(
        "Selector",
        lambda o: _format_selector(_get(o, *path)),
        description="The label selector of the pods.",
        priority=1,
    )


# ---------------------------------------------------------------- core


def _pod_ready(pod: JSON) -> str:
    statuses = _list(pod, "status", "containerStatuses")
    ready = sum(1 for s in statuses if isinstance(s, dict) and s.get("ready"))
    total = len(_list(pod, "spec", "containers"))
    for init in _list(pod, "spec", "initContainers"):
        if isinstance(init, dict) and init.get("restartPolicy") == "Always":
            total += 1
    for s in _list(pod, "status", "initContainerStatuses"):
        if isinstance(s, dict) and s.get("ready") and s.get("started") is not None:
            ready += 1
    return f"{ready}/{total}"


_NOT_WAITING = (None, "", "PodInitializing")


def _pod_status(pod: JSON) -> str:
    reason = str(_get(pod, "status", "phase") or "")
    if _get(pod, "status", "reason"):
        reason = str(_get(pod, "status", "reason"))
    initializing = False
    inits = _list(pod, "status", "initContainerStatuses")
    total_inits = len(_list(pod, "spec", "initContainers"))
    for i, s in enumerate(inits):
        if not isinstance(s, dict):
            continue
        terminated = _get(s, "state", "terminated")
        waiting = _get(s, "state", "waiting")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if s.get("restartPolicy") == "Always" and s.get("started"):
            continue
        if isinstance(terminated, dict):
            r = terminated.get("reason") or f"ExitCode:{_int(terminated.get('exitCode'))}"
            reason = f"Init:{r}"
        elif isinstance(waiting, dict) and waiting.get("reason") not in (
            None,
            "",
            "PodInitializing",
        ):
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{total_inits}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for s in reversed(_list(pod, "status", "containerStatuses")):
            if not isinstance(s, dict):
                continue
            waiting = _get(s, "state", "waiting")
            terminated = _get(s, "state", "terminated")
            if isinstance(waiting, dict) and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(terminated, dict) and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif isinstance(terminated, dict):
                signal = _int(terminated.get("signal"))
                exit_code = _int(terminated.get("exitCode"))
                reason = f"Signal:{signal}" if signal else f"ExitCode:{exit_code}"
            elif s.get("ready") and isinstance(_get(s, "state", "running"), dict):
                has_running = True
        if reason == "Completed" and has_running:
            ready = any(
                isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
                for c in _list(pod, "status", "conditions")
            )
            reason = "Running" if ready else "NotReady"
    if _get(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if _get(pod, "status", "reason") == "NodeLost" else "Terminating"
    return reason


def _pod_restarts(pod: JSON) -> int:
    return sum(
        _int(s.get("restartCount"))
        for s in _list(pod, "status", "containerStatuses")
        if isinstance(s, dict)
    )


def _pod_ip(pod: JSON) -> str:
    return str(_get(pod, "status", "podIP") or "<none>")


def _pod_gates(pod: JSON) -> str:
    gates = _list(pod, "spec", "readinessGates")
    if not gates:
        return "<none>"
    conditions = {
        c.get("type"): c.get("status")
        for c in _list(pod, "status", "conditions")
        if isinstance(c, dict)
    }
    ready = sum(1 for g in gates if conditions.get(_get(g, "conditionType")) == "True")
    return f"{ready}/{len(gates)}"


_POD = [
    _NAME,
    _col("Ready", _pod_ready, description="The aggregate readiness state of this pod."),
    _col("Status", _pod_status, description="The aggregate status of the containers."),
    _col("Restarts", _pod_restarts, "integer", "The number of times the containers restarted."),
    _AGE,
    _col("IP", _pod_ip, description="IP address allocated to the pod.", priority=1),
    _col(
        "Node",
        lambda o: _get(o, "spec", "nodeName") or "<none>",
        description="The node the pod is scheduled onto.",
        priority=1,
    ),
    _col(
        "Nominated Node",
        lambda o: _get(o, "status", "nominatedNodeName") or "<none>",
        description="The node the scheduler nominated for the pod.",
        priority=1,
    ),
    _col("Readiness Gates", _pod_gates, description="Readiness gates of the pod.", priority=1),
]


def _service_external_ip(svc: JSON) -> str:
    kind = _get(svc, "spec", "type") or "ClusterIP"
    external = [str(ip) for ip in _list(svc, "spec", "externalIPs")]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "ExternalName":
        return str(_get(svc, "spec", "externalName") or "<none>")
    ingress = [
        str(i.get("ip") or i.get("hostname") or "")
        for i in _list(svc, "status", "loadBalancer", "ingress")
        if isinstance(i, dict)
    ]
    found = [*ingress, *external]
    return ",".join(found) if found else "<pending>"


def _service_ports(svc: JSON) -> str:
    out = []
    for p in _list(svc, "spec", "ports"):
        if not isinstance(p, dict):
            continue
        text = str(p.get("port", ""))
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        out.append(f"{text}/{p.get('protocol') or 'TCP'}")
    return ",".join(out) if out else "<none>"


_SERVICE = [
    _NAME,
    _col("Type", lambda o: _get(o, "spec", "type") or "ClusterIP", description="Service type."),
    _col(
        "Cluster-IP",
        lambda o: _get(o, "spec", "clusterIP") or "<none>",
        description="The IP address of the service.",
    ),
    _col("External-IP", _service_external_ip, description="External IPs of the service."),
    _col("Port(s)", _service_ports, description="The ports exposed by the service."),
    _AGE,
    _col(
        "Selector",
        lambda o: _format_labels(_get(o, "spec", "selector")),
        description="The pods the service routes to.",
        priority=1,
    ),
]


def _event_time(ev: JSON, core_key: str, v1_key: str) -> Any:
    return _get(ev, core_key) or _get(ev, v1_key)


def _event_first(ev: JSON) -> str:
    first = _event_time(ev, "firstTimestamp", "deprecatedFirstTimestamp")
    return since(first) if first else since(_get(ev, "eventTime"))


def _event_last(ev: JSON) -> str:
    series_last = _get(ev, "series", "lastObservedTime")
    if series_last:
        return since(series_last)
    last = _event_time(ev, "lastTimestamp", "deprecatedLastTimestamp")
    return since(last) if last else _event_first(ev)


def _event_count(ev: JSON) -> int:
    series = _get(ev, "series")
    if isinstance(series, dict):
        return _int(series.get("count"))
    count = _int(_event_time(ev, "count", "deprecatedCount"))
    return count or 1


def _event_object(ev: JSON) -> str:
    ref = _get(ev, "involvedObject") or _get(ev, "regarding") or {}
    kind = str(_get(ref, "kind") or "").lower()
    name = _get(ref, "name")
    return f"{kind}/{name}" if name else kind


def _event_source(ev: JSON) -> str:
    component = _get(ev, "source", "component") or _get(ev, "deprecatedSource", "component")
    host = _get(ev, "source", "host") or _get(ev, "deprecatedSource", "host")
    component = component or _get(ev, "reportingComponent") or _get(ev, "reportingController")
    host = host or _get(ev, "reportingInstance")
    return f"{component or ''}, {host}" if host else str(component or "")


_EVENT = [
    _col("Last Seen", _event_last, description="The time the event was last recorded."),
    _col("Type", lambda o: _get(o, "type") or "", description="Type of the event."),
    _col("Reason", lambda o: _get(o, "reason") or "", description="Why the event happened."),
    _col("Object", _event_object, description="The object the event is about."),
    _col(
        "Subobject",
        lambda o: _get(o, "involvedObject", "fieldPath") or _get(o, "regarding", "fieldPath") or "",
        description="The part of the object the event is about.",
        priority=1,
    ),
    _col("Source", _event_source, description="The component reporting the event.", priority=1),
    _col(
        "Message",
        lambda o: str(_get(o, "message") or _get(o, "note") or "").strip(),
        description="A human-readable description of the event.",
    ),
    _col("First Seen", _event_first, description="When the event was first seen.", priority=1),
    _col("Count", _event_count, "string", "How often the event happened.", priority=1),
    _col("Name", _name, description="Name of the event.", priority=1),
]


def _node_status(node: JSON) -> str:
    status = "Unknown"
    for c in _list(node, "status", "conditions"):
        if isinstance(c, dict) and c.get("type") == "Ready":
            status = "Ready" if c.get("status") == "True" else "NotReady"
    if _get(node, "spec", "unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(node: JSON) -> str:
    roles: set[str] = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) if roles else "<none>"


def _node_address(kind: str) -> Cell:
    def cell(node: JSON) -> str:
        for a in _list(node, "status", "addresses"):
            if isinstance(a, dict) and a.get("type") == kind:
                return str(a.get("address", ""))
        return "<none>"

    return cell


def _node_info(key: str) -> Cell:
    return lambda o: _get(o, "status", "nodeInfo", key) or "<unknown>"


_NODE = [
    _NAME,
    _col("Status", _node_status, description="The status of the node."),
    _col("Roles", _node_roles, description="The roles of the node."),
    _AGE,
    _col("Version", _node_info("kubeletVersion"), description="Kubelet version."),
    _col("Internal-IP", _node_address("InternalIP"), description="Internal IP.", priority=1),
    _col("External-IP", _node_address("ExternalIP"), description="External IP.", priority=1),
    _col("OS-Image", _node_info("osImage"), description="OS image.", priority=1),
    _col("Kernel-Version", _node_info("kernelVersion"), description="Kernel.", priority=1),
    _col(
        "Container-Runtime",
        _node_info("containerRuntimeVersion"),
        description="Container runtime.",
        priority=1,
    ),
]


def _endpoints_cell(obj: JSON) -> str:
    out: list[str] = []
    for subset in _list(obj, "subsets"):
        ports = [p for p in _list(subset, "ports") if isinstance(p, dict)]
        for a in _list(subset, "addresses"):
            ip = _get(a, "ip")
            if ports:
                out.extend(f"{ip}:{p.get('port')}" for p in ports)
            else:
                out.append(str(ip))
    if not out:
        return "<none>"
    if len(out) > 3:
        return ",".join(out[:3]) + f" + {len(out) - 3} more..."
    return ",".join(out)


def _count(*path: str) -> Cell:
    def cell(obj: JSON) -> int:
        total = 0
        for p in path:
            v = _get(obj, p)
            total += len(v) if isinstance(v, dict | list) else 0
        return total

    return cell


_CORE: dict[str, list[JSON]] = {
    "Pod": _POD,
    "Service": _SERVICE,
    "Event": _EVENT,
    "Node": _NODE,
    "Namespace": [
        _NAME,
        _col("Status", lambda o: _get(o, "status", "phase") or "", description="Phase."),
        _AGE,
    ],
    "ConfigMap": [
        _NAME,
        _col("Data", _count("data", "binaryData"), "integer", "Number of entries."),
        _AGE,
    ],
    "Secret": [
        _NAME,
        _col("Type", lambda o: _get(o, "type") or "", description="The type of the secret."),
        _col("Data", _count("data"), "integer", "Number of entries."),
        _AGE,
    ],
    "ServiceAccount": [
        _NAME,
        _col("Secrets", _count("secrets"), "string", "Number of secrets."),
        _AGE,
    ],
    "Endpoints": [_NAME, _col("Endpoints", _endpoints_cell, description="Endpoints."), _AGE],
    "ReplicationController": [
        _NAME,
        _col("Desired", lambda o: _int(_get(o, "spec", "replicas")), "integer", "Desired."),
        _col("Current", lambda o: _int(_get(o, "status", "replicas")), "integer", "Current."),
        _col("Ready", lambda o: _int(_get(o, "status", "readyReplicas")), "integer", "Ready."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _col(
            "Selector",
            lambda o: _format_labels(_get(o, "spec", "selector")),
            description="The label selector of the pods.",
            priority=1,
        ),
    ],
}


# ---------------------------------------------------------------- apps


def _ready_of_desired(obj: JSON) -> str:
    return f"{_int(_get(obj, 'status', 'readyReplicas'))}/{_int(_get(obj, 'spec', 'replicas'))}"


def _controller_of(obj: JSON) -> str:
    for ref in _list(obj, "metadata", "ownerReferences"):
        if isinstance(ref, dict) and ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", "")).lower()
            return f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"
    return "<none>"


_APPS: dict[str, list[JSON]] = {
    "Deployment": [
        _NAME,
        _col("Ready", _ready_of_desired, description="Number of ready pods of the desired."),
        _col(
            "Up-to-date",
            lambda o: _int(_get(o, "status", "updatedReplicas")),
            "integer",
            "Pods with the latest template.",
        ),
        _col(
            "Available",
            lambda o: _int(_get(o, "status", "availableReplicas")),
            "integer",
            "Available pods.",
        ),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _selector_col(),
    ],
    "ReplicaSet": [
        _NAME,
        _col("Desired", lambda o: _int(_get(o, "spec", "replicas")), "integer", "Desired."),
        _col("Current", lambda o: _int(_get(o, "status", "replicas")), "integer", "Current."),
        _col("Ready", lambda o: _int(_get(o, "status", "readyReplicas")), "integer", "Ready."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _selector_col(),
    ],
    "StatefulSet": [
        _NAME,
        _col("Ready", _ready_of_desired, description="Number of ready pods of the desired."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
    ],
    "DaemonSet": [
        _NAME,
        _col(
            "Desired",
            lambda o: _int(_get(o, "status", "desiredNumberScheduled")),
            "integer",
            "Desired.",
        ),
        _col(
            "Current",
            lambda o: _int(_get(o, "status", "currentNumberScheduled")),
            "integer",
            "Current.",
        ),
        _col("Ready", lambda o: _int(_get(o, "status", "numberReady")), "integer", "Ready."),
        _col(
            "Up-to-date",
            lambda o: _int(_get(o, "status", "updatedNumberScheduled")),
            "integer",
            "Up to date.",
        ),
        _col(
            "Available",
            lambda o: _int(_get(o, "status", "numberAvailable")),
            "integer",
            "Available.",
        ),
        _col(
            "Node Selector",
            lambda o: _format_labels(_get(o, "spec", "template", "spec", "nodeSelector")),
            description="The node selector of the pods.",
        ),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _selector_col(),
    ],
    "ControllerRevision": [
        _NAME,
        _col("Controller", _controller_of, description="The controller of the revision."),
        _col("Revision", lambda o: _int(_get(o, "revision")), "integer", "The revision."),
        _AGE,
    ],
}


# ---------------------------------------------------------------- batch, autoscaling, policy


def _has_condition(obj: JSON, kind: str) -> bool:
    return any(
        isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
        for c in _list(obj, "status", "conditions")
    )


def _job_status(job: JSON) -> str:
    if _has_condition(job, "Complete"):
        return "Complete"
    if _has_condition(job, "Failed"):
        return "Failed"
    if _get(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    for kind in ("SuccessCriteriaMet", "FailureTarget", "Suspended"):
        if _has_condition(job, kind):
            return kind
    return "Running"


def _job_completions(job: JSON) -> str:
    succeeded = _int(_get(job, "status", "succeeded"))
    completions = _get(job, "spec", "completions")
    if isinstance(completions, int):
        return f"{succeeded}/{completions}"
    parallelism = _get(job, "spec", "parallelism")
    if isinstance(parallelism, int) and parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def _job_duration(job: JSON) -> str:
    start = _parse_time(_get(job, "status", "startTime"))
    if start is None:
        return ""
    end = _parse_time(_get(job, "status", "completionTime"))
    end = end or datetime.datetime.now(datetime.UTC)
    return human_duration((end - start).total_seconds())


def _last_schedule(cj: JSON) -> str:
    ts = _get(cj, "status", "lastScheduleTime")
    return since(ts) if ts else "<none>"


def _hpa_reference(hpa: JSON) -> str:
    ref = _get(hpa, "spec", "scaleTargetRef") or {}
    return f"{_get(ref, 'kind')}/{_get(ref, 'name')}"


def _hpa_target(metric: JSON, current: list[Any]) -> str:
    kind = metric.get("type")
    source_key = {
        "Resource": "resource",
        "ContainerResource": "containerResource",
        "Pods": "pods",
        "Object": "object",
        "External": "external",
    }.get(str(kind), "")
    source = metric.get(source_key) or {}
    target = source.get("target") or {}
    name = source.get("name") or _get(source, "metric", "name") or ""
    now: Any = None
    for c in current:
        if isinstance(c, dict) and c.get("type") == kind:
            cur = c.get(source_key) or {}
            cur_name = cur.get("name") or _get(cur, "metric", "name") or ""
            if cur_name == name:
                now = cur.get("current") or {}
    if target.get("type") == "Utilization":
        shown = "<unknown>"
        if isinstance(now, dict) and now.get("averageUtilization") is not None:
            shown = f"{now['averageUtilization']}%"
        return f"{name}: {shown}/{target.get('averageUtilization')}%"
    key = "averageValue" if target.get("type") == "AverageValue" else "value"
    shown = "<unknown>"
    if isinstance(now, dict) and now.get(key) is not None:
        shown = str(now[key])
    return f"{name}: {shown}/{target.get(key)}" if name else f"{shown}/{target.get(key)}"


def _hpa_targets(hpa: JSON) -> str:
    metrics = [m for m in _list(hpa, "spec", "metrics") if isinstance(m, dict)]
    if not metrics:
        return "<none>"
    current = _list(hpa, "status", "currentMetrics")
    shown = [_hpa_target(m, current) for m in metrics[:2]]
    text = ", ".join(shown)
    if len(metrics) > 2:
        text += f" + {len(metrics) - 2} more..."
    return text


def _int_or_na(*path: str) -> Cell:
    def cell(obj: JSON) -> str:
        v = _get(obj, *path)
        return "N/A" if v is None else str(v)

    return cell


_BATCH: dict[str, list[JSON]] = {
    "Job": [
        _NAME,
        _col("Status", _job_status, description="Status of the job."),
        _col("Completions", _job_completions, description="Succeeded of desired completions."),
        _col("Duration", _job_duration, description="How long the job ran."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _selector_col(),
    ],
    "CronJob": [
        _NAME,
        _col("Schedule", lambda o: _get(o, "spec", "schedule") or "", description="Schedule."),
        _col(
            "Timezone",
            lambda o: _get(o, "spec", "timeZone") or "<none>",
            description="Time zone of the schedule.",
        ),
        _col(
            "Suspend",
            lambda o: bool(_get(o, "spec", "suspend")),
            "boolean",
            "Whether the cron job is suspended.",
        ),
        _col(
            "Active",
            lambda o: len(_list(o, "status", "active")),
            "integer",
            "Number of running jobs.",
        ),
        _col("Last Schedule", _last_schedule, description="When a job was last scheduled."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _selector_col(("spec", "jobTemplate", "spec", "selector")),
    ],
}
_AUTOSCALING: dict[str, list[JSON]] = {
    "HorizontalPodAutoscaler": [
        _NAME,
        _col("Reference", _hpa_reference, description="The scaled resource."),
        _col("Targets", _hpa_targets, description="Current and target metric values."),
        _col(
            "MinPods",
            lambda o: _get(o, "spec", "minReplicas") or "<unset>",
            "string",
            "Lower limit of replicas.",
        ),
        _col(
            "MaxPods",
            lambda o: _int(_get(o, "spec", "maxReplicas")),
            "integer",
            "Upper limit of replicas.",
        ),
        _col(
            "Replicas",
            lambda o: _int(_get(o, "status", "currentReplicas")),
            "integer",
            "Current replicas.",
        ),
        _AGE,
    ]
}

_POLICY: dict[str, list[JSON]] = {
    "PodDisruptionBudget": [
        _NAME,
        _col("Min Available", _int_or_na("spec", "minAvailable"), description="Min available."),
        _col(
            "Max Unavailable",
            _int_or_na("spec", "maxUnavailable"),
            description="Max unavailable.",
        ),
        _col(
            "Allowed Disruptions",
            lambda o: _int(_get(o, "status", "disruptionsAllowed")),
            "integer",
            "Pods that may be disrupted now.",
        ),
        _AGE,
    ]
}


# ---------------------------------------------------------------- networking, RBAC, the rest


def _ingress_hosts(ing: JSON) -> str:
    hosts = [str(r.get("host")) for r in _list(ing, "spec", "rules") if _get(r, "host")]
    if not hosts:
        return "*"
    if len(hosts) > 4:
        return ",".join(hosts[:3]) + f" + {len(hosts) - 3} more..."
    return ",".join(hosts)


def _ingress_address(ing: JSON) -> str:
    found = [
        str(i.get("ip") or i.get("hostname") or "")
        for i in _list(ing, "status", "loadBalancer", "ingress")
        if isinstance(i, dict)
    ]
    return ",".join(found)


def _ingress_ports(ing: JSON) -> str:
    return "80, 443" if _list(ing, "spec", "tls") else "80"


def _ingress_class_parameters(ic: JSON) -> str:
    params = _get(ic, "spec", "parameters")
    if not isinstance(params, dict):
        return "<none>"
    kind = str(params.get("kind", ""))
    if params.get("apiGroup"):
        kind += f".{params['apiGroup']}"
    return f"{kind}/{params.get('name', '')}"


def _subjects(kind: str) -> Cell:
    def cell(binding: JSON) -> str:
        out = []
        for s in _list(binding, "subjects"):
            if isinstance(s, dict) and s.get("kind") == kind:
                if kind == "ServiceAccount":
                    out.append(f"{s.get('namespace', '')}:{s.get('name', '')}")
                else:
                    out.append(str(s.get("name", "")))
        return ", ".join(out)

    return cell


_BINDING = [
    _NAME,
    _col(
        "Role",
        lambda o: f"{_get(o, 'roleRef', 'kind')}/{_get(o, 'roleRef', 'name')}",
        description="The role bound.",
    ),
    _AGE,
    _col("Users", _subjects("User"), description="Users bound.", priority=1),
    _col("Groups", _subjects("Group"), description="Groups bound.", priority=1),
    _col(
        "ServiceAccounts",
        _subjects("ServiceAccount"),
        description="Service accounts bound.",
        priority=1,
    ),
]


def _slice_ports(es: JSON) -> str:
    ports = [str(p.get("port")) for p in _list(es, "ports") if isinstance(p, dict)]
    return ",".join(ports) if ports else "<unset>"


def _slice_endpoints(es: JSON) -> str:
    addresses = [str(a) for e in _list(es, "endpoints") for a in _list(e, "addresses")]
    if not addresses:
        return "<unset>"
    if len(addresses) > 3:
        return ",".join(addresses[:3]) + f" + {len(addresses) - 3} more..."
    return ",".join(addresses)


def _param_kind(policy: JSON) -> str:
    pk = _get(policy, "spec", "paramKind")
    if not isinstance(pk, dict):
        return "<unset>"
    return f"{pk.get('apiVersion', '')}/{pk.get('kind', '')}"


def _param_ref(binding: JSON) -> str:
    ref = _get(binding, "spec", "paramRef")
    if not isinstance(ref, dict):
        return "<unset>"
    name = ref.get("name") or "*"
    return f"{ref['namespace']}/{name}" if ref.get("namespace") else str(name)


_BY_KIND: dict[tuple[str, str], list[JSON]] = {
    **{("", k): v for k, v in _CORE.items()},
    **{("apps", k): v for k, v in _APPS.items()},
    **{("batch", k): v for k, v in _BATCH.items()},
    **{("autoscaling", k): v for k, v in _AUTOSCALING.items()},
    **{("policy", k): v for k, v in _POLICY.items()},
    ("events.k8s.io", "Event"): _EVENT,
    ("networking.k8s.io", "Ingress"): [
        _NAME,
        _col(
            "Class",
            lambda o: _get(o, "spec", "ingressClassName") or "<none>",
            description="The ingress class.",
        ),
        _col("Hosts", _ingress_hosts, description="Hosts of the rules."),
        _col("Address", _ingress_address, description="Load-balancer addresses."),
        _col("Ports", _ingress_ports, description="Ports served."),
        _AGE,
    ],
    ("networking.k8s.io", "IngressClass"): [
        _NAME,
        _col(
            "Controller",
            lambda o: _get(o, "spec", "controller") or "",
            description="The controller implementing the class.",
        ),
        _col("Parameters", _ingress_class_parameters, description="Parameters of the class."),
        _AGE,
    ],
    ("networking.k8s.io", "NetworkPolicy"): [
        _NAME,
        _col(
            "Pod-Selector",
            lambda o: _format_selector(_get(o, "spec", "podSelector")),
            description="The pods the policy applies to.",
        ),
        _AGE,
    ],
    (_RBAC, "Role"): [_NAME, _CREATED_AT],
    (_RBAC, "ClusterRole"): [_NAME, _CREATED_AT],
    (_RBAC, "RoleBinding"): _BINDING,
    (_RBAC, "ClusterRoleBinding"): _BINDING,
    ("coordination.k8s.io", "Lease"): [
        _NAME,
        _col(
            "Holder",
            lambda o: _get(o, "spec", "holderIdentity") or "",
            description="The holder of the lease.",
        ),
        _AGE,
    ],
    ("discovery.k8s.io", "EndpointSlice"): [
        _NAME,
        _col("AddressType", lambda o: _get(o, "addressType") or "", description="Address type."),
        _col("Ports", _slice_ports, description="Ports of the slice."),
        _col("Endpoints", _slice_endpoints, description="Addresses of the endpoints."),
        _AGE,
    ],
    (_ADMISSION, "ValidatingWebhookConfiguration"): [
        _NAME,
        _col("Webhooks", _count("webhooks"), "integer", "Number of webhooks."),
        _AGE,
    ],
    (_ADMISSION, "MutatingWebhookConfiguration"): [
        _NAME,
        _col("Webhooks", _count("webhooks"), "integer", "Number of webhooks."),
        _AGE,
    ],
    (_ADMISSION, "ValidatingAdmissionPolicy"): [
        _NAME,
        _col(
            "Validations",
            lambda o: len(_list(o, "spec", "validations")),
            "integer",
            "Number of validations.",
        ),
        _col("ParamKind", _param_kind, description="The kind of the parameters."),
        _AGE,
    ],
    (_ADMISSION, "ValidatingAdmissionPolicyBinding"): [
        _NAME,
        _col(
            "PolicyName",
            lambda o: _get(o, "spec", "policyName") or "",
            description="The policy bound.",
        ),
        _col("ParamRef", _param_ref, description="The parameters of the binding."),
        _AGE,
    ],
    ("apiextensions.k8s.io", "CustomResourceDefinition"): [_NAME, _CREATED_AT],
}


def columns_for(group: str, kind: str) -> list[JSON]:
    """The full column list of a built-in kind (``Name`` included), or ``[]`` for the default
    ``Name``/``Age`` table. The columns are shared: do not change them."""
    return _BY_KIND.get((group, kind), [])
