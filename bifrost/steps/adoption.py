"""Adoption: rebuild a Gateway's inventory from what the cluster holds under bifrost's ownership
labels, so that a lost, partly lost or restored (older) database neither leaks nor duplicates.

The cluster is the truth for what exists; the store for what is in flight. Every object bifrost
makes for a Gateway carries the gateway-uid label; children also carry the child-id label (and a
route child the route annotation), certificate objects the listener label. Adoption lists, per
kind, the objects with this Gateway's uid label (one label-selected list per kind, across
namespaces: the kinds the blueprint's templates name literally, the kinds already in the
inventory, and the certificate kind of ``spec.tls``) and then:

- **children**: one not in the inventory is recorded under its (child id, route) with no applied
  hash, so ``apply_children`` re-applies it (or supersedes it when the blueprint now renders
  another name) and ``prune``/teardown delete what is no longer rendered — nothing is created
  twice and nothing is forgotten;
- **certificates**: the attached one of a listener is the one the live children reference (its
  object or Secret name in their spec, see :func:`bifrost.steps.tls.references`; the newest
  issued one when several are), recorded with its issued details so renewal is scheduled from
  it; other certificates this Gateway owns are retired (``prune`` deletes them with their
  Secrets once no child mentions them); where no child references any, the newest live one is
  recorded as requested so ``ensure_certificates`` waits for it instead of requesting a
  duplicate; a recorded certificate whose object is gone and which no child mentions is
  forgotten (a leftover Secret of it is deleted).

A child recorded under the same id but as another object that still exists is left as it is
(a database lost in the middle of a rename; see ``docs/recovery.md``).

Cheap on the normal path (:func:`needs_adoption`): a provision makes one label-selected list of
a probe kind (the certificate kind, else the blueprint's first kind; none without ``spec.tls``
once the inventory has children) and scans only when the Gateway's inventory is empty while the
cluster holds objects of it (a lost database), or the recorded certificates do not match the
live ones (a restored or partly lost one); teardown always scans (it is rare, and must find
everything before the finalizer goes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bifrost.api.blueprint import BlueprintTLS
from bifrost.api.objects import Obj
from bifrost.certificates.rules import (
    CERTIFICATE_DELETE_ORDER,
    LISTENER_LABEL,
    certificate_child_id,
    is_certificate_child,
    listener_hostnames,
    managed_listeners,
    secret_name_expression,
)
from bifrost.engine import (
    Done,
    Fail,
    NoInput,
    NotDone,
    Outcome,
    Step,
    StepContext,
    StepOutput,
    Wait,
)
from bifrost.kube import Kube, KubeError, KubeReader, UnknownKind
from bifrost.machines.provision import ProvisionContext
from bifrost.machines.teardown import TeardownContext
from bifrost.records import CertificateRecord, ChildRecord
from bifrost.render import NotAvailable, RenderError
from bifrost.render.templates import dns_label
from bifrost.sandbox import evaluate_expression
from bifrost.steps.kube_outcomes import outcome_for
from bifrost.steps.ownership import GATEWAY_API, GATEWAY_UID_LABEL
from bifrost.steps.provision import (
    CHILD_ID_LABEL,
    RETIRED,
    ROUTE_ANNOTATION,
    BlueprintSource,
    ClusterBlueprints,
    _ProvisionStep,
    load_raw_blueprint,
)
from bifrost.steps.tls import (
    Issued,
    RenewalTime,
    certificate_child,
    delete_certificate_object,
    issued_record,
    load_tls,
    observe_issued,
    references,
)
from bifrost.store.interface import OperationStore

__all__ = [
    "Adopt",
    "AdoptForTeardown",
    "Adopted",
    "Adoption",
    "adopt",
    "certificate_kind",
    "needs_adoption",
    "template_kind",
]

IN_FLIGHT = ("requested", "issued")
#: How soon adoption looks again while a leftover Secret is being deleted.
_RECHECK = timedelta(seconds=0.5)

_TOP_KEY = re.compile(r"^(apiVersion|kind)\s*:\s*(.*?)\s*(#.*)?$")
_QUOTED = re.compile(r"""^(['"])(.*)\1$""")

Kind = tuple[str, str]


def template_kind(template: str) -> Kind | None:
    """(apiVersion, kind) of a template whose top-level ``apiVersion`` and ``kind`` are literal
    (one line each, no template expression); ``None`` otherwise."""
    found: dict[str, list[str]] = {"apiVersion": [], "kind": []}
    for line in template.splitlines():
        match = _TOP_KEY.match(line)
        if match is not None:
            found[match.group(1)].append(match.group(2))
    if len(found["apiVersion"]) != 1 or len(found["kind"]) != 1:
        return None
    values: list[str] = []
    for raw in (found["apiVersion"][0], found["kind"][0]):
        if "{{" in raw or "{%" in raw:
            return None
        quoted = _QUOTED.match(raw)
        value = quoted.group(2) if quoted else raw
        if not value or " " in value:
            return None
        values.append(value)
    return values[0], values[1]


def certificate_kind(tls: BlueprintTLS | None) -> Kind | None:
    """The kind of ``spec.tls.certificateTemplate`` when it is literal."""
    return template_kind(tls.certificate_template) if tls is not None else None


def _blueprint_kinds(raw_blueprint: Mapping[str, Any] | None) -> list[Kind]:
    spec = (raw_blueprint or {}).get("spec") or {}
    out: list[Kind] = []
    for key in ("children", "routeChildren"):
        for entry in spec.get(key) or []:
            kind = template_kind(str((entry or {}).get("template") or ""))
            if kind is not None:
                out.append(kind)
    return out


def _delete_orders(raw_blueprint: Mapping[str, Any] | None) -> dict[str, int]:
    spec = (raw_blueprint or {}).get("spec") or {}
    return {str(e.get("id")): int(e.get("deleteOrder") or 0)
            for key in ("children", "routeChildren") for e in spec.get(key) or []
            if isinstance(e, Mapping)}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _meta(obj).get("labels") or {}


def _list_owned(kube: KubeReader, kind: Kind, gateway_uid: str) -> list[Obj] | None:
    """This Gateway's objects of ``kind`` in every namespace (``None``: the kind is not served)."""
    try:
        items, _ = kube.list(kind[0], kind[1], None,
                             label_selector=f"{GATEWAY_UID_LABEL}={gateway_uid}")
    except UnknownKind:
        return None
    return [o for o in items if _labels(o).get(GATEWAY_UID_LABEL) == gateway_uid]


def _is_certificate(obj: Mapping[str, Any], cert_kind: Kind | None) -> bool:
    labels = _labels(obj)
    return (cert_kind is not None and (str(obj.get("apiVersion")), str(obj.get("kind")))
            == cert_kind and LISTENER_LABEL in labels and CHILD_ID_LABEL not in labels)


def needs_adoption(
    kube: KubeReader,
    store: OperationStore,
    *,
    gateway_uid: str,
    tls: BlueprintTLS | None,
    raw_blueprint: Mapping[str, Any] | None = None,
) -> str | None | NotDone:
    """Why a provision must adopt (``None``: no adoption needed). One label-selected list of a
    *probe* kind decides: the certificate kind of ``spec.tls`` (certificates are requested
    before any child is applied), else the first kind the blueprint's templates name.

    - Empty inventory: adopt when the probe finds an object of the Gateway (a lost database);
      none is a new Gateway (nothing to adopt).
    - Inventory present: adopt when the recorded certificates are not exactly the live ones
      (a restored or partly lost database); without ``spec.tls`` nothing is checked (no call).
    """
    empty = not store.list_children(gateway_uid)
    cert_kind = certificate_kind(tls)
    kinds = _blueprint_kinds(raw_blueprint)
    probe = cert_kind or (kinds[0] if empty and kinds else None)
    if probe is None:
        return "the inventory is empty" if empty else None
    try:
        live = _list_owned(kube, probe, gateway_uid) or []
    except KubeError as e:
        return outcome_for(e, doing=f"listing {probe[1]} objects of the Gateway")
    if empty:
        if not live:
            return None  # a new Gateway: nothing of it exists yet
        return (f"the inventory is empty and the cluster holds {probe[1]} objects of the "
                "Gateway")
    names = {str(_meta(o).get("name")) for o in live if _is_certificate(o, cert_kind)}
    recorded = {r.object_name for r in store.list_certificates(gateway_uid=gateway_uid)}
    if names != recorded:
        return ("the certificate records do not match the cluster (recorded "
                f"{sorted(recorded)}, live {sorted(names)})")
    return None


@dataclass
class Adoption:
    """What one adoption pass found and did (names only: no key material)."""

    lists: int = 0
    children: list[str] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def adopt(
    kube: Kube,
    store: OperationStore,
    *,
    gateway_uid: str,
    namespace: str,
    gateway: Mapping[str, Any] | None,
    raw_blueprint: Mapping[str, Any] | None,
    tls: BlueprintTLS | None,
    now: datetime,
    renewal_time: RenewalTime | None,
) -> Adoption | NotDone:
    """Record in the store what the cluster holds for the Gateway (see the module docstring).
    ``gateway``: the live Gateway (its listeners name the certificates' listeners; ``None``
    when gone); ``raw_blueprint``: the blueprint (``None`` when gone: only the inventory's kinds
    are known)."""
    out = Adoption()
    inventory = store.list_children(gateway_uid)
    cert_kind = certificate_kind(tls)
    kinds: list[Kind] = list(dict.fromkeys([
        *_blueprint_kinds(raw_blueprint),
        *((r.api_version, r.kind) for r in inventory),
        *([cert_kind] if cert_kind else []),
    ]))
    live: list[Obj] = []
    listed: set[Kind] = set()
    try:
        for kind in kinds:
            items = _list_owned(kube, kind, gateway_uid)
            out.lists += 1
            if items is not None:
                listed.add(kind)
                live += items
    except KubeError as e:
        return outcome_for(e, doing="listing the Gateway's objects to adopt them")
    certificates = [o for o in live if _is_certificate(o, cert_kind)]
    children = [o for o in live if CHILD_ID_LABEL in _labels(o)]
    _adopt_children(store, gateway_uid=gateway_uid, inventory=inventory, children=children,
                    listed=listed, orders=_delete_orders(raw_blueprint), now=now, out=out)
    if cert_kind is None and tls is not None:
        out.left.append("certificates: spec.tls.certificateTemplate's kind is not literal")
    outcome = _adopt_certificates(
        kube, store, gateway_uid=gateway_uid, namespace=namespace, gateway=gateway, tls=tls,
        live_certificates=certificates, children=children, now=now,
        renewal_time=renewal_time, out=out)
    return outcome if outcome is not None else out


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str | None, str]:
    meta = _meta(obj)
    ns = meta.get("namespace")
    return (str(obj.get("apiVersion")), str(obj.get("kind")), str(ns) if ns else None,
            str(meta.get("name")))


def _adopt_children(
    store: OperationStore,
    *,
    gateway_uid: str,
    inventory: Sequence[ChildRecord],
    children: Iterable[Obj],
    listed: set[Kind],
    orders: Mapping[str, int],
    now: datetime,
    out: Adoption,
) -> None:
    by_key = {(r.child_id, r.route_key): r for r in inventory}
    present = {_identity(o) for o in children}
    for obj in children:
        meta = _meta(obj)
        child_id = str(_labels(obj)[CHILD_ID_LABEL])
        route_key = (meta.get("annotations") or {}).get(ROUTE_ANNOTATION)
        api_version, kind, ns, name = _identity(obj)
        key = f"{child_id}@{route_key}" if route_key else child_id
        record = by_key.get((child_id, route_key))
        if record is not None:
            if (record.api_version, record.kind, record.namespace, record.name) == (
                    api_version, kind, ns, name):
                continue  # already known
            recorded_exists = ((record.api_version, record.kind) not in listed
                               or (record.api_version, record.kind, record.namespace,
                                   record.name) in present)
            if recorded_exists:
                out.left.append(f"{key}: {kind} {name} (the inventory records another object "
                                "under this id)")
                continue
        store.upsert_child(ChildRecord(
            gateway_uid=gateway_uid, child_id=child_id, api_version=api_version, kind=kind,
            namespace=ns, name=name, uid=meta.get("uid"), route_key=route_key,
            applied_hash=None, ready=False, delete_order=orders.get(child_id, 0),
            updated_at=now,
        ))
        out.children.append(key)


def _listener_of(obj: Mapping[str, Any], gateway: Mapping[str, Any] | None
                 ) -> tuple[str, tuple[str, ...]]:
    """(listener name, hostnames) of a certificate object, from its listener label matched to
    the Gateway's managed listeners (unmatched: the label's value, no hostnames)."""
    label = str(_labels(obj).get(LISTENER_LABEL) or "")
    for listener in managed_listeners(gateway or {}):
        if dns_label(listener["name"]) == label:
            return str(listener["name"]), listener_hostnames(listener)
    return label, ()


def _secret_name(obj: Mapping[str, Any], tls: BlueprintTLS | None) -> str | None:
    """The Secret a certificate object produces (``spec.tls.secretName``), if it can be told."""
    if tls is None:
        value = (obj.get("spec") or {}).get("secretName")
        return value if isinstance(value, str) else None
    try:
        value = evaluate_expression(secret_name_expression(tls), {"object": obj},
                                    field="spec.tls.secretName")
    except (NotAvailable, RenderError):
        return None
    return value if isinstance(value, str) and value else None


def _adopt_certificates(
    kube: Kube,
    store: OperationStore,
    *,
    gateway_uid: str,
    namespace: str,
    gateway: Mapping[str, Any] | None,
    tls: BlueprintTLS | None,
    live_certificates: Sequence[Obj],
    children: Sequence[Obj],
    now: datetime,
    renewal_time: RenewalTime | None,
    out: Adoption,
) -> NotDone | None:
    """Certificates: forget the recorded ones that are gone, record the live ones, decide which
    is attached (see the module docstring)."""
    serving = [o for o in children if not is_certificate_child(str(_labels(o)[CHILD_ID_LABEL]))]
    records = {r.object_name: r for r in store.list_certificates(gateway_uid=gateway_uid)}
    live = {str(_meta(o).get("name")): o for o in live_certificates}

    def referenced(record: CertificateRecord) -> bool:
        return any(references(child, record) for child in serving)

    for name, record in records.items():
        if name in live or referenced(record):
            continue
        # gone, and nothing mentions it: forget it (and delete a leftover Secret of ours)
        for _ in range(3):
            gone = delete_certificate_object(kube, store, gateway_uid=gateway_uid,
                                             record=record, namespace=namespace)
            if not isinstance(gone, bool):
                return gone
            if gone:
                break
        else:
            return Wait(f"adopting: waiting for the Secret of certificate {name} to be deleted",
                        _RECHECK)
        out.forgotten.append(name)

    # what each live certificate is: its store row as adoption would write it
    candidates: dict[str, CertificateRecord] = {}
    issued_at: dict[str, datetime] = {}
    for name, obj in sorted(live.items()):
        api_version, kind, ns, _ = _identity(obj)
        if certificate_child(store, gateway_uid, name) is None:
            store.upsert_child(ChildRecord(
                gateway_uid=gateway_uid, child_id=certificate_child_id(name),
                api_version=api_version, kind=kind, namespace=ns, name=name,
                uid=_meta(obj).get("uid"), applied_hash=None, ready=False,
                delete_order=CERTIFICATE_DELETE_ORDER, updated_at=now))
        listener, hostnames = _listener_of(obj, gateway)
        existing = records.get(name)
        issued: Issued | str | NotDone = "no spec.tls"
        if tls is not None:
            issued = observe_issued(kube, store, tls=tls, gateway_uid=gateway_uid, name=name,
                                    hostnames=hostnames)
            if not isinstance(issued, (Issued, str)):
                return issued
        if isinstance(issued, Issued):
            assert tls is not None
            record = issued_record(gateway_uid, listener, name, issued, tls, now=now,
                                   attached=False, renewal_time=renewal_time)
            issued_at[name] = issued.not_before
        else:
            record = existing or CertificateRecord(
                gateway_uid=gateway_uid, listener=listener, object_name=name,
                secret_name=_secret_name(obj, tls), serial=None, fingerprint_sha256=None,
                dns_names=hostnames, not_before=None, not_after=None, renewal_at=None,
                attached=False, state="requested", updated_at=now)
        if existing is not None:
            record = record.model_copy(update={"listener": existing.listener})
        candidates[name] = record

    by_listener: dict[str, list[str]] = {}
    for name, record in candidates.items():
        by_listener.setdefault(record.listener, []).append(name)
    epoch = datetime.min
    for _listener, names in sorted(by_listener.items()):
        # newest first: issued ones by notBefore, then by name for a stable choice
        names.sort(key=lambda n: (issued_at.get(n, epoch).replace(tzinfo=None), n),
                   reverse=True)
        serving_names = [n for n in names if referenced(candidates[n])]
        issued_serving = [n for n in serving_names if n in issued_at]
        attached = issued_serving[:1] or serving_names[:1]
        if not attached:
            # nothing serves this listener yet: an in-flight record keeps its state; else the
            # newest becomes the one ensure_certificates waits for
            in_flight = [n for n in names if n in records and records[n].state in IN_FLIGHT]
            pending = in_flight[:1] or names[:1]
        else:
            pending = []
        for name in names:
            record, existing = candidates[name], records.get(name)
            if name in attached:
                wanted = record.model_copy(update={"attached": True, "state": "attached"
                                                   if name in issued_at else record.state})
                out.attached.append(name)
            elif name in pending:
                wanted = existing or record
                out.pending.append(name)
            else:
                wanted = record.model_copy(update={"attached": False, "state": RETIRED})
                out.retired.append(name)
            if existing is None or _differs(existing, wanted):
                store.upsert_certificate(wanted.model_copy(update={"updated_at": now}))
    return None


def _differs(a: CertificateRecord, b: CertificateRecord) -> bool:
    return a.model_dump(exclude={"updated_at"}) != b.model_dump(exclude={"updated_at"})



# --- the steps ----------------------------------------------------------------------------


class Adopted(StepOutput):
    """``adopt`` / ``adopt_for_teardown``: why it scanned (empty: it did not need to), how many
    lists it made, and what it recorded — children adopted, certificates found attached, waited
    for, retired or forgotten, and what it left alone."""

    reason: str = ""
    lists: int = 0
    children: tuple[str, ...] = ()
    attached: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()
    forgotten: tuple[str, ...] = ()
    left: tuple[str, ...] = ()

    @classmethod
    def of(cls, reason: str, adoption: Adoption) -> Adopted:
        return cls(reason=reason, lists=adoption.lists, children=tuple(adoption.children),
                   attached=tuple(adoption.attached), pending=tuple(adoption.pending),
                   retired=tuple(adoption.retired), forgotten=tuple(adoption.forgotten),
                   left=tuple(adoption.left))


class Adopt(_ProvisionStep, Step[NoInput, Adopted]):
    """``adopt``, the provision machine's first step: when the store's inventory does not match
    the cluster (:func:`needs_adoption`), rebuild it from the objects carrying this Gateway's
    labels (:func:`adopt`) before certificates are ensured and children applied."""

    input_model = NoInput

    def __init__(self, *args: Any, renewal_time: RenewalTime | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.renewal_time = renewal_time

    def execute(self, ctx: StepContext[ProvisionContext], input: NoInput) -> Outcome[Adopted]:
        c = ctx.context
        raw = load_raw_blueprint(self.blueprints, c.blueprint)
        if not isinstance(raw, Mapping):
            return raw
        tls = load_tls(raw)
        if isinstance(tls, Fail):
            return tls
        why = needs_adoption(self.kube, self.store, gateway_uid=c.gateway_uid, tls=tls,
                             raw_blueprint=raw)
        if why is None:
            return Done(output=Adopted())
        if not isinstance(why, str):
            return why
        gateway = self._gateway(c)
        if not isinstance(gateway, dict):
            return gateway
        result = adopt(self.kube, self.store, gateway_uid=c.gateway_uid, namespace=c.namespace,
                       gateway=gateway, raw_blueprint=raw, tls=tls, now=ctx.now(),
                       renewal_time=self.renewal_time)
        if not isinstance(result, Adoption):
            return result
        return Done(output=Adopted.of(why, result))


class AdoptForTeardown(Step[NoInput, Adopted]):
    """``adopt_for_teardown``, the teardown machine's first step: always rebuild the inventory
    from the cluster (:func:`adopt`), so a Gateway deleted while the store is empty, partly lost
    or older still has everything it owns deleted — certificate Secrets included — before its
    finalizer goes. Without its blueprint only the inventory's kinds are known."""

    input_model = NoInput

    def __init__(
        self,
        kube: Kube,
        store: OperationStore,
        *,
        blueprints: BlueprintSource | None = None,
        renewal_time: RenewalTime | None = None,
    ) -> None:
        self.kube = kube
        self.store = store
        self.blueprints: BlueprintSource = blueprints or ClusterBlueprints(kube)
        self.renewal_time = renewal_time

    def execute(self, ctx: StepContext[TeardownContext], input: NoInput) -> Outcome[Adopted]:
        c = ctx.context
        raw: Mapping[str, Any] | None = None
        try:
            if c.blueprint:
                raw = self.blueprints.get(c.blueprint)
            gateway = self.kube.get(GATEWAY_API, "Gateway", c.gateway, c.namespace)
        except KubeError as e:
            return outcome_for(e, doing=f"reading what Gateway {c.namespace}/{c.gateway} uses")
        if gateway is not None and _meta(gateway).get("uid") != c.gateway_uid:
            gateway = None  # re-created under the same name: not ours
        tls = load_tls(raw) if raw is not None else None
        if isinstance(tls, Fail):
            tls = None  # an invalid spec.tls: certificate objects cannot be told apart
        result = adopt(self.kube, self.store, gateway_uid=c.gateway_uid, namespace=c.namespace,
                       gateway=gateway, raw_blueprint=raw, tls=tls, now=ctx.now(),
                       renewal_time=self.renewal_time)
        if not isinstance(result, Adoption):
            return result
        return Done(output=Adopted.of("teardown", result))
