"""A :class:`~bifrost.kube.ports.Kube` that forwards every call to another one — the base of the
wrappers that change a little of what passes through: the engine's fence (a check before every
write), the rotation's preconditions (what an apply carries) and the controller's cached reads
(where a read is answered, what a write leaves behind).

A subclass overrides the calls it changes, or one of the two hooks every write goes through:
:meth:`KubeDelegate.before_write` (told the verb and the object before the request; raise to
send nothing) and :meth:`KubeDelegate.after_write` (given what the API server returned).
"""

from __future__ import annotations

from typing import Literal

from bifrost.api.objects import Obj
from bifrost.kube.client import DEFAULT_FIELD_MANAGER, Patch
from bifrost.kube.ports import Kube

__all__ = ["KubeDelegate"]


def _named(obj: Obj) -> tuple[str, str | None, str | None]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind")), meta.get("name"), meta.get("namespace")


class KubeDelegate:
    """Forwards every call of the port to ``inner`` (see the module docstring)."""

    def __init__(self, inner: Kube) -> None:
        self.inner = inner

    # ---- hooks ----------------------------------------------------------------------------

    def before_write(self, verb: str, kind: str, name: str | None,
                     namespace: str | None) -> None:
        """Called before every write request (not a dry run); raise to send nothing."""

    def after_write(self, obj: Obj) -> Obj:
        """Given every object a write returned; returns what the caller gets."""
        return obj

    # ---- reads ----------------------------------------------------------------------------

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

    # ---- writes ---------------------------------------------------------------------------

    def create(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        if dry_run:
            return self.inner.create(obj, namespace=namespace, field_manager=field_manager,
                                     dry_run=True)
        self.before_write("create", *_named(obj))
        return self.after_write(self.inner.create(obj, namespace=namespace,
                                                  field_manager=field_manager))

    def replace(self, obj: Obj, *, field_manager: str | None = None) -> Obj:
        self.before_write("replace", *_named(obj))
        return self.after_write(self.inner.replace(obj, field_manager=field_manager))

    def apply(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj:
        self.before_write("apply", *_named(obj))
        return self.after_write(self.inner.apply(obj, field_manager=field_manager, force=force))

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
        self.before_write("patch", kind, name, namespace)
        return self.after_write(self.inner.patch(
            api_version, kind, name, namespace, patch, patch_type=patch_type,
            field_manager=field_manager, subresource=subresource))

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
        self.before_write("delete", kind, name, namespace)
        return self.inner.delete(api_version, kind, name, namespace, uid=uid,
                                 resource_version=resource_version, propagation=propagation)

    def apply_status(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj:
        self.before_write("status apply", *_named(obj))
        return self.after_write(self.inner.apply_status(obj, field_manager=field_manager,
                                                        force=force))

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
        self.before_write("status patch", kind, name, namespace)
        return self.after_write(self.inner.patch_status(
            api_version, kind, name, namespace, status, field_manager=field_manager,
            resource_version=resource_version))


def _delegate_is_a_kube(kube: KubeDelegate) -> Kube:
    """Type-checked only: the delegate satisfies the port it wraps."""
    return kube
