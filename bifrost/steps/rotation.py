"""The rotation machine's steps (see ``bifrost.machines.rotation``).

Each step observes first and acts only if needed, so a re-run after a crash (or on a new leader)
finds what the crashed attempt made: the new certificate's name comes from the operation's
idempotency key, attaching and detaching are store flags followed by a re-apply of the children
(unchanged children are not written again), and deleting refuses while any live child still
mentions the certificate.

Attaching re-renders the children exactly as the Gateway's last provision did (its blueprint and
merged values, recorded in that operation's context) with the new attached set, through the
provision machine's own ``apply_children`` — one rendering path, one inventory. "Observed" means
every child reports, in ``status.observedGeneration`` or on its conditions, the generation bifrost
wrote (the rule kstatus uses) and satisfies its ``readyWhen``.

Attaching and detaching write the children with preconditions (``bifrost.steps.preconditions``):
each re-applied child carries the ``uid`` and ``resourceVersion`` the step read it at, so a body
computed from a stale read (a runner that paused while its successor moved the rotation on) is
refused by the API server with 409 even if it slipped past the engine's fence check.
"""

from __future__ import annotations

import base64
import dataclasses
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from bifrost.api.blueprint import BLUEPRINT_KIND, BlueprintTLS, TLSSource, VerifyMode
from bifrost.api.objects import Obj
from bifrost.certificates.rules import (
    certificate_child_id,
    certificate_name,
    is_certificate_child,
    listener_hostnames,
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
from bifrost.engine.step import idempotency_key
from bifrost.kube import Kube, KubeError
from bifrost.machines.provision import PROVISION_MACHINE, ProvisionContext
from bifrost.machines.rotation import CREATE_CERTIFICATE, RotationContext
from bifrost.records import CertificateRecord
from bifrost.render import (
    Blueprint,
    NotAvailable,
    RenderError,
)
from bifrost.render.confinement import Confinement
from bifrost.sandbox import evaluate_expression, evaluate_ready
from bifrost.steps.confinement import confinement_of
from bifrost.steps.kube_outcomes import outcome_for
from bifrost.steps.ownership import GATEWAY_API, owned_by
from bifrost.steps.preconditions import PreconditionedKube
from bifrost.steps.provision import (
    ApplyChildren,
    BlueprintSource,
    ClusterBlueprints,
    describe_record,
    gateway_children,
    load_raw_blueprint,
    observe,
    record_wait_key,
)
from bifrost.steps.redaction import Redactor
from bifrost.steps.tls import (
    Issued,
    RenewalTime,
    certificate_record,
    delete_certificate_object,
    issued_record,
    load_tls,
    observe_issued,
    references,
    request_certificate,
    source_secret,
)
from bifrost.steps.tls_probe import served_fingerprint
from bifrost.store.interface import OperationStore

__all__ = ["DEFAULT_DRAIN", "RotationStep", "RotationSteps", "observed_generation_problem"]

#: Drain time when the blueprint sets none (``spec.tls.drainSeconds``).
DEFAULT_DRAIN = timedelta(seconds=30)
DEFAULT_ENDPOINT = '{"host": gateway.status.addresses[0].value, "port": listener.port}'
PROBE_LABEL = "bifrost-probe"


def observed_generation_problem(obj: Mapping[str, Any]) -> str | None:
    """Why ``obj`` has not observed its current spec yet (``None``: it has, or it does not say)."""
    meta = obj.get("metadata") or {}
    generation = meta.get("generation")
    status = obj.get("status") or {}
    reported = [status["observedGeneration"]] if isinstance(
        status.get("observedGeneration"), int) else []
    reported += [c["observedGeneration"] for c in status.get("conditions") or []
                 if isinstance(c.get("observedGeneration"), int)]
    if not isinstance(generation, int) or not reported or min(reported) >= generation:
        return None
    return (f"{obj.get('kind')} {meta.get('name')} has not observed generation {generation} "
            f"yet (reports {min(reported)})")


class CertificateRequested(StepOutput):
    """``create_certificate``: the new certificate's object name and hostnames."""

    certificate: str
    hostnames: tuple[str, ...]


class CertificateIssued(StepOutput):
    """``await_issued``: the issued leaf's SHA-256 fingerprint and notAfter (ISO)."""

    fingerprint: str
    not_after: str


class BothAttached(StepOutput):
    """``attach_new``: the certificates now attached (the old one, if any, and the new)."""

    attached: tuple[str, ...]


class VerificationSkipped(StepOutput):
    """``verify_served`` with ``spec.tls.verify.mode: None``."""

    verified: Literal["none"] = "none"


class ServedVerified(StepOutput):
    """``verify_served``: how the new certificate was verified and where it was seen served."""

    verified: str
    served: tuple[str, ...]


class NoDrain(StepOutput):
    """``drain`` with no old certificate to drain."""

    drained: Literal[False] = False


class Drained(StepOutput):
    """``drain``: until when both certificates stayed attached (ISO)."""

    drained_until: str


class Detached(StepOutput):
    """``detach_old`` / ``detach_new``: the certificate detached, if there was one."""

    detached: str | None


class OldDeleted(StepOutput):
    """``delete_old``: the old certificate deleted and the one now current."""

    deleted: str | None
    current: str


class NewDeleted(StepOutput):
    """``delete_new`` (rollback): the new certificate deleted, if made, and the one kept."""

    deleted: str | None
    kept: str | None


class RotationSteps:
    """The step implementations, sharing their ports (cluster, store, blueprints, clock-free
    policies); each is bound to its step name as a :class:`RotationStep` by
    ``bifrost.steps.bindings``."""

    def __init__(
        self,
        kube: Kube,
        store: OperationStore,
        *,
        blueprints: BlueprintSource | None = None,
        renewal_time: RenewalTime | None = None,
        recheck: timedelta = timedelta(seconds=0.2),
        probe_timeout: float = 3.0,
    ) -> None:
        self.kube = kube
        self.store = store
        self.blueprints: BlueprintSource = blueprints or ClusterBlueprints(kube)
        self.renewal_time = renewal_time
        self.recheck = recheck
        self.probe_timeout = probe_timeout
        # The children are re-applied with the uid/resourceVersion they were read at.
        self._children_kube = PreconditionedKube(kube)
        self._apply = ApplyChildren(self._children_kube, store, blueprints=self.blueprints,
                                    recheck=recheck)

    # ---- shared -----------------------------------------------------------------------------

    def _tls(self, c: RotationContext) -> BlueprintTLS | NotDone:
        found = self._tls_confined(c)
        return found[0] if isinstance(found, tuple) else found

    def _tls_confined(self, c: RotationContext) -> tuple[BlueprintTLS, Confinement] | NotDone:
        """The blueprint's ``spec.tls`` and ``spec.confinement``, from one read."""
        raw = load_raw_blueprint(self.blueprints, c.blueprint)
        if not isinstance(raw, Mapping):
            return raw
        tls = load_tls(raw)
        if tls is None:
            return Fail(f"{BLUEPRINT_KIND} {c.blueprint!r} has no spec.tls: nothing to rotate")
        if not isinstance(tls, BlueprintTLS):
            return tls
        confinement = confinement_of(raw)
        if not isinstance(confinement, Confinement):
            return confinement
        return tls, confinement

    def _gateway(self, c: RotationContext) -> Obj | NotDone:
        try:
            gateway = self.kube.get(GATEWAY_API, "Gateway", c.gateway, c.namespace)
        except KubeError as e:
            return outcome_for(e, doing=f"reading Gateway {c.namespace}/{c.gateway}")
        if gateway is None or (gateway.get("metadata") or {}).get("uid") != c.gateway_uid:
            return Fail(f"Gateway {c.namespace}/{c.gateway} (uid {c.gateway_uid}) is gone")
        return gateway

    def _record(self, c: RotationContext, name: str | None) -> CertificateRecord | None:
        return certificate_record(self.store, c.gateway_uid, name)

    def _set_attached(self, c: RotationContext, name: str | None, attached: bool,
                      now: datetime) -> None:
        record = self._record(c, name)
        if record is not None and record.attached != attached:
            state = "attached" if attached else "detached"
            self.store.upsert_certificate(record.model_copy(
                update={"attached": attached, "state": state, "updated_at": now}))

    def _reapply(self, ctx: StepContext[RotationContext]) -> NotDone | None:
        """Apply the children with the store's attached set; ``None`` once every child exists,
        observed what was applied and is ready."""
        c = ctx.context
        provision = ProvisionContext(namespace=c.namespace, gateway=c.gateway,
                                     gateway_uid=c.gateway_uid, blueprint=c.blueprint,
                                     values=c.values)
        with self._children_kube.remembering():
            outcome = self._apply.execute(dataclasses.replace(ctx, context=provision),  # type: ignore[arg-type]
                                          NoInput())
        if isinstance(outcome, Wait):
            return Wait(outcome.reason, outcome.recheck_after, on=outcome.on)
        if not isinstance(outcome, Done):
            return outcome
        try:
            raw = self.blueprints.get(c.blueprint)
            blueprint = Blueprint.from_dict(raw) if raw is not None else None
        except (KubeError, RenderError):
            blueprint = None
        templates = {t.id: t for t in blueprint.children} if blueprint else {}
        waiting: list[str] = []
        on: list[str] = []  # the children waited for
        for cid, record in gateway_children(self.store, c.gateway_uid).items():
            if is_certificate_child(cid) or cid not in templates:
                continue
            on.append(record_wait_key(record))
            try:
                obj = observe(self.kube, record)
            except KubeError as e:
                return outcome_for(e, doing=f"reading child {cid!r}")
            if obj is None:
                waiting.append(f"{cid} ({describe_record(record)} missing)")
                continue
            problem = observed_generation_problem(obj)
            if problem:
                waiting.append(f"{cid}: {problem}")
                continue
            try:
                readiness = evaluate_ready(templates[cid], obj)
            except RenderError as e:
                return Fail(str(e))
            if not readiness.ready:  # (a Secret child's data never reaches the message)
                waiting.append(f"{cid}: {Redactor.of(obj).text(readiness.reason)}")
            elif not record.ready:
                # apply_children marks what it re-applied not ready; it is again (as
                # provision's wait_ready would record), so status stays Programmed.
                self.store.upsert_child(record.model_copy(
                    update={"ready": True, "updated_at": ctx.now()}))
        if waiting:
            return Wait("waiting for the children to observe the change: "
                        + "; ".join(waiting), self.recheck, on=tuple(sorted(on)))
        return None

    def _live_children(self, c: RotationContext) -> list[Obj] | NotDone:
        live: list[Obj] = []
        try:
            for cid, record in gateway_children(self.store, c.gateway_uid).items():
                obj = None if is_certificate_child(cid) else observe(self.kube, record)
                if obj is not None and owned_by(obj, c.gateway_uid):
                    live.append(obj)
        except KubeError as e:
            return outcome_for(e, doing="reading the children")
        return live

    def _delete(self, c: RotationContext, name: str | None) -> NotDone | None:
        """Delete certificate ``name`` — never while a live child mentions it."""
        record = self._record(c, name)
        if record is None:
            return None  # gone already (a re-run)
        if record.attached:
            return Fail(f"refusing to delete certificate {record.object_name}: the store says it "
                        "is attached")
        live = self._live_children(c)
        if not isinstance(live, list):
            return live
        users = [f"{o.get('kind')} {(o.get('metadata') or {}).get('name')}" for o in live
                 if references(o, record)]
        if users:
            return Wait(f"certificate {record.object_name} is still attached by "
                        + ", ".join(users), self.recheck,
                        on=tuple(sorted(record_wait_key(r) for r in gateway_children(
                            self.store, c.gateway_uid).values()
                            if not is_certificate_child(r.child_id))))
        gone = delete_certificate_object(self.kube, self.store, gateway_uid=c.gateway_uid,
                                         record=record, namespace=c.namespace)
        if not isinstance(gone, bool):
            return gone
        if not gone:
            return Wait(f"certificate {record.object_name} is being deleted", self.recheck,
                        on=self._certificate_keys(c, record.object_name))
        return None

    def _certificate_keys(self, c: RotationContext, name: str | None) -> tuple[str, ...]:
        """The wait key of certificate ``name`` (from its inventory record)."""
        if name is None:
            return ()
        child_id = certificate_child_id(name)
        return tuple(record_wait_key(r) for r in self.store.list_children(c.gateway_uid)
                     if r.child_id == child_id and r.route_key is None)

    # ---- steps ------------------------------------------------------------------------------

    def create_certificate(self, ctx: StepContext[RotationContext]
                           ) -> Outcome[CertificateRequested]:
        c = ctx.context
        if not c.blueprint:
            resolved = self._resolve(c)
            if isinstance(resolved, Fail):
                return resolved
            c = resolved
        blueprint = self._tls_confined(c)
        if not isinstance(blueprint, tuple):
            return blueprint
        tls, confinement = blueprint
        gateway = self._gateway(c)
        if not isinstance(gateway, dict):
            return gateway
        listener = next((x for x in (gateway.get("spec") or {}).get("listeners") or []
                         if x.get("name") == c.listener), None)
        if listener is None or not listener.get("hostname"):
            return Fail(f"Gateway {c.namespace}/{c.gateway} has no listener {c.listener!r} with "
                        "a hostname any more")
        old = self._record(c, c.old)
        if c.old and (old is None or not old.attached):
            return Fail(f"certificate {c.old} is not attached to listener {c.listener} (any more)"
                        "; nothing to rotate")
        hostnames = listener_hostnames(listener)
        source: Mapping[str, Any] | None = None
        if tls.source is TLSSource.LISTENER_SECRET:
            found = source_secret(self.kube, gateway, listener)
            if isinstance(found, str):
                return Fail(found)
            if not isinstance(found, dict):
                return found
            source = found
        name = c.new or certificate_name(c.gateway, c.listener, ctx.idempotency_key)
        now = ctx.now()
        outcome = request_certificate(self.kube, self.store, tls=tls, gateway=gateway,
                                      values=c.values, listener=listener, name=name,
                                      hostnames=hostnames, now=now, source=source,
                                      confinement=confinement)
        if outcome is not None:
            return outcome
        return Done(output=CertificateRequested(certificate=name, hostnames=hostnames),
                    context=c.model_copy(update={
                        "new": name, "new_secret": f"{name}-tls", "hostnames": hostnames,
                        "issue_started": c.issue_started or now.isoformat()}))

    def _resolve(self, c: RotationContext) -> RotationContext | Fail:
        """Fill in the gateway and the last provision's blueprint and values."""
        gw = self.store.get_gateway(c.gateway_uid)
        provisions = [o for o in self.store.list_operations(gateway_uid=c.gateway_uid, limit=100)
                      if o.machine == PROVISION_MACHINE]
        if not provisions:
            return Fail(f"gateway {gw.namespace}/{gw.name} was never provisioned: no blueprint "
                        "and values to render the children with")
        last = max(provisions, key=lambda o: o.id).context or {}
        return c.model_copy(update={"namespace": gw.namespace, "gateway": gw.name,
                                    "blueprint": str(last.get("blueprint") or ""),
                                    "values": dict(last.get("values") or {})})

    def await_issued(self, ctx: StepContext[RotationContext]) -> Outcome[CertificateIssued]:
        c = ctx.context
        tls = self._tls(c)
        if not isinstance(tls, BlueprintTLS):
            return tls
        now = ctx.now()
        issued = observe_issued(self.kube, self.store, tls=tls, gateway_uid=c.gateway_uid,
                                name=c.new, hostnames=c.hostnames)
        if isinstance(issued, str):
            started = datetime.fromisoformat(c.issue_started) if c.issue_started else now
            if now - started > timedelta(seconds=tls.issue_timeout_seconds):
                return Fail(f"certificate {c.new} not issued within "
                            f"{tls.issue_timeout_seconds}s (spec.tls.issueTimeoutSeconds): "
                            f"{issued}")
            return Wait(issued, self.recheck, on=self._certificate_keys(c, c.new))
        if not isinstance(issued, Issued):
            return issued
        if issued.not_after <= now:
            return Fail(f"certificate {c.new} was issued already expired (notAfter "
                        f"{issued.not_after.isoformat()})")
        self.store.upsert_certificate(issued_record(
            c.gateway_uid, c.listener, c.new, issued, tls, now=now, attached=False,
            renewal_time=self.renewal_time))
        return Done(output=CertificateIssued(fingerprint=issued.fingerprint,
                                             not_after=issued.not_after.isoformat()),
                    context=c.model_copy(update={
                        "fingerprint": issued.fingerprint, "new_secret": issued.secret_name,
                        "not_before": issued.not_before.isoformat(),
                        "not_after": issued.not_after.isoformat()}))

    def attach_new(self, ctx: StepContext[RotationContext]) -> Outcome[BothAttached]:
        c = ctx.context
        self._set_attached(c, c.new, True, ctx.now())
        outcome = self._reapply(ctx)
        if outcome is not None:
            return outcome
        return Done(output=BothAttached(attached=tuple(x for x in (c.old, c.new) if x)))

    def verify_served(self, ctx: StepContext[RotationContext]
                      ) -> Outcome[VerificationSkipped | ServedVerified]:
        c = ctx.context
        tls = self._tls(c)
        if not isinstance(tls, BlueprintTLS):
            return tls
        verify = tls.verify
        mode = verify.mode if verify else VerifyMode.TLS_PROBE
        now = ctx.now()
        if mode is VerifyMode.NONE:
            return Done(output=VerificationSkipped(),
                        context=c.model_copy(update={"verified_at": now.isoformat()}))
        started = datetime.fromisoformat(c.verify_started) if c.verify_started else now
        context = c.model_copy(update={"verify_started": started.isoformat()})
        timeout = timedelta(seconds=verify.timeout_seconds if verify else 60)
        problem = (self._verify_expression(c, tls) if mode is VerifyMode.EXPRESSION
                   else self._probe(c, tls))
        if isinstance(problem, tuple):
            return Done(output=ServedVerified(verified=mode.value, served=problem),
                        context=context.model_copy(update={"verified_at": now.isoformat(),
                                                           "served": problem}))
        if not isinstance(problem, str):
            return problem
        if now - started > timeout:
            return Fail(f"the new certificate {c.new} was not verified as served within "
                        f"{int(timeout.total_seconds())}s (spec.tls.verify.timeoutSeconds): "
                        f"{problem}")
        return Wait(problem, self.recheck, context=context)

    def _variables(self, c: RotationContext) -> dict[str, Any] | NotDone:
        gateway = self._gateway(c)
        if not isinstance(gateway, dict):
            return gateway
        children: dict[str, Any] = {}
        try:
            for cid, record in gateway_children(self.store, c.gateway_uid).items():
                if not is_certificate_child(cid):
                    children[cid] = observe(self.kube, record)
        except KubeError as e:
            return outcome_for(e, doing="reading the children")
        listener: dict[str, Any] = next(
            (x for x in (gateway.get("spec") or {}).get("listeners") or []
             if x.get("name") == c.listener), {})
        return {"gateway": gateway, "children": children, "listener": listener,
                "certificate": {"name": c.new, "secretName": c.new_secret,
                                "hostnames": list(c.hostnames), "fingerprint": c.fingerprint}}

    def _verify_expression(self, c: RotationContext,
                           tls: BlueprintTLS) -> tuple[str, ...] | str | NotDone:
        variables = self._variables(c)
        if not isinstance(variables, dict):
            return variables
        assert tls.verify is not None and tls.verify.expression
        try:
            result = evaluate_expression(tls.verify.expression, variables,
                                         field="spec.tls.verify.expression")
        except NotAvailable as e:
            return f"verify expression not satisfied yet: {e.reason}"
        except RenderError as e:
            return Fail(str(e))
        return ("expression",) if result is True else "verify expression is false"

    def _probe(self, c: RotationContext, tls: BlueprintTLS) -> tuple[str, ...] | str | NotDone:
        variables = self._variables(c)
        if not isinstance(variables, dict):
            return variables
        source = (tls.verify.endpoint if tls.verify else None) or DEFAULT_ENDPOINT
        try:
            endpoint = evaluate_expression(source, variables, field="spec.tls.verify.endpoint")
        except NotAvailable as e:
            return f"no endpoint to probe yet: {e.reason}"
        except RenderError as e:
            return Fail(str(e))
        if not isinstance(endpoint, Mapping) or not endpoint.get("host") or not isinstance(
                endpoint.get("port"), int):
            return Fail("spec.tls.verify.endpoint must give a map {host: string, port: int}, "
                        f"it gave a {type(endpoint).__name__}"
                        + (f" with keys {', '.join(sorted(map(str, endpoint)))}"
                           if isinstance(endpoint, Mapping) else ""))
        host, port = str(endpoint["host"]), int(endpoint["port"])
        try:
            secret = self.kube.get("v1", "Secret", c.new_secret, c.namespace)
        except KubeError as e:
            return outcome_for(e, doing=f"reading Secret {c.new_secret}")
        data = (secret or {}).get("data") or {}
        ca_pem = base64.b64decode(data["ca.crt"]).decode() if "ca.crt" in data else None
        served: list[str] = []
        for hostname in c.hostnames:
            sni = hostname.replace("*", PROBE_LABEL, 1)
            try:
                fingerprint = served_fingerprint(host, port, server_name=sni, ca_pem=ca_pem,
                                                 timeout=self.probe_timeout)
            except (OSError, ssl.SSLError) as e:
                return f"TLS handshake with {host}:{port} (SNI {sni}): {e}"
            if fingerprint != c.fingerprint:
                return (f"{host}:{port} serves {fingerprint[:16]}… for {sni}, not the new "
                        f"{(c.fingerprint or '')[:16]}… yet")
            served.append(f"{sni}@{host}:{port}")
        return tuple(served)

    def drain(self, ctx: StepContext[RotationContext]) -> Outcome[NoDrain | Drained]:
        c = ctx.context
        if not c.old:
            return Done(output=NoDrain())
        tls = self._tls(c)
        if not isinstance(tls, BlueprintTLS):
            return tls
        now = ctx.now()
        if c.drain_until is None:
            seconds = tls.drain_seconds
            drain = DEFAULT_DRAIN if seconds is None else timedelta(seconds=seconds)
            until = now + drain
            if drain > timedelta(0):
                return Wait(f"draining until {until.isoformat()}", drain,
                            context=c.model_copy(update={"drain_until": until.isoformat()}))
            return Done(output=Drained(drained_until=until.isoformat()),
                        context=c.model_copy(update={"drain_until": until.isoformat()}))
        until = datetime.fromisoformat(c.drain_until)
        if now < until:
            return Wait(f"draining until {until.isoformat()}", until - now)
        return Done(output=Drained(drained_until=until.isoformat()))

    def detach_old(self, ctx: StepContext[RotationContext]) -> Outcome[Detached]:
        c = ctx.context
        if not c.old:
            return Done(output=Detached(detached=None))
        self._set_attached(c, c.old, False, ctx.now())
        outcome = self._reapply(ctx)
        if outcome is not None:
            return outcome
        return Done(output=Detached(detached=c.old))

    def delete_old(self, ctx: StepContext[RotationContext]) -> Outcome[OldDeleted]:
        c = ctx.context
        outcome = self._delete(c, c.old)
        if outcome is not None:
            return outcome
        return Done(output=OldDeleted(deleted=c.old, current=c.new))

    def _with_new(self, ctx: StepContext[RotationContext]) -> RotationContext:
        """The context with the new certificate's name, also when ``create_certificate`` made
        it but crashed before its outcome was committed (the name is deterministic)."""
        c = ctx.context
        if c.new:
            return c
        if not c.gateway:
            resolved = self._resolve(c)
            if isinstance(resolved, Fail):
                return c
            c = resolved
        key = idempotency_key(c.gateway_uid, ctx.operation.id, CREATE_CERTIFICATE)
        name = certificate_name(c.gateway, c.listener, key)
        return c.model_copy(update={"new": name}) if self._record(c, name) else c

    def detach_new(self, ctx: StepContext[RotationContext]) -> Outcome[Detached]:
        c = self._with_new(ctx)
        ctx = dataclasses.replace(ctx, context=c)
        if not c.new or self._record(c, c.new) is None:
            return Done(output=Detached(detached=None), context=c)
        self._set_attached(c, c.new, False, ctx.now())
        if c.old:
            self._set_attached(c, c.old, True, ctx.now())  # the old one never leaves
        outcome = self._reapply(ctx)
        if outcome is not None:
            return outcome
        return Done(output=Detached(detached=c.new), context=c)

    def delete_new(self, ctx: StepContext[RotationContext]) -> Outcome[NewDeleted]:
        c = self._with_new(ctx)
        outcome = self._delete(c, c.new)
        if outcome is not None:
            return outcome
        return Done(output=NewDeleted(deleted=c.new or None, kept=c.old))


R = TypeVar("R", bound=BaseModel)


class RotationStep(Step[NoInput, R]):
    """One method of :class:`RotationSteps` as a step (the steps read no input)."""

    input_model = NoInput

    def __init__(self, method: Callable[[StepContext[RotationContext]], Outcome[R]]) -> None:
        self.method = method

    def execute(self, ctx: StepContext[RotationContext], input: NoInput) -> Outcome[R]:
        return self.method(ctx)
