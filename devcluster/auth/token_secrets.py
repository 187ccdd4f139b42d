"""The legacy token controller (in-process, like kube-controller-manager's tokens controller):
a Secret of type ``kubernetes.io/service-account-token`` annotated
``kubernetes.io/service-account.name: <sa>`` gets ``data.token`` (a non-expiring token for that
ServiceAccount), ``data["ca.crt"]`` (the cluster CA) and ``data.namespace``, and the annotation
``kubernetes.io/service-account.uid``, a moment after it is created (poll for it).

As upstream, such a Secret whose ServiceAccount does not exist (or has another uid than the
annotation says) is deleted, so deleting a ServiceAccount deletes its token Secrets; their tokens
stop working at once either way (:class:`~devcluster.auth.tokens.TokenAuthority` checks both).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from devcluster.auth.certificates import ClusterCA
from devcluster.auth.tokens import SA_TOKEN_TYPE, TokenAuthority
from devcluster.handlers import Api
from devcluster.storage import Event
from devcluster.wakeloop import WakeLoop

__all__ = ["TokenSecretsController"]

JSON = dict[str, Any]

_SECRETS = ("", "secrets")
_SA = ("", "serviceaccounts")
SA_NAME = "kubernetes.io/service-account.name"
SA_UID = "kubernetes.io/service-account.uid"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class TokenSecretsController:
    """Fills and garbage-collects token Secrets (see the module docstring)."""

    def __init__(self, api: Api, tokens: TokenAuthority, ca: ClusterCA) -> None:
        self.api = api
        self.tokens = tokens
        self.ca = ca
        self._loop = WakeLoop("devcluster-token-secrets", self._run_pass)
        api.store.add_listener(self._changed)

    def _changed(self, ev: Event) -> None:
        if ev.key == _SA or (ev.key == _SECRETS and ev.obj.get("type") == SA_TOKEN_TYPE):
            self._loop.wake()

    def _run_pass(self) -> bool:
        self.run_once()
        return False

    def run_once(self) -> None:
        secrets_rt = self.api.registry.by_key(_SECRETS)
        if secrets_rt is None:
            return
        _, secrets = self.api.store.list_objects(_SECRETS)
        for secret in secrets:
            if secret.get("type") != SA_TOKEN_TYPE:
                continue
            meta = secret["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            ns = meta.get("namespace") or ""
            annotations = meta.get("annotations") or {}
            sa = self.api.store.get(_SA, ns, str(annotations.get(SA_NAME) or ""))
            wanted_uid = annotations.get(SA_UID)
            if sa is None or (wanted_uid and wanted_uid != sa["metadata"].get("uid")):
                self.api.internal_delete(secrets_rt, ns, meta["name"])
                continue
            data = secret.get("data") or {}
            if data.get("token") and wanted_uid and "ca.crt" in data and "namespace" in data:
                continue
            new = copy.deepcopy(secret)
            new_meta = new["metadata"]
            new_meta.setdefault("annotations", {})[SA_UID] = sa["metadata"].get("uid", "")
            new_data = new.setdefault("data", {})
            if not data.get("token"):
                new_data["token"] = _b64(self.tokens.legacy_token(sa, meta["name"]).encode())
            new_data["ca.crt"] = _b64(self.ca.cert_pem())
            new_data["namespace"] = _b64(ns.encode())
            self.api.internal_write(secrets_rt, secret, new)

    def start(self) -> None:
        self._loop.start(run_now=True)

    def stop(self) -> None:
        self._loop.stop()
