"""Editing an object a controller also writes: read, change, replace, and read again on a 409.

A test that edits a Gateway, a route or a policy while the controller runs races the
controller's own writes (status, finalizers): a replace built from a read that is one write old
fails with 409 Conflict. Every Kubernetes client answers that the same way (client-go calls it
``RetryOnConflict``): read the object again, make the same change, replace again. ``edit`` is
that loop, so no test replaces a live object without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bifrost.kube.errors import Conflict
from bifrost.kube.ports import Kube

Obj = dict[str, Any]


def edit(
    kube: Kube,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    change: Callable[[Obj], object],
    *,
    attempts: int = 20,
) -> Obj:
    """Apply ``change`` (which edits the object in place) to the live object; the replaced object.

    Each 409 reads the object again and applies ``change`` to the fresh copy, up to ``attempts``
    times; a missing object or more conflicts fail the test with the object's name.
    """
    where = f"{kind} {namespace + '/' if namespace else ''}{name}"
    for _ in range(attempts):
        live = kube.get(api_version, kind, name, namespace)
        if live is None:
            raise AssertionError(f"cannot edit {where}: it does not exist")
        change(live)
        try:
            return kube.replace(live)
        except Conflict:
            continue  # written meanwhile (status, finalizers): read it again
    raise AssertionError(f"cannot edit {where}: {attempts} conflicts in a row")
