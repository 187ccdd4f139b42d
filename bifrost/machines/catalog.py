"""The machines this build of bifrost knows, by (name, version): what the runner, the controller
and ``bifrost-admin graph`` look up. Adding a machine version here is how it becomes runnable;
removing one leaves its stored operations failing visibly as "unknown machine"."""

from __future__ import annotations

from bifrost.machines.provision import provision_spec
from bifrost.machines.registry import MachineRegistry
from bifrost.machines.rotation import rotation_spec
from bifrost.machines.teardown import teardown_spec


def default_registry() -> MachineRegistry:
    return MachineRegistry([provision_spec(), rotation_spec(), teardown_spec()])
