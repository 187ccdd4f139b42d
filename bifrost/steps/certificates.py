"""The provision step that gives every managed HTTPS listener a certificate before the children
render (``ensure_certificates``): request where none is attached, wait until issued, attach;
retire the certificates of listeners that went away (``prune`` deletes them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from bifrost.api.blueprint import TLSSource
from bifrost.certificates.rules import (
    certificate_child_id,
    certificate_name,
    listener_hostnames,
    managed_listeners,
)
from bifrost.engine import Done, Fail, NoInput, Outcome, Step, StepContext, StepOutput, Wait
from bifrost.machines.provision import ProvisionContext
from bifrost.records import CertificateRecord
from bifrost.steps.confinement import confinement_of
from bifrost.steps.provision import (
    RETIRED,
    _ProvisionStep,
    load_raw_blueprint,
    record_wait_key,
)
from bifrost.steps.tls import (
    Issued,
    RenewalTime,
    issued_record,
    load_tls,
    observe_issued,
    request_certificate,
    source_secret,
)


class CertificatesNotManaged(StepOutput):
    """``ensure_certificates``: the blueprint has no ``spec.tls``."""

    tls: Literal[False] = False


class CertificatesAttached(StepOutput):
    """``ensure_certificates``: the certificates this pass attached."""

    attached: tuple[str, ...]


class EnsureCertificates(_ProvisionStep,
                         Step[NoInput, CertificatesNotManaged | CertificatesAttached]):
    """``ensure_certificates``: with ``spec.tls``, every managed HTTPS listener (see
    ``bifrost.certificates.rules.managed_listeners``) gets a certificate before the children render:
    one is requested where none is attached, waited for until issued (bounded by
    ``spec.tls.issueTimeoutSeconds``) and attached. A listener that went away has its
    certificates retired (detached now, deleted by ``prune`` once the children no longer use
    them). A listener whose hostname changed keeps its certificate: the controller starts a
    rotation for it, which replaces it with zero downtime."""

    def __init__(self, *args: Any, renewal_time: RenewalTime | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.renewal_time = renewal_time

    input_model = NoInput

    def execute(self, ctx: StepContext[ProvisionContext],
                input: NoInput) -> Outcome[CertificatesNotManaged | CertificatesAttached]:
        c = ctx.context
        raw = load_raw_blueprint(self.blueprints, c.blueprint)
        if not isinstance(raw, Mapping):
            return raw
        tls = load_tls(raw)
        if isinstance(tls, Fail):
            return tls
        confinement = confinement_of(raw)
        if isinstance(confinement, Fail):
            return confinement
        now = ctx.now()
        records = self.store.list_certificates(gateway_uid=c.gateway_uid)
        if tls is None:
            # The blueprint stopped managing certificates: retire what it managed.
            self._retire(records, keep=set(), now=now)
            return Done(output=CertificatesNotManaged())
        gateway = self._gateway(c)
        if not isinstance(gateway, dict):
            return gateway
        listeners = {str(x["name"]): x for x in managed_listeners(gateway)}
        self._retire(records, keep=set(listeners), now=now)
        requested = list(c.certificates)
        waiting: list[str] = []
        on: list[str] = []  # wait keys: the certificates waited for
        attached: list[str] = []
        for name, listener in listeners.items():
            mine = [r for r in records if r.listener == name and r.state != RETIRED]
            if any(r.attached for r in mine):
                continue
            hostnames = listener_hostnames(listener)
            source: Mapping[str, Any] | None = None
            if tls.source is TLSSource.LISTENER_SECRET:
                found = source_secret(self.kube, gateway, listener)
                if isinstance(found, str):
                    waiting.append(f"listener {name}: {found}")
                    continue
                if not isinstance(found, dict):
                    return found
                source = found
            # a certificate requested earlier for this listener (by this operation, or by one
            # that failed waiting for it) is waited for again, not requested a second time
            pending = next((r for r in mine if r.object_name in requested), None) or next(
                (r for r in mine if not r.attached and r.state in ("requested", "issued")), None)
            cert = pending.object_name if pending else certificate_name(
                c.gateway, name, f"{ctx.idempotency_key}/{name}")
            outcome = request_certificate(
                self.kube, self.store, tls=tls, gateway=gateway, values=c.values,
                listener=listener, name=cert, hostnames=hostnames, now=now, source=source,
                confinement=confinement)
            if outcome is not None:
                return outcome
            if cert not in requested:
                requested.append(cert)
            issued = observe_issued(self.kube, self.store, tls=tls, gateway_uid=c.gateway_uid,
                                    name=cert, hostnames=hostnames)
            if isinstance(issued, str):
                waiting.append(f"listener {name}: {issued}")
                on += self._certificate_keys(c.gateway_uid, cert)
                continue
            if not isinstance(issued, Issued):
                return issued
            self.store.upsert_certificate(issued_record(
                c.gateway_uid, name, cert, issued, tls, now=now, attached=True,
                renewal_time=self.renewal_time))
            attached.append(cert)
        since = c.certificates_since or (now.isoformat() if waiting else None)
        context = c.model_copy(update={"certificates": tuple(requested),
                                       "certificates_since": since})
        if waiting:
            started = datetime.fromisoformat(since) if since else now
            if now - started > timedelta(seconds=tls.issue_timeout_seconds):
                return Fail(f"certificates not issued within {tls.issue_timeout_seconds}s "
                            f"(spec.tls.issueTimeoutSeconds): " + "; ".join(waiting))
            return Wait("; ".join(waiting), self.recheck, context=context,
                        on=tuple(sorted(set(on))))
        return Done(output=CertificatesAttached(attached=tuple(attached)), context=context)

    def _certificate_keys(self, gateway_uid: str, name: str) -> list[str]:
        """The wait key of certificate ``name`` (its inventory record says where it is): its
        status changing (issued) wakes the step."""
        child_id = certificate_child_id(name)
        return [record_wait_key(r) for r in self.store.list_children(gateway_uid)
                if r.child_id == child_id and r.route_key is None]

    def _retire(self, records: Sequence[CertificateRecord], *, keep: set[str],
                now: datetime) -> None:
        for r in records:
            if r.listener not in keep and r.state != RETIRED:
                self.store.upsert_certificate(r.model_copy(
                    update={"attached": False, "state": RETIRED, "updated_at": now}))
