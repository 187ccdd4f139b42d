"""The Deployment controller: ReplicaSets per pod template, rolling updates, and the status and
conditions ``kubectl rollout status`` and ``readyWhen`` expressions read.

It follows the real controller's algorithm (``pkg/controller/deployment``), step by step:

* the ReplicaSet whose template equals the Deployment's (ignoring ``pod-template-hash``) is the
  new one; otherwise a new ``<deployment>-<pod-template-hash>`` is created with the hash label
  added to its selector and template, and ``deployment.kubernetes.io/revision`` one above the
  highest old revision (the Deployment carries the same annotation; ``kubectl rollout undo``
  brings an old template back, whose ReplicaSet then gets the next revision);
* ``RollingUpdate`` scales the new set up within ``maxSurge`` and the old ones down within
  ``maxUnavailable`` as pods become available; ``Recreate`` scales the old sets to zero, waits
  for their pods to go, then scales the new one up;
* a change of ``spec.replicas`` alone is a scaling event: sets are scaled proportionally;
* a paused Deployment is only scaled and its Progressing condition says so;
* old sets beyond ``revisionHistoryLimit`` that have no pods are deleted;
* status: observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
  unavailableReplicas, and the conditions ``Available`` (MinimumReplicasAvailable /
  MinimumReplicasUnavailable) and ``Progressing`` (NewReplicaSetCreated, FoundNewReplicaSet,
  ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused,
  DeploymentResumed), with ``progressDeadlineSeconds`` enforced by a delayed re-check.

The pod template hash is :func:`~devcluster.controllers.hashing.pod_template_hash`, so names
look like ``web-7c5ddbdf54``.
"""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Iterable
from typing import Any

from devcluster.controllers import pods as podutil
from devcluster.controllers.claims import claim
from devcluster.controllers.hashing import pod_template_hash, semantic
from devcluster.controllers.intstr import scaled_value
from devcluster.controllers.labels import selector_matches
from devcluster.controllers.pods import POD
from devcluster.controllers.runtime import Controller, Key, Mapper, StoreKey, key_of
from devcluster.errors import ApiError
from devcluster.handlers import Api, now_rfc3339
from devcluster.storage import Event

__all__ = ["DeploymentController", "max_surge", "max_unavailable"]

JSON = dict[str, Any]

DEPLOY = ("apps", "deployments")
RS = ("apps", "replicasets")

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}
_NO_DEADLINE = 2**31 - 1

AVAILABLE = "Available"
PROGRESSING = "Progressing"


# ------------------------------------------------------------------------------------ helpers


def _replicas(obj: JSON | None) -> int:
    if obj is None:
        return 0
    v = (obj.get("spec") or {}).get("replicas")
    return 1 if v is None else int(v)


def _status(obj: JSON | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def _annotations(obj: JSON) -> dict[str, str]:
    return obj["metadata"].setdefault("annotations", {})  # type: ignore[no-any-return]


def _revision(rs: JSON) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _created(obj: JSON) -> tuple[str, str]:
    return (obj["metadata"].get("creationTimestamp") or "", obj["metadata"]["name"])


def _without_hash(template: JSON | None) -> JSON:
    """The template as compared (``EqualIgnoreHash``): no hash label, semantically."""
    t = semantic(template or {})
    meta = t.get("metadata")
    if isinstance(meta, dict):
        labels = dict(meta.get("labels") or {})
        labels.pop(HASH_LABEL, None)
        if labels:
            meta["labels"] = labels
        else:
            meta.pop("labels", None)
    return semantic(t)  # type: ignore[no-any-return]


def _strategy(d: JSON) -> JSON:
    return (d.get("spec") or {}).get("strategy") or {}


def _is_rolling(d: JSON) -> bool:
    return (_strategy(d).get("type") or "RollingUpdate") == "RollingUpdate"


def _fenceposts(d: JSON) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas (``ResolveFenceposts``)."""
    rolling = _strategy(d).get("rollingUpdate") or {}
    want = _replicas(d)
    surge = scaled_value(rolling.get("maxSurge", "25%"), want, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), want, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: JSON) -> int:
    return _fenceposts(d)[0] if _is_rolling(d) else 0


def max_unavailable(d: JSON) -> int:
    if not _is_rolling(d) or _replicas(d) == 0:
        return 0
    return min(_fenceposts(d)[1], _replicas(d))


def _deadline(d: JSON) -> int | None:
    v = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
    if v is None or int(v) == _NO_DEADLINE:
        return None
    return int(v)


def _condition(status: JSON, type_: str) -> JSON | None:
    conditions: list[JSON] = status.get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def _new_condition(type_: str, status: str, reason: str, message: str) -> JSON:
    now = now_rfc3339()
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def _set_condition(status: JSON, cond: JSON) -> None:
    """``SetDeploymentCondition``: same status and reason: nothing changes; same status: the
    transition time is kept; the condition moves to the end."""
    cur = _condition(status, cond["type"])
    if cur is not None and cur["status"] == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur["status"] == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime", cond["lastTransitionTime"])
    status["conditions"] = [
        c for c in status.get("conditions") or [] if c.get("type") != cond["type"]
    ] + [cond]


def _remove_condition(status: JSON, type_: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != type_]


def _complete(d: JSON, status: JSON) -> bool:
    want = _replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0)
    )


def _progressing(d: JSON, new: JSON) -> bool:
    old = d.get("status") or {}

    def n(s: JSON, f: str) -> int:
        return int(s.get(f) or 0)

    return (
        n(new, "updatedReplicas") > n(old, "updatedReplicas")
        or n(new, "replicas") - n(new, "updatedReplicas")
        < n(old, "replicas") - n(old, "updatedReplicas")
        or n(new, "readyReplicas") > n(old, "readyReplicas")
        or n(new, "availableReplicas") > n(old, "availableReplicas")
    )


def _seconds_to_deadline(d: JSON, status: JSON) -> float | None:
    """Seconds until the Progressing condition times out (None: no deadline pending)."""
    deadline = _deadline(d)
    cond = _condition(status, PROGRESSING)
    if deadline is None or cond is None or cond.get("status") != "True":
        return None
    if cond.get("reason") in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
        return None
    since = podutil.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    due = since + datetime.timedelta(seconds=deadline)
    return (due - podutil.now_utc()).total_seconds()


def _active(rss: Iterable[JSON | None]) -> list[JSON]:
    return [rs for rs in rss if rs is not None and _replicas(rs) > 0]


# --------------------------------------------------------------------------------- controller


class DeploymentController(Controller):
    """Deployments -> ReplicaSets (see the module docstring)."""

    name = "deployment"

    def __init__(self, api: Api) -> None:
        super().__init__(api)
        self._stored_status: JSON = {}  # the status as stored, during one sync

    def routes(self) -> dict[StoreKey, Mapper]:
        return {DEPLOY: lambda ev: [key_of(ev.obj)], RS: self._rs_keys, POD: self._pod_keys}

    def initial_keys(self) -> Iterable[Key]:
        return [key_of(o) for o in self.store.list_objects(DEPLOY)[1]]

    def _rs_keys(self, ev: Event) -> Iterable[Key]:
        out: set[Key] = set()
        for rs in (ev.obj, ev.old):
            if rs is None:
                continue
            ns = rs["metadata"].get("namespace") or ""
            ref = podutil.controller_of(rs)
            if ref is not None:
                if ref.get("kind") == "Deployment":
                    out.add((ns, ref.get("name", "")))
            elif ev.type != "DELETED":
                labels = rs["metadata"].get("labels") or {}
                for d in self.store.list_objects(DEPLOY, ns)[1]:
                    if selector_matches(self._selector(d), labels):
                        out.add(key_of(d))
        return out

    def _pod_keys(self, ev: Event) -> Iterable[Key]:
        """A deleted pod of an old ReplicaSet may let a Recreate rollout go on."""
        if ev.type != "DELETED":
            return ()
        ref = podutil.controller_of(ev.obj)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return ()
        ns = ev.obj["metadata"].get("namespace") or ""
        rs = self.store.get(RS, ns, ref.get("name", ""))
        owner = podutil.controller_of(rs) if rs is not None else None
        if owner is None or owner.get("kind") != "Deployment":
            return ()
        return [(ns, owner.get("name", ""))]

    @staticmethod
    def _selector(d: JSON) -> JSON | None:
        sel = (d.get("spec") or {}).get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            return None
        return dict(sel)

    # ---------------------------------------------------------------- sync

    def sync(self, key: Key) -> None:
        ns, name = key
        stored = self.store.get(DEPLOY, ns, name)
        if stored is None:
            return
        d = copy.deepcopy(stored)
        d.setdefault("status", {})
        self._stored_status = copy.deepcopy(stored.get("status") or {})
        selector = self._selector(d)
        if selector is None:
            # "This deployment will select all pods": the real controller only records that
            # it saw this generation.
            status = dict(d["status"])
            status["observedGeneration"] = d["metadata"].get("generation", 0)
            self._write_status(d, status)
            return
        rss = self._replica_sets(d, selector)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old = self._new_and_old(d, rss, create=False)
            self._sync_status(self._all(new_rs, old), new_rs, d)
            return
        self._check_paused_conditions(d)
        spec = d.get("spec") or {}
        if spec.get("paused"):
            self._sync(d, rss)
            return
        if self._is_scaling_event(d, rss):
            self._sync(d, rss)
            return
        if _is_rolling(d):
            self._rollout_rolling(d, rss)
        else:
            self._rollout_recreate(d, rss)

    def _replica_sets(self, d: JSON, selector: JSON) -> list[JSON]:
        ns = d["metadata"].get("namespace") or ""
        candidates = self.store.list_objects(RS, ns)[1]
        owned = claim(
            self.writer,
            RS,
            d,
            candidates,
            lambda rs: selector_matches(selector, rs["metadata"].get("labels")),
        )
        return [copy.deepcopy(rs) for rs in owned]

    @staticmethod
    def _all(new_rs: JSON | None, old: list[JSON]) -> list[JSON]:
        return old + ([new_rs] if new_rs is not None else [])

    # ---------------------------------------------------------------- new and old sets

    def _new_and_old(
        self, d: JSON, rss: list[JSON], *, create: bool
    ) -> tuple[JSON | None, list[JSON]]:
        """``getAllReplicaSetsAndSyncRevision``: the new set (created when asked) and the old
        ones; syncs the revision annotations on the new set and the Deployment."""
        template = (d.get("spec") or {}).get("template") or {}
        collision = (d.get("status") or {}).get("collisionCount")
        expected_name = f"{d['metadata']['name']}-{pod_template_hash(template, collision)}"
        ordered = sorted(rss, key=_created)
        existing = next(
            (
                rs
                for rs in ordered
                if _without_hash((rs.get("spec") or {}).get("template")) == _without_hash(template)
            ),
            None,
        )
        if existing is None:
            existing = next((rs for rs in ordered if rs["metadata"]["name"] == expected_name), None)
        old = [rs for rs in ordered if rs is not existing]
        new_revision = str(max((_revision(rs) for rs in old), default=0) + 1)
        if existing is not None:
            rs_copy = copy.deepcopy(existing)
            changed = self._set_new_rs_annotations(d, rs_copy, new_revision, exists=True)
            min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
            if changed or int(rs_copy["spec"].get("minReadySeconds") or 0) != min_ready:
                if min_ready:
                    rs_copy["spec"]["minReadySeconds"] = min_ready
                else:
                    rs_copy["spec"].pop("minReadySeconds", None)
                self._replace(existing, self.writer.update(RS, rs_copy))
                return existing, old
            self._set_deployment_revision(d, _annotations(rs_copy).get(REVISION, ""))
            if _deadline(d) is not None and _condition(d["status"], PROGRESSING) is None:
                _set_condition(
                    d["status"],
                    _new_condition(
                        PROGRESSING,
                        "True",
                        "FoundNewReplicaSet",
                        f'Found new replica set "{existing["metadata"]["name"]}"',
                    ),
                )
            return existing, old
        if not create:
            return None, old
        return self._create_new_rs(d, template, collision, new_revision, old), old

    def _create_new_rs(
        self,
        d: JSON,
        template: JSON,
        collision: int | None,
        revision: str,
        old: list[JSON],
    ) -> JSON:
        ns = d["metadata"].get("namespace") or ""
        h = pod_template_hash(template, collision)
        rs_template = copy.deepcopy(template)
        tmeta = rs_template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: h}
        selector = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
        rs: JSON = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{h}",
                "namespace": ns,
                "labels": dict(tmeta["labels"]),
                "ownerReferences": [podutil.controller_ref(d)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": rs_template},
        }
        min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
        rs["spec"]["replicas"] = self._new_rs_replicas(d, old + [rs], rs)
        self._set_new_rs_annotations(d, rs, revision, exists=False)
        already = False
        try:
            created = self.writer.create(RS, ns, rs)
        except ApiError as e:
            if e.code != 409:
                raise
            cur = self.store.get(RS, ns, rs["metadata"]["name"])
            if cur is None or not podutil.owned_by(cur, d["metadata"]["uid"]):
                # a hash collision with a set this Deployment does not own
                status = copy.deepcopy(d["status"])
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                self._write_status(d, status)
                raise
            created = cur
            already = True
        created = copy.deepcopy(created)
        if not already and _replicas(created) > 0:
            self._scaled_event(d, created, 0, _replicas(created))
        self._set_deployment_revision(d, revision)
        if not already and _deadline(d) is not None:
            _set_condition(
                d["status"],
                _new_condition(
                    PROGRESSING,
                    "True",
                    "NewReplicaSetCreated",
                    f'Created new replica set "{created["metadata"]["name"]}"',
                ),
            )
        return created

    def _set_new_rs_annotations(self, d: JSON, rs: JSON, revision: str, *, exists: bool) -> bool:
        annotations = _annotations(rs)
        changed = False
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k in _NOT_COPIED or annotations.get(k) == v:
                continue
            annotations[k] = v
            changed = True
        old_revision = annotations.get(REVISION)
        try:
            old_int = int(old_revision) if old_revision else 0
        except ValueError:
            return changed
        if old_int < int(revision):
            annotations[REVISION] = revision
            changed = True
            if old_revision:
                history = annotations.get(REVISION_HISTORY)
                annotations[REVISION_HISTORY] = (
                    f"{history},{old_revision}" if history else old_revision
                )
        if not exists:
            changed = self._set_replicas_annotations(d, rs) or changed
        if not annotations:
            rs["metadata"].pop("annotations", None)
        return changed

    @staticmethod
    def _set_replicas_annotations(d: JSON, rs: JSON) -> bool:
        annotations = _annotations(rs)
        desired = str(_replicas(d))
        most = str(_replicas(d) + max_surge(d))
        if annotations.get(DESIRED) == desired and annotations.get(MAX_REPLICAS) == most:
            return False
        annotations[DESIRED] = desired
        annotations[MAX_REPLICAS] = most
        return True

    def _set_deployment_revision(self, d: JSON, revision: str) -> None:
        """The Deployment carries its new set's revision (a metadata write, spec unchanged)."""
        if not revision or (d["metadata"].get("annotations") or {}).get(REVISION) == revision:
            return
        new = copy.deepcopy(d)
        _annotations(new)[REVISION] = revision
        new["status"] = copy.deepcopy(self._stored_status)
        written = self.writer.update(DEPLOY, new)
        d["metadata"] = copy.deepcopy(written["metadata"])

    def _new_rs_replicas(self, d: JSON, all_rss: list[JSON], new_rs: JSON) -> int:
        """``NewRSNewReplicas``."""
        if not _is_rolling(d):
            return _replicas(d)
        current = sum(_replicas(rs) for rs in all_rss)
        most = _replicas(d) + max_surge(d)
        if current >= most:
            return _replicas(new_rs)
        up = min(most - current, _replicas(d) - _replicas(new_rs))
        return _replicas(new_rs) + up

    # ---------------------------------------------------------------- scaling

    def _replace(self, target: JSON, written: JSON) -> None:
        target.clear()
        target.update(copy.deepcopy(written))

    def _scale_rs(self, d: JSON, rs: JSON, replicas: int) -> bool:
        """Set a set's replicas (and its desired/max annotations); True when it was scaled."""
        new = copy.deepcopy(rs)
        size_changed = _replicas(rs) != replicas
        annotations_changed = self._set_replicas_annotations(d, new)
        if not size_changed and not annotations_changed:
            return False
        new["spec"]["replicas"] = replicas
        before = _replicas(rs)
        self._replace(rs, self.writer.update(RS, new))
        if size_changed:
            self._scaled_event(d, rs, before, replicas)
        return size_changed

    def _scaled_event(self, d: JSON, rs: JSON, before: int, after: int) -> None:
        way = "up" if after > before else "down"
        self.writer.event(
            d,
            "ScalingReplicaSet",
            f"Scaled {way} replica set {rs['metadata']['name']} from {before} to {after}",
            "deployment-controller",
        )

    def _is_scaling_event(self, d: JSON, rss: list[JSON]) -> bool:
        new_rs, old = self._new_and_old(d, rss, create=False)
        for rs in _active(self._all(new_rs, old)):
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
            if desired is None:
                continue
            try:
                if int(desired) != _replicas(d):
                    return True
            except ValueError:
                continue
        return False

    def _sync(self, d: JSON, rss: list[JSON]) -> None:
        """Paused or scaling: scale the sets, clean up (paused), write the status."""
        new_rs, old = self._new_and_old(d, rss, create=False)
        self._scale(d, new_rs, old)
        if (d.get("spec") or {}).get("paused"):
            self._cleanup(d, old)
        self._sync_status(self._all(new_rs, old), new_rs, d)

    def _scale(self, d: JSON, new_rs: JSON | None, old: list[JSON]) -> None:
        """``scale``: one active set takes the whole count; a saturated new set zeroes the old
        ones; otherwise every active set is scaled in proportion."""
        want = _replicas(d)
        if new_rs is None and not old:
            return
        newest_first = sorted(old, key=_created, reverse=True)
        actives = _active(self._all(new_rs, newest_first))
        if len(actives) <= 1:
            target = actives[0] if actives else (new_rs if new_rs is not None else newest_first[0])
            if _replicas(target) != want:
                self._scale_rs(d, target, want)
            return
        if self._saturated(d, new_rs):
            for rs in _active(old):
                self._scale_rs(d, rs, 0)
            return
        if not _is_rolling(d):
            return
        all_rss = _active(self._all(new_rs, old))
        allowed = want + max_surge(d) if want > 0 else 0
        to_add = allowed - sum(_replicas(rs) for rs in all_rss)
        if to_add > 0:
            all_rss.sort(key=_created, reverse=True)
            all_rss.sort(key=_replicas, reverse=True)
        elif to_add < 0:
            all_rss.sort(key=_created)
            all_rss.sort(key=_replicas, reverse=True)
        added = 0
        sizes: dict[str, int] = {}
        for rs in all_rss:
            if to_add != 0:
                p = self._proportion(d, rs, to_add, added)
                sizes[rs["metadata"]["name"]] = _replicas(rs) + p
                added += p
            else:
                sizes[rs["metadata"]["name"]] = _replicas(rs)
        for i, rs in enumerate(all_rss):
            name = rs["metadata"]["name"]
            if i == 0 and to_add != 0:
                sizes[name] = max(0, sizes[name] + to_add - added)
            self._scale_rs(d, rs, sizes[name])

    def _proportion(self, d: JSON, rs: JSON, to_add: int, added: int) -> int:
        if _replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        fraction = self._fraction(d, rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    def _fraction(self, d: JSON, rs: JSON) -> int:
        if _replicas(d) == 0:
            return -_replicas(rs)
        total = _replicas(d) + max_surge(d)
        try:
            annotated = int((rs["metadata"].get("annotations") or {})[MAX_REPLICAS])
        except (KeyError, ValueError):
            annotated = _status(d, "replicas")
        if annotated <= 0:
            return 0
        size = _replicas(rs) * total / annotated
        return math.floor(size + 0.5) - _replicas(rs)

    @staticmethod
    def _saturated(d: JSON, rs: JSON | None) -> bool:
        if rs is None:
            return False
        desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
        return (
            _replicas(rs) == _replicas(d)
            and desired == str(_replicas(d))
            and _status(rs, "availableReplicas") == _replicas(d)
        )

    # ---------------------------------------------------------------- strategies

    def _rollout_rolling(self, d: JSON, rss: list[JSON]) -> None:
        new_rs, old = self._new_and_old(d, rss, create=True)
        assert new_rs is not None
        all_rss = self._all(new_rs, old)
        if self._reconcile_new(d, all_rss, new_rs):
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if self._reconcile_old(d, all_rss, _active(old), new_rs):
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if _complete(d, d["status"]):
            self._cleanup(d, old)
        self._sync_rollout_status(all_rss, new_rs, d)

    def _reconcile_new(self, d: JSON, all_rss: list[JSON], new_rs: JSON) -> bool:
        want = _replicas(d)
        if _replicas(new_rs) == want:
            return False
        if _replicas(new_rs) > want:
            return self._scale_rs(d, new_rs, want)
        return self._scale_rs(d, new_rs, self._new_rs_replicas(d, all_rss, new_rs))

    def _reconcile_old(self, d: JSON, all_rss: list[JSON], old: list[JSON], new_rs: JSON) -> bool:
        if sum(_replicas(rs) for rs in old) == 0:
            return False
        all_pods = sum(_replicas(rs) for rs in all_rss)
        min_available = _replicas(d) - max_unavailable(d)
        new_unavailable = _replicas(new_rs) - _status(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self._cleanup_unhealthy(d, old, max_scaled_down)
        scaled = self._scale_down_old(d, self._all(new_rs, old), old)
        return cleaned + scaled > 0

    def _cleanup_unhealthy(self, d: JSON, old: list[JSON], most: int) -> int:
        total = 0
        for rs in sorted(old, key=_created):
            if total >= most:
                break
            unhealthy = _replicas(rs) - _status(rs, "availableReplicas")
            if _replicas(rs) == 0 or unhealthy <= 0:
                continue
            down = min(most - total, unhealthy)
            self._scale_rs(d, rs, _replicas(rs) - down)
            total += down
        return total

    def _scale_down_old(self, d: JSON, all_rss: list[JSON], old: list[JSON]) -> int:
        min_available = _replicas(d) - max_unavailable(d)
        available = sum(_status(rs, "availableReplicas") for rs in all_rss)
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in sorted(old, key=_created):
            if total >= budget:
                break
            if _replicas(rs) == 0:
                continue
            down = min(_replicas(rs), budget - total)
            self._scale_rs(d, rs, _replicas(rs) - down)
            total += down
        return total

    def _rollout_recreate(self, d: JSON, rss: list[JSON]) -> None:
        new_rs, old = self._new_and_old(d, rss, create=False)
        scaled = False
        for rs in _active(old):
            scaled = self._scale_rs(d, rs, 0) or scaled
        if scaled:
            self._sync_rollout_status(self._all(new_rs, old), new_rs, d)
            return
        if self._old_pods_running(d, old):
            self._sync_rollout_status(self._all(new_rs, old), new_rs, d)
            return
        if new_rs is None:
            new_rs, old = self._new_and_old(d, rss, create=True)
            assert new_rs is not None
        if _replicas(new_rs) != _replicas(d):
            self._scale_rs(d, new_rs, _replicas(d))
        if _complete(d, d["status"]):
            self._cleanup(d, old)
        self._sync_rollout_status(self._all(new_rs, old), new_rs, d)

    def _old_pods_running(self, d: JSON, old: list[JSON]) -> bool:
        if sum(_status(rs, "replicas") for rs in old) > 0:
            return True
        uids = {rs["metadata"]["uid"] for rs in old}
        ns = d["metadata"].get("namespace") or ""
        for pod in self.store.list_objects(POD, ns)[1]:
            ref = podutil.controller_of(pod)
            if ref is None or ref.get("uid") not in uids:
                continue
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
        return False

    def _cleanup(self, d: JSON, old: list[JSON]) -> None:
        """Delete the oldest revisions beyond ``revisionHistoryLimit`` (empty sets only)."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
        if limit is None:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        alive.sort(key=lambda rs: (_revision(rs), _created(rs)))
        for rs in alive[:diff]:
            st = rs.get("status") or {}
            if (
                int(st.get("replicas") or 0) != 0
                or _replicas(rs) != 0
                or int(rs["metadata"].get("generation") or 0)
                > int(st.get("observedGeneration") or 0)
            ):
                continue
            meta = rs["metadata"]
            self.writer.delete(RS, meta.get("namespace") or "", meta["name"], uid=meta["uid"])

    # ---------------------------------------------------------------- status

    def _calculate_status(self, all_rss: list[JSON], new_rs: JSON | None, d: JSON) -> JSON:
        available = sum(_status(rs, "availableReplicas") for rs in all_rss)
        total = sum(_replicas(rs) for rs in all_rss)
        status: JSON = {}
        generation = d["metadata"].get("generation")
        if generation:
            status["observedGeneration"] = generation
        counts = {
            "replicas": sum(_status(rs, "replicas") for rs in all_rss),
            "updatedReplicas": _status(new_rs, "replicas"),
            "readyReplicas": sum(_status(rs, "readyReplicas") for rs in all_rss),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
        }
        status.update({k: v for k, v in counts.items() if v})
        collision = d["status"].get("collisionCount")
        if collision is not None:
            status["collisionCount"] = collision
        status["conditions"] = copy.deepcopy(d["status"].get("conditions") or [])
        if available >= _replicas(d) - max_unavailable(d):
            _set_condition(
                status,
                _new_condition(
                    AVAILABLE,
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                ),
            )
        else:
            _set_condition(
                status,
                _new_condition(
                    AVAILABLE,
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                ),
            )
        return status

    def _sync_status(self, all_rss: list[JSON], new_rs: JSON | None, d: JSON) -> None:
        self._write_status(d, self._calculate_status(all_rss, new_rs, d))

    def _sync_rollout_status(self, all_rss: list[JSON], new_rs: JSON | None, d: JSON) -> None:
        status = self._calculate_status(all_rss, new_rs, d)
        if _deadline(d) is not None:
            cur = _condition(status, PROGRESSING)
            done = (
                int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
                and cur is not None
                and cur.get("reason") == "NewReplicaSetAvailable"
            )
            rs_name = new_rs["metadata"]["name"] if new_rs is not None else None
            if not done:
                if _complete(d, status):
                    msg = (
                        f'ReplicaSet "{rs_name}" has successfully progressed.'
                        if rs_name
                        else "Deployment has successfully progressed."
                    )
                    _set_condition(
                        status, _new_condition(PROGRESSING, "True", "NewReplicaSetAvailable", msg)
                    )
                elif _progressing(d, status):
                    msg = (
                        f'ReplicaSet "{rs_name}" is progressing.'
                        if rs_name
                        else "Deployment is progressing."
                    )
                    cond = _new_condition(PROGRESSING, "True", "ReplicaSetUpdated", msg)
                    if cur is not None:
                        if cur.get("status") == "True":
                            cond["lastTransitionTime"] = cur.get(
                                "lastTransitionTime", cond["lastTransitionTime"]
                            )
                        _remove_condition(status, PROGRESSING)
                    _set_condition(status, cond)
                elif self._timed_out(d, status):
                    msg = (
                        f'ReplicaSet "{rs_name}" has timed out progressing.'
                        if rs_name
                        else f'Deployment "{d["metadata"]["name"]}" has timed out progressing.'
                    )
                    _set_condition(
                        status,
                        _new_condition(PROGRESSING, "False", "ProgressDeadlineExceeded", msg),
                    )
        self._write_status(d, status)
        wait = _seconds_to_deadline(d, status)
        if wait is not None and not _complete(d, status):
            self.queue.add_after(key_of(d), max(0.0, wait) + 1.0)

    def _timed_out(self, d: JSON, status: JSON) -> bool:
        cond = _condition(status, PROGRESSING)
        deadline = _deadline(d)
        if cond is None or deadline is None:
            return False
        if cond.get("reason") == "NewReplicaSetAvailable":
            return False
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return True
        wait = _seconds_to_deadline(d, status)
        return wait is not None and wait < 0

    def _check_paused_conditions(self, d: JSON) -> None:
        """Record (un)pausing in the Progressing condition."""
        if _deadline(d) is None:
            return
        cond = _condition(d["status"], PROGRESSING)
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return
        paused = bool((d.get("spec") or {}).get("paused"))
        paused_cond = cond is not None and cond.get("reason") == "DeploymentPaused"
        status = copy.deepcopy(d["status"])
        if paused and not paused_cond:
            _set_condition(
                status,
                _new_condition(PROGRESSING, "Unknown", "DeploymentPaused", "Deployment is paused"),
            )
        elif not paused and paused_cond:
            _set_condition(
                status,
                _new_condition(
                    PROGRESSING, "Unknown", "DeploymentResumed", "Deployment is resumed"
                ),
            )
        else:
            return
        self._write_status(d, status)

    def _write_status(self, d: JSON, status: JSON) -> None:
        if status == self._stored_status:
            return
        new = copy.deepcopy(d)
        new["status"] = status
        written = self.writer.update_status(DEPLOY, new)
        d["metadata"] = copy.deepcopy(written["metadata"])
        d["status"] = copy.deepcopy(written.get("status") or {})
        self._stored_status = copy.deepcopy(d["status"])
