"""A container's environment and command line, as the kubelet computes them (pure).

Order and precedence are upstream's (``kubelet_pods.go`` ``makeEnvironmentVariables``): the
image's ENV, overridden by ``envFrom`` (in order; keys that are not valid names are skipped),
overridden by ``env`` (in order; each value may refer to the ones defined before it with
``$(VAR)``), plus the ``KUBERNETES_SERVICE_*`` / ``KUBERNETES_PORT*`` variables of the default
``kubernetes`` Service where the container does not set them. ``command``/``args`` are expanded
with the final environment. ``$$`` is a literal ``$``; an undefined ``$(VAR)`` stays as written.

A missing Secret/ConfigMap or key that is not ``optional`` is a :class:`ContainerConfigError`
(the container waits with reason ``CreateContainerConfigError``) with upstream's message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from devcluster.localpods import ImageCommand

__all__ = [
    "ContainerConfigError",
    "Lookup",
    "PodNetwork",
    "command_line",
    "container_env",
    "expand",
    "field_value",
    "service_env",
]

JSON = dict[str, Any]
Lookup = Callable[[str, str, str], "JSON | None"]
"""(``secrets``|``configmaps``, namespace, name) -> the object or None."""

_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_PATH = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


class ContainerConfigError(Exception):
    """The container cannot be configured (the kubelet's ``CreateContainerConfigError``)."""


class PodNetwork:
    """The addresses a pod's fieldRefs may name, and where the API server is."""

    def __init__(self, pod_ip: str, host_ip: str, api_host: str, api_port: int) -> None:
        self.pod_ip = pod_ip
        self.host_ip = host_ip
        self.api_host = api_host
        self.api_port = api_port


def service_env(api_host: str, api_port: int) -> dict[str, str]:
    """The environment of the ``default/kubernetes`` Service, pointing at the devcluster."""
    tcp = f"tcp://{api_host}:{api_port}"
    return {
        "KUBERNETES_SERVICE_HOST": api_host,
        "KUBERNETES_SERVICE_PORT": str(api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(api_port),
        "KUBERNETES_PORT": tcp,
        f"KUBERNETES_PORT_{api_port}_TCP": tcp,
        f"KUBERNETES_PORT_{api_port}_TCP_PROTO": "tcp",
        f"KUBERNETES_PORT_{api_port}_TCP_PORT": str(api_port),
        f"KUBERNETES_PORT_{api_port}_TCP_ADDR": api_host,
    }


def expand(text: str, env: Mapping[str, str]) -> str:
    """Upstream's ``expansion.Expand``: ``$(VAR)`` -> its value when defined, ``$$`` -> ``$``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env[name] if name in env else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def field_value(pod: JSON, path: str, net: PodNetwork) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": net.pod_ip,
        "status.podIPs": net.pod_ip,
        "status.hostIP": net.host_ip,
        "status.hostIPs": net.host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    m = _LABEL_PATH.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ContainerConfigError(f"unsupported fieldPath: {path}")


def _quantity_bytes(text: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, mult in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * mult
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def _resource(container: JSON, ref: JSON) -> str:
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        return "0" if kind == "requests" else ("1" if name == "cpu" else "0")
    divisor = _quantity_bytes(str(ref.get("divisor") or "1"))
    number = _quantity_bytes(str(value)) / divisor
    return str(int(-(-number // 1)))  # upstream rounds up


def _data(obj: JSON, kind: str) -> dict[str, str]:
    if kind == "Secret":
        return {
            k: base64.b64decode(v).decode("utf-8", "replace")
            for k, v in (obj.get("data") or {}).items()
        } | {str(k): str(v) for k, v in (obj.get("stringData") or {}).items()}
    return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}


def _key_ref(ref: JSON, kind: str, ns: str, lookup: Lookup) -> str | None:
    plural = "secrets" if kind == "Secret" else "configmaps"
    name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
    optional = bool(ref.get("optional"))
    obj = lookup(plural, ns, name)
    if obj is None:
        if optional:
            return None
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
    data = _data(obj, kind)
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in {kind} {ns}/{name}")
    return data[key]


def container_env(
    pod: JSON,
    container: JSON,
    image: ImageCommand,
    net: PodNetwork,
    lookup: Lookup,
) -> dict[str, str]:
    """The environment ``container`` of ``pod`` starts with (see the module docstring)."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            ref = source.get(field)
            if ref is None:
                continue
            plural = "secrets" if kind == "Secret" else "configmaps"
            obj = lookup(plural, ns, str(ref.get("name") or ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
            for k, v in _data(obj, kind).items():
                if _NAME.match(prefix + k):
                    env[prefix + k] = v
    services = service_env(net.api_host, net.api_port)
    for var in container.get("env") or []:
        name = str(var.get("name") or "")
        source = var.get("valueFrom")
        if source is None:
            env[name] = expand(str(var.get("value") or ""), {**services, **env})
            continue
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, str(source["fieldRef"].get("fieldPath") or ""), net)
        elif "resourceFieldRef" in source:
            value = _resource(container, source["resourceFieldRef"])
        elif "secretKeyRef" in source:
            value = _key_ref(source["secretKeyRef"], "Secret", ns, lookup)
        elif "configMapKeyRef" in source:
            value = _key_ref(source["configMapKeyRef"], "ConfigMap", ns, lookup)
        else:
            raise ContainerConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[name] = value
    for k, v in services.items():
        env.setdefault(k, v)
    return {**dict(image.env), **env}


def command_line(container: JSON, image: ImageCommand, env: Mapping[str, str]) -> list[str]:
    """The argv: ``command`` replaces the image's ENTRYPOINT (and drops its CMD), ``args``
    replaces the CMD; both expanded with ``env``."""
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = [expand(str(a), env) for a in command]
        rest = [expand(str(a), env) for a in (args or [])]
    else:
        argv = list(image.entrypoint)
        rest = [expand(str(a), env) for a in args] if args is not None else list(image.cmd)
    return argv + rest
