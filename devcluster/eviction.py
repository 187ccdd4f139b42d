"""``POST .../pods/<name>/eviction`` (a ``policy/v1`` Eviction, what ``kubectl drain`` sends):
delete a pod gracefully unless that would break its PodDisruptionBudget.

As kube-apiserver's ``EvictionREST.Create``:

* a pod that is Pending, Succeeded, Failed or already being deleted is deleted at once, whatever
  its budget says (it is not running, so evicting it disrupts nothing);
* more than one PDB selecting the pod: 500 ``This pod has more than one PodDisruptionBudget,
  which the eviction subresource does not support.``;
* a pod that is not Ready may go when its PDB's ``unhealthyPodEvictionPolicy`` is
  ``AlwaysAllow``, or (``IfHealthyBudget``, the default) when the budget is met without it
  (``currentHealthy >= desiredHealthy > 0``); it is then deleted with a ``resourceVersion``
  precondition, so a pod that became Ready meanwhile is not evicted this way;
* otherwise the eviction needs ``disruptionsAllowed > 0``, else 429 TooManyRequests ``Cannot
  evict pod as it would violate the pod's disruption budget.`` with the cause ``DisruptionBudget:
  The disruption budget <pdb> needs <desired> healthy pods and has <current> currently``;
* the pod is deleted as DELETE does with the Eviction's ``deleteOptions`` (grace period,
  preconditions, dryRun) and the answer is 201 with a ``Status`` of ``Success``.

One difference: upstream decides from the PDB's ``status`` as the disruption controller last
wrote it (429 ``...is still being processed by the server`` while ``observedGeneration`` lags)
and then decrements ``disruptionsAllowed`` and records the pod in ``status.disruptedPods``. The
devcluster decides from the budget computed now, under the store lock, with the same function
the controller uses (:func:`devcluster.disruption_budget.compute`), deletes the pod in the same
critical section and then writes the recomputed status (the evicted pod, being deleted, is no
longer healthy), so no ``disruptedPods`` entry is needed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from devcluster.controllers.pods import ready
from devcluster.disruption_budget import budget_status, compute, selects, store_scale_lookup
from devcluster.errors import ApiError
from devcluster.handlers import Api, RequestContext, Target, now_rfc3339, parse_body

__all__ = ["register_eviction"]

JSON = dict[str, Any]

POD = ("", "pods")
PDB = ("policy", "poddisruptionbudgets")

MORE_THAN_ONE = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not "
    "support."
)
VIOLATES = "Cannot evict pod as it would violate the pod's disruption budget."


def register_eviction(api: Api) -> None:
    """Answer ``pods/eviction`` on ``api``."""
    api.handlers[("", "pods", "eviction")] = handle


def _too_many_requests(pdb: JSON, desired: int, current: int) -> ApiError:
    name = pdb["metadata"]["name"]
    return ApiError(
        429,
        VIOLATES,
        "TooManyRequests",
        causes=[
            {
                "reason": "DisruptionBudget",
                "message": f"The disruption budget {name} needs {desired} healthy pods and has "
                f"{current} currently",
            }
        ],
    )


def _eviction(ctx: RequestContext) -> JSON:
    body = parse_body(ctx.raw, content_type=ctx.content_type) if ctx.raw.strip() else {}
    if not isinstance(body, dict):
        raise ApiError(400, "the body of the request must be an object", "BadRequest")
    kind = body.get("kind")
    if kind and kind != "Eviction":
        raise ApiError(
            400,
            f"the kind in the data ({kind}) does not match the expected kind (Eviction)",
            "BadRequest",
        )
    name = (body.get("metadata") or {}).get("name")
    if name and name != ctx.target.name:
        raise ApiError(400, "name in URL does not match name in Eviction object", "BadRequest")
    return body


def _can_ignore_pdb(pod: JSON) -> bool:
    """Not running: evicting it disrupts nothing (``canIgnorePDB``)."""
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    return phase in ("Pending", "Succeeded", "Failed") or bool(
        pod["metadata"].get("deletionTimestamp")
    )


def handle(ctx: RequestContext) -> tuple[int, JSON]:
    if ctx.verb != "create":
        raise ApiError(405, "method not allowed", "MethodNotAllowed")
    api = ctx.api
    t = ctx.target
    ns, name = t.namespace or "", t.name or ""
    eviction = _eviction(ctx)
    options = dict(eviction.get("deleteOptions") or {})
    if ctx.query.get("dryRun") == "All":
        options["dryRun"] = ["All"]
    dry_run = "All" in (options.get("dryRun") or [])
    pod_t = Target(t.rt, "v1", t.namespace, name)
    with api.store.lock:
        pod = api.get(pod_t)  # 404 as for the pod
        pdb: JSON | None = None
        if not _can_ignore_pdb(pod):
            pdbs = [p for p in api.store.list_objects(PDB, ns)[1] if selects(p, pod)]
            if len(pdbs) > 1:
                raise ApiError(500, MORE_THAN_ONE, "")
            pdb = pdbs[0] if pdbs else None
        if pdb is not None:
            lookup = store_scale_lookup(api.store.get)
            budget = compute(pdb, api.store.list_objects(POD, ns)[1], lookup)
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy")
            unhealthy_may_go = not ready(pod) and (
                policy == "AlwaysAllow" or 0 < budget.desired_healthy <= budget.current_healthy
            )
            if unhealthy_may_go:
                pre = dict(options.get("preconditions") or {})
                pre.setdefault("resourceVersion", pod["metadata"]["resourceVersion"])
                options["preconditions"] = pre
            elif budget.disruptions_allowed <= 0:
                raise _too_many_requests(pdb, budget.desired_healthy, budget.current_healthy)
        api.delete(pod_t, json.dumps(options).encode(), {})
        if pdb is not None and not dry_run:
            _write_status(api, pdb)
    return 201, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }


def _write_status(api: Api, pdb: JSON) -> None:
    """The PDB's status after the eviction (store lock held)."""
    rt = api.registry.by_key(PDB)
    assert rt is not None
    meta = pdb["metadata"]
    ns = meta.get("namespace") or ""
    lookup = store_scale_lookup(api.store.get)
    budget = compute(pdb, api.store.list_objects(POD, ns)[1], lookup)
    new = copy.deepcopy(pdb)
    new["status"] = budget_status(
        pdb.get("status") or {}, budget, meta.get("generation"), now_rfc3339()
    )
    if new["status"] != pdb.get("status"):
        t = Target(rt, "v1", ns, meta["name"], "status")
        api.update(t, new, {"fieldManager": "kube-apiserver"})
