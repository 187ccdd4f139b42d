"""The Job controller: runs ``parallelism`` pods at a time until ``completions`` succeed.

Pods get ``generateName: <job>-`` and the job labels (``batch.kubernetes.io/controller-uid``,
``batch.kubernetes.io/job-name`` and their legacy short forms); ``Indexed`` jobs give each pod a
completion index (annotation and label, ``<job>-<index>-`` names, hostname ``<job>-<index>``)
and report ``completedIndexes``. The kubelet runs job pods to completion, so a Job completes:
conditions ``SuccessCriteriaMet`` and ``Complete`` (reason CompletionsReached),
``completionTime``. More than ``backoffLimit`` failed pods fail it (``FailureTarget``/``Failed``,
BackoffLimitExceeded). A suspended Job deletes its active pods (condition ``Suspended``).
``ttlSecondsAfterFinished`` deletes a finished Job (as the TTL-after-finished controller does).
Status: startTime, active, ready, succeeded, failed, terminating, uncountedTerminatedPods.

Not simulated: pod failure policies, success policies, ``activeDeadlineSeconds``, the
``batch.kubernetes.io/job-tracking`` finalizer.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterable
from typing import Any

from devcluster.controllers import pods as podutil
from devcluster.controllers.pods import POD
from devcluster.controllers.runtime import Controller, Key, Mapper, StoreKey, key_of
from devcluster.handlers import now_rfc3339
from devcluster.storage import Event

__all__ = ["JobController"]

JSON = dict[str, Any]
JOB = ("batch", "jobs")

INDEX = "batch.kubernetes.io/job-completion-index"


def _index(pod: JSON) -> int | None:
    v = (pod["metadata"].get("annotations") or {}).get(INDEX)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _ranges(indexes: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5``."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(set(indexes)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def _finished(job: JSON) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def _condition(type_: str, reason: str, message: str) -> JSON:
    now = now_rfc3339()
    return {
        "type": type_,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


class JobController(Controller):
    """Jobs -> Pods run to completion (see the module docstring)."""

    name = "job"

    def routes(self) -> dict[StoreKey, Mapper]:
        return {JOB: lambda ev: [key_of(ev.obj)], POD: self._pod_keys}

    def initial_keys(self) -> Iterable[Key]:
        return [key_of(o) for o in self.store.list_objects(JOB)[1]]

    def _pod_keys(self, ev: Event) -> Iterable[Key]:
        out: set[Key] = set()
        for pod in (ev.obj, ev.old):
            if pod is None:
                continue
            ref = podutil.controller_of(pod)
            if ref is not None and ref.get("kind") == "Job":
                out.add((pod["metadata"].get("namespace") or "", ref.get("name", "")))
        return out

    # ---------------------------------------------------------------- sync

    def sync(self, key: Key) -> None:
        ns, name = key
        stored = self.store.get(JOB, ns, name)
        if stored is None:
            return
        job = copy.deepcopy(stored)
        if job["metadata"].get("deletionTimestamp"):
            return
        if _finished(job):
            self._expire(job)
            return
        uid = job["metadata"]["uid"]
        pods = [p for p in self.store.list_objects(POD, ns)[1] if podutil.owned_by(p, uid)]
        spec = job.get("spec") or {}
        indexed = spec.get("completionMode") == "Indexed"
        parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
        completions = spec.get("completions")
        backoff_limit = int(
            spec.get("backoffLimit", 6) if spec.get("backoffLimit") is not None else 6
        )
        suspended = bool(spec.get("suspend"))
        active = [p for p in pods if podutil.active(p)]
        succeeded_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        done_indexes = {i for p in succeeded_pods if (i := _index(p)) is not None}
        succeeded = len(done_indexes) if indexed else len(succeeded_pods)

        status = copy.deepcopy(job.get("status") or {})
        conditions: list[JSON] = list(status.get("conditions") or [])
        finish: str | None = None
        if failed > backoff_limit:
            for p in active:
                self._delete(p)
            active = []
            conditions += [
                _condition(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
                _condition(
                    "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
                ),
            ]
            finish = "Failed"
        elif (completions is not None and succeeded >= int(completions)) or (
            completions is None and succeeded > 0 and not active
        ):
            for p in active:
                self._delete(p)
            active = []
            conditions += [
                _condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                _condition(
                    "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
                ),
            ]
            finish = "Complete"
        elif suspended:
            for p in active:
                self._delete(p)
            active = []
            if not any(
                c.get("type") == "Suspended" and c.get("status") == "True" for c in conditions
            ):
                conditions = [c for c in conditions if c.get("type") != "Suspended"]
                conditions.append(_condition("Suspended", "JobSuspended", "Job suspended"))
        else:
            if any(c.get("type") == "Suspended" for c in conditions):
                conditions = [c for c in conditions if c.get("type") != "Suspended"]
                resumed = _condition("Suspended", "JobResumed", "Job resumed")
                resumed["status"] = "False"
                conditions.append(resumed)
            status.setdefault("startTime", now_rfc3339())
            active = self._manage(
                job, active, done_indexes, succeeded, parallelism, completions, indexed
            )

        if finish == "Complete":
            status["completionTime"] = now_rfc3339()
        status["conditions"] = conditions
        if not conditions:
            status.pop("conditions")
        for field, value in (("active", len(active)), ("succeeded", succeeded), ("failed", failed)):
            if value:
                status[field] = value
            else:
                status.pop(field, None)
        status["ready"] = sum(1 for p in active if podutil.ready(p))
        status["terminating"] = sum(1 for p in pods if p["metadata"].get("deletionTimestamp"))
        status["uncountedTerminatedPods"] = {}
        if indexed:
            if done_indexes:
                status["completedIndexes"] = _ranges(done_indexes)
            else:
                status["completedIndexes"] = ""
        if status != stored.get("status"):
            new = copy.deepcopy(job)
            new["status"] = status
            written = self.writer.update_status(JOB, new)
            if finish is not None:
                self._expire(written)

    def _manage(
        self,
        job: JSON,
        active: list[JSON],
        done: set[int],
        succeeded: int,
        parallelism: int,
        completions: Any,
        indexed: bool,
    ) -> list[JSON]:
        ns = job["metadata"].get("namespace") or ""
        if completions is None:
            want = parallelism if succeeded == 0 else 0
        else:
            want = max(0, min(parallelism, int(completions) - succeeded))
        if len(active) > want:
            extra = sorted(active, key=lambda p: p["metadata"].get("creationTimestamp") or "")[
                want:
            ]
            for p in extra:
                self._delete(p)
            return [p for p in active if p not in extra]
        running_indexes = {i for p in active if (i := _index(p)) is not None}
        free = (
            [i for i in range(int(completions)) if i not in done and i not in running_indexes]
            if indexed and completions is not None
            else []
        )
        for n in range(want - len(active)):
            idx = free[n] if indexed and n < len(free) else None
            if indexed and idx is None:
                break
            active.append(self.writer.create(POD, ns, self._new_pod(job, idx)))
        return active

    def _new_pod(self, job: JSON, index: int | None) -> JSON:
        name = job["metadata"]["name"]
        uid = job["metadata"]["uid"]
        labels = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        annotations: dict[str, str] = {}
        generate = f"{name}-"
        if index is not None:
            labels[INDEX] = str(index)
            annotations[INDEX] = str(index)
            generate = f"{name}-{index}-"
        template = (job.get("spec") or {}).get("template") or {}
        pod = podutil.pod_from_template(
            template, job, generate_name=generate, labels=labels, annotations=annotations
        )
        if index is not None:
            pod["spec"].setdefault("hostname", f"{name}-{index}")
        return pod

    def _delete(self, pod: JSON) -> None:
        meta = pod["metadata"]
        self.writer.delete(POD, meta.get("namespace") or "", meta["name"], uid=meta.get("uid"))

    def _expire(self, job: JSON) -> None:
        """``ttlSecondsAfterFinished``: delete the finished Job once the TTL has passed."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        status = job.get("status") or {}
        finished = [
            podutil.parse_time(c.get("lastTransitionTime"))
            for c in status.get("conditions") or []
            if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        ]
        since = next((t for t in finished if t is not None), None)
        if since is None:
            return
        due = since + datetime.timedelta(seconds=int(ttl))
        wait = (due - podutil.now_utc()).total_seconds()
        if wait > 0:
            self.queue.add_after(key_of(job), wait + 0.05)
            return
        meta = job["metadata"]
        self.writer.delete(
            JOB,
            meta.get("namespace") or "",
            meta["name"],
            uid=meta.get("uid"),
            propagation="Background",
        )
