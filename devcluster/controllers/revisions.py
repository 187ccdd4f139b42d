"""ControllerRevisions, the template history of StatefulSets and DaemonSets.

Each distinct pod template of an owner is stored once as ``<owner>-<hash>`` with
``data.spec.template`` (``$patch: replace``) and a ``revision`` number; bringing an old template
back gives its revision the next number (what ``kubectl rollout history``/``undo`` read). Old
revisions no pod uses are deleted beyond ``revisionHistoryLimit``.
"""

from __future__ import annotations

import copy
from typing import Any

from devcluster.controllers.hashing import pod_template_hash
from devcluster.controllers.pods import controller_ref, owned_by
from devcluster.controllers.runtime import Writer
from devcluster.storage import Store

__all__ = ["CR", "Revision", "sync_revision", "template_of", "truncate_history"]

JSON = dict[str, Any]
CR = ("apps", "controllerrevisions")


class Revision:
    """The name, hash and number of an owner's current template revision."""

    def __init__(self, name: str, hash_: str, number: int) -> None:
        self.name = name
        self.hash = hash_
        self.number = number


def _owned(store: Store, owner: JSON) -> list[JSON]:
    ns = owner["metadata"].get("namespace") or ""
    uid = owner["metadata"]["uid"]
    return [cr for cr in store.list_objects(CR, ns)[1] if owned_by(cr, uid)]


def sync_revision(store: Store, writer: Writer, owner: JSON) -> Revision:
    """The revision of the owner's current template, created (or renumbered) as needed."""
    spec = owner.get("spec") or {}
    template = spec.get("template") or {}
    collision = int((owner.get("status") or {}).get("collisionCount") or 0)
    h = pod_template_hash(template, collision)
    name = f"{owner['metadata']['name']}-{h}"
    ns = owner["metadata"].get("namespace") or ""
    owned = _owned(store, owner)
    latest = max((int(cr.get("revision") or 0) for cr in owned), default=0)
    existing = next((cr for cr in owned if cr["metadata"]["name"] == name), None)
    if existing is not None:
        number = int(existing.get("revision") or 0)
        if number < latest:
            new = copy.deepcopy(existing)
            new["revision"] = latest + 1
            writer.update(CR, new)
            number = latest + 1
        return Revision(name, h, number)
    labels = dict((spec.get("selector") or {}).get("matchLabels") or {})
    labels["controller-revision-hash"] = h
    body: JSON = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [controller_ref(owner)],
        },
        "data": {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}},
        "revision": latest + 1,
    }
    writer.create(CR, ns, body)
    return Revision(name, h, latest + 1)


def template_of(store: Store, namespace: str, name: str) -> JSON | None:
    """The pod template stored in revision ``name``."""
    cr = store.get(CR, namespace, name)
    if cr is None:
        return None
    template = copy.deepcopy(((cr.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def truncate_history(store: Store, writer: Writer, owner: JSON, live: set[str]) -> None:
    """Delete the oldest revisions not in ``live`` beyond ``revisionHistoryLimit``."""
    limit = int((owner.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
    old = sorted(
        (cr for cr in _owned(store, owner) if cr["metadata"]["name"] not in live),
        key=lambda cr: int(cr.get("revision") or 0),
    )
    for cr in old[: max(0, len(old) - limit)]:
        meta = cr["metadata"]
        writer.delete(CR, meta.get("namespace") or "", meta["name"], uid=meta.get("uid"))
