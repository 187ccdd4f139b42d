"""A cert-manager-like issuer: ``Certificate`` in, ``kubernetes.io/tls`` Secret and status out.

bifrost never issues certificates itself: it creates cert-manager ``Certificate`` objects and
waits for them to become ``Ready``. To exercise that path (including the slow and failing cases
that make rotation interesting) without cert-manager, this peer watches ``cert-manager.io/v1``
Certificates over the API like cert-manager does and, for each one that needs a certificate,
issues a real X.509 certificate from the devcluster's :class:`~devcluster.peers.ca.LocalCA`.

What it reproduces of cert-manager (the contract bifrost relies on):

- **Triggers** (cert-manager's issuing policies): the Secret does not exist (``DoesNotExist``),
  lacks or has unusable data (``MissingData``/``InvalidCertificate``/``InvalidKeyPair``), was
  issued for another issuer (``IncorrectIssuer``), does not match the spec's dnsNames or duration
  (``SecretMismatch``), is past ``renewalTime`` (``Renewing``) or expired (``Expired``), or a user
  set ``Issuing=True`` with reason ``ManuallyTriggered`` (what ``cmctl renew`` does).
- **Secret**: type ``kubernetes.io/tls``; ``tls.crt`` is the leaf followed by the CA,
  ``tls.key`` the PKCS#8 key, ``ca.crt`` the CA; cert-manager's annotations
  (``cert-manager.io/certificate-name``, ``issuer-name``, ``issuer-kind``, ``issuer-group``,
  ``alt-names``, ``common-name``, ``ip-sans``, ``uri-sans``) and ``spec.secretTemplate``
  labels/annotations. Written with server-side apply under the field manager
  ``bifrost-devcluster-issuer``.
- **Status**: ``Ready`` True (reason ``Ready``) when the Secret holds an up-to-date, unexpired
  certificate — it stays True while a renewal is in flight — else False with the trigger as
  reason; ``Issuing`` True while an issuance is pending, False/``Failed`` after a failed attempt
  (with ``lastFailureTime`` and ``failedIssuanceAttempts``) and removed after success;
  ``notBefore``, ``notAfter``, ``renewalTime`` (``notAfter − renewBefore``, else
  ``renewBeforePercentage``, else ⅓ of the lifetime before ``notAfter``, as cert-manager) and
  ``revision`` (+1 per issuance). Conditions carry ``observedGeneration``.

What it adds for testing: a configurable default lifetime (``spec.duration`` wins), an issuance
delay (wall-clock seconds between noticing a trigger and writing the Secret), and a failure rate
drawn from ``random.Random(f"{seed}:{namespace}/{name}:{attempt}")`` — so each Certificate's
sequence of outcomes is reproducible regardless of how events interleave. Failed attempts are
retried with exponential backoff (``retry_interval`` doubling up to ``max_retry_interval``).
Certificate times (notBefore, renewal decisions) come from an injectable clock; delays and
backoffs are wall-clock. With a manual clock, :meth:`Issuer.resync` re-checks every Certificate
at once (otherwise they are re-checked every ``resync_interval`` seconds).

Deliberate gaps: no CertificateRequest/Issuer objects, no ACME, IP/URI/email SANs are ignored,
``additionalOutputFormats``/``keystores`` are ignored, no owner reference on the Secret (as
cert-manager's default).
"""

from __future__ import annotations

import base64
import logging
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devcluster.client import Client, ClientError
from devcluster.peers._runtime import Informer, WatchEvent, WorkQueue
from devcluster.peers.ca import IssuedCertificate, LocalCA, key_type_for
from devcluster.peers.clock import Clock, SystemClock, format_time

__all__ = [
    "CERTIFICATE_API_VERSION",
    "FIELD_MANAGER",
    "IssuanceAttempt",
    "Issuer",
    "IssuerOptions",
    "parse_duration",
    "renewal_time",
]

log = logging.getLogger(__name__)

CERTIFICATE_API_VERSION = "cert-manager.io/v1"
FIELD_MANAGER = "bifrost-devcluster-issuer"
_ANN = "cert-manager.io/"
READY_MESSAGE = "Certificate is up to date and has not expired"

Key = tuple[str, str]


@dataclass(frozen=True)
class IssuerOptions:
    """How the simulated issuer behaves."""

    default_lifetime: timedelta = timedelta(days=90)
    """Lifetime when ``spec.duration`` is not set (cert-manager's default is 90 days)."""
    issuance_delay: float = 0.0
    """Wall-clock seconds between noticing that a certificate is needed and issuing it."""
    failure_rate: float = 0.0
    """Probability in [0, 1] that an issuance attempt fails (seeded, per Certificate)."""
    seed: int = 0
    retry_interval: float = 1.0
    """Wall-clock seconds before the first retry after a failure; doubles per failure."""
    max_retry_interval: float = 30.0
    resync_interval: float = 5.0
    """Every Certificate is re-checked (renewal, expiry) at least this often (wall seconds)."""
    issuer_names: frozenset[str] | None = None
    """Only handle Certificates whose ``spec.issuerRef.name`` is in this set (``None``: all)."""
    state_dir: str | None = None
    """Where the CA persists (``ca.crt``/``ca.key``); ``None`` keeps it in memory."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be within [0, 1]")
        if self.issuance_delay < 0 or self.retry_interval <= 0 or self.resync_interval <= 0:
            raise ValueError("delays must be positive")


@dataclass(frozen=True)
class IssuanceAttempt:
    """One issuance attempt, for tests and the dev CLI's log."""

    namespace: str
    name: str
    attempt: int
    """0-based attempt number for this Certificate (the RNG input)."""
    succeeded: bool
    trigger: str
    at: datetime
    serial: int | None = None
    error: str | None = None


_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Parse a Go ``time.Duration`` string (``2160h``, ``1h30m0s``, ``90s``, ``1.5h``)."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    if s == "0":
        return timedelta(0)
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"invalid duration {text!r}")
    return timedelta(seconds=total)


def renewal_time(
    not_before: datetime,
    not_after: datetime,
    renew_before: timedelta | None = None,
    renew_before_percentage: int | None = None,
) -> datetime:
    """When cert-manager would renew: ``notAfter − renewBefore`` (else percentage, else ⅓)."""
    lifetime = not_after - not_before
    before: timedelta
    if renew_before is not None and timedelta(0) < renew_before < lifetime:
        before = renew_before
    elif renew_before_percentage is not None and 0 < renew_before_percentage < 100:
        before = lifetime * renew_before_percentage / 100
    else:
        before = lifetime / 3
    when = not_after - before
    return when.replace(microsecond=0)


@dataclass(frozen=True)
class _Request:
    """What a Certificate's spec asks for, normalised."""

    secret_name: str
    dns_names: tuple[str, ...]
    common_name: str | None
    lifetime: timedelta
    renew_before: timedelta | None
    renew_before_percentage: int | None
    key_type: str
    issuer_name: str
    issuer_kind: str
    issuer_group: str
    secret_labels: tuple[tuple[str, str], ...]
    secret_annotations: tuple[tuple[str, str], ...]

    @classmethod
    def from_certificate(cls, cert: Mapping[str, Any], default_lifetime: timedelta) -> _Request:
        spec = cert.get("spec") or {}
        secret_name = spec.get("secretName")
        if not isinstance(secret_name, str) or not secret_name:
            raise ValueError("spec.secretName is required")
        names = [str(n).strip().lower() for n in spec.get("dnsNames") or [] if str(n).strip()]
        common_name = spec.get("commonName") or None
        if not names and common_name:
            names = [str(common_name).lower()]
        if not names:
            raise ValueError("spec.dnsNames (or commonName) must name at least one host")
        lifetime = parse_duration(spec["duration"]) if spec.get("duration") else default_lifetime
        if lifetime <= timedelta(0):
            raise ValueError("spec.duration must be positive")
        renew_before = parse_duration(spec["renewBefore"]) if spec.get("renewBefore") else None
        pct = spec.get("renewBeforePercentage")
        pk = spec.get("privateKey") or {}
        key_type = key_type_for(pk.get("algorithm"), pk.get("size"))
        ref = spec.get("issuerRef") or {}
        template = spec.get("secretTemplate") or {}
        return cls(
            secret_name=secret_name,
            dns_names=tuple(dict.fromkeys(names)),
            common_name=str(common_name) if common_name else None,
            lifetime=timedelta(seconds=int(lifetime.total_seconds())),
            renew_before=renew_before,
            renew_before_percentage=int(pct) if isinstance(pct, int) else None,
            key_type=key_type,
            issuer_name=str(ref.get("name") or ""),
            issuer_kind=str(ref.get("kind") or "Issuer"),
            issuer_group=str(ref.get("group") or "cert-manager.io"),
            secret_labels=tuple(sorted((template.get("labels") or {}).items())),
            secret_annotations=tuple(sorted((template.get("annotations") or {}).items())),
        )


@dataclass(frozen=True)
class _Current:
    """The certificate currently in the Secret, if any, and what is wrong with it."""

    problem: str | None  # a trigger reason, or None when the Secret matches the request
    not_before: datetime | None = None
    not_after: datetime | None = None
    renewal: datetime | None = None


def _inspect(secret: Mapping[str, Any] | None, req: _Request, now: datetime) -> _Current:
    if secret is None:
        return _Current("DoesNotExist")
    data = secret.get("data") or {}
    try:
        chain = base64.b64decode(data.get("tls.crt") or "", validate=True)
        key_pem = base64.b64decode(data.get("tls.key") or "", validate=True)
    except ValueError:
        return _Current("InvalidCertificate")
    if not chain or not key_pem:
        return _Current("MissingData")
    try:
        leaf = x509.load_pem_x509_certificates(chain)[0]
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return _Current("InvalidCertificate")
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, pub) != leaf.public_key().public_bytes(der, pub):
        return _Current("InvalidKeyPair")
    nb, na = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    renew = renewal_time(nb, na, req.renew_before, req.renew_before_percentage)
    ann = (secret.get("metadata") or {}).get("annotations") or {}
    if ann.get(_ANN + "issuer-name", req.issuer_name) != req.issuer_name:
        return _Current("IncorrectIssuer", nb, na, renew)
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        names = set()
    if names != set(req.dns_names) or (na - nb) != req.lifetime:
        return _Current("SecretMismatch", nb, na, renew)
    if now >= na:
        return _Current("Expired", nb, na, renew)
    if now >= renew:
        return _Current("Renewing", nb, na, renew)
    return _Current(None, nb, na, renew)


def _conditions(
    existing: list[dict[str, Any]],
    updates: Mapping[str, tuple[str, str, str] | None],
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Set (type → (status, reason, message)) or remove (type → None) conditions."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for cond in existing:
        ctype = str(cond.get("type"))
        if ctype not in updates:
            out.append(cond)
            continue
        seen.add(ctype)
        upd = updates[ctype]
        if upd is None:
            continue
        out.append(_condition(ctype, upd, cond, generation, now))
    for ctype, upd in updates.items():
        if ctype not in seen and upd is not None:
            out.append(_condition(ctype, upd, None, generation, now))
    return out


def _condition(
    ctype: str,
    upd: tuple[str, str, str],
    old: Mapping[str, Any] | None,
    generation: int | None,
    now: datetime,
) -> dict[str, Any]:
    status, reason, message = upd
    transition = format_time(now)
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        transition = str(old["lastTransitionTime"])
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def _strip_times(conds: Any) -> list[Any]:
    if not isinstance(conds, list):
        return []
    return [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} if isinstance(c, dict) else c
        for c in conds
    ]


def _rv_int(obj: Mapping[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


_TRIGGER_MESSAGES = {
    "DoesNotExist": "Issuing certificate as Secret does not exist",
    "MissingData": "Issuing certificate as Secret does not contain a certificate",
    "InvalidCertificate": "Issuing certificate as Secret contains an invalid certificate",
    "InvalidKeyPair": "Issuing certificate as Secret contains an invalid key-pair",
    "IncorrectIssuer": "Issuing certificate as Secret was previously issued by another issuer",
    "SecretMismatch": "Issuing certificate as Secret does not match the Certificate's spec",
    "Renewing": "Renewing certificate as renewal was scheduled",
    "Expired": "Issuing certificate as Secret has expired",
    "ManuallyTriggered": "Certificate re-issuance manually triggered",
}


@dataclass
class _State:
    attempts: int = 0
    failures: int = 0
    next_attempt: float = 0.0  # monotonic
    pending: _Request | None = None
    pending_trigger: str = ""
    pending_due: float = 0.0  # monotonic
    revision: int = 0
    secret: dict[str, Any] | None = None  # the Secret as last written by us
    status_obj: dict[str, Any] | None = None  # the Certificate as returned by our last status write
    last_error: str | None = None


class Issuer:
    """Watches Certificates and Secrets, issues from a :class:`LocalCA`, writes Secret + status.

    ``start()`` begins the watches and the worker; ``stop()`` ends them. Everything the issuer
    writes goes through ``client`` (a :class:`~devcluster.client.Client`).
    """

    def __init__(
        self,
        client: Client,
        *,
        ca: LocalCA | None = None,
        options: IssuerOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.options = options or IssuerOptions()
        self.clock: Clock = clock or SystemClock()
        if ca is None:
            ca = (
                LocalCA.load_or_create(self.options.state_dir, clock=self.clock)
                if self.options.state_dir
                else LocalCA.generate(clock=self.clock)
            )
        self.ca = ca
        self._client = client
        self._lock = threading.Lock()
        self._state: dict[Key, _State] = {}
        self._attempts: list[IssuanceAttempt] = []
        self._queue: WorkQueue[Key] = WorkQueue("issuer", self._reconcile)
        self._certs = Informer(client, CERTIFICATE_API_VERSION, "Certificate", self._on_certificate)
        self._secrets = Informer(client, "v1", "Secret", self._on_secret)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Issuer:
        self._queue.start()
        self._secrets.start()
        self._certs.start()
        return self

    def stop(self) -> None:
        self._certs.stop()
        self._secrets.stop()
        self._queue.stop()

    @property
    def synced(self) -> bool:
        return self._certs.synced and self._secrets.synced

    def resync(self) -> None:
        """Re-check every Certificate now (e.g. after advancing a manual clock)."""
        for cert in self._certs.items():
            self._queue.add(_key(cert))

    @property
    def attempts(self) -> list[IssuanceAttempt]:
        """Every issuance attempt so far, in order."""
        with self._lock:
            return list(self._attempts)

    # -- events -------------------------------------------------------------------------------

    def _on_certificate(self, event: WatchEvent) -> None:
        self._queue.add(event.key)

    def _on_secret(self, event: WatchEvent) -> None:
        ns, name = event.key
        for cert in self._certs.items():
            meta = cert.get("metadata") or {}
            if meta.get("namespace") == ns and (cert.get("spec") or {}).get("secretName") == name:
                self._queue.add((ns, str(meta.get("name"))))

    # -- reconcile ----------------------------------------------------------------------------

    def _handles(self, cert: Mapping[str, Any]) -> bool:
        if self.options.issuer_names is None:
            return True
        ref = (cert.get("spec") or {}).get("issuerRef") or {}
        return ref.get("name") in self.options.issuer_names

    def _reconcile(self, key: Key) -> None:
        cert = self._certs.get(*key)
        if cert is None:
            self._state.pop(key, None)
            return
        if not self._handles(cert) or (cert.get("metadata") or {}).get("deletionTimestamp"):
            return
        st = self._state.setdefault(key, _State())
        if _rv_int(st.status_obj) > _rv_int(cert):
            cert = st.status_obj  # our own write is newer than the cache
            assert cert is not None
        now = self.clock.now()
        try:
            req = _Request.from_certificate(cert, self.options.default_lifetime)
        except (ValueError, TypeError) as exc:
            self._write_status(
                key, cert, st, {"Ready": ("False", "InvalidSpec", str(exc)), "Issuing": None}, {}
            )
            return
        secret = self._secret(key[0], req.secret_name, st)
        current = _inspect(secret, req, now)
        trigger = current.problem
        if trigger is None and _manually_triggered(cert):
            trigger = "ManuallyTriggered"
        if trigger is None:
            st.pending = None
            self._write_ready(key, cert, st, current)
            assert current.renewal is not None
            until = (current.renewal - now).total_seconds()
            self._queue.add_after(key, max(0.05, min(until, self.options.resync_interval)))
            return
        mono = time.monotonic()
        if st.next_attempt > mono and st.pending is None:
            self._queue.add_after(key, st.next_attempt - mono)
            return
        if st.pending != req:
            # Confirm against the API before starting an issuance: the cache may lag.
            live = self._live_secret(key[0], req.secret_name)
            if not isinstance(live, _Missing):
                current = _inspect(live, req, now)
                if current.problem is None and trigger != "ManuallyTriggered":
                    self._queue.add_after(key, 0.05)
                    return
            st.pending, st.pending_trigger = req, trigger
            st.pending_due = mono + self.options.issuance_delay
            self._write_pending(key, cert, st, current, trigger)
            if self.options.issuance_delay > 0:
                self._queue.add_after(key, self.options.issuance_delay)
                return
        if mono < st.pending_due:
            self._queue.add_after(key, st.pending_due - mono)
            return
        self._attempt(key, cert, st, req, current, st.pending_trigger or trigger)

    def _attempt(
        self,
        key: Key,
        cert: dict[str, Any],
        st: _State,
        req: _Request,
        current: _Current,
        trigger: str,
    ) -> None:
        attempt = st.attempts
        st.attempts += 1
        st.pending = None
        now = self.clock.now()
        draw = random.Random(f"{self.options.seed}:{key[0]}/{key[1]}:{attempt}").random()
        error: str | None = None
        issued: IssuedCertificate | None = None
        if draw < self.options.failure_rate:
            error = f"simulated issuance failure (attempt {attempt}, seed {self.options.seed})"
        else:
            try:
                issued = self.ca.issue(
                    req.dns_names,
                    not_before=now,
                    lifetime=req.lifetime,
                    key_type=req.key_type,  # type: ignore[arg-type]
                    common_name=req.common_name,
                )
                st.secret = self._client.apply(
                    self._secret_body(key, req, issued), field_manager=FIELD_MANAGER
                )
            except (ClientError, ValueError) as exc:
                error, issued = f"writing Secret {key[0]}/{req.secret_name}: {exc}", None
        with self._lock:
            self._attempts.append(
                IssuanceAttempt(
                    key[0],
                    key[1],
                    attempt,
                    issued is not None,
                    trigger,
                    now,
                    issued.serial if issued else None,
                    error,
                )
            )
        if issued is None:
            st.failures += 1
            backoff = min(
                self.options.retry_interval * 2 ** (st.failures - 1),
                self.options.max_retry_interval,
            )
            st.next_attempt = time.monotonic() + backoff
            st.last_error = error
            self._write_failed(key, cert, st, current, trigger, error or "unknown error", now)
            self._queue.add_after(key, backoff)
            return
        st.failures, st.next_attempt, st.last_error = 0, 0.0, None
        revision = max(st.revision, int((cert.get("status") or {}).get("revision") or 0)) + 1
        st.revision = revision
        renew = renewal_time(
            issued.not_before, issued.not_after, req.renew_before, req.renew_before_percentage
        )
        self._write_status(
            key,
            cert,
            st,
            {"Ready": ("True", "Ready", READY_MESSAGE), "Issuing": None},
            {
                "notBefore": format_time(issued.not_before),
                "notAfter": format_time(issued.not_after),
                "renewalTime": format_time(renew),
                "revision": revision,
                "lastFailureTime": None,
                "failedIssuanceAttempts": None,
            },
        )
        self._queue.add_after(key, 0.05)

    # -- status -------------------------------------------------------------------------------

    def _write_ready(self, key: Key, cert: dict[str, Any], st: _State, cur: _Current) -> None:
        assert cur.not_before and cur.not_after and cur.renewal
        fields: dict[str, Any] = {
            "notBefore": format_time(cur.not_before),
            "notAfter": format_time(cur.not_after),
            "renewalTime": format_time(cur.renewal),
            "lastFailureTime": None,
            "failedIssuanceAttempts": None,
        }
        if not (cert.get("status") or {}).get("revision"):
            fields["revision"] = max(st.revision, 1)
        conds: dict[str, tuple[str, str, str] | None] = {
            "Ready": ("True", "Ready", READY_MESSAGE),
            "Issuing": None,
        }
        self._write_status(key, cert, st, conds, fields)

    def _write_pending(
        self, key: Key, cert: dict[str, Any], st: _State, cur: _Current, trigger: str
    ) -> None:
        message = _TRIGGER_MESSAGES.get(trigger, trigger)
        conds: dict[str, tuple[str, str, str] | None] = {"Issuing": ("True", trigger, message)}
        conds["Ready"] = self._ready_while_issuing(cur, trigger, message)
        self._write_status(key, cert, st, conds, {})

    def _write_failed(
        self,
        key: Key,
        cert: dict[str, Any],
        st: _State,
        cur: _Current,
        trigger: str,
        error: str,
        now: datetime,
    ) -> None:
        message = f"The certificate request has failed to complete and will be retried: {error}"
        conds: dict[str, tuple[str, str, str] | None] = {"Issuing": ("False", "Failed", message)}
        conds["Ready"] = self._ready_while_issuing(
            cur, trigger, f"{_TRIGGER_MESSAGES.get(trigger, trigger)}; last attempt failed: {error}"
        )
        self._write_status(
            key,
            cert,
            st,
            conds,
            {"lastFailureTime": format_time(now), "failedIssuanceAttempts": st.failures},
        )

    @staticmethod
    def _ready_while_issuing(cur: _Current, trigger: str, message: str) -> tuple[str, str, str]:
        # A certificate that is only due for renewal (or manually re-triggered) is still valid.
        if trigger in ("Renewing", "ManuallyTriggered") and cur.problem in (None, "Renewing"):
            return ("True", "Ready", READY_MESSAGE)
        return ("False", trigger, message)

    def _write_status(
        self,
        key: Key,
        cert: dict[str, Any],
        st: _State,
        conds: Mapping[str, tuple[str, str, str] | None],
        fields: Mapping[str, Any],
    ) -> None:
        status = dict(cert.get("status") or {})
        generation = (cert.get("metadata") or {}).get("generation")
        new_conds = _conditions(
            list(status.get("conditions") or []), conds, generation, self.clock.now()
        )
        patch: dict[str, Any] = {}
        if _strip_times(new_conds) != _strip_times(status.get("conditions")):
            patch["conditions"] = new_conds
        for name, value in fields.items():
            if status.get(name) != value:
                patch[name] = value
        if not patch:
            return
        try:
            st.status_obj = self._client.patch_status(
                CERTIFICATE_API_VERSION,
                "Certificate",
                key[1],
                key[0],
                patch,
                field_manager=FIELD_MANAGER,
            )
        except ClientError as exc:
            log.warning("status of Certificate %s/%s: %s", key[0], key[1], exc)
            self._queue.add_after(key, 0.5)

    # -- secrets ------------------------------------------------------------------------------

    def _secret(self, namespace: str, name: str, st: _State) -> dict[str, Any] | None:
        """The Secret as of our own last write or the informer's cache, whichever is newer."""
        cached = self._secrets.get(namespace, name)
        mine = st.secret
        if mine is None or (mine.get("metadata") or {}).get("name") != name:
            return cached
        if _rv_int(mine) <= _rv_int(cached):
            st.secret = None  # the informer has caught up
            return cached
        if cached is not None:
            return mine
        # Either the informer has not seen our write yet, or the Secret was deleted since.
        live = self._live_secret(namespace, name)
        return None if isinstance(live, _Missing) else live

    def _live_secret(self, namespace: str, name: str) -> dict[str, Any] | None | _Missing:
        try:
            return self._client.get("v1", "Secret", name, namespace)
        except ClientError:
            return _MISSING

    def _secret_body(self, key: Key, req: _Request, issued: IssuedCertificate) -> dict[str, Any]:
        annotations = dict(req.secret_annotations)
        annotations.update(
            {
                _ANN + "certificate-name": key[1],
                _ANN + "issuer-name": req.issuer_name,
                _ANN + "issuer-kind": req.issuer_kind,
                _ANN + "issuer-group": req.issuer_group,
                _ANN + "alt-names": ",".join(req.dns_names),
                _ANN + "common-name": req.common_name or "",
                _ANN + "ip-sans": "",
                _ANN + "uri-sans": "",
            }
        )
        labels = dict(req.secret_labels)
        labels["controller.cert-manager.io/fao"] = "true"

        def b64(raw: bytes) -> str:
            return base64.b64encode(raw).decode("ascii")

        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": req.secret_name,
                "namespace": key[0],
                "annotations": annotations,
                "labels": labels,
            },
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": b64(issued.chain_pem),
                "tls.key": b64(issued.key_pem),
                "ca.crt": b64(issued.ca_pem),
            },
        }


class _Missing:
    """Marker: the live read failed (distinct from ``None``, the Secret does not exist)."""


_MISSING = _Missing()


def _manually_triggered(cert: Mapping[str, Any]) -> bool:
    for cond in (cert.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "Issuing"
            and cond.get("status") == "True"
            and cond.get("reason") == "ManuallyTriggered"
        ):
            return True
    return False


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
