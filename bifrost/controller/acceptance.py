"""Whether bifrost accepts a Gateway: one judgement for its status and for provisioning.

The Gateway's ``Accepted`` condition and the decision to provision it must never disagree
(issue #14: a Gateway reported ``Accepted=False`` still got children). So the observer asks
:func:`judge_gateway` before it starts a provision, and the status writer reports the same
:class:`Acceptance`:

- the Gateway's class is gone (deleted while the Gateway still holds bifrost's finalizer):
  ``Invalid``, naming the class;
- the class is not accepted (no blueprint, a missing or unparsable one): ``InvalidParameters``
  with the class's problem (the class, the blueprint name, the fix);
- ``spec.infrastructure.parametersRef`` is unusable (:mod:`bifrost.controller.parameters`):
  ``InvalidParameters``;
- no listener can be served: ``ListenersNotValid`` (:mod:`bifrost.status.gateway` words it).

An unaccepted Gateway gets no provision: one never provisioned gets no children, one that was
provisioned keeps its last good children (nothing is pruned or repaired) until it is accepted
again (then it is provisioned with its new inputs) or deleted (teardown as usual).

Listeners are judged as the status judges them, on :func:`judged_gateway`: a listener whose
certificate bifrost manages (the blueprint's ``spec.tls``, source ``Request``) refers to the
managed Secrets once attached and, before the first one is issued, counts as having its
certificate from the blueprint — it is being issued by the very provision this judgement
gates, so it must not make the Gateway unaccepted. For that gate the observer judges every
managed listener so, attached certificates or not: after a restored backup the store may name an
attached certificate whose Secret is gone, and only a provision (adoption) sets that right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bifrost.api.blueprint import BlueprintTLS, TLSSource
from bifrost.api.conditions import GatewayReason
from bifrost.api.objects import Obj
from bifrost.certificates.rules import managed_listeners
from bifrost.controller.informers import Cache, gateway_secrets
from bifrost.status.listeners import (
    CERTIFICATE_FROM_BLUEPRINT,
    CERTIFICATE_OPTION,
    ListenerVerdict,
    evaluate_listeners,
)

__all__ = [
    "Acceptance",
    "class_lost_message",
    "judge_gateway",
    "judged_gateway",
    "listener_verdicts",
]


@dataclass(frozen=True)
class Acceptance:
    """Whether the Gateway is accepted; when it is not, the ``Accepted=False`` reason and
    message (``reason`` ``ListenersNotValid``: the status module words the message)."""

    accepted: bool
    reason: str = ""
    message: str = ""

    @property
    def rejected_before_listeners(self) -> bool:
        """Rejected for its class or parameters (its listeners may be fine)."""
        return not self.accepted and self.reason != GatewayReason.LISTENERS_NOT_VALID


def class_lost_message(class_name: str) -> str:
    return (f'GatewayClass "{class_name}" does not exist (deleted?): bifrost no longer '
            "programs this Gateway; its last children are kept until the GatewayClass is "
            "created again or the Gateway is deleted")


def judged_gateway(
    gateway: Mapping[str, Any],
    certificates: Mapping[str, Sequence[str]],
    tls: BlueprintTLS | None = None,
) -> Mapping[str, Any]:
    """The Gateway as status and acceptance judge it (see the module docstring): a managed
    listener with attached certificates refers to those Secrets instead of whatever its
    ``certificateRefs`` name (often a placeholder, as with cert-manager's gateway shim); one
    whose first certificate is not issued yet (``tls`` given, source ``Request``) is judged as
    having its certificate from the blueprint."""
    pending = set()
    if tls is not None and tls.source is TLSSource.REQUEST:
        pending = {str(listener.get("name")) for listener in managed_listeners(gateway)}
    if not certificates and not pending:
        return gateway
    listeners = []
    changed = False
    for listener in (gateway.get("spec") or {}).get("listeners") or []:
        name = str(listener.get("name"))
        secrets = certificates.get(name)
        if secrets:
            tls_spec = {**(listener.get("tls") or {}),
                        "certificateRefs": [{"kind": "Secret", "group": "", "name": s}
                                            for s in secrets]}
            listener = {**listener, "tls": tls_spec}
            changed = True
        elif name in pending:
            options = {**((listener.get("tls") or {}).get("options") or {}),
                       CERTIFICATE_OPTION: CERTIFICATE_FROM_BLUEPRINT}
            tls_spec = {k: v for k, v in (listener.get("tls") or {}).items()
                        if k != "certificateRefs"}
            listener = {**listener, "tls": {**tls_spec, "options": options}}
            changed = True
        listeners.append(listener)
    if not changed:
        return gateway
    return {**gateway, "spec": {**(gateway.get("spec") or {}), "listeners": listeners}}


def listener_verdicts(cache: Cache, gateway: Mapping[str, Any]) -> tuple[ListenerVerdict, ...]:
    """:func:`bifrost.status.evaluate_listeners` against the cached Secrets and grants."""
    obj: Obj = dict(gateway)
    secrets = {
        ref: secret
        for ref in gateway_secrets(obj)
        if (secret := cache.get("Secret", *ref)) is not None
    }
    return evaluate_listeners(obj, secrets=secrets, grants=cache.objects("ReferenceGrant"))


def judge_gateway(
    *,
    class_name: str,
    class_exists: bool,
    class_error: str | None,
    parameters_error: str | None,
    verdicts: Sequence[ListenerVerdict],
) -> Acceptance:
    """The Gateway's acceptance (see the module docstring), in that order of precedence."""
    if not class_exists:
        return Acceptance(False, str(GatewayReason.INVALID), class_lost_message(class_name))
    if class_error is not None:
        return Acceptance(False, str(GatewayReason.INVALID_PARAMETERS),
                          f'GatewayClass "{class_name}" is not accepted: {class_error}')
    if parameters_error is not None:
        return Acceptance(False, str(GatewayReason.INVALID_PARAMETERS), parameters_error)
    if not verdicts:
        return Acceptance(False, str(GatewayReason.INVALID), "the Gateway has no listeners")
    if not any(v.usable for v in verdicts):
        return Acceptance(False, str(GatewayReason.LISTENERS_NOT_VALID))
    return Acceptance(True)
