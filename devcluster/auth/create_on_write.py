"""``create`` is authorized too when a write that is not a POST creates the object.

A server-side apply (PATCH) or an update (PUT) of an object that does not exist creates it; the
URL only asked for ``patch`` or ``update``, which is what the request was authorized for. As
upstream (the API server's create-on-update/apply authorization), the requester must also be
allowed to ``create`` it, else the write is refused with the usual 403 naming the ``create``
verb. An :attr:`~devcluster.handlers.Api.admission` check: it runs for every write with a
requester; for a POST (already authorized for ``create``) it decides again, the same way.
"""

from __future__ import annotations

from devcluster.auth import UserInfo
from devcluster.auth.attributes import Attributes, forbidden
from devcluster.auth.escalation import Decide
from devcluster.handlers import JSON, Target

__all__ = ["CreateOnWriteCheck"]


class CreateOnWriteCheck:
    """Refuses the creation of an object its requester may not ``create``."""

    def __init__(self, decide: Decide) -> None:
        self.decide = decide

    def __call__(self, t: Target, obj: JSON, old: JSON | None, user: UserInfo) -> None:
        if old is not None or t.subresource:
            return
        meta = obj.get("metadata") or {}
        attrs = Attributes(
            user,
            "create",
            True,
            t.rt.group,
            t.version,
            t.rt.plural,
            "",
            str(meta.get("namespace") or t.namespace or ""),
            str(meta.get("name") or ""),
        )
        allowed, reason = self.decide(attrs)
        if not allowed:
            raise forbidden(attrs, reason)
