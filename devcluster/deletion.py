"""What a DELETE does to an object and what it answers, as kube-apiserver decides it.

The rules follow the generic registry store of k8s.io/apiserver (``Store.Delete``,
``rest.BeforeDelete``, ``markAsDeleting``, ``deletionFinalizersForGarbageCollection``) and the
Pod strategy's graceful deletion:

- **Answer.** Kinds whose storage sets ``ReturnDeletedObject`` (pods, services, serviceaccounts,
  PVCs, namespaces, CRDs, and every custom resource) answer with the deleted object; the others
  with a ``Status`` of ``Success`` whose details name the resource. An object that is *not* gone yet
  (finalizers pending, or a graceful deletion running) is answered with the object itself, with
  ``deletionTimestamp`` set, whatever its kind.
- **Garbage-collection finalizers.** ``propagationPolicy`` (or the deprecated
  ``orphanDependents``) adds or removes ``orphan`` / ``foregroundDeletion``; without either the
  object's own finalizers decide.
- **Graceful deletion (pods only).** The grace period is the request's ``gracePeriodSeconds``,
  else the pod's ``spec.terminationGracePeriodSeconds`` (30 when unset); an unscheduled pod
  (no ``spec.nodeName``) or a finished one (phase Succeeded/Failed) gets 0. A positive period
  sets ``deletionTimestamp`` (now + period) and ``deletionGracePeriodSeconds`` and leaves the pod
  for the kubelet, which finishes with ``gracePeriodSeconds: 0``; a second delete may only
  shorten the period. A zero period still writes the deletion mark first (watchers see MODIFIED,
  then DELETED), as the real store does.
- **Status code.** 200. (A real server answers 202 when the deprecated
  ``orphanDependents: false`` was sent and the object was not removed at once; the devcluster
  answers 200 there too.)
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RETURNS_DELETED_OBJECT",
    "DeleteOptions",
    "InvalidOptions",
    "gc_finalizers",
    "mark_deleting",
    "parse_options",
    "pod_grace_period",
    "shorten_graceful",
    "start_graceful",
    "status_answer",
]

JSON = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"

# (group, plural) of the built-in kinds whose storage has ReturnDeletedObject: true
# (pkg/registry/core/{pod,service,serviceaccount,namespace,persistentvolumeclaim}/storage and
# apiextensions' CRD store)
RETURNS_DELETED_OBJECT = frozenset(
    {
        ("", "pods"),
        ("", "services"),
        ("", "serviceaccounts"),
        ("", "namespaces"),
        ("", "persistentvolumeclaims"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    }
)

DEFAULT_POD_GRACE = 30


class InvalidOptions(ValueError):
    """DeleteOptions that a real server rejects: 400 when undecodable, 422 when invalid."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DeleteOptions:
    """The parts of a DeleteOptions body (or the equivalent query parameters) that matter."""

    grace_period: int | None = None
    propagation: str | None = None  # Orphan | Foreground | Background
    orphan_dependents: bool | None = None
    dry_run: bool = False
    preconditions: JSON = field(default_factory=dict)


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise InvalidOptions(f"{name} must be an integer", 400) from e


def parse_options(body: Any, query: dict[str, str]) -> DeleteOptions:
    """DeleteOptions from the decoded body (JSON or protobuf) and the query parameters."""
    opts: JSON = body if isinstance(body, dict) else {}
    grace = _int(opts.get("gracePeriodSeconds"), "gracePeriodSeconds")
    if grace is None:
        grace = _int(query.get("gracePeriodSeconds"), "gracePeriodSeconds")
    if grace is not None and grace < 0:
        grace = 1  # negative values are treated as 1s on the delete path
    propagation = opts.get("propagationPolicy") or query.get("propagationPolicy") or None
    if propagation not in (None, "Orphan", "Foreground", "Background"):
        raise InvalidOptions(
            f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
            f'"{propagation}": supported values: "Foreground", "Background", "Orphan", "nil"'
        )
    orphan = opts.get("orphanDependents")
    if orphan is None and query.get("orphanDependents") in ("true", "false"):
        orphan = query["orphanDependents"] == "true"
    if orphan is not None and propagation is not None:
        raise InvalidOptions(
            'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: '
            f'"{propagation}": orphanDependents and deletionPropagation cannot be both set'
        )
    dry = query.get("dryRun") == "All" or "All" in (opts.get("dryRun") or [])
    pre = opts.get("preconditions")
    return DeleteOptions(
        grace_period=grace,
        propagation=propagation,
        orphan_dependents=bool(orphan) if orphan is not None else None,
        dry_run=dry,
        preconditions=pre if isinstance(pre, dict) else {},
    )


def gc_finalizers(finalizers: list[str], opts: DeleteOptions) -> list[str]:
    """The object's finalizers after a delete with ``opts`` (orphan / foregroundDeletion)."""
    if opts.orphan_dependents is not None:
        orphan, foreground = opts.orphan_dependents, False
    elif opts.propagation is not None:
        orphan, foreground = opts.propagation == "Orphan", opts.propagation == "Foreground"
    else:
        return list(finalizers)
    out = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    for name, wanted in ((ORPHAN, orphan), (FOREGROUND, foreground)):
        if wanted:
            out.append(name)
    # keep the original order for the finalizers that stay
    return [f for f in finalizers if f in out] + [f for f in out if f not in finalizers]


def pod_grace_period(pod: JSON, opts: DeleteOptions) -> int:
    """The grace period a delete gives this pod (the Pod strategy's CheckGracefulDelete)."""
    spec = pod.get("spec") or {}
    if opts.grace_period is not None:
        period = opts.grace_period
    else:
        configured = spec.get("terminationGracePeriodSeconds")
        period = int(configured) if configured is not None else DEFAULT_POD_GRACE
    if not spec.get("nodeName"):
        return 0
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    return period


def _rfc3339(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str) -> datetime.datetime:
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def start_graceful(meta: JSON, period: int, now: datetime.datetime) -> None:
    """Mark a pod for graceful deletion in ``period`` seconds (``rest.BeforeDelete``)."""
    meta["deletionTimestamp"] = _rfc3339(now + datetime.timedelta(seconds=period))
    meta["deletionGracePeriodSeconds"] = period
    if int(meta.get("generation") or 0) > 0:
        meta["generation"] = int(meta["generation"]) + 1


def shorten_graceful(meta: JSON, period: int) -> None:
    """Move a running graceful deletion's deadline earlier (only shortening is allowed)."""
    current = int(meta.get("deletionGracePeriodSeconds") or 0)
    try:
        start = _parse(str(meta["deletionTimestamp"])) - datetime.timedelta(seconds=current)
    except (KeyError, ValueError):
        start = datetime.datetime.now(datetime.UTC)
    meta["deletionTimestamp"] = _rfc3339(start + datetime.timedelta(seconds=period))
    meta["deletionGracePeriodSeconds"] = period


def mark_deleting(meta: JSON, now: datetime.datetime) -> None:
    """Deletion mark of an object held by finalizers (``markAsDeleting``)."""
    existing = meta.get("deletionTimestamp")
    if not existing and int(meta.get("generation") or 0) > 0:
        meta["generation"] = int(meta["generation"]) + 1
    try:
        later = existing is not None and _parse(str(existing)) > now
    except ValueError:
        later = False
    if not existing or later:
        meta["deletionTimestamp"] = _rfc3339(now)
    meta["deletionGracePeriodSeconds"] = 0


def status_answer(group: str, plural: str, name: str, uid: str | None) -> JSON:
    """The ``Status`` a kind without ReturnDeletedObject answers once the object is gone."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": plural, "uid": uid},
    }
