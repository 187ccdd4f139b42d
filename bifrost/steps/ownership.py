"""How bifrost marks what it creates for a Gateway, shared by every step that applies objects
(children, route children, listener certificates): the gateway-uid label, the owner reference to
the Gateway, and the hash of an applied body that decides whether a re-apply is needed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["GATEWAY_API", "GATEWAY_UID_LABEL", "body_hash", "gateway_owner_reference", "owned_by"]

GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_UID_LABEL = "gateway.bifrost.dev/gateway-uid"


def body_hash(body: Mapping[str, Any]) -> str:
    """sha256 of the applied body in canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def gateway_owner_reference(name: str, uid: str) -> dict[str, Any]:
    """The controller owner reference to the Gateway (garbage collection as a fallback)."""
    return {"apiVersion": GATEWAY_API, "kind": "Gateway", "name": name, "uid": uid,
            "controller": True, "blockOwnerDeletion": True}


def owned_by(live: Mapping[str, Any], gateway_uid: str) -> bool:
    """Whether an object carries this Gateway's uid label (bifrost never touches others')."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(GATEWAY_UID_LABEL) == gateway_uid)
