"""The bench of the step API-error tests: a FakeKube holding Gateway ``shop/edge`` and a
blueprint with two ConfigMap children, a SQLite store that knows the Gateway, and a
:class:`StepBench` that runs one step of a provision or teardown operation directly (no runner,
no server) and returns its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from support.fake_kube import FakeKube

from bifrost.api.objects import Obj, meta
from bifrost.clock import ManualClock
from bifrost.engine import StepContext, idempotency_key, start_operation
from bifrost.engine.step import StepOutcome
from bifrost.machines.provision import ProvisionContext, provision_spec
from bifrost.machines.spec import MachineSpec
from bifrost.machines.teardown import TeardownContext, teardown_spec
from bifrost.records import ChildRecord
from bifrost.steps.provision import ApplyChildren
from bifrost.steps.teardown import DeleteChildrenInOrder, RemoveFinalizer
from bifrost.store import SqlStore

GATEWAY_API = "gateway.networking.k8s.io/v1"
NAMESPACE = "shop"
BLUEPRINT = "edge-bp"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _config_map_child(child_id: str) -> dict[str, Any]:
    return {"id": child_id,
            "template": "apiVersion: v1\nkind: ConfigMap\n"
                        f"metadata: {{name: '{{{{ gateway.metadata.name }}}}-{child_id}'}}\n"
                        "data: {k: v}\n"}


def blueprint() -> Obj:
    return {
        "apiVersion": "gateway.bifrost.dev/v1alpha1", "kind": "GatewayClassBlueprint",
        "metadata": {"name": BLUEPRINT},
        "spec": {"children": [_config_map_child("first"), _config_map_child("second")]},
    }


@dataclass
class StepBench:
    kube: FakeKube
    store: SqlStore
    clock: ManualClock
    gateway: Obj

    @property
    def uid(self) -> str:
        return str(meta(self.gateway)["uid"])

    def _run(self, spec: MachineSpec, step_name: str, context: BaseModel,
             impl: Any) -> StepOutcome:
        # a lane per machine: a test may run a teardown step after provisioning in the same store
        operation = start_operation(self.store, spec, gateway_uid=self.uid, namespace=NAMESPACE,
                                    name="edge", context=context, clock=self.clock, actor="test",
                                    lane=spec.name)
        state, step = next((s, st) for s, st in spec.steps() if st.name == step_name)
        ctx: StepContext[Any] = StepContext(
            operation=operation, machine=spec, state=state, step=step, context=context,
            attempt=1, clock=self.clock, actor="test",
            idempotency_key=idempotency_key(self.uid, operation.id, step_name),
            started_at=self.clock.now())
        outcome: StepOutcome = impl.run(ctx, None)
        return outcome

    def apply_children(self) -> StepOutcome:
        """``apply_children`` of a new provision operation of the Gateway."""
        context = ProvisionContext(namespace=NAMESPACE, gateway="edge", gateway_uid=self.uid,
                                   blueprint=BLUEPRINT)
        return self._run(provision_spec(), "apply_children", context,
                         ApplyChildren(self.kube, self.store))

    def _teardown(self, step_name: str, impl: Any) -> StepOutcome:
        context = TeardownContext(namespace=NAMESPACE, gateway="edge", gateway_uid=self.uid,
                                  blueprint=BLUEPRINT)
        return self._run(teardown_spec(), step_name, context, impl)

    def delete_children(self) -> StepOutcome:
        """``delete_children`` of a new teardown operation of the Gateway."""
        return self._teardown("delete_children", DeleteChildrenInOrder(self.kube, self.store))

    def remove_finalizer(self) -> StepOutcome:
        """``remove_finalizer`` of a new teardown operation of the Gateway."""
        return self._teardown("remove_finalizer", RemoveFinalizer(self.kube))

    def children(self) -> dict[str, ChildRecord]:
        return {r.child_id: r for r in self.store.list_children(self.uid)}

    def config_map(self, child_id: str) -> Obj | None:
        return self.kube.get("v1", "ConfigMap", f"edge-{child_id}", NAMESPACE)
