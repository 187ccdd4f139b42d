"""A Crossplane-like AWS provider: the cloud edge's managed resources become ``Ready``/``Synced``.

The cloud-edge example (``examples/cloud-edge/``) renders Crossplane managed resources in the
style of the upbound AWS provider (``*.aws.upbound.io/v1beta1``, cluster-scoped): a listener and a
listener certificate for the load balancer, an ACM certificate, a Route 53 record, a security
group and its rules, a WAF association. bifrost applies them and waits on their conditions; in a
real cluster Crossplane's provider-aws turns them into AWS resources and reports back. This peer
plays that provider in the devcluster, over the API like the other peers (an informer per kind,
one work queue), so bifrost's readiness waits, ``children.<id>.status.atProvider`` reads and
ordered teardown run against the same contract:

- **Finalizer** ``finalizer.managedresource.crossplane.io``, added on first sight and removed
  ``deletion_delay`` seconds after the object is marked for deletion (the provider deleting the
  cloud resource), so a deleted managed resource lingers with a ``deletionTimestamp`` as it does in
  a real cluster and whoever deletes in waves (bifrost's teardown) must wait for it to be gone.
- **Conditions** as Crossplane writes them: ``Synced`` True/``ReconcileSuccess`` and ``Ready``
  True/``Available`` (with ``observedGeneration``; ``lastTransitionTime`` kept while a status
  holds). With ``ready_delay`` an object first shows ``Ready`` False/``Creating`` for that many
  seconds, as a cloud resource does while it is created.
- **References** (``spec.forProvider.<x>Ref`` / ``<x>Refs``, e.g. ``loadBalancerArnRef``,
  ``securityGroupIdRef``, ``certificateArnRef``) are resolved like Crossplane does: the referenced
  object must exist and expose the attribute (``status.atProvider.arn`` or ``.id``). Until it
  does, the object is ``Synced`` False/``ReconcileError`` ("cannot resolve references …") and not
  ``Ready``, and it is retried when any watched object changes (and every ``retry_interval``).
  Resolved values are reported in ``status.atProvider`` (the peer never writes ``spec``). Refs to
  kinds outside :data:`REFERENCES` (a VPC, a hosted zone, an S3 bucket) are taken as resolved.
- **``status.atProvider``**: the observed ``forProvider`` fields (refs, selectors and secret refs
  left out, as upjet does), the resolved references, and the identity the provider would read
  back — ``id`` and ``arn`` (deterministic from the object's uid and region, so they survive a
  peer restart), plus per kind: an ACM certificate's ``status: ISSUED``, ``domainName`` and
  ``domainValidationOptions``; a security group's ``id: sg-…`` and ``ownerId``; a record's
  ``fqdn``; a listener certificate's and a WAF association's composite ids.

Which kinds: :data:`DEFAULT_MANAGED_KINDS` (``CrossplaneOptions.kinds``). The load balancer itself
(``elbv2.aws.upbound.io/v1beta1`` ``LB``) is **not** written here — the load-balancer peer
(:mod:`.loadbalancer`) gives it its ``dnsName`` and conditions, and this peer only reads it to
resolve references to it (``REFERENCE_TARGETS``). Kinds the API server does not serve are skipped
at start (logged), so the peer can run beside clusters that register only some of them.

Deliberate gaps: no ``crossplane.io/external-name`` annotation, no late-initialisation into
``spec``, no ``providerConfigRef`` checks, no ``deletionPolicy: Orphan`` (it makes no difference
here: there is no cloud resource to keep).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from devcluster.client import Client, ClientError, NotFound, UnknownKind
from devcluster.peers._runtime import Informer, WatchEvent, WorkQueue
from devcluster.peers.clock import Clock, SystemClock, format_time

__all__ = [
    "ACM_GROUP",
    "DEFAULT_MANAGED_KINDS",
    "EC2_GROUP",
    "ELBV2_GROUP",
    "FIELD_MANAGER",
    "FINALIZER",
    "LB_KIND",
    "REFERENCES",
    "REFERENCE_TARGETS",
    "ROUTE53_GROUP",
    "WAFV2_GROUP",
    "Crossplane",
    "CrossplaneOptions",
    "ManagedKind",
    "ManagedRef",
]

log = logging.getLogger(__name__)

FIELD_MANAGER = "bifrost-devcluster-crossplane"
FINALIZER = "finalizer.managedresource.crossplane.io"

ACM_GROUP = "acm.aws.upbound.io"
EC2_GROUP = "ec2.aws.upbound.io"
ELBV2_GROUP = "elbv2.aws.upbound.io"
ROUTE53_GROUP = "route53.aws.upbound.io"
WAFV2_GROUP = "wafv2.aws.upbound.io"


@dataclass(frozen=True)
class ManagedKind:
    """A cluster-scoped managed-resource kind (what ``register_permissive`` needs to serve it)."""

    group: str
    version: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


#: The load balancer: served (status written) by the load-balancer peer, read here.
LB_KIND = ManagedKind(ELBV2_GROUP, "v1beta1", "LB", "lbs")
LISTENER_KIND = ManagedKind(ELBV2_GROUP, "v1beta1", "LBListener", "lblisteners")
ACM_CERTIFICATE_KIND = ManagedKind(ACM_GROUP, "v1beta1", "Certificate", "certificates")
SECURITY_GROUP_KIND = ManagedKind(EC2_GROUP, "v1beta1", "SecurityGroup", "securitygroups")

#: The kinds this peer serves by default: every managed resource of the cloud-edge example
#: except the load balancer (see the module docstring).
DEFAULT_MANAGED_KINDS: tuple[ManagedKind, ...] = (
    LISTENER_KIND,
    ManagedKind(ELBV2_GROUP, "v1beta1", "LBListenerCertificate", "lblistenercertificates"),
    ACM_CERTIFICATE_KIND,
    ManagedKind(ROUTE53_GROUP, "v1beta1", "Record", "records"),
    SECURITY_GROUP_KIND,
    ManagedKind(EC2_GROUP, "v1beta1", "SecurityGroupRule", "securitygrouprules"),
    ManagedKind(WAFV2_GROUP, "v1beta1", "WebACLAssociation", "webaclassociations"),
)

#: Kinds watched only as reference targets (their status is another peer's business).
REFERENCE_TARGETS: tuple[ManagedKind, ...] = (LB_KIND,)


class ManagedRef(NamedTuple):
    """What a ``forProvider`` reference field points at and which observed attribute it takes."""

    target: ManagedKind
    attribute: str  # in the target's status.atProvider
    resolves: str  # the forProvider field Crossplane would fill


#: forProvider reference fields the peer resolves (``…Refs`` hold a list of ``{name}``).
REFERENCES: Mapping[str, ManagedRef] = {
    "loadBalancerArnRef": ManagedRef(LB_KIND, "arn", "loadBalancerArn"),
    "listenerArnRef": ManagedRef(LISTENER_KIND, "arn", "listenerArn"),
    "certificateArnRef": ManagedRef(ACM_CERTIFICATE_KIND, "arn", "certificateArn"),
    "securityGroupIdRef": ManagedRef(SECURITY_GROUP_KIND, "id", "securityGroupId"),
    "securityGroupRefs": ManagedRef(SECURITY_GROUP_KIND, "id", "securityGroups"),
    "resourceArnRef": ManagedRef(LB_KIND, "arn", "resourceArn"),
}


@dataclass(frozen=True)
class CrossplaneOptions:
    kinds: tuple[ManagedKind, ...] = field(default=DEFAULT_MANAGED_KINDS)
    account_id: str = "000000000000"
    default_region: str = "us-east-1"
    """Region of ARNs when ``spec.forProvider.region`` is not set."""
    ready_delay: float = 0.0
    """Seconds an object stays ``Ready`` False/``Creating`` after the peer first sees it."""
    retry_interval: float = 0.5
    """Seconds before an object with unresolved references (or a failed write) is retried."""
    finalizer: bool = True
    """Add :data:`FINALIZER` and release it on deletion (as Crossplane does)."""
    deletion_delay: float = 0.0
    """Seconds between the deletion mark and the finalizer's release."""


class _Key(NamedTuple):
    api_version: str
    kind: str
    name: str


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _cond(
    ctype: str, status: str, reason: str, message: str, generation: Any, old: list[Any], now: str
) -> dict[str, Any]:
    prev = next((c for c in old if isinstance(c, dict) and c.get("type") == ctype), None)
    transition = now
    if prev is not None and prev.get("status") == status and prev.get("lastTransitionTime"):
        transition = str(prev["lastTransitionTime"])
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "lastTransitionTime": transition,
    }
    if message:
        cond["message"] = message
    if isinstance(generation, int):
        cond["observedGeneration"] = generation
    return cond


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _observed(for_provider: Mapping[str, Any]) -> dict[str, Any]:
    """``forProvider`` as upjet reports it in ``atProvider``: without refs, selectors and secret
    refs (their resolved values are added separately)."""
    return {
        k: v
        for k, v in for_provider.items()
        if not k.endswith(("Ref", "Refs", "Selector", "SecretRef"))
    }


class Crossplane:
    """Watches the managed-resource kinds and writes Crossplane-like status (module docstring)."""

    def __init__(
        self,
        client: Client,
        *,
        options: CrossplaneOptions | None = None,
        clock: Clock | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.options = options or CrossplaneOptions()
        self.clock: Clock = clock or SystemClock()
        self._monotonic = monotonic or time.monotonic
        self._client = client
        self._queue: WorkQueue[_Key] = WorkQueue("crossplane", self._reconcile)
        self._served = {k.api_version + "/" + k.kind: k for k in self.options.kinds}
        self._informers: dict[tuple[str, str], Informer] = {}
        self._first_seen: dict[str, float] = {}  # uid → when first seen (for ready_delay)
        self._deleting: dict[str, float] = {}  # uid → when first seen marked for deletion
        self._unresolved: set[_Key] = set()  # guarded by _lock (informer and worker threads)
        self._lock = threading.Lock()
        self.skipped: list[ManagedKind] = []
        """Kinds not served by the API server at start (not watched)."""

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Crossplane:
        wanted = list(self.options.kinds)
        wanted += [t for t in REFERENCE_TARGETS if t not in wanted]
        for kind in wanted:
            try:
                self._client.is_namespaced(kind.api_version, kind.kind)
            except UnknownKind:
                if kind in self.options.kinds:
                    self.skipped.append(kind)
                    log.info("crossplane peer: %s %s is not served; not watching it",
                             kind.api_version, kind.kind)
                continue
            except ClientError as exc:
                log.warning("crossplane peer: discovering %s %s failed (%s); watching anyway",
                            kind.api_version, kind.kind, exc)
            self._informers[(kind.api_version, kind.kind)] = Informer(
                self._client, kind.api_version, kind.kind, self._handler(kind)
            )
        self._queue.start()
        for inf in self._informers.values():
            inf.start()
        return self

    def stop(self) -> None:
        for inf in self._informers.values():
            inf.stop()
        self._queue.stop()

    @property
    def synced(self) -> bool:
        return all(inf.synced for inf in self._informers.values())

    def idle(self) -> bool:
        return self._queue.idle()

    # -- events -------------------------------------------------------------------------------

    def _handler(self, kind: ManagedKind) -> Callable[[WatchEvent], None]:
        served = kind in self.options.kinds

        def handle(event: WatchEvent) -> None:
            _, name = event.key
            if served:
                key = _Key(kind.api_version, kind.kind, name)
                if event.type == "DELETED":
                    self._waiting(key, False)
                    uid = str((event.object.get("metadata") or {}).get("uid") or "")
                    self._first_seen.pop(uid, None)
                    self._deleting.pop(uid, None)
                else:
                    self._queue.add(key)
            # Anything that changed may be what an unresolved reference waits for.
            with self._lock:
                waiting = list(self._unresolved)
            for other in waiting:
                self._queue.add(other)

        return handle

    # -- reconcile ----------------------------------------------------------------------------

    def _get(self, kind: ManagedKind, name: str) -> dict[str, Any] | None:
        inf = self._informers.get((kind.api_version, kind.kind))
        return inf.get("", name) if inf is not None else None

    def _reconcile(self, key: _Key) -> None:
        kind = self._served.get(key.api_version + "/" + key.kind)
        if kind is None:
            return
        obj = self._get(kind, key.name)
        if obj is None:
            self._waiting(key, False)
            return
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        finalizers = list(meta.get("finalizers") or [])
        if meta.get("deletionTimestamp"):
            self._release(key, uid, finalizers)
            return
        if self.options.finalizer and FINALIZER not in finalizers:
            patch: list[dict[str, Any]] = (
                [{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]
                if finalizers
                else [{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
            )
            # The status follows on the event this patch causes: writing it now, from a cache
            # that has not seen the patch yet, would write it twice.
            self._json_patch(key, [{"op": "test", "path": "/metadata/uid", "value": uid}, *patch])
            return
        spec = obj.get("spec") or {}
        for_provider = spec.get("forProvider") or {}
        if not isinstance(for_provider, dict):
            for_provider = {}
        resolved, problems = self._resolve(for_provider)
        old = obj.get("status") or {}
        old_conds = list(old.get("conditions") or [])
        generation = meta.get("generation")
        now = format_time(self.clock.now())
        at_provider = {
            **_observed(for_provider),
            **resolved,
            **self._identity(kind, key.name, uid, for_provider, resolved),
        }
        retry: float | None = None
        self._waiting(key, bool(problems))
        if problems:
            retry = self.options.retry_interval
            message = "cannot resolve references: " + "; ".join(problems)
            was_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in old_conds
            )
            conditions = [
                _cond("Synced", "False", "ReconcileError", message, generation, old_conds, now),
                _cond("Ready", "True", "Available", "", generation, old_conds, now)
                if was_ready
                else _cond("Ready", "False", "Creating", "", generation, old_conds, now),
            ]
            status: dict[str, Any] = {"conditions": conditions}
        else:
            first = self._first_seen.setdefault(uid, self._monotonic())
            remaining = self.options.ready_delay - (self._monotonic() - first)
            synced = _cond("Synced", "True", "ReconcileSuccess", "", generation, old_conds, now)
            if remaining > 0:
                retry = remaining
                ready = _cond("Ready", "False", "Creating", "", generation, old_conds, now)
            else:
                ready = _cond("Ready", "True", "Available", "", generation, old_conds, now)
            status = {"atProvider": at_provider, "conditions": [synced, ready]}
        if _strip({k: old.get(k) for k in status}) != _strip(status):
            try:
                self._client.patch_status(
                    key.api_version, key.kind, key.name, None, status, field_manager=FIELD_MANAGER
                )
            except ClientError as exc:
                log.warning("crossplane peer: updating %s %s failed (%s); retrying",
                            key.kind, key.name, exc)
                retry = self.options.retry_interval
        if retry is not None:
            self._queue.add_after(key, retry)

    def _waiting(self, key: _Key, unresolved: bool) -> None:
        with self._lock:
            if unresolved:
                self._unresolved.add(key)
            else:
                self._unresolved.discard(key)

    def _release(self, key: _Key, uid: str, finalizers: list[str]) -> None:
        """The object is being deleted: drop our finalizer once ``deletion_delay`` has passed."""
        if FINALIZER not in finalizers:
            return
        since = self._deleting.setdefault(uid, self._monotonic())
        remaining = self.options.deletion_delay - (self._monotonic() - since)
        if remaining > 0:
            self._queue.add_after(key, remaining)
            return
        index = finalizers.index(FINALIZER)
        self._json_patch(key, [
            {"op": "test", "path": "/metadata/uid", "value": uid},
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ])

    def _json_patch(self, key: _Key, patch: list[dict[str, Any]]) -> bool:
        """Apply a JSON patch to the object's metadata; on failure retry the key later."""
        try:
            self._client.patch(key.api_version, key.kind, key.name, None, patch,
                               patch_type="json", field_manager=FIELD_MANAGER)
        except NotFound:
            return False  # gone: nothing left to do
        except ClientError as exc:  # a failed test (changed under us) or a transient error
            log.info("crossplane peer: patching %s %s failed (%s); retrying",
                     key.kind, key.name, exc)
            self._queue.add_after(key, self.options.retry_interval)
            return False
        return True

    def _resolve(self, for_provider: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The values of the reference fields Crossplane would resolve, and what is missing."""
        resolved: dict[str, Any] = {}
        problems: list[str] = []
        for fname, ref in REFERENCES.items():
            value = for_provider.get(fname)
            if value is None:
                continue
            items = value if isinstance(value, list) else [value]
            out: list[str] = []
            for item in items:
                name = item.get("name") if isinstance(item, dict) else None
                if not name:
                    problems.append(f"spec.forProvider.{fname}: no name")
                    continue
                target = self._get(ref.target, str(name))
                attr = (((target or {}).get("status") or {}).get("atProvider") or {}).get(
                    ref.attribute
                )
                if target is None:
                    problems.append(
                        f"spec.forProvider.{fname}: referenced {ref.target.kind} {name} "
                        "not found"
                    )
                elif not attr:
                    problems.append(
                        f"spec.forProvider.{fname}: referenced {ref.target.kind} {name} has no "
                        f"status.atProvider.{ref.attribute} yet"
                    )
                else:
                    out.append(str(attr))
            if len(out) == len(items):
                resolved[ref.resolves] = out if isinstance(value, list) else out[0]
        return resolved, problems

    def _identity(
        self,
        kind: ManagedKind,
        name: str,
        uid: str,
        for_provider: Mapping[str, Any],
        resolved: Mapping[str, Any],
    ) -> dict[str, Any]:
        """``id``/``arn`` and the per-kind observed fields (see the module docstring)."""
        region = str(for_provider.get("region") or self.options.default_region)
        account = self.options.account_id
        h = _digest(kind.api_version, kind.kind, name, uid)
        if kind.kind == "Certificate" and kind.group == ACM_GROUP:
            arn = f"arn:aws:acm:{region}:{account}:certificate/{uuid.UUID(h[:32])}"
            domain = str(for_provider.get("domainName") or "")
            names = [domain] + [str(n) for n in for_provider.get("subjectAlternativeNames") or []]
            return {
                "id": arn,
                "arn": arn,
                "status": "ISSUED",
                "type": "IMPORTED" if for_provider.get("certificateBody") else "AMAZON_ISSUED",
                "domainValidationOptions": [
                    {
                        "domainName": n,
                        "resourceRecordName": f"_{_digest(n)[:32]}.{n}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{_digest(n, h)[:32]}.acm-validations.aws.",
                    }
                    for n in dict.fromkeys(names)
                    if n
                ],
            }
        if kind.kind == "LBListener":
            lb_arn = str(resolved.get("loadBalancerArn") or for_provider.get("loadBalancerArn")
                         or "")
            lb_part = lb_arn.split(":loadbalancer/", 1)[1] if ":loadbalancer/" in lb_arn else (
                f"app/{name}/{h[16:32]}"
            )
            arn = (f"arn:aws:elasticloadbalancing:{region}:{account}:listener/{lb_part}/"
                   f"{h[:16]}")
            return {"id": arn, "arn": arn}
        if kind.kind == "LBListenerCertificate":
            listener = resolved.get("listenerArn") or for_provider.get("listenerArn") or ""
            cert = resolved.get("certificateArn") or for_provider.get("certificateArn") or ""
            return {"id": f"{listener}_{cert}"}
        if kind.kind == "SecurityGroup":
            sg = f"sg-{h[:17]}"
            return {
                "id": sg,
                "arn": f"arn:aws:ec2:{region}:{account}:security-group/{sg}",
                "ownerId": account,
            }
        if kind.kind == "SecurityGroupRule":
            return {"id": f"sgrule-{int(h[:12], 16) % 10**10:010d}"}
        if kind.kind == "Record":
            record_name = str(for_provider.get("name") or name)
            zone = str(for_provider.get("zoneId") or "")
            return {
                "id": f"{zone}_{record_name}_{for_provider.get('type') or ''}",
                "fqdn": record_name,
            }
        if kind.kind == "WebACLAssociation":
            acl = for_provider.get("webAclArn") or ""
            resource = resolved.get("resourceArn") or for_provider.get("resourceArn") or ""
            return {"id": f"{acl},{resource}"}
        service = kind.group.split(".", 1)[0]
        return {
            "id": name,
            "arn": f"arn:aws:{service}:{region}:{account}:{kind.kind.lower()}/{name}",
        }
