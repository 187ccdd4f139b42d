"""Live enrichment of ``bifrost-admin show`` from the cluster (``--kubeconfig``).

The store says what bifrost did; the API server says what the Gateway looks like now. Putting
the two side by side answers "is what I see in the database what users see on the Gateway?":
its conditions, listener status and addresses, and whether the live object is the one the
store's record is about (same uid; a Gateway re-created under the same name is a new one).

The cluster is read through ``bifrost.kube`` (the only importer of ``kubernetes``), imported
only when ``--kubeconfig`` is given so that the store-only commands stay light. An unreachable
or refusing cluster is an ``AdminError`` (one line, exit 1), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bifrost.admin.errors import AdminError
from bifrost.admin.views import ConditionView, ListenerView, LiveGateway

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _conditions(raw: object) -> tuple[ConditionView, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        out.append(
            ConditionView(
                type=str(item.get("type", "")),
                status=str(item.get("status", "")),
                reason=_str(item.get("reason")),
                message=_str(item.get("message")),
                observed_generation=_int(item.get("observedGeneration")),
                last_transition_time=_str(item.get("lastTransitionTime")),
            )
        )
    return tuple(out)


def live_view(obj: dict[str, Any] | None, *, store_uid: str, source: str) -> LiveGateway:
    """The live Gateway object (or its absence) as a view."""
    if obj is None:
        return LiveGateway(
            source=source, found=False, uid=None, generation=None, store_uid_matches=None,
            conditions=(), listeners=(), addresses=(),
        )
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    assert isinstance(meta, dict) and isinstance(status, dict)
    uid = _str(meta.get("uid"))
    listeners = []
    for item in status.get("listeners") or ():
        if isinstance(item, dict):
            listeners.append(
                ListenerView(
                    name=str(item.get("name", "")),
                    attached_routes=_int(item.get("attachedRoutes")),
                    conditions=_conditions(item.get("conditions")),
                )
            )
    addresses = tuple(
        str(a.get("value")) for a in status.get("addresses") or () if isinstance(a, dict)
    )
    return LiveGateway(
        source=source,
        found=True,
        uid=uid,
        generation=_int(meta.get("generation")),
        store_uid_matches=uid == store_uid if uid is not None else None,
        conditions=_conditions(status.get("conditions")),
        listeners=tuple(listeners),
        addresses=addresses,
    )


def read_live(
    kubeconfig: str, *, context: str | None, namespace: str, name: str, store_uid: str
) -> LiveGateway:
    """Read the Gateway from the cluster of ``kubeconfig`` (one GET)."""
    if not Path(kubeconfig).expanduser().is_file():
        raise AdminError(f"kubeconfig {kubeconfig} does not exist")
    from bifrost.kube.client import KubeClient
    from bifrost.kube.errors import KubeError

    try:
        client = KubeClient.from_kubeconfig(Path(kubeconfig).expanduser(), context)
    except KubeError as exc:
        raise AdminError(f"cannot use kubeconfig {kubeconfig}: {exc}") from None
    except Exception as exc:  # the library's own config errors (bad file, unknown context)
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise AdminError(f"cannot use kubeconfig {kubeconfig}: {message}") from None
    with client:
        try:
            obj = client.get(GATEWAY_API_VERSION, "Gateway", name, namespace)
        except KubeError as exc:
            raise AdminError(
                f"cluster at {client.host} did not answer for Gateway {namespace}/{name}: "
                + " ".join(str(exc).split())
            ) from None
        return live_view(obj, store_uid=store_uid, source=client.host)
