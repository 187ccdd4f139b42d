"""The sandbox workers: same answers as in-process, hard limits, nothing stalls the caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bifrost import render
from bifrost.render import RenderChild, RenderError
from bifrost.sandbox import Sandbox, SandboxFailure, SandboxSettings, SandboxTimeout, codec

BLUEPRINT = {
    "children": [
        {"id": "settings", "template": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
         "  name: \"{{ gateway.metadata.name }}-settings\"\ndata:\n"
         "  replicas: \"{{ values.replicas }}\"\n"},
        {"id": "child", "dependsOn": ["settings"], "readyWhen": "has(object.status)",
         "template": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"},
    ],
}
GATEWAY = {"metadata": {"name": "edge", "namespace": "apps"}, "spec": {"listeners": []}}
_LIST = "[" + ",".join(str(i) for i in range(500)) + "]"
# Within the static limits (under 4,096 characters, comprehensions two deep), yet about 25 s of
# evaluation in the CEL library, holding the GIL throughout when run in-process.
SLOW_CEL = f"{_LIST}.all(a, {_LIST}.map(b, [a, b, a, b] + [a, b]).size() > 0)"
# About 115 MB of strings at its peak.
HUNGRY_CEL = f"{_LIST}.map(a, {_LIST}.map(b, string(a) + '{'x' * 28}' + string(b))).size() > 0"


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(SandboxSettings(workers=2, expression_seconds=0.5, render_seconds=5))
    yield sandbox
    sandbox.close()


def test_answers_match_the_in_process_functions(box: Sandbox) -> None:
    values = {"replicas": '3"\nkind: Secret'}
    live = {"settings": {"metadata": {"name": "edge-settings"}}}
    remote = box.call("render_gateway", BLUEPRINT, gateway=GATEWAY, values=values,
                      live_children=live, timeout=5)
    local = render.render_gateway(BLUEPRINT, gateway=GATEWAY, values=values, live_children=live)
    assert remote == local
    child = RenderChild(id="c", template="x", ready_when="object.ok")
    assert box.call("evaluate_ready", child, {"ok": True}, timeout=5) == \
        render.evaluate_ready(child, {"ok": True})


def test_errors_come_back_as_render_errors(box: Sandbox) -> None:
    with pytest.raises(RenderError) as info:
        box.call("render_certificate", "kind: [", context={}, timeout=5)
    assert info.value.source == "spec.tls.certificateTemplate"
    with pytest.raises(render.NotAvailable):
        box.call("evaluate_expression", "object.missing", {"object": {}}, field="f", timeout=5)


def test_an_overrunning_call_is_stopped_and_the_next_one_runs(box: Sandbox) -> None:
    child = RenderChild(id="slow", template="x", ready_when=SLOW_CEL)
    with pytest.raises(SandboxTimeout):
        box.call("evaluate_ready", child, {}, timeout=0.5)
    assert box.kills == 1
    assert box.call("ping", timeout=5) == "pong"


def test_other_threads_keep_running_while_a_hostile_expression_runs(box: Sandbox) -> None:
    """In-process, the CEL library holds the GIL for the whole evaluation; in the sandbox the
    caller waits on a pipe and other threads go on."""
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            stop.wait(0.01)

    thread = threading.Thread(target=ticker)
    thread.start()
    child = RenderChild(id="slow", template="x", ready_when=SLOW_CEL)
    started = time.monotonic()
    with pytest.raises(SandboxTimeout):
        box.call("evaluate_ready", child, {}, timeout=0.5)
    ended = time.monotonic()
    stop.set()
    thread.join()
    during = [t for t in ticks if started <= t <= ended]
    # the ticker ran all along: many ticks inside the attack window, not one at each end
    assert len(during) >= 10, len(during)


def test_a_worker_over_its_memory_limit_fails_alone() -> None:
    starved = Sandbox(SandboxSettings(workers=1, memory_mb=64))  # ~52 MB after imports
    try:
        assert starved.call("ping", timeout=20) == "pong"
        child = RenderChild(id="hungry", template="x", ready_when=HUNGRY_CEL)
        with pytest.raises(SandboxFailure, match="memory"):
            starved.call("evaluate_ready", child, {}, timeout=60)
        assert starved.call("ping", timeout=20) == "pong"  # a fresh worker took its place
    finally:
        starved.close()


def test_workers_are_reused(box: Sandbox) -> None:
    for _ in range(20):
        assert box.call("ping", timeout=5) == "pong"
    assert len(box._live) <= 2


@pytest.mark.parametrize(
    "payload",
    [
        {"__d": "Popen", "f": {}},
        {"__e": "SystemExit", "a": []},
    ],
)
def test_the_codec_builds_only_known_types(payload: object) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(payload)


def test_the_codec_round_trips_render_results() -> None:
    result = render.render_gateway(BLUEPRINT, gateway=GATEWAY, values={"replicas": 2},
                                   live_children={})
    assert codec.loads(codec.dumps(result)) == result
    tagged = {"__t": "not a tag", "x": (1, 2)}
    assert codec.loads(codec.dumps(tagged)) == tagged


def test_a_killed_render_is_blamed_on_the_child_that_was_rendering() -> None:
    from bifrost import sandbox as module

    slow = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: slow\ndata:\n"
            "  x: \"{% for a in values.l %}{% for b in values.l %}{% endfor %}{% endfor %}\"\n")
    blueprint = {"children": [
        {"id": "fast", "template": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: f\n"},
        {"id": "slow", "template": slow},
    ]}
    # 2 s: the fast child must be rendered (and reported) well within the budget on a loaded
    # machine; the slow one (400 million loop turns) overruns any budget. A first render warms
    # the new worker up, so its start is not what the budget measures.
    module.configure(SandboxSettings(workers=1, render_seconds=2))
    try:
        warm = module.render_gateway({"children": blueprint["children"][:1]}, gateway=GATEWAY,
                                     values={}, live_children={})
        assert not warm.errors, warm.errors
        result = module.render_gateway(blueprint, gateway=GATEWAY,
                                       values={"l": list(range(20000))}, live_children={})
    finally:
        module.configure(SandboxSettings())
    (error,) = result.errors
    assert error.child_id == "slow"
    assert error.source == "spec.children[slow].template"
    assert "ran longer than 2 s" in error.message, error.message


def test_a_call_waiting_for_a_worker_gets_the_slot_of_a_killed_one() -> None:
    """With every worker busy, a caller waits; when a busy worker is killed for overrunning, a
    new worker takes its slot and the waiting caller runs (it used to wait forever)."""
    box = Sandbox(SandboxSettings(workers=1))
    try:
        assert box.call("ping", timeout=20) == "pong"  # the one worker is up
        child = RenderChild(id="slow", template="x", ready_when=SLOW_CEL)
        outcome: list[object] = []

        def hostile() -> None:
            try:
                box.call("evaluate_ready", child, {}, timeout=1.0)
            except SandboxTimeout as exc:
                outcome.append(exc)

        attacker = threading.Thread(target=hostile)
        attacker.start()
        pause = threading.Event()
        while box._idle and not outcome:  # until the attacker holds the only worker
            pause.wait(0.005)
        waiter_result: list[object] = []
        waiter = threading.Thread(target=lambda: waiter_result.append(box.call("ping", timeout=20)))
        waiter.start()
        attacker.join(30)
        waiter.join(30)
        assert not waiter.is_alive(), "the waiting call was never given a worker"
        assert waiter_result == ["pong"]
        assert len(outcome) == 1 and box.kills == 1
    finally:
        box.close()


def test_workers_do_not_inherit_the_controllers_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BIFROST_DATABASE_URL", "postgresql://bifrost:hunter2@db/bifrost")
    box = Sandbox(SandboxSettings(workers=1))
    try:
        assert box.call("ping", timeout=20) == "pong"
        (worker,) = box._live
        environ = Path(f"/proc/{worker.process.pid}/environ").read_bytes().split(b"\0")
        assert not any(e.startswith(b"BIFROST_DATABASE_URL=") for e in environ)
        assert any(e.startswith(b"BIFROST_SANDBOX_MEMORY_MB=") for e in environ)
    finally:
        box.close()
