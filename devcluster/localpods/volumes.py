"""Where a container's volumes come from on this machine (a plan, pure) and writing the files
of the volumes that have content (Secret, ConfigMap, projected, downwardAPI).

* ``emptyDir`` -> ``<pod dir>/volumes/<name>`` (gone with the pod; ``medium``/``sizeLimit``
  are not enforced).
* ``persistentVolumeClaim`` -> ``<root>/volumes/<namespace>/<claimName>``, shared by every pod
  of the claim and kept after them (a ReadWriteOnce claim is not enforced).
* ``secret`` / ``configMap`` -> files written from the object (all keys or ``items``, with
  ``defaultMode``/``mode``; a missing object that is not ``optional`` is a
  :class:`~devcluster.localpods.environment.ContainerConfigError`).
* ``projected`` (``serviceAccountToken``, ``configMap``, ``secret``, ``downwardAPI``) and
  ``downwardAPI`` -> files; the ConfigMap ``kube-root-ca.crt`` is the cluster CA when the
  cluster has no such object.
* The ServiceAccount token: when the pod has no projected ``serviceAccountToken`` volume and
  ``automountServiceAccountToken`` is not false (pod, else its ServiceAccount), a volume of
  ``token``/``ca.crt``/``namespace`` is mounted read-only at
  ``/var/run/secrets/kubernetes.io/serviceaccount``, as the ServiceAccount admission plugin's
  ``kube-api-access-*`` volume would be (the devcluster's admission does not inject it).

``readOnly`` and ``subPath`` of a volumeMount are honoured; other volume types fail the
container with ``CreateContainerConfigError``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcluster.localpods.environment import (
    ContainerConfigError,
    Lookup,
    PodNetwork,
    field_value,
)

__all__ = ["SA_MOUNT", "Mount", "VolumePlan", "plan_volumes", "write_files"]

JSON = dict[str, Any]
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SA_VOLUME = "kube-api-access-devcluster"

Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


@dataclass
class VolumePlan:
    """``dirs``: volume name -> its directory on this machine; ``files``: the content of the
    directories that have some (rewritten when a token is refreshed)."""

    dirs: dict[str, Path] = field(default_factory=dict)
    files: dict[Path, Files] = field(default_factory=dict)

    def mounts(self, container: JSON, *, service_account: bool) -> list[Mount]:
        out: list[Mount] = []
        for vm in container.get("volumeMounts") or []:
            name = str(vm.get("name") or "")
            if name not in self.dirs:
                raise ContainerConfigError(
                    f'volumeMount {name!r} of container "{container.get("name")}": '
                    "no such volume in the pod's spec.volumes"
                )
            source = self.dirs[name]
            sub = str(vm.get("subPath") or "")
            if sub:
                if sub.startswith("/") or ".." in Path(sub).parts:
                    raise ContainerConfigError(f"subPath {sub!r} must be a relative path")
                source = source / sub
            out.append(Mount(source, str(vm.get("mountPath")), bool(vm.get("readOnly"))))
        if (
            service_account
            and SA_VOLUME in self.dirs
            and not any(m.target.rstrip("/") == SA_MOUNT for m in out)
        ):
            out.append(Mount(self.dirs[SA_VOLUME], SA_MOUNT, True))
        return out


def _mode(item: JSON, default: int) -> int:
    mode = item.get("mode")
    return int(mode) if mode is not None else default


def _keyed(obj: JSON | None, kind: str, ref: JSON, default_mode: int, ns: str) -> Files:
    name = str(ref.get("name") or ref.get("secretName") or "")
    if obj is None:
        if ref.get("optional"):
            return {}
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    items = ref.get("items")
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: Files = {}
    for it in items:
        key = str(it.get("key"))
        if key not in data:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f"couldn't find key {key} in {kind} {ns}/{name}")
        out[str(it.get("path") or key)] = (data[key], _mode(it, default_mode))
    return out


def plan_volumes(
    pod: JSON,
    pod_dir: Path,
    root: Path,
    lookup: Lookup,
    *,
    net: PodNetwork,
    ca_pem: bytes,
    token: Callable[[JSON], str],
    automount: bool,
) -> VolumePlan:
    """The plan of ``pod``'s volumes; ``token(projection)`` gives a ServiceAccount token for a
    ``serviceAccountToken`` projection (``{}`` for the automounted one)."""
    meta = pod.get("metadata") or {}
    ns = str(meta.get("namespace") or "")
    plan = VolumePlan()
    projected_token = False

    def keyed(kind: str, ref: JSON, default_mode: int) -> Files:
        plural = "secrets" if kind == "Secret" else "configmaps"
        name = str(ref.get("name") or ref.get("secretName") or "")
        obj = lookup(plural, ns, name)
        if obj is None and kind == "ConfigMap" and name == "kube-root-ca.crt":
            obj = {"data": {"ca.crt": ca_pem.decode()}}
        return _keyed(obj, kind, ref, default_mode, ns)

    def downward(items: list[JSON], default_mode: int) -> Files:
        out: Files = {}
        for it in items:
            ref = it.get("fieldRef") or {}
            if not ref:
                raise ContainerConfigError("downwardAPI: only fieldRef items are supported")
            value = field_value(pod, str(ref.get("fieldPath")), net)
            out[str(it.get("path"))] = (value.encode(), _mode(it, default_mode))
        return out

    for vol in (pod.get("spec") or {}).get("volumes") or []:
        name = str(vol.get("name"))
        mode = 0o644
        files: Files | None = None
        if "emptyDir" in vol:
            plan.dirs[name] = pod_dir / "volumes" / name
        elif "persistentVolumeClaim" in vol:
            claim = str(vol["persistentVolumeClaim"].get("claimName") or "")
            plan.dirs[name] = root / "volumes" / ns / claim
        elif "secret" in vol:
            src = vol["secret"]
            files = keyed("Secret", src, int(src.get("defaultMode") or mode))
        elif "configMap" in vol:
            src = vol["configMap"]
            files = keyed("ConfigMap", src, int(src.get("defaultMode") or mode))
        elif "downwardAPI" in vol:
            src = vol["downwardAPI"]
            files = downward(src.get("items") or [], int(src.get("defaultMode") or mode))
        elif "projected" in vol:
            src = vol["projected"]
            default = int(src.get("defaultMode") or mode)
            files = {}
            for s in src.get("sources") or []:
                if "serviceAccountToken" in s:
                    projected_token = True
                    proj = s["serviceAccountToken"]
                    files[str(proj.get("path") or "token")] = (token(proj).encode(), default)
                elif "configMap" in s:
                    files |= keyed("ConfigMap", s["configMap"], default)
                elif "secret" in s:
                    files |= keyed("Secret", s["secret"], default)
                elif "downwardAPI" in s:
                    files |= downward(s["downwardAPI"].get("items") or [], default)
        else:
            kinds = sorted(k for k in vol if k != "name")
            raise ContainerConfigError(
                f"volume {name!r}: type {', '.join(kinds)} is not supported by the local kubelet"
            )
        if files is not None:
            plan.dirs[name] = pod_dir / "volumes" / name
            plan.files[plan.dirs[name]] = files
    if automount and not projected_token:
        d = pod_dir / "volumes" / SA_VOLUME
        plan.dirs[SA_VOLUME] = d
        plan.files[d] = {
            "token": (token({}).encode(), 0o644),
            "ca.crt": (ca_pem, 0o644),
            "namespace": (ns.encode(), 0o644),
        }
    return plan


def write_files(plan: VolumePlan) -> None:
    """Create every volume directory and (re)write the content of those that have some; each
    file is replaced atomically (a reader never sees half a token)."""
    for d in plan.dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for d, files in plan.files.items():
        for rel, (content, mode) in files.items():
            path = d / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(content)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
