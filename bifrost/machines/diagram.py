"""Mermaid export of a machine, optionally with an operation's current state highlighted.

``bifrost-admin graph`` prints this so an operator sees where an operation is and where it can
go next. The rendering is ``transitions``' own (GraphMachine, mermaid engine) so the diagram
shows exactly the edges the engine follows.
"""

from __future__ import annotations

from transitions.extensions.diagrams import GraphMachine

from bifrost.machines.registry import build_transitions
from bifrost.machines.spec import MachineSpec


class _Model:
    state: str


def mermaid(spec: MachineSpec, current_state: str | None = None) -> str:
    """A Mermaid ``stateDiagram-v2`` of ``spec``; ``current_state`` is styled ``s_active``."""
    if current_state is not None and spec.state(current_state) is None:
        raise ValueError(
            f"state {current_state!r} is not a state of machine {spec.name!r} v{spec.version}"
        )
    model = _Model()
    machine = GraphMachine(
        model=model,
        states=[s.name for s in spec.states],
        transitions=build_transitions(spec),
        initial=spec.initial,
        auto_transitions=False,
        graph_engine="mermaid",
        title=f"{spec.name} v{spec.version}",
        show_state_attributes=False,
    )
    if current_state is not None:
        machine.set_state(current_state, model=model)
    model.get_graph(force_new=True)  # type: ignore[attr-defined]
    if current_state is None:
        # transitions marks the model's state active; with no operation nothing is current.
        machine.model_graphs[id(model)].reset_styling()
    source: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
    return source
