"""The registry of machines known to the running code, keyed by the persisted (name, version).

Each spec is built once into a ``transitions`` machine, which owns the transition logic: the
engine asks "from state S, trigger T leads where?" and ``transitions`` answers (or refuses an
edge the spec does not declare). Operations carry their own (name, version), so an old operation
keeps running the machine version it started with while new ones use the new version; an
operation whose (name, version) is not registered is a poison operation the engine fails
visibly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from transitions import Machine, MachineError

from bifrost.machines.spec import CANCEL_TRIGGER, DONE_TRIGGER, FAIL_TRIGGER, MachineSpec


class UnknownMachine(LookupError):
    """No registered machine has this (name, version)."""


class InvalidTrigger(ValueError):
    """The trigger is not allowed from the operation's current state."""


class _Model:
    """A throw-away ``transitions`` model: the state of one operation, loaded from the store."""

    state: str


def build_transitions(spec: MachineSpec) -> list[dict[str, object]]:
    """The spec's edges in ``transitions`` form (also used for the diagram)."""
    edges: list[dict[str, object]] = []
    for state in spec.states:
        if state.on_done is not None:
            edges.append({"trigger": DONE_TRIGGER, "source": state.name, "dest": state.on_done})
        if state.on_failure is not None:
            edges.append({"trigger": FAIL_TRIGGER, "source": state.name, "dest": state.on_failure})
        if state.on_cancel is not None:
            edges.append({"trigger": CANCEL_TRIGGER, "source": state.name, "dest": state.on_cancel})
    for trigger in spec.triggers:
        edges.append(
            {"trigger": trigger.name, "source": list(trigger.sources), "dest": trigger.dest}
        )
    return edges


class MachineRegistry:
    """Machines by (name, version); thread-safe for lookups and transitions."""

    def __init__(self, specs: Iterable[MachineSpec] = ()) -> None:
        self._specs: dict[tuple[str, int], MachineSpec] = {}
        self._machines: dict[tuple[str, int], Machine] = {}
        self._lock = threading.Lock()
        for spec in specs:
            self.register(spec)

    def register(self, spec: MachineSpec) -> None:
        if spec.key in self._specs:
            raise ValueError(f"machine {spec.name!r} version {spec.version} is registered twice")
        machine = Machine(
            model=None,
            states=[s.name for s in spec.states],
            transitions=build_transitions(spec),
            initial=spec.initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        self._specs[spec.key] = spec
        self._machines[spec.key] = machine

    def get(self, name: str, version: int) -> MachineSpec:
        try:
            return self._specs[(name, version)]
        except KeyError:
            known = ", ".join(f"{n} v{v}" for n, v in sorted(self._specs)) or "none"
            raise UnknownMachine(
                f"machine {name!r} version {version} is not known to this controller "
                f"(known: {known})"
            ) from None

    def latest(self, name: str) -> MachineSpec:
        versions = [v for (n, v) in self._specs if n == name]
        if not versions:
            raise UnknownMachine(f"machine {name!r} is not known to this controller")
        return self._specs[(name, max(versions))]

    def __iter__(self) -> Iterator[MachineSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.key))

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def next_state(self, spec: MachineSpec, state: str, trigger: str) -> str:
        """Where ``trigger`` leads from ``state``, as the built ``transitions`` machine says."""
        machine = self._machines[spec.key]
        model = _Model()
        with self._lock:
            machine.add_model(model, initial=state)
            try:
                model.trigger(trigger)  # type: ignore[attr-defined]
                return model.state
            except (MachineError, AttributeError) as exc:
                raise InvalidTrigger(
                    f"trigger {trigger!r} is not allowed from state {state!r} of machine "
                    f"{spec.name!r} v{spec.version}"
                ) from exc
            finally:
                machine.remove_model(model)
