"""The teardown machine: delete every child bifrost applied for a Gateway, in the blueprint's
declared order, then release the Gateway's finalizer.

Ordered teardown matters for controllers of controllers: a DNS record should stop pointing at a
load balancer before the load balancer goes, and a certificate must outlive the listeners that
serve it. The children come from the store's inventory (so cluster-scoped children and children
of templates removed since are not forgotten); each deletion group is waited for until it is gone
before the next starts, and only objects labelled with this Gateway's uid are deleted, so a
Gateway re-created under the same name never loses its children to the old one's teardown.

Machines are data: the steps live in ``bifrost.steps.teardown``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from bifrost.machines.retry import RetryPolicy
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import OperationStatus

TEARDOWN_MACHINE = "teardown"
TEARDOWN_VERSION = 1
TEARDOWN_LANE = "default"

#: Persisted step names (stable: renaming one needs a data migration).
ADOPT_FOR_TEARDOWN = "adopt_for_teardown"
DELETE_CHILDREN = "delete_children"
REMOVE_FINALIZER = "remove_finalizer"
TEARDOWN_STEPS = (ADOPT_FOR_TEARDOWN, DELETE_CHILDREN, REMOVE_FINALIZER)

#: The finalizer bifrost keeps on a Gateway while it owns resources for it.
GATEWAY_FINALIZER = "gateway.bifrost.dev/finalizer"


class TeardownContext(BaseModel):
    """What a teardown operation knows (persisted as JSON). ``blueprint`` names the
    GatewayClassBlueprint whose declared delete order is followed when it still exists (empty or
    gone: the inventory's order). ``deleted`` lists the child ids deleted so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    gateway: str
    gateway_uid: str
    blueprint: str = ""
    deleted: tuple[str, ...] = ()
    finalizer_removed: bool = False


def teardown_spec(*, wait_timeout: timedelta = timedelta(minutes=10)) -> MachineSpec:
    """The teardown machine; ``wait_timeout`` bounds the wait for the children to be gone."""
    act = RetryPolicy(
        max_attempts=8,
        initial_backoff=timedelta(seconds=0.5),
        max_backoff=timedelta(seconds=30),
        timeout=wait_timeout,
    )
    return MachineSpec(
        name=TEARDOWN_MACHINE,
        version=TEARDOWN_VERSION,
        lane=TEARDOWN_LANE,
        initial="delete_children",
        context_model=TeardownContext,
        description="adopt what the cluster holds under the Gateway's ownership labels, "
        "delete children group by group in the declared delete order, then remove "
        "the Gateway's finalizer",
        states=(
            StateSpec(
                name="delete_children",
                # ``adopt_for_teardown`` came first in this state later, without a version
                # change: every stored (state, step) stays valid.
                steps=(StepSpec(name=ADOPT_FOR_TEARDOWN, retry=act),
                       StepSpec(name=DELETE_CHILDREN, retry=act)),
                on_done="remove_finalizer",
            ),
            StateSpec(
                name="remove_finalizer",
                steps=(StepSpec(name=REMOVE_FINALIZER, retry=act),),
                on_done="done",
            ),
            StateSpec(name="done", terminal=OperationStatus.SUCCEEDED),
        ),
    )
