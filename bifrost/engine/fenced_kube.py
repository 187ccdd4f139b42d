"""The cluster port the steps are built with: every write re-checks, just before it is sent,
that the runner still holds the operation and still leads.

The store fences its own writes (``bifrost.store.fence``), but the API server knows nothing of
operation leases: a runner frozen mid-step (SIGSTOP, a VM pause, a long evaluation) that wakes
after its successor moved on would otherwise still send the stale body it computed. So each
write through :class:`FencedKube` made inside a step (while the runner's ``StepFence`` is set)
first

1. asks the fence's ``term_current``: the leadership term the runner was started in goes on
   (the term's stop event is not set and the leader elector still holds the Lease), and
2. asks the store (``check_step_lease``, one indexed read): the operation is still leased to
   this runner at the version, step and attempt it began, and the lease has not expired by the
   runner's clock (which follows the database's in production).

If either fails it raises the store's ``LeaseLost`` and sends nothing; the runner drops the work
as for a fenced-off store write. Reads pass through unchecked, and so does everything outside a
step (the observer's status writes, tests calling a step directly).

What remains is the window between the check and the request reaching the API server (a pause
exactly there); writes that carry preconditions (``resourceVersion``/``uid`` of what the step
read, see ``bifrost.steps.preconditions``) are refused by the API server even then.
"""

from __future__ import annotations

from typing import Literal

from bifrost.api.objects import Obj
from bifrost.kube.client import DEFAULT_FIELD_MANAGER, Patch
from bifrost.kube.ports import Kube
from bifrost.store.errors import LeaseLost
from bifrost.store.fence import current_fence
from bifrost.store.interface import OperationStore

__all__ = ["FencedKube", "check_fence"]


def check_fence(store: OperationStore, what: str) -> None:
    """LeaseLost unless the step running in this thread (if any) may still write ``what``."""
    fence = current_fence()
    if fence is None:
        return
    if fence.term_current is not None and not fence.term_current():
        raise LeaseLost(
            f"operation {fence.operation_id}: the leadership term of {fence.owner!r} ended; "
            f"not sending {what}"
        )
    if fence.now is None:
        raise LeaseLost(f"operation {fence.operation_id}: a step fence without a clock cannot "
                        f"judge its lease; not sending {what}")
    store.check_step_lease(fence, now=fence.now())


def _what(verb: str, kind: str, name: str | None, namespace: str | None) -> str:
    where = f"{namespace}/{name}" if namespace else str(name)
    return f"{verb} of {kind} {where}"


def _obj_what(verb: str, obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return _what(verb, str(obj.get("kind")), meta.get("name"), meta.get("namespace"))


class FencedKube:
    """A :class:`~bifrost.kube.ports.Kube` whose writes inside a step are fenced (see the
    module docstring); ``inner`` does the work."""

    def __init__(self, inner: Kube, store: OperationStore) -> None:
        self.inner = inner
        self.store = store

    # ---- reads: unchecked ---------------------------------------------------------------
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        return self.inner.get(api_version, kind, name, namespace)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        metadata_only: bool = False,
    ) -> tuple[list[Obj], str]:
        return self.inner.list(api_version, kind, namespace, label_selector=label_selector,
                               field_selector=field_selector, page_size=page_size,
                               metadata_only=metadata_only)

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return self.inner.is_namespaced(api_version, kind)

    def plural(self, api_version: str, kind: str) -> str:
        return self.inner.plural(api_version, kind)

    # ---- writes: fenced -----------------------------------------------------------------
    def create(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        if not dry_run:
            check_fence(self.store, _obj_what("create", obj))
        return self.inner.create(obj, namespace=namespace, field_manager=field_manager,
                                 dry_run=dry_run)

    def replace(self, obj: Obj, *, field_manager: str | None = None) -> Obj:
        check_fence(self.store, _obj_what("replace", obj))
        return self.inner.replace(obj, field_manager=field_manager)

    def apply(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj:
        check_fence(self.store, _obj_what("apply", obj))
        return self.inner.apply(obj, field_manager=field_manager, force=force)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Patch,
        *,
        patch_type: Literal["merge", "json", "strategic"] = "merge",
        field_manager: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        check_fence(self.store, _what("patch", kind, name, namespace))
        return self.inner.patch(api_version, kind, name, namespace, patch,
                                patch_type=patch_type, field_manager=field_manager,
                                subresource=subresource)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: Literal["Background", "Foreground", "Orphan"] = "Background",
    ) -> bool:
        check_fence(self.store, _what("delete", kind, name, namespace))
        return self.inner.delete(api_version, kind, name, namespace, uid=uid,
                                 resource_version=resource_version, propagation=propagation)

    def apply_status(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj:
        check_fence(self.store, _obj_what("status apply", obj))
        return self.inner.apply_status(obj, field_manager=field_manager, force=force)

    def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        status: Obj,
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        resource_version: str | None = None,
    ) -> Obj:
        check_fence(self.store, _what("status patch", kind, name, namespace))
        return self.inner.patch_status(api_version, kind, name, namespace, status,
                                       field_manager=field_manager,
                                       resource_version=resource_version)


def _fenced_kube_is_a_kube(kube: FencedKube) -> Kube:
    """Type-checked only: the wrapper satisfies the port it wraps."""
    return kube
