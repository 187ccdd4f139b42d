"""Listener certificates a blueprint's ``spec.tls`` manages: request, observe issuance, attach,
detach and delete — the building blocks of provision's ``ensure_certificates`` and of the
rotation machine.

Where things are kept:

- The **store** (``certificates`` rows) is the source of truth for what is attached and when it
  is renewed: object name, Secret name, fingerprint, validity, ``attached``, ``renewal_at`` —
  never key material.
- The certificate **object** (whatever the template renders: a cert-manager ``Certificate``, a
  cloud certificate resource) is also in the child inventory under the id ``tls:<name>``, so
  teardown deletes it like any other child (last, see ``CERTIFICATE_DELETE_ORDER``) and
  provision's prune leaves it alone: certificates leave through a rotation or a removed listener.
- **Children** see the attached certificates as the template variable ``certificates`` (oldest
  first). Attaching and detaching is a store change followed by re-applying the children.

Names are deterministic: ``<gateway>-<listener>-<8 hex of the operation's idempotency key>``, so a
re-run after a crash finds the object the crashed attempt made, and a rotation's new certificate
never collides with the one it replaces.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from bifrost.api.blueprint import BlueprintTLS, TLSSource
from bifrost.api.cert_manager import with_issuer_renewal
from bifrost.api.objects import Obj
from bifrost.certificates.rules import (
    CERT_MANAGER_NAME_ANNOTATION,
    CERTIFICATE_DELETE_ORDER,
    LISTENER_LABEL,
    certificate_child_id,
    der_fingerprint,
    dns_names,
    ready_when,
    secret_leaf,
    secret_name_expression,
    source_secret_ref,
)
from bifrost.engine import Fail, NotDone
from bifrost.kube import Invalid, Kube, KubeError, KubeReader, UnknownKind
from bifrost.records import CertificateRecord, ChildRecord
from bifrost.render import NotAvailable, RenderError
from bifrost.render.confinement import Confinement, Violation, confine
from bifrost.render.templates import dns_label
from bifrost.sandbox import evaluate_expression, render_certificate
from bifrost.steps.kube_outcomes import outcome_for
from bifrost.steps.ownership import GATEWAY_UID_LABEL, body_hash, gateway_owner_reference
from bifrost.steps.redaction import Redactor, masked_by_source, rejection
from bifrost.store.errors import RecordNotFound
from bifrost.store.interface import OperationStore

__all__ = [
    "Issued",
    "RenewalTime",
    "attached_certificates",
    "certificate_child",
    "certificate_record",
    "certificate_view",
    "delete_certificate_object",
    "issued_record",
    "load_tls",
    "observe_issued",
    "references",
    "request_certificate",
    "source_secret",
]



#: ``(not_before, not_after, tls) -> renewal time``: the renewal policy, passed in by the
#: composition root (``bifrost.certificates.renewal.renewal_time``) so steps stay below it.
RenewalTime = Callable[[datetime, datetime, BlueprintTLS], datetime]





def source_secret(
    kube: KubeReader, gateway: Mapping[str, Any], listener: Mapping[str, Any]
) -> Obj | str | NotDone:
    """The user's Secret a ``ListenerSecret`` listener passes through, or why not (a ``str``:
    wait for it), or an outcome."""
    namespace, name = source_secret_ref(gateway, listener)
    own = str((gateway.get("metadata") or {}).get("namespace"))
    if not name:
        return Fail(f"listener {listener.get('name')!r} has no tls.certificateRefs to pass "
                    "through (spec.tls.source is ListenerSecret)")
    if namespace != own:
        return Fail(f"listener {listener.get('name')!r}: spec.tls.source ListenerSecret passes "
                    f"through Secrets of the Gateway's namespace only, not {namespace}/{name}")
    try:
        secret = kube.get("v1", "Secret", name, namespace)
    except KubeError as e:
        return outcome_for(e, doing=f"reading Secret {namespace}/{name}")
    if secret is None:
        return f"Secret {namespace}/{name} (listener {listener.get('name')}) does not exist yet"
    return secret









def load_tls(raw_blueprint: Mapping[str, Any]) -> BlueprintTLS | None | Fail:
    """The blueprint's ``spec.tls`` (``None`` without one), or a ``Fail`` naming the problem."""
    spec = raw_blueprint.get("spec") or {}
    raw = spec.get("tls") if isinstance(spec, Mapping) else None
    if raw is None:
        return None
    try:
        return BlueprintTLS.model_validate(raw)
    except ValidationError as exc:
        name = (raw_blueprint.get("metadata") or {}).get("name")
        problems = "; ".join(
            f"spec.tls.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return Fail(f"GatewayClassBlueprint {name!r}: {problems}")




def certificate_view(record: CertificateRecord) -> dict[str, Any]:
    """How a certificate appears to templates (the ``certificates`` variable)."""
    return {
        "name": record.object_name,
        "secretName": record.secret_name,
        "listener": record.listener,
        "hostnames": list(record.dns_names),
        "fingerprint": record.fingerprint_sha256,
        "notBefore": record.not_before.isoformat() if record.not_before else None,
        "notAfter": record.not_after.isoformat() if record.not_after else None,
    }


def attached_certificates(store: OperationStore, gateway_uid: str) -> list[dict[str, Any]]:
    """The attached certificates, by listener, oldest first (during a rotation: old, then new).

    Oldest means the earlier ``notBefore``, then the earlier attachment: two certificates
    issued within the same second have the same ``notBefore`` (X.509 times are whole seconds),
    and the one a rotation attached last must still come last."""
    try:
        records = store.list_certificates(gateway_uid=gateway_uid)
    except RecordNotFound:
        return []
    epoch = datetime.min.replace(tzinfo=None)

    def order(r: CertificateRecord) -> tuple[str, datetime, datetime, str]:
        when = r.not_before.replace(tzinfo=None) if r.not_before else epoch
        attached = r.attached_at.replace(tzinfo=None) if r.attached_at else epoch
        return (r.listener, when, attached, r.object_name)

    return [certificate_view(r) for r in sorted(records, key=order) if r.attached]


@masked_by_source
def request_certificate(
    kube: Kube,
    store: OperationStore,
    *,
    tls: BlueprintTLS,
    gateway: Mapping[str, Any],
    values: Mapping[str, Any],
    listener: Mapping[str, Any],
    name: str,
    hostnames: Sequence[str],
    now: datetime,
    source: Mapping[str, Any] | None = None,
    confinement: Confinement | None = None,
) -> NotDone | None:
    """Render and apply the certificate object ``name`` for ``listener`` (observe first: an
    existing one with the same body is not written). The store row and the inventory entry are
    written *before* the apply, so a crash right after it cannot leak the object. ``source``:
    the user's Secret a ``ListenerSecret`` blueprint passes through (templates see it as
    ``source``; it goes to the cluster only, never to the store). ``confinement`` is the
    blueprint's (``None``: no opt-ins): the object lands in the Gateway's namespace, a
    cluster-scoped or sensitive kind only where it allows (see ``bifrost.render.confinement``).
    The template saw the user's Secret: no fragment of it may reach the outcome's message
    (``masked_by_source``)."""
    meta = gateway.get("metadata") or {}
    namespace, gateway_name, uid = str(meta["namespace"]), str(meta["name"]), str(meta["uid"])
    secret = f"{name}-tls"
    view = copy.deepcopy(dict(gateway))
    (view.get("metadata") or {}).pop("managedFields", None)
    context = {
        "gateway": view,
        "values": dict(values),
        "listener": dict(listener),
        "certificate": {"name": name, "secretName": secret, "hostnames": list(hostnames),
                        "listener": str(listener["name"])},
        "source": dict(source or {}),
    }
    try:
        body = render_certificate(tls.certificate_template, context=context)
    except RenderError as e:
        return Fail(f"cannot render the certificate for listener {listener['name']!r}: {e}")
    api_version, kind = str(body.get("apiVersion")), str(body.get("kind"))
    try:
        namespaced = kube.is_namespaced(api_version, kind)
    except UnknownKind:
        return Fail(f"spec.tls.certificateTemplate: the cluster does not serve {api_version} "
                    f"{kind} (is its CRD installed?)")
    except KubeError as e:
        return outcome_for(e, doing=f"discovering {api_version} {kind}")
    bmeta = body.setdefault("metadata", {})
    # The certificate always lands in the Gateway's namespace (whatever the template wrote).
    verdict = confine({**body, "metadata": {**bmeta, "namespace": namespace}},
                      child=certificate_child_id(name), namespaced=namespaced,
                      gateway_namespace=namespace, confinement=confinement or Confinement())
    if isinstance(verdict, Violation):
        return Fail(f"spec.tls.certificateTemplate: {verdict.message}")
    bmeta["name"] = name  # the deterministic name wins over whatever the template wrote
    if namespaced:
        bmeta["namespace"] = namespace
    else:
        bmeta.pop("namespace", None)
    bmeta["labels"] = {**(bmeta.get("labels") or {}), GATEWAY_UID_LABEL: uid,
                       LISTENER_LABEL: dns_label(listener["name"])}
    # cert-manager renews only after bifrost would have rotated (bifrost.api.cert_manager)
    with_issuer_renewal(body, tls.renew_before)
    if namespaced:
        bmeta["ownerReferences"] = [gateway_owner_reference(gateway_name, uid)]
    digest = body_hash(body)
    child_id = certificate_child_id(name)
    record = certificate_child(store, uid, name)
    existing = certificate_record(store, uid, name)
    if record is not None and record.applied_hash == digest and record.uid:
        try:
            live = kube.get(api_version, kind, name, namespace if namespaced else None)
        except KubeError as e:
            return outcome_for(e, doing=f"reading {kind} {namespace}/{name}")
        if live is not None and (live.get("metadata") or {}).get("uid") == record.uid:
            return None  # already there, unchanged
    if existing is None:
        store.upsert_certificate(CertificateRecord(
            gateway_uid=uid, listener=str(listener["name"]), object_name=name, secret_name=secret,
            serial=None, fingerprint_sha256=None, dns_names=tuple(hostnames), not_before=None,
            not_after=None, renewal_at=None, attached=False, state="requested", updated_at=now,
        ))
    if record is None:
        store.upsert_child(ChildRecord(
            gateway_uid=uid, child_id=child_id, api_version=api_version, kind=kind,
            namespace=namespace if namespaced else None, name=name, uid=None, applied_hash=None,
            ready=False, delete_order=CERTIFICATE_DELETE_ORDER, updated_at=now,
        ))
    try:
        applied = kube.apply(body)
    except Invalid as e:
        # values the server quotes from a body rendered from a Secret are masked
        said = rejection(e, body) if source is not None or kind == "Secret" else str(e)
        return Fail(f"the certificate {kind} {namespace}/{name} (from spec.tls.certificateTemplate)"
                    f" was rejected by the API server: {said}")
    except KubeError as e:
        return outcome_for(e, doing=f"applying {kind} {namespace}/{name}")
    store.upsert_child(ChildRecord(
        gateway_uid=uid, child_id=child_id, api_version=api_version, kind=kind,
        namespace=namespace if namespaced else None, name=name,
        uid=(applied.get("metadata") or {}).get("uid"), applied_hash=digest, ready=False,
        delete_order=CERTIFICATE_DELETE_ORDER, updated_at=now,
    ))
    return None


def certificate_record(store: OperationStore, uid: str, name: str | None
                       ) -> CertificateRecord | None:
    """The store's row of certificate ``name`` of a gateway (``None``: not recorded)."""
    if not name:
        return None
    return next((r for r in store.list_certificates(gateway_uid=uid) if r.object_name == name),
                None)


def certificate_child(store: OperationStore, uid: str, name: str) -> ChildRecord | None:
    """The inventory entry of certificate object ``name`` (``None``: not in the inventory)."""
    child_id = certificate_child_id(name)
    return next((r for r in store.list_children(uid)
                 if r.child_id == child_id and r.route_key is None), None)


@dataclass(frozen=True)
class Issued:
    """What issuance produced (read from the Secret's leaf)."""

    secret_name: str
    fingerprint: str
    serial: str
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]


def observe_issued(
    kube: Kube,
    store: OperationStore,
    *,
    tls: BlueprintTLS,
    gateway_uid: str,
    name: str,
    hostnames: Sequence[str],
) -> Issued | str | NotDone:
    """The issued certificate, or why not yet (a ``str``: wait), or an outcome (an error)."""
    record = certificate_child(store, gateway_uid, name)
    if record is None:
        return Fail(f"certificate {name} is not in the inventory (was it deleted?)")
    try:
        obj = kube.get(record.api_version, record.kind, record.name, record.namespace)
    except KubeError as e:
        return outcome_for(e, doing=f"reading {record.kind} {name}")
    if obj is None:
        return f"{record.kind} {name} does not exist yet"
    # With ``ListenerSecret`` the object is rendered from the user's Secret (usually a copy of
    # it): the expressions see its data, and no fragment of that may reach a message.
    redactor = Redactor.of(obj)
    issued = _judge_issued(kube, store, tls=tls, record=record, obj=obj, name=name,
                           hostnames=hostnames)
    if isinstance(issued, str):
        return redactor.text(issued)
    return issued if isinstance(issued, Issued) else redactor.outcome(issued)


def _judge_issued(
    kube: KubeReader,
    store: OperationStore,
    *,
    tls: BlueprintTLS,
    record: ChildRecord,
    obj: Mapping[str, Any],
    name: str,
    hostnames: Sequence[str],
) -> Issued | str | NotDone:
    try:
        field = "spec.tls.readyWhen"
        ready = evaluate_expression(ready_when(tls), {"object": obj}, field=field)
        field = "spec.tls.secretName"
        secret_name = evaluate_expression(secret_name_expression(tls), {"object": obj},
                                          field=field)
    except NotAvailable as e:
        return f"{record.kind} {name} is not issued yet ({field}: {e.reason})"
    except RenderError as e:
        return Fail(str(e))
    if ready is not True:
        conditions = (obj.get("status") or {}).get("conditions") or []
        why = "; ".join(str(c.get("message")) for c in conditions if c.get("message"))
        if tls.source is TLSSource.LISTENER_SECRET:
            why = ""  # the object is rendered from the user's Secret: quote nothing of it
        return f"{record.kind} {name} is not issued yet" + (f": {why}" if why else "")
    if not isinstance(secret_name, str):
        return Fail(f"spec.tls.secretName must give a Secret name (a string), it gave a "
                    f"{_cel_type(secret_name)}")
    if not _SECRET_NAME.fullmatch(secret_name):
        return Fail(f"spec.tls.secretName must give a Secret name (a DNS subdomain of at most "
                    f"253 characters), it gave a string of {len(secret_name)} characters that "
                    "is not one")
    try:
        secret = kube.get("v1", "Secret", secret_name, record.namespace)
    except KubeError as e:
        return outcome_for(e, doing=f"reading Secret {secret_name}")
    data = (secret or {}).get("data") or {}
    if "tls.crt" not in data:
        return f"Secret {secret_name} has no tls.crt yet"
    try:
        leaf = secret_leaf(data)
    except ValueError as e:
        return f"Secret {secret_name} tls.crt is not a PEM certificate yet ({type(e).__name__})"
    names = dns_names(leaf)
    missing = [h for h in hostnames if h not in names]
    if missing:
        return f"Secret {secret_name} does not cover {', '.join(missing)} yet"
    if not record.ready:
        store.upsert_child(record.model_copy(update={"ready": True}))
    return Issued(
        secret_name=secret_name,
        fingerprint=der_fingerprint(leaf),
        serial=format(leaf.serial_number, "x"),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        dns_names=tuple(names),
    )


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SECRET_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def _cel_type(value: Any) -> str:
    """The CEL name of a result's type (an error names it instead of quoting the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    for kinds, name in (((Mapping,), "map"), ((list, tuple), "list"), ((int,), "int"),
                        ((float,), "double"), ((bytes,), "bytes")):
        if isinstance(value, kinds):
            return name
    return type(value).__name__


def references(obj: Mapping[str, Any], record: CertificateRecord) -> bool:
    """Whether a live child still mentions the certificate (its object or Secret name) in its
    spec — the guard that keeps bifrost from deleting anything still attached."""
    spec = json.dumps(obj.get("spec") or {}, sort_keys=True)
    needles = [record.object_name, *([record.secret_name] if record.secret_name else [])]
    return any(json.dumps(n) in spec for n in needles)


def delete_certificate_object(
    kube: Kube,
    store: OperationStore,
    *,
    gateway_uid: str,
    record: CertificateRecord,
    namespace: str | None = None,
) -> bool | NotDone:
    """Delete the certificate object and the Secret it produced (cert-manager does not delete
    it); True once both are gone and the store forgot them. The caller checks first that nothing
    attaches it. ``namespace``: where the Secret is when the object left the inventory already
    (teardown deletes the objects in its waves)."""
    child = certificate_child(store, gateway_uid, record.object_name)
    try:
        if child is not None:
            live = kube.get(child.api_version, child.kind, child.name, child.namespace)
            if live is not None:
                labels = (live.get("metadata") or {}).get("labels") or {}
                if labels.get(GATEWAY_UID_LABEL) == gateway_uid:
                    kube.delete(child.api_version, child.kind, child.name, child.namespace,
                                uid=(live.get("metadata") or {}).get("uid"))
                    return False  # look again: deletion may be asynchronous (finalizers)
        namespace = child.namespace if child is not None and child.namespace else namespace
        if record.secret_name and namespace:
            secret = kube.get("v1", "Secret", record.secret_name, namespace)
            if secret is not None and _secret_of(secret, record.object_name, gateway_uid):
                kube.delete("v1", "Secret", record.secret_name, namespace,
                            uid=(secret.get("metadata") or {}).get("uid"))
                return False
    except KubeError as e:
        return outcome_for(e, doing=f"deleting certificate {record.object_name}")
    if child is not None:
        store.delete_child(gateway_uid, child.child_id)
    store.delete_certificate(gateway_uid, record.object_name)
    return True


def _secret_of(secret: Mapping[str, Any], certificate: str, gateway_uid: str) -> bool:
    meta = secret.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    return bool(annotations.get(CERT_MANAGER_NAME_ANNOTATION) == certificate
                or labels.get(GATEWAY_UID_LABEL) == gateway_uid)


def issued_record(
    gateway_uid: str,
    listener: str,
    name: str,
    issued: Issued,
    tls: BlueprintTLS,
    *,
    now: datetime,
    attached: bool,
    renewal_time: RenewalTime | None,
) -> CertificateRecord:
    """The store row of an issued certificate, with its renewal time (policy from the blueprint;
    without an injected policy: two thirds of the lifetime). A passed-through user certificate
    (``source: ListenerSecret``) gets none: renewing it is its owner's business, and bifrost
    rotates when the Secret's certificate changes."""
    renew_at: datetime | None
    if tls.source is TLSSource.LISTENER_SECRET:
        renew_at = None
    elif renewal_time is not None:
        renew_at = renewal_time(issued.not_before, issued.not_after, tls)
    else:
        renew_at = issued.not_before + (issued.not_after - issued.not_before) * 2 / 3
    return CertificateRecord(
        gateway_uid=gateway_uid, listener=listener, object_name=name,
        secret_name=issued.secret_name, serial=issued.serial,
        fingerprint_sha256=issued.fingerprint, dns_names=issued.dns_names,
        not_before=issued.not_before, not_after=issued.not_after, renewal_at=renew_at,
        attached=attached, state="attached" if attached else "issued", updated_at=now,
    )
