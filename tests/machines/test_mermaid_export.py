"""Mermaid export lists every state and edge and highlights the current state."""

from __future__ import annotations

import re

import pytest
from support.machines.demo import demo_spec

from bifrost.machines import mermaid


def _classes(source: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*Class (\w+) s_(\w+)$", source, flags=re.MULTILINE))


def test_every_state_and_edge_is_in_the_diagram() -> None:
    spec = demo_spec()
    source = mermaid(spec)
    assert "stateDiagram-v2" in source
    for state in spec.states:
        assert f'state "{state.name}" as {state.name}' in source
    assert "prepare --> apply: done" in source
    assert "apply --> rollback: compensate" in source
    assert "verify --> rollback: abort" in source
    assert "[*] --> prepare" in source
    assert "active" not in set(_classes(source).values())


def test_current_state_is_highlighted_and_only_it() -> None:
    source = mermaid(demo_spec(), current_state="verify")
    classes = _classes(source)
    assert classes["verify"] == "active"
    assert [s for s, c in classes.items() if c == "active"] == ["verify"]
    assert len(classes) == len(demo_spec().states)
    assert "[*] --> prepare" in source  # the initial edge stays where the machine starts


def test_unknown_current_state_is_refused() -> None:
    with pytest.raises(ValueError, match="'nope' is not a state of machine 'demo'"):
        mermaid(demo_spec(), current_state="nope")
