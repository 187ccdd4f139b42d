"""The provision machine: make a Gateway's children match its blueprint, wait until they are
ready, then prune what the blueprint no longer renders.

It exists so that provisioning is durable and observable: each phase is a state the engine commits,
a crash re-runs the phase (its steps are idempotent against the cluster and the child inventory),
and a render error or a child the API server rejects fails the operation with the child id, the
error and where it came from (template line or server message) instead of disappearing in a log.
The same machine serves updates: re-running it on a changed Gateway, blueprint or values applies
only what changed (children whose applied hash is unchanged and which exist are not written) and
prunes the children of removed templates — cluster-scoped ones too, from the inventory.

The caller (the controller) resolves class, blueprint and policies, computes the merged values and
decides which HTTPRoutes are attached (for the blueprint's per-route ``routeChildren``); the machine
only carries them. Machines are data: the steps live in ``bifrost.steps.provision``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bifrost.machines.retry import RetryPolicy
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import OperationStatus

PROVISION_MACHINE = "provision"
PROVISION_VERSION = 2
PROVISION_LANE = "default"

#: Persisted step names (stable: renaming one needs a data migration).
ADOPT = "adopt"
ENSURE_CERTIFICATES = "ensure_certificates"
APPLY_CHILDREN = "apply_children"
WAIT_READY = "wait_ready"
PRUNE = "prune"
PROVISION_STEPS = (ADOPT, ENSURE_CERTIFICATES, APPLY_CHILDREN, WAIT_READY, PRUNE)


class ProvisionContext(BaseModel):
    """What a provision operation knows between steps (persisted as JSON).

    ``values`` are the merged values (blueprint → class → namespace → gateway, computed by the
    caller). ``routes`` — ``namespace/name`` of the HTTPRoutes attached to the Gateway (accepted
    by at least one listener, decided by the controller with the same rules as route status),
    sorted; each gets the blueprint's ``routeChildren``, and the route children of any other
    route are pruned. Progress: ``wanted`` — the Gateway's child ids the last apply pass rendered
    or found pending (every other Gateway child in the inventory is pruned); ``route_wanted`` —
    the same per route (``namespace/name`` → route child ids); ``applied`` — ids this operation
    wrote; ``ready`` — ids found ready; ``pruned`` — ids deleted because no longer rendered. In
    ``applied``/``ready``/``pruned`` a route child appears as ``<id>@<namespace>/<route>``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    gateway: str
    gateway_uid: str
    blueprint: str
    values: dict[str, Any] = Field(default_factory=dict)
    routes: tuple[str, ...] = ()
    wanted: tuple[str, ...] = ()
    route_wanted: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: route key → why its routeChildren did not render (None: not rendered yet this operation)
    route_errors: dict[str, str] | None = None
    applied: tuple[str, ...] = ()
    ready: tuple[str, ...] = ()
    pruned: tuple[str, ...] = ()
    certificates: tuple[str, ...] = ()  # certificates this operation requested
    certificates_since: str | None = None  # when it first waited for one to be issued
    #: ``wait_ready``'s re-applies of children gone while it waited, and when the last was
    recreations: int = 0
    recreated_at: str | None = None


def provision_spec(*, wait_timeout: timedelta = timedelta(minutes=10)) -> MachineSpec:
    """The provision machine; ``wait_timeout`` bounds each waiting step (dependencies,
    readiness, deletion of pruned children) from its first attempt."""
    act = RetryPolicy(
        max_attempts=8,
        initial_backoff=timedelta(seconds=0.5),
        max_backoff=timedelta(seconds=30),
        timeout=wait_timeout,
    )
    return MachineSpec(
        name=PROVISION_MACHINE,
        version=PROVISION_VERSION,
        lane=PROVISION_LANE,
        initial="certificates",
        context_model=ProvisionContext,
        description="adopt what the cluster holds when the store does not know it, "
        "issue missing listener certificates, render the blueprint, apply children "
        "in dependency order, wait until they are ready, prune children no longer rendered",
        states=(
            StateSpec(
                name="certificates",
                # ``adopt`` came first in this state later, without a version change: every
                # stored (state, step) stays valid — an operation stored at
                # ``ensure_certificates`` goes on from there, one entering the state starts
                # with ``adopt`` (an extra check, harmless for an operation started earlier).
                steps=(StepSpec(name=ADOPT, retry=act),
                       StepSpec(name=ENSURE_CERTIFICATES, retry=act)),
                on_done="render_apply",
                description="adopt what the cluster holds under the Gateway's ownership "
                "labels when the store's inventory does not match it (lost or restored "
                "database); with spec.tls: request a certificate for every HTTPS listener "
                "that has none attached, wait until issued, attach it; retire the "
                "certificates of removed listeners",
            ),
            StateSpec(
                name="render_apply",
                steps=(StepSpec(name=APPLY_CHILDREN, retry=act),),
                on_done="wait_ready",
                description="render with the live state of ready dependencies; server-side "
                "apply what changed; record the inventory; the same per attached HTTPRoute "
                "for routeChildren",
            ),
            StateSpec(
                name="wait_ready",
                steps=(StepSpec(name=WAIT_READY, retry=act),),
                on_done="prune",
                description="every rendered child (route children too) satisfies its "
                "readyWhen; a child deleted meanwhile is applied again (one apply pass per "
                "run) instead of being waited for",
            ),
            StateSpec(
                name="prune",
                steps=(StepSpec(name=PRUNE, retry=act),),
                on_done="done",
                description="delete inventory children that are no longer rendered (route "
                "children of detached routes too) and the certificates of removed listeners",
            ),
            StateSpec(name="done", terminal=OperationStatus.SUCCEEDED),
        ),
    )
