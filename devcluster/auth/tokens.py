"""Bearer tokens: who a token is (authentication), and the ServiceAccount tokens the cluster
issues.

* The **admin token** (random, or given) is the user ``kubernetes-admin`` in ``system:masters``;
  the devcluster's kubeconfig carries it. Further static tokens may be added (like
  ``--token-auth-file``).
* **Bound ServiceAccount tokens** (``TokenRequest``, ``kubectl create token``) are JWTs signed
  with the cluster's key (ES256), with upstream's claims: ``iss``
  ``https://kubernetes.default.svc.cluster.local``, ``sub`` ``system:serviceaccount:<ns>:<name>``,
  ``aud``, ``exp``/``iat``/``nbf``, ``jti`` and ``kubernetes.io`` (namespace, the ServiceAccount's
  name and uid, the bound Pod or Secret). A token is valid until it expires and while its
  ServiceAccount (and bound object) exists with the same uid and its deletion time (if it is
  being deleted) is less than a minute past, as upstream: a terminating Pod still acts; its
  audiences must include the API server's (the issuer) unless the caller names others
  (TokenReview).
* **Legacy token Secrets** (``kubernetes.io/service-account-token``) get a JWT without expiry
  (issuer ``kubernetes/serviceaccount``), valid while the Secret still holds it and the
  ServiceAccount exists.

A ServiceAccount token authenticates as the user ``system:serviceaccount:<ns>:<name>`` in the
groups ``system:serviceaccounts``, ``system:serviceaccounts:<ns>`` and ``system:authenticated``,
with the ServiceAccount's uid and the ``authentication.kubernetes.io/credential-id`` extra
(``JTI=<jti>``) for bound tokens.

Signature checks are cached per token; what can change (expiry, the ServiceAccount) is checked on
every use.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from devcluster.auth import (
    ADMIN,
    AUTHENTICATED,
    UserInfo,
    service_account_groups,
    service_account_username,
)
from devcluster.storage import Store

__all__ = [
    "ISSUER",
    "LEGACY_ISSUER",
    "SA_TOKEN_TYPE",
    "BoundObject",
    "InvalidToken",
    "TokenAuthority",
]

JSON = dict[str, Any]

ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
_SA = ("", "serviceaccounts")
_LEGACY = "kubernetes.io/serviceaccount/"
_CACHE_LIMIT = 10_000
#: How long past its ``deletionTimestamp`` a ServiceAccount or bound object keeps its tokens
#: valid (upstream's serviceaccount token validator: one minute).
DELETION_GRACE_SECONDS = 60


class InvalidToken(Exception):
    """The token does not authenticate anyone (the API server answers 401)."""


@dataclass(frozen=True)
class BoundObject:
    """The Pod or Secret a bound token lives and dies with."""

    kind: str  # Pod | Secret
    name: str
    uid: str


def _epoch(rfc3339: str) -> float:
    """``2026-01-02T03:04:05Z`` as seconds since the epoch (0 when unreadable: deleted)."""
    try:
        parsed = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return parsed.timestamp()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenAuthority:
    """Issues and checks the bearer tokens of one cluster (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        admin_token: str | None = None,
        signing_key_pem: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        if signing_key_pem is not None:
            key = serialization.load_pem_private_key(signing_key_pem, password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("the service account signing key must be an EC P-256 key")
            self._key = key
        else:
            self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._kid = _b64url(hashlib.sha256(der).digest())
        self._static: dict[str, UserInfo] = {self.admin_token: ADMIN}
        self._verified: dict[str, JSON] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- keys

    def signing_key_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    # ---------------------------------------------------------------- static tokens

    def add_static(self, token: str, user: UserInfo) -> None:
        """Make ``token`` authenticate as ``user`` (like a line of ``--token-auth-file``)."""
        with self._lock:
            self._static[token] = user

    # ---------------------------------------------------------------- issuing

    def _sign(self, claims: JSON) -> str:
        header = {"alg": "ES256", "kid": self._kid}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def issue(
        self,
        service_account: JSON,
        *,
        audiences: list[str],
        expiration_seconds: int,
        bound: BoundObject | None = None,
    ) -> tuple[str, int]:
        """A bound token for ``service_account``; returns it and its expiry (epoch seconds)."""
        meta = service_account["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        now = int(self._clock())
        exp = now + expiration_seconds
        private: JSON = {
            "namespace": ns,
            "serviceaccount": {"name": name, "uid": meta.get("uid", "")},
        }
        if bound is not None:
            private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        claims: JSON = {
            "aud": list(audiences),
            "exp": exp,
            "iat": now,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": now,
            "sub": service_account_username(ns, name),
        }
        return self._sign(claims), exp

    def legacy_token(self, service_account: JSON, secret_name: str) -> str:
        """The never-expiring token of a ``kubernetes.io/service-account-token`` Secret."""
        meta = service_account["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        return self._sign(
            {
                "iss": LEGACY_ISSUER,
                _LEGACY + "namespace": ns,
                _LEGACY + "secret.name": secret_name,
                _LEGACY + "service-account.name": name,
                _LEGACY + "service-account.uid": meta.get("uid", ""),
                "sub": service_account_username(ns, name),
            }
        )

    # ---------------------------------------------------------------- checking

    def _claims(self, token: str) -> JSON:
        cached = self._verified.get(token)
        if cached is not None:
            return cached
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("invalid bearer token")
        try:
            header = json.loads(_unb64url(parts[0]))
            claims = json.loads(_unb64url(parts[1]))
            raw_sig = _unb64url(parts[2])
        except (ValueError, binascii.Error) as e:
            raise InvalidToken("invalid bearer token") from e
        if (
            not isinstance(header, dict)
            or not isinstance(claims, dict)
            or header.get("alg") != "ES256"
            or header.get("kid") != self._kid
            or len(raw_sig) != 64
        ):
            raise InvalidToken("invalid bearer token")
        der = encode_dss_signature(
            int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
        )
        try:
            self._key.public_key().verify(
                der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature as e:
            raise InvalidToken("invalid bearer token") from e
        with self._lock:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = claims
        return claims

    def _live(self, kind: tuple[str, str], ns: str, name: str, uid: str, what: str) -> JSON:
        obj = self._store.get(kind, ns, name)
        if obj is None:
            raise InvalidToken(f'{what} "{name}" not found')
        meta = obj["metadata"]
        if uid and meta.get("uid") != uid:
            raise InvalidToken(f"{what} UID ({meta.get('uid')}) does not match claim ({uid})")
        deleted = meta.get("deletionTimestamp")
        if deleted and _epoch(str(deleted)) < self._clock() - DELETION_GRACE_SECONDS:
            # as upstream: a terminating Pod's processes keep their identity while they shut
            # down (releasing a Lease, finishing a write) until a minute past the deletion time
            raise InvalidToken(f"{what} {ns}/{name} has been deleted")
        return obj

    def authenticate(self, token: str, audiences: list[str] | None = None) -> UserInfo:
        """The user ``token`` stands for; raises :class:`InvalidToken`.

        ``audiences``: what the token must be meant for (default: the API server, the issuer).
        """
        static = self._static.get(token)
        if static is not None:
            return static
        claims = self._claims(token)
        if claims.get("iss") == LEGACY_ISSUER:
            return self._legacy_user(token, claims)
        if claims.get("iss") != ISSUER:
            raise InvalidToken("invalid bearer token")
        wanted = audiences if audiences else [ISSUER]
        aud = claims.get("aud") or []
        if not isinstance(aud, list) or not set(wanted) & set(aud):
            raise InvalidToken(
                f"invalid bearer token, token audiences {json.dumps(aud)} is invalid for the "
                f"target audiences {json.dumps(wanted)}"
            )
        now = self._clock()
        if not isinstance(claims.get("exp"), int) or now >= claims["exp"]:
            raise InvalidToken("invalid bearer token, service account token has expired")
        if isinstance(claims.get("nbf"), int) and now < claims["nbf"] - 60:
            raise InvalidToken("invalid bearer token, service account token is not valid yet")
        private = claims.get("kubernetes.io") or {}
        ns = str(private.get("namespace") or "")
        sa = private.get("serviceaccount") or {}
        name, sa_uid = str(sa.get("name") or ""), str(sa.get("uid") or "")
        self._live(_SA, ns, name, sa_uid, "serviceaccounts")
        extra: dict[str, tuple[str, ...]] = {}
        if claims.get("jti"):
            extra[CREDENTIAL_ID] = (f"JTI={claims['jti']}",)
        for kind, key in (("Pod", "pod"), ("Secret", "secret")):
            ref = private.get(key)
            if isinstance(ref, dict):
                self._live(
                    ("", kind.lower() + "s"),
                    ns,
                    str(ref.get("name") or ""),
                    str(ref.get("uid") or ""),
                    kind.lower() + "s",
                )
                if kind == "Pod":
                    extra["authentication.kubernetes.io/pod-name"] = (str(ref.get("name")),)
                    extra["authentication.kubernetes.io/pod-uid"] = (str(ref.get("uid")),)
        return UserInfo(
            service_account_username(ns, name),
            (*service_account_groups(ns), AUTHENTICATED),
            sa_uid,
            extra,
        )

    def _legacy_user(self, token: str, claims: JSON) -> UserInfo:
        ns = str(claims.get(_LEGACY + "namespace") or "")
        secret_name = str(claims.get(_LEGACY + "secret.name") or "")
        name = str(claims.get(_LEGACY + "service-account.name") or "")
        sa_uid = str(claims.get(_LEGACY + "service-account.uid") or "")
        secret = self._live(("", "secrets"), ns, secret_name, "", "secrets")
        stored = (secret.get("data") or {}).get("token")
        try:
            held = base64.b64decode(stored).decode() if isinstance(stored, str) else ""
        except (ValueError, binascii.Error):
            held = ""
        if held != token:
            raise InvalidToken("invalid bearer token, token does not match the Secret")
        self._live(_SA, ns, name, sa_uid, "serviceaccounts")
        return UserInfo(
            service_account_username(ns, name),
            (*service_account_groups(ns), AUTHENTICATED),
            sa_uid,
        )
