"""Everything authentication and authorization the devcluster runs, put together for
:class:`~devcluster.server.DevCluster`.

``authorization="RBAC"`` (the default, like a real cluster): :class:`RbacAuth` over the stored
RBAC objects, with the bootstrap policy (:mod:`devcluster.auth.bootstrap`).
``authorization="AlwaysAllow"``: :class:`~devcluster.auth.AllowAll`, every request is the admin.
Both modes issue tokens (TokenRequest, token Secrets), answer the review kinds, keep aggregated
ClusterRoles current and write the admin token into the kubeconfig.

With a state file, the admin token, the token-signing key and the cluster CA are kept next to
it (``<state-file>.auth.json``, mode 0600), so tokens and kubeconfigs survive a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from devcluster.auth import AllowAll, Auth, UserInfo
from devcluster.auth.aggregation import AggregationController
from devcluster.auth.bootstrap import ensure_bootstrap_policy
from devcluster.auth.certificates import ClusterCA
from devcluster.auth.enforcing import RbacAuth
from devcluster.auth.rbac import RbacAuthorizer
from devcluster.auth.reviews import Decider, register_reviews
from devcluster.auth.token_request import register_token_request
from devcluster.auth.token_secrets import TokenSecretsController
from devcluster.auth.tokens import TokenAuthority
from devcluster.handlers import Api

__all__ = ["AUTHORIZATION_MODES", "AuthService"]

AUTHORIZATION_MODES = ("RBAC", "AlwaysAllow")


def _secrets_file(state_file: Path | None) -> Path | None:
    return None if state_file is None else state_file.with_name(state_file.name + ".auth.json")


def _load(path: Path | None) -> dict[str, str]:
    if path is None or not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _pem(saved: dict[str, str], key: str) -> bytes | None:
    return saved[key].encode() if key in saved else None


def _save(path: Path, tokens: TokenAuthority, ca: ClusterCA) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(
        {
            "adminToken": tokens.admin_token,
            "signingKey": tokens.signing_key_pem().decode(),
            "caKey": ca.key_pem().decode(),
            "caCert": ca.cert_pem().decode(),
        }
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class AuthService:
    """Tokens, the CA, the authorizer, the review and TokenRequest handlers and the two
    controllers."""

    def __init__(
        self,
        api: Api,
        *,
        authorization: str = "RBAC",
        admin_token: str | None = None,
        state_file: Path | None = None,
    ) -> None:
        if authorization not in AUTHORIZATION_MODES:
            raise ValueError(
                f"authorization must be one of {', '.join(AUTHORIZATION_MODES)}: {authorization!r}"
            )
        self.api = api
        self.authorization = authorization
        secrets_file = _secrets_file(state_file)
        saved = _load(secrets_file)
        self.tokens = TokenAuthority(
            api.store,
            admin_token=admin_token or saved.get("adminToken"),
            signing_key_pem=_pem(saved, "signingKey"),
        )
        self.ca = ClusterCA(_pem(saved, "caKey"), _pem(saved, "caCert"))
        if secrets_file is not None and (
            saved.get("adminToken") != self.tokens.admin_token or "caCert" not in saved
        ):
            _save(secrets_file, self.tokens, self.ca)
        self.auth: Auth
        decider: Decider
        if authorization == "RBAC":
            rbac = RbacAuth(self.tokens, RbacAuthorizer(api.store))
            self.auth, decider = rbac, rbac
        else:
            allow = AllowAll()
            self.auth, decider = allow, allow
        register_token_request(api, self.tokens)
        register_reviews(api, decider, self.tokens)
        self.aggregation = AggregationController(api)
        self.token_secrets = TokenSecretsController(api, self.tokens, self.ca)

    @property
    def admin_token(self) -> str:
        return self.tokens.admin_token

    def add_token(self, token: str, user: UserInfo) -> None:
        """Let ``token`` authenticate as ``user`` (a static token, for tests)."""
        self.tokens.add_static(token, user)

    def bootstrap(self) -> None:
        """The bootstrap RBAC policy, with aggregated roles filled in (call after the store is
        loaded)."""
        ensure_bootstrap_policy(self.api)
        self.aggregation.run_once()

    def start(self) -> None:
        self.aggregation.start()
        self.token_secrets.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.aggregation.stop()
        with contextlib.suppress(Exception):
            self.token_secrets.stop()
