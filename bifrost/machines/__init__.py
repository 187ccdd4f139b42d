"""Declarative machine specs: states, ordered steps, triggers. Pure data, no I/O."""

from bifrost.machines.diagram import mermaid
from bifrost.machines.registry import InvalidTrigger, MachineRegistry, UnknownMachine
from bifrost.machines.retry import DEFAULT_RETRY, RetryPolicy, backoff
from bifrost.machines.spec import MachineSpec, StateSpec, StepSpec, TriggerSpec

__all__ = [
    "DEFAULT_RETRY",
    "InvalidTrigger",
    "MachineRegistry",
    "MachineSpec",
    "RetryPolicy",
    "StateSpec",
    "StepSpec",
    "TriggerSpec",
    "UnknownMachine",
    "backoff",
    "mermaid",
]
