"""Machine specs: what an operation does, declared as data.

A machine is a set of named states. A non-terminal state has an ordered list of steps; when the
last one is done the operation follows the state's ``on_done`` edge. A state may name a
compensation state (``on_failure``, e.g. a rollback) entered when one of its steps fails for good;
without one the operation fails. A state may also name where an operator's cancel goes
(``on_cancel``: the compensation ``bifrost-admin cancel`` runs, as steps of the operation);
without one a cancel ends the operation where it stands. Terminal states end the operation
with a final status. Triggers are named external edges (fired by the controller or an
operator), e.g. ``update`` from ``programmed``.

The names here (machine, version, state, step, trigger) are persisted in the store: they are
stable constants, and renaming one needs a data migration. A spec never does I/O; the engine and
``bifrost-admin`` read it, and ``bifrost.machines.registry`` builds it into a ``transitions``
machine once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bifrost.machines.retry import DEFAULT_RETRY, RetryPolicy
from bifrost.records import OperationStatus

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: Trigger names the engine itself fires; machine authors may not reuse them.
DONE_TRIGGER = "done"
FAIL_TRIGGER = "compensate"
CANCEL_TRIGGER = "cancel"
RESERVED_TRIGGERS = frozenset({DONE_TRIGGER, FAIL_TRIGGER, CANCEL_TRIGGER})


def _check_name(kind: str, value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{kind} name {value!r} must be lower-case letters, digits and '_', starting with a "
            "letter (it is persisted and used as a diagram identifier)"
        )
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepSpec(_Frozen):
    """One idempotent step; ``name`` keys the implementation passed to the runner."""

    name: str
    retry: RetryPolicy = DEFAULT_RETRY
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name("step", value)


class StateSpec(_Frozen):
    """A state: ordered steps, where to go when they are done, where to go when one fails.

    ``terminal`` (succeeded/failed/cancelled) makes the state final; a terminal state has no
    steps and no outgoing edges.
    """

    name: str
    steps: tuple[StepSpec, ...] = ()
    on_done: str | None = None
    on_failure: str | None = None
    #: Where an operator's cancel (with compensation) goes from here; None: it ends here.
    on_cancel: str | None = None
    terminal: OperationStatus | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name("state", value)

    @field_validator("terminal")
    @classmethod
    def _terminal(cls, value: OperationStatus | None) -> OperationStatus | None:
        if value is not None and not value.terminal:
            raise ValueError(f"terminal status must be succeeded, failed or cancelled, not {value}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> StateSpec:
        if self.terminal is not None:
            if self.steps or self.on_done or self.on_failure or self.on_cancel:
                raise ValueError(f"terminal state {self.name!r} cannot have steps or edges")
        elif self.on_done is None and self.steps:
            # A state without steps may rest: only a trigger leaves it (the Gateway lifecycle).
            raise ValueError(f"state {self.name!r} is not terminal and has no on_done state")
        names = [s.name for s in self.steps]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"state {self.name!r} lists step(s) twice: {sorted(dupes)}")
        return self

    def step(self, name: str) -> StepSpec | None:
        for step in self.steps:
            if step.name == name:
                return step
        return None

    def step_after(self, name: str) -> StepSpec | None:
        """The step that follows ``name`` in this state, or None when ``name`` is the last."""
        names = [s.name for s in self.steps]
        index = names.index(name)
        return self.steps[index + 1] if index + 1 < len(self.steps) else None


class TriggerSpec(_Frozen):
    """A named external edge: from any of ``sources`` to ``dest``."""

    name: str
    sources: tuple[str, ...]
    dest: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value in RESERVED_TRIGGERS:
            raise ValueError(f"trigger name {value!r} is reserved for the engine")
        return _check_name("trigger", value)


class MachineSpec(_Frozen):
    """A whole machine. ``context_model`` is the pydantic model of the operation's context."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str
    version: int = Field(ge=1)
    initial: str
    states: tuple[StateSpec, ...]
    triggers: tuple[TriggerSpec, ...] = ()
    context_model: type[BaseModel]
    lane: str = "default"
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name("machine", value)

    @model_validator(mode="after")
    def _consistent(self) -> MachineSpec:
        names = [s.name for s in self.states]
        known = set(names)
        problems: list[str] = []
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"duplicate states {dupes}")
        if self.initial not in known:
            problems.append(f"initial state {self.initial!r} is not a state")
        for state in self.states:
            for edge, target in (("on_done", state.on_done), ("on_failure", state.on_failure),
                                 ("on_cancel", state.on_cancel)):
                if target is not None and target not in known:
                    problems.append(f"state {state.name!r} {edge} -> unknown state {target!r}")
        for trigger in self.triggers:
            for source in (*trigger.sources, trigger.dest):
                if source not in known:
                    problems.append(f"trigger {trigger.name!r} names unknown state {source!r}")
        if not any(s.terminal is not None for s in self.states):
            problems.append("no terminal state")
        if problems:
            raise ValueError(f"machine {self.name!r} v{self.version}: " + "; ".join(problems))
        return self

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    def state(self, name: str) -> StateSpec | None:
        for state in self.states:
            if state.name == name:
                return state
        return None

    def steps(self) -> Iterator[tuple[StateSpec, StepSpec]]:
        for state in self.states:
            for step in state.steps:
                yield state, step

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (for ``bifrost-admin`` and docs)."""
        return {
            "name": self.name,
            "version": self.version,
            "initial": self.initial,
            "lane": self.lane,
            "states": [
                {
                    "name": s.name,
                    "steps": [st.name for st in s.steps],
                    "on_done": s.on_done,
                    "on_failure": s.on_failure,
                    "on_cancel": s.on_cancel,
                    "terminal": s.terminal.value if s.terminal else None,
                }
                for s in self.states
            ],
            "triggers": [t.model_dump() for t in self.triggers],
        }
