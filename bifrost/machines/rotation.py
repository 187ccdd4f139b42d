"""The certificate-rotation machine: replace a listener's certificate with zero downtime.

create new (deterministic name) → wait until issued → attach beside the old → verify the new one
is served → drain (both stay attached) → detach the old → wait until the detach is observed →
delete the old.

The invariant it keeps, at every instant: each HTTPS listener has at least one attached, issued,
unexpired certificate covering its hostname. So a failure before *detach old* rolls back (detach
the new one, delete it; the old one never left), and nothing is ever deleted that is still
attached — the delete step checks the live children before it deletes. A failure after the old
one is detached cannot roll back (the old one may be gone from the data plane); the operation
fails with both, or the new one alone, attached and an operator decides.

An operator's cancel (``bifrost-admin cancel``, with compensation, the default) before the old
one is detached — in ``request``, ``attach``, ``verify`` or ``drain`` — runs the same rollback
steps in ``cancelling`` and ends ``cancelled``: the old certificate alone stays attached. From
``detach`` and ``cleanup`` there is nothing to compensate (the old one is leaving): a cancel
there ends the operation where it stands, and the controller's extra-certificate repair
(:mod:`bifrost.triggers.certificate_repair`) detaches whatever is left beside the newest valid
certificate.

It runs in the Gateway's ``default`` lane, like provision and teardown: the Gateway lifecycle is
``programmed ⇄ (updating | rotating)``, one at a time, so a rotation never races a provision that
renders the same children. Machines are data: the steps live in ``bifrost.steps.rotation``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bifrost.machines.retry import RetryPolicy
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import CertificateRecord, OperationStatus

ROTATION_MACHINE = "rotate_certificate"
ROTATION_VERSION = 1
ROTATION_LANE = "default"

#: Persisted step names (stable: renaming one needs a data migration).
CREATE_CERTIFICATE = "create_certificate"
AWAIT_ISSUED = "await_issued"
ATTACH_NEW = "attach_new"
VERIFY_SERVED = "verify_served"
DRAIN = "drain"
DETACH_OLD = "detach_old"
DELETE_OLD = "delete_old"
DETACH_NEW = "detach_new"
DELETE_NEW = "delete_new"
ROTATION_STEPS = (
    CREATE_CERTIFICATE, AWAIT_ISSUED, ATTACH_NEW, VERIFY_SERVED, DRAIN, DETACH_OLD, DELETE_OLD,
    DETACH_NEW, DELETE_NEW,
)

#: Why a rotation started (shown in history, Events and bifrost-admin).
REASON_RENEWAL_DUE = "renewal due"
REASON_HOSTNAMES_CHANGED = "listener hostnames changed"
REASON_SOURCE_CHANGED = "the listener's certificate Secret changed"


class RotationContext(BaseModel):
    """What a rotation knows between steps (persisted as JSON; never key material).

    Given at start: the gateway, the listener and the certificate to replace (``old``). The first
    step fills in the rest from the store and the last provision (``blueprint``, ``values``), so
    a rotation renders the children exactly as the Gateway's last provision did, with the new
    attached set. Progress fields are written by the step that establishes them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway_uid: str
    listener: str
    old: str | None = None  # object name of the certificate being replaced
    reason: str = REASON_RENEWAL_DUE
    namespace: str = ""
    gateway: str = ""
    blueprint: str = ""
    values: dict[str, Any] = Field(default_factory=dict)
    hostnames: tuple[str, ...] = ()
    # the new certificate
    new: str = ""  # object name (deterministic: gateway, listener, operation)
    new_secret: str = ""
    fingerprint: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    # progress
    issue_started: str | None = None
    verify_started: str | None = None
    verified_at: str | None = None
    served: tuple[str, ...] = ()  # "hostname@host:port" the probe saw the new leaf on
    drain_until: str | None = None
    failure: str | None = None

    @classmethod
    def for_renewal(cls, certificate: CertificateRecord, *, reason: str) -> RotationContext:
        """The context that renews ``certificate`` (used by the scheduler and bifrost-admin)."""
        return cls(gateway_uid=certificate.gateway_uid, listener=certificate.listener,
                   old=certificate.object_name, reason=reason)


def rotation_spec(*, step_timeout: timedelta = timedelta(hours=2)) -> MachineSpec:
    """The rotation machine. Issue and verify timeouts come from the blueprint
    (``spec.tls.issueTimeoutSeconds``, ``verify.timeoutSeconds``) and are enforced by the
    steps; ``step_timeout`` is the engine's outer bound on any one step (drain included)."""
    act = RetryPolicy(
        max_attempts=8,
        initial_backoff=timedelta(seconds=0.5),
        max_backoff=timedelta(seconds=30),
        timeout=step_timeout,
    )
    return MachineSpec(
        name=ROTATION_MACHINE,
        version=ROTATION_VERSION,
        lane=ROTATION_LANE,
        initial="request",
        context_model=RotationContext,
        description="new certificate → issued → attached beside the old → verified → drained → "
        "old detached → old deleted; rollback to the old one on failure before the detach",
        states=(
            StateSpec(
                name="request",
                steps=(StepSpec(name=CREATE_CERTIFICATE, retry=act),
                       StepSpec(name=AWAIT_ISSUED, retry=act)),
                on_done="attach",
                on_failure="rollback",
                on_cancel="cancelling",
                description="apply the new certificate object; wait until it is issued",
            ),
            StateSpec(
                name="attach",
                steps=(StepSpec(name=ATTACH_NEW, retry=act),),
                on_done="verify",
                on_failure="rollback",
                on_cancel="cancelling",
                description="render the children with old and new attached; wait until they "
                "observed it",
            ),
            StateSpec(
                name="verify",
                steps=(StepSpec(name=VERIFY_SERVED, retry=act),),
                on_done="drain",
                on_failure="rollback",
                on_cancel="cancelling",
                description="prove the new certificate is served (TLS probe, expression or none)",
            ),
            StateSpec(
                name="drain",
                steps=(StepSpec(name=DRAIN, retry=act),),
                on_done="detach",
                on_failure="rollback",
                on_cancel="cancelling",
                description="both stay attached for the drain time",
            ),
            StateSpec(
                name="detach",
                steps=(StepSpec(name=DETACH_OLD, retry=act),),
                on_done="cleanup",
                description="render the children without the old one; wait until observed",
            ),
            StateSpec(
                name="cleanup",
                steps=(StepSpec(name=DELETE_OLD, retry=act),),
                on_done="done",
                description="delete the old certificate (refused while anything attaches it)",
            ),
            StateSpec(
                name="rollback",
                steps=(StepSpec(name=DETACH_NEW, retry=act), StepSpec(name=DELETE_NEW, retry=act)),
                on_done="rolled_back",
                description="detach and delete the new certificate; the old one stays attached",
            ),
            StateSpec(
                name="cancelling",
                steps=(StepSpec(name=DETACH_NEW, retry=act), StepSpec(name=DELETE_NEW, retry=act)),
                on_done="cancelled",
                description="an operator's cancel before the old one was detached: detach and "
                "delete the new certificate; the old one stays attached",
            ),
            StateSpec(name="done", terminal=OperationStatus.SUCCEEDED),
            StateSpec(name="rolled_back", terminal=OperationStatus.FAILED),
            StateSpec(name="cancelled", terminal=OperationStatus.CANCELLED),
        ),
    )
