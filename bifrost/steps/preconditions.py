"""Preconditions for writes based on a read: the API server refuses a stale body itself.

The engine fences every cluster write of a step (``bifrost.engine.fenced_kube``: the operation
lease and the leader term are re-checked just before the request), but a runner can still pause
between that check and the request reaching the API server. For the writes that matter most —
a rotation attaching or detaching a certificate re-applies the children — the body also carries
the ``uid`` and ``resourceVersion`` of the object as the step read it: if anything wrote the
object since (a successor's attach, detach or drift repair), the API server answers 409
Conflict and writes nothing, whatever the fence saw. A 409 is retryable: the step re-runs,
re-reads and decides again.

:class:`PreconditionedKube` wraps a ``Kube``; inside :meth:`PreconditionedKube.remembering`
(one step attempt) it remembers what each ``get`` returned and adds those preconditions to an
``apply`` of the same object (server-side apply takes ``metadata.resourceVersion`` as a
precondition). Objects not read in the scope (or read as absent) are applied as they are;
outside the scope the wrapper changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from bifrost.api.objects import Obj
from bifrost.kube.client import DEFAULT_FIELD_MANAGER
from bifrost.kube.delegate import KubeDelegate
from bifrost.kube.ports import Kube

__all__ = ["PreconditionedKube"]

_Key = tuple[str, str, str, str]  # api_version, kind, namespace ("" when cluster-scoped), name
_Read = tuple[str, str]  # uid, resourceVersion

_READS: ContextVar[dict[_Key, _Read] | None] = ContextVar("bifrost_reads", default=None)


def _key(api_version: str, kind: str, name: str, namespace: str | None) -> _Key:
    return (api_version, kind, namespace or "", name)


def _remember(reads: dict[_Key, _Read], key: _Key, obj: Obj | None) -> None:
    meta = (obj or {}).get("metadata") or {}
    uid, rv = meta.get("uid"), meta.get("resourceVersion")
    if obj is None or not uid or not rv:
        reads.pop(key, None)
    else:
        reads[key] = (str(uid), str(rv))


class PreconditionedKube(KubeDelegate):
    """A ``Kube`` adding the read object's uid and resourceVersion to applies (see above)."""

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Remember reads (and precondition applies on them) within the block."""
        token = _READS.set({})
        try:
            yield
        finally:
            _READS.reset(token)

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        obj = self.inner.get(api_version, kind, name, namespace)
        reads = _READS.get()
        if reads is not None:
            _remember(reads, _key(api_version, kind, name, namespace), obj)
        return obj

    def apply(
        self, obj: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> Obj:
        reads = _READS.get()
        meta = obj.get("metadata") or {}
        key = _key(str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("name")),
                   meta.get("namespace"))
        read = reads.get(key) if reads is not None else None
        body = obj
        if read is not None:
            body = copy.copy(obj)
            body["metadata"] = {**meta, "uid": read[0], "resourceVersion": read[1]}
        applied = super().apply(body, field_manager=field_manager, force=force)
        if reads is not None:
            _remember(reads, key, applied)  # our own write is the latest read
        return applied


def _preconditioned_kube_is_a_kube(kube: PreconditionedKube) -> Kube:
    """Type-checked only: the wrapper satisfies the port it wraps."""
    return kube
