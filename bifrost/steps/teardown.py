"""Teardown steps: delete a Gateway's children in the blueprint's declared delete order, then
remove bifrost's finalizer from the Gateway.

``delete_children`` works from the store's inventory, so it deletes cluster-scoped children,
per-route children (``routeChildren``) and children of templates removed since they were applied,
which the cluster's garbage collector would leak. Groups are deleted one after the other, each
waited for until it is gone (see ``bifrost.steps.provision.deletion_waves``); an object labelled
with another Gateway's uid (a Gateway re-created under the same name) is never deleted.

``remove_finalizer`` is the last state: a JSON patch that tests the finalizer's position and the
Gateway's uid before removing it, so it cannot remove another entry or touch a re-created Gateway.
"""

from __future__ import annotations

from datetime import timedelta

from bifrost.engine import (
    Done,
    NoInput,
    NotDone,
    Outcome,
    Retry,
    Step,
    StepContext,
    StepOutput,
    Wait,
)
from bifrost.kube import Kube, KubeError, Retryable
from bifrost.machines.teardown import (
    GATEWAY_FINALIZER,
    TeardownContext,
)
from bifrost.render import Blueprint, RenderError
from bifrost.steps.kube_outcomes import outcome_for
from bifrost.steps.ownership import GATEWAY_API
from bifrost.steps.provision import (
    BlueprintSource,
    ClusterBlueprints,
    DeletionProgress,
    delete_in_waves,
    record_key,
    record_wait_key,
)
from bifrost.steps.tls import delete_certificate_object
from bifrost.store.interface import OperationStore


class ChildrenDeleted(StepOutput):
    """``delete_children`` deleted the inventory: the child ids deleted so far, and those left
    alone because they are labelled with another Gateway's uid."""

    deleted: tuple[str, ...]
    not_ours: tuple[str, ...]


class NoChildrenLeft(StepOutput):
    """``delete_children`` found the inventory empty (e.g. a re-run after the deletions): the
    child ids deleted so far."""

    deleted: tuple[str, ...]


class DeleteChildrenInOrder(Step[NoInput, ChildrenDeleted | NoChildrenLeft]):
    """``delete_children`` of the teardown machine (see the module docstring)."""

    input_model = NoInput

    def __init__(
        self,
        kube: Kube,
        store: OperationStore,
        *,
        blueprints: BlueprintSource | None = None,
        recheck: timedelta = timedelta(seconds=0.2),
    ) -> None:
        self.kube = kube
        self.store = store
        self.blueprints: BlueprintSource = blueprints or ClusterBlueprints(kube)
        self.recheck = recheck

    def execute(self, ctx: StepContext[TeardownContext],
                input: NoInput) -> Outcome[ChildrenDeleted | NoChildrenLeft]:
        c = ctx.context
        # Every inventory row: the Gateway's children and the per-route children (route_key).
        records = self.store.list_children(c.gateway_uid)
        if not records:
            pending = self._certificate_secrets(c)
            return pending or Done(output=NoChildrenLeft(deleted=c.deleted))
        blueprint: Blueprint | None = None
        if c.blueprint:
            try:
                raw = self.blueprints.get(c.blueprint)
                blueprint = Blueprint.from_dict(raw) if raw is not None else None
            except (KubeError, RenderError):
                blueprint = None  # the inventory's order still applies
        progress = delete_in_waves(self.kube, self.store, gateway_uid=c.gateway_uid,
                                   records=records, blueprint=blueprint)
        if not isinstance(progress, DeletionProgress):
            return progress
        context = c.model_copy(
            update={"deleted": tuple(dict.fromkeys((*c.deleted, *progress.gone)))}
        )
        if progress.remaining:
            remaining = set(progress.remaining)
            return Wait("waiting for " + ", ".join(progress.remaining) + " to be deleted",
                        self.recheck, context=context,
                        on=tuple(sorted(record_wait_key(r) for r in records
                                        if record_key(r) in remaining)))
        pending = self._certificate_secrets(context)
        if pending is not None:
            return pending
        return Done(output=ChildrenDeleted(deleted=context.deleted, not_ours=progress.foreign),
                    context=context)

    def _certificate_secrets(self, c: TeardownContext) -> NotDone | None:
        """Last: the Secrets the certificates produced (an issuer does not delete them); None
        when they are all gone."""
        for cert in self.store.list_certificates(gateway_uid=c.gateway_uid):
            gone = delete_certificate_object(self.kube, self.store, gateway_uid=c.gateway_uid,
                                             record=cert, namespace=c.namespace)
            if not isinstance(gone, bool):
                return gone
            if not gone:
                return Wait(f"waiting for the Secret of certificate {cert.object_name} to be "
                            "deleted", self.recheck)
        return None


class FinalizerRemoved(StepOutput):
    """``remove_finalizer``: whether this step removed the finalizer (False: the Gateway was
    gone, re-created or had none)."""

    finalizer_removed: bool


class RemoveFinalizer(Step[NoInput, FinalizerRemoved]):
    """``remove_finalizer``: drop ``gateway.bifrost.dev/finalizer`` from the Gateway (JSON patch);
    done when the Gateway is gone, re-created (another uid) or has no such finalizer."""

    input_model = NoInput

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def execute(self, ctx: StepContext[TeardownContext],
                input: NoInput) -> Outcome[FinalizerRemoved]:
        c = ctx.context
        doing = f"removing finalizer {GATEWAY_FINALIZER} from Gateway {c.namespace}/{c.gateway}"
        try:
            gateway = self.kube.get(GATEWAY_API, "Gateway", c.gateway, c.namespace)
        except KubeError as e:
            return outcome_for(e, doing=doing)
        meta = (gateway or {}).get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if gateway is None or meta.get("uid") != c.gateway_uid \
                or GATEWAY_FINALIZER not in finalizers:
            return Done(output=FinalizerRemoved(finalizer_removed=False),
                        context=c.model_copy(update={"finalizer_removed": True}))
        index = finalizers.index(GATEWAY_FINALIZER)
        patch = [
            {"op": "test", "path": "/metadata/uid", "value": c.gateway_uid},
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": GATEWAY_FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        try:
            self.kube.patch(GATEWAY_API, "Gateway", c.gateway, c.namespace, patch,
                            patch_type="json")
        except Retryable as e:
            return outcome_for(e, doing=doing)
        except KubeError as e:
            # A failed test (the finalizers moved under us) or a Gateway that vanished: re-read.
            return Retry(f"{doing}: {e}", backoff=timedelta(seconds=0.1))
        return Done(output=FinalizerRemoved(finalizer_removed=True),
                    context=c.model_copy(update={"finalizer_removed": True}))
