"""The edge-certificate machine: issue a certificate for a Gateway's listener, attach it to a
child gateway, prove with a real TLS handshake that it is served, record it, then tear down.

It is the first machine that drives real Kubernetes objects through the engine, and the tour that
``bifrost demo`` runs on the devcluster. Its steps are the building blocks of the provision and
rotation machines to come (apply a child, wait until a certificate is issued, verify it is
served, record it in the store). Machines are data: the implementations live in
``bifrost.steps`` and are bound by name.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from bifrost.machines.retry import RetryPolicy
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec
from bifrost.records import OperationStatus

EDGE_CERTIFICATE_MACHINE = "edge_certificate"
EDGE_CERTIFICATE_VERSION = 1

EDGE_CERTIFICATE_STEPS = (
    "apply_certificate",
    "wait_issued",
    "apply_child_gateway",
    "wait_programmed",
    "probe_tls",
    "record_certificate",
    "remove_children",
)


class EdgeCertificateContext(BaseModel):
    """What the machine knows between steps (persisted as JSON; no key material)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    gateway: str
    gateway_uid: str
    listener: str = "https"
    hostname: str
    child_gateway_class: str = "devcluster"
    certificate_name: str = ""
    secret_name: str = ""
    child_gateway_name: str = ""
    issued_fingerprint: str | None = None
    served_fingerprint: str | None = None
    not_after: str | None = None
    renewal_time: str | None = None  # the issuer's status.renewalTime
    child_address: str | None = None  # where the child gateway is reachable (from its status)
    child_port: int | None = None
    served_from: str | None = None  # address:port the probe reached
    children: tuple[str, ...] = ()  # "apiVersion/Kind namespace/name" of everything applied


def edge_certificate_spec(*, wait_timeout: timedelta = timedelta(minutes=5)) -> MachineSpec:
    act = RetryPolicy(
        max_attempts=8, initial_backoff=timedelta(seconds=0.5), max_backoff=timedelta(seconds=30)
    )
    wait = RetryPolicy(
        max_attempts=8,
        initial_backoff=timedelta(seconds=0.5),
        max_backoff=timedelta(seconds=30),
        timeout=wait_timeout,
    )
    return MachineSpec(
        name=EDGE_CERTIFICATE_MACHINE,
        version=EDGE_CERTIFICATE_VERSION,
        initial="request",
        context_model=EdgeCertificateContext,
        description="issue a certificate, attach it to a child gateway, verify it is served, "
        "record it, tear down",
        states=(
            StateSpec(
                name="request",
                steps=(
                    StepSpec(name="apply_certificate", retry=act),
                    StepSpec(name="wait_issued", retry=wait),
                ),
                on_done="attach",
                on_failure="teardown_after_failure",
            ),
            StateSpec(
                name="attach",
                steps=(
                    StepSpec(name="apply_child_gateway", retry=act),
                    StepSpec(name="wait_programmed", retry=wait),
                ),
                on_done="verify",
                on_failure="teardown_after_failure",
            ),
            StateSpec(
                name="verify",
                steps=(
                    StepSpec(name="probe_tls", retry=wait),
                    StepSpec(name="record_certificate", retry=act),
                ),
                on_done="teardown",
                on_failure="teardown_after_failure",
            ),
            StateSpec(
                name="teardown",
                steps=(StepSpec(name="remove_children", retry=act),),
                on_done="done",
            ),
            StateSpec(
                name="teardown_after_failure",
                steps=(StepSpec(name="remove_children", retry=act),),
                on_done="failed",
            ),
            StateSpec(name="done", terminal=OperationStatus.SUCCEEDED),
            StateSpec(name="failed", terminal=OperationStatus.FAILED),
        ),
    )
