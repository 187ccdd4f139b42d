"""Budgets end to end: hostile classes do not stall the controller.

The in-process controller runs against the devcluster while one GatewayClass per template bypass
(each child template is one string-growing path of ``tests/render/test_render_budgets.py``), one
whose child renders three nested loops over a values list (the render time limit) and one whose
child's ``readyWhen`` is a costly CEL expression (within the static limits, ~25 s in the CEL
library; the sandbox stops every evaluation after 2 s) each get Gateways. A healthy class's Gateway
is created after them, so it competes with the attack.

What must hold (issue 10, "Budgets"):

- the healthy Gateway reaches ``Programmed=True``;
- every hostile Gateway shows a condition or Event naming its child and the limit ("over budget"
  or the sandbox's), never the hostile value (no run of the built string, not the expression);
- the controller kept its Lease throughout the attack: the holder and ``leaseTransitions`` never
  changed and the Lease was renewed at least once per lease duration from the first hostile
  Gateway to the end of the last hostile provision; ``/healthz`` answered and a ticker thread in
  this process ran all along (in-process, the CEL library held the GIL and froze all of them);
- the sandbox killed at least one worker (the CEL attack really ran).

Timing bounds are the lease duration (the behaviour required), never exact gaps.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from render.test_render_budgets import BYPASSES
from sandbox.test_sandbox_pool import SLOW_CEL
from support.builders import GATEWAY_API, blueprint, gateway, gateway_class
from support.inprocess import SYSTEM_NAMESPACE, running_controller
from support.waiting import wait_for

from bifrost.controller.manager import Controller
from bifrost.kube.client import KubeClient
from bifrost.sandbox import default_sandbox
from bifrost.store import SqlStore

LEASE_API = "coordination.k8s.io/v1"
LEASE_DURATION = 5.0
TIMEOUT = 50.0
#: The healthy Gateway must be Programmed before a stuck step's runner lease (30 s) could lapse
#: and another runner retry it: it is served during the attack, not rescued after it.
HEALTHY_TIMEOUT = 25.0
#: Gateways of the costly-CEL class (each evaluation holds a sandbox worker until it is killed).
SLOW_GATEWAYS = 3
NESTED_LOOPS = ("  x: \"{% for i in values.l %}{% for j in values.l %}{% for k in values.l %}"
                "{% endfor %}{% endfor %}{% endfor %}\"\n")
LIMIT_WORDS = ("over budget", "refused by the template sandbox")


def _head(child_id: str) -> str:
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
            f"  name: '{{{{ gateway.metadata.name }}}}-{child_id}'\ndata:\n")


@dataclass(frozen=True)
class Hostile:
    """One hostile class: its child's id, its template body and optional readyWhen."""

    child_id: str
    body: str
    ready_when: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    gateways: int = 1


HOSTILES = [
    *(Hostile(f"bypass-{key}", body) for key, body in BYPASSES.items()),
    Hostile("nested-loops", NESTED_LOOPS, defaults={"l": list(range(1000))}),
    Hostile("costly-cel", "  x: fine\n", ready_when=SLOW_CEL, gateways=SLOW_GATEWAYS),
]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _class(kube: KubeClient, name: str, child: dict[str, Any],
           defaults: dict[str, Any] | None = None, **spec: Any) -> None:
    kube.create(blueprint(name, [child], defaults=defaults or {}, **spec))
    kube.create(gateway_class(name, name))


def _gateway(kube: KubeClient, namespace: str, name: str, class_name: str) -> str:
    return str(kube.create(gateway(namespace, name, class_name))["metadata"]["uid"])


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---- what runs beside the controller during the attack -----------------------------------


class Watch:
    """Threads that record, until stopped: the controller's Lease as the API server has it, the
    answers of ``/healthz``, the ticks of a thread that only appends the time, and when the
    sandbox killed a worker."""

    def __init__(self, kubeconfig: Path, lease_name: str, health_port: int) -> None:
        self.kubeconfig = kubeconfig
        self.lease_name = lease_name
        self.health_port = health_port
        self.leases: list[dict[str, Any]] = []
        self.health: list[tuple[float, bool]] = []
        self.ticks: list[float] = []
        self.kills: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=t, daemon=True)
                         for t in (self._lease_loop, self._health_loop, self._tick_loop)]

    def __enter__(self) -> Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _lease_loop(self) -> None:
        with KubeClient.from_kubeconfig(self.kubeconfig) as kube:
            while not self._stop.wait(0.1):
                lease = kube.get(LEASE_API, "Lease", self.lease_name, SYSTEM_NAMESPACE)
                if lease is not None:
                    self.leases.append(dict(lease.get("spec") or {}))

    def _health_loop(self) -> None:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        while not self._stop.wait(0.1):
            try:
                with urllib.request.urlopen(url, timeout=LEASE_DURATION) as response:
                    ok = response.status == 200
            except OSError:
                ok = False
            self.health.append((time.monotonic(), ok))

    def _tick_loop(self) -> None:
        box = default_sandbox()
        kills = box.kills
        while not self._stop.wait(0.01):
            now = time.monotonic()
            self.ticks.append(now)
            if box.kills != kills:
                kills = box.kills
                self.kills.append(now)

    def renewals(self) -> list[datetime]:
        """The distinct ``renewTime`` values seen, in order."""
        seen = sorted({_parse_time(s["renewTime"]) for s in self.leases if s.get("renewTime")})
        return seen


def _largest_gap(points: list[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] with no point in it."""
    inside = sorted(p for p in points if start < p < end)
    edges = [start, *inside, end]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


# ---- the controller -----------------------------------------------------------------------


@pytest.fixture
def controller(kube: KubeClient, store: SqlStore) -> Iterator[Controller]:
    with running_controller(
        kube, store, name="budgets", startup_timeout=20,
        lease_duration=LEASE_DURATION, renew_deadline=4.0, retry_period=0.5,
        health_host="127.0.0.1", health_port=_free_port(), workers=4,
    ) as running:
        yield running


def _messages(kube: KubeClient, namespace: str, name: str, uid: str) -> list[str]:
    """Every message the controller wrote about a Gateway: conditions and Events."""
    gateway = kube.get(GATEWAY_API, "Gateway", name, namespace) or {}
    out = [str(c.get("message", "")) for c in (gateway.get("status") or {}).get("conditions")
           or []]
    events, _ = kube.list("events.k8s.io/v1", "Event", namespace)
    out += [str(e.get("note", "")) for e in events
            if (e.get("regarding") or {}).get("uid") == uid]
    return out


def _naming(kube: KubeClient, namespace: str, name: str, h: Hostile, uid: str) -> list[str]:
    """The messages about a hostile Gateway that name its child and the limit."""
    return [m for m in _messages(kube, namespace, name, uid)
            if h.child_id in m and any(w in m for w in LIMIT_WORDS)]


def _provisions_ended(store: SqlStore, uid: str) -> bool:
    ops = [o for o in store.list_operations(gateway_uid=uid, limit=100)
           if o.machine == "provision"]
    return bool(ops) and all(o.status.terminal for o in ops)


_RUN = re.compile(r"(.)\1{63,}")


@pytest.mark.slow
def test_hostile_classes_do_not_stall_the_controller(
    kube: KubeClient, kubeconfig: Path, store: SqlStore, namespace: str, controller: Controller
) -> None:
    suffix = uuid.uuid4().hex[:6]
    box = default_sandbox()
    kills_before = box.kills
    options = controller.options
    with Watch(kubeconfig, options.lease_name, options.health_port) as watch:
        wait_for(lambda: len(watch.renewals()) >= 2, what="the Lease seen renewed", timeout=10,
                 interval=0.1)
        attack_wall = datetime.now().astimezone()
        attack_start = time.monotonic()
        # the hostile classes, then their Gateways
        hostile: dict[str, tuple[Hostile, str]] = {}  # gateway name -> (class, uid)
        for h in HOSTILES:
            child: dict[str, Any] = {"id": h.child_id, "template": _head(h.child_id) + h.body}
            if h.ready_when is not None:
                child["readyWhen"] = h.ready_when
            _class(kube, f"{h.child_id}-{suffix}", child, h.defaults)
        for h in HOSTILES:
            for i in range(h.gateways):
                name = f"{h.child_id}-{i}"
                hostile[name] = (h, _gateway(kube, namespace, name, f"{h.child_id}-{suffix}"))
        # the healthy class, created after the attack began
        _class(kube, f"healthy-{suffix}", {
            "id": "config", "readyWhen": "has(object.data.address)",
            "template": _head("config") + "  address: 10.0.0.7\n"},
            addresses='[{"type": "IPAddress", "value": children.config.data.address}]')
        healthy_uid = _gateway(kube, namespace, "healthy", f"healthy-{suffix}")

        def programmed() -> bool:
            cond = _condition(kube.get(GATEWAY_API, "Gateway", "healthy", namespace),
                              "Programmed")
            return cond is not None and cond["status"] == "True"

        try:
            wait_for(programmed, what="the healthy Gateway Programmed=True",
                     timeout=HEALTHY_TIMEOUT, interval=0.1)
        except AssertionError as exc:
            gw = kube.get(GATEWAY_API, "Gateway", "healthy", namespace) or {}
            ops = store.list_operations(gateway_uid=healthy_uid, limit=10)
            raise AssertionError(f"{exc}; status: {gw.get('status')}; operations: "
                                 f"{[(o.machine, o.status, o.state) for o in ops]}") from None
        healthy_after = time.monotonic() - attack_start
        assert _provisions_ended(store, healthy_uid)
        wait_for(lambda: all(_provisions_ended(store, uid) for _, uid in hostile.values()),
                 what="every hostile Gateway's provision ended", timeout=TIMEOUT, interval=0.1)
        attack_end = time.monotonic()
        attack_end_wall = datetime.now().astimezone()
        wait_for(lambda: watch.renewals() and watch.renewals()[-1] > attack_end_wall,
                 what="a renewal after the attack", timeout=LEASE_DURATION * 2, interval=0.1)
        kills = box.kills - kills_before

    # 1. the controller kept its Lease, renewed at least once per lease duration, throughout
    holders = {s.get("holderIdentity") for s in watch.leases}
    transitions = {s.get("leaseTransitions") for s in watch.leases}
    assert holders == {options.identity}, holders
    assert len(transitions) == 1, transitions
    renewals = watch.renewals()
    base = attack_wall.timestamp()
    gap = _largest_gap([r.timestamp() - base for r in renewals], 0.0,
                       attack_end_wall.timestamp() - base)
    during = [r for r in renewals if attack_wall < r < attack_end_wall]
    window = attack_end - attack_start
    answers = [t for t, ok in watch.health if ok]
    health_gap = _largest_gap(answers, attack_start, attack_end)
    tick_gap = _largest_gap(watch.ticks, attack_start, attack_end)
    figures = (f"a {window:.1f} s attack: {len(during)} renewals, the longest stretch without "
               f"one {gap:.1f} s; /healthz silent for up to {health_gap:.1f} s; a thread of "
               f"this process stalled for up to {tick_gap:.2f} s")
    assert gap < LEASE_DURATION, f"the Lease was not renewed in time during {figures}"
    # 2. /healthz answered, and a thread of this process ran, all along
    assert all(ok for t, ok in watch.health if attack_start < t < attack_end), figures
    assert health_gap < LEASE_DURATION, f"/healthz was not answering during {figures}"
    assert tick_gap < LEASE_DURATION, f"this process stalled during {figures}"
    # 3. the CEL attack ran and was stopped by killing sandbox workers; the Lease was renewed
    #    while it ran (from the first killed evaluation's start to the last kill)
    assert kills >= 1, "no sandbox worker was killed: the costly readyWhen never ran"
    assert watch.kills, "the kills were not seen during the attack"
    cel_start = watch.kills[0] - default_sandbox().settings.expression_seconds
    cel_end = watch.kills[-1]
    cel_wall = (attack_wall + timedelta(seconds=cel_start - attack_start),
                attack_wall + timedelta(seconds=cel_end - attack_start))
    during_cel = [r for r in renewals if cel_wall[0] < r < cel_wall[1]]
    assert during_cel, "no renewal while the costly readyWhen was evaluated"

    # 4. every hostile Gateway names its child and the limit, never the hostile value
    def reported() -> bool:
        return all(_naming(kube, namespace, name, h, uid) for name, (h, uid) in hostile.items())

    try:
        wait_for(reported, what="every hostile Gateway's breach reported", timeout=TIMEOUT,
                 interval=0.1)
    except AssertionError as exc:
        missing = {name: _messages(kube, namespace, name, uid)
                   for name, (h, uid) in hostile.items()
                   if not _naming(kube, namespace, name, h, uid)}
        raise AssertionError(f"{exc}; not reported: {missing}") from None
    for name, (h, uid) in hostile.items():
        if h.ready_when is None:  # nothing of a refused render was applied
            assert kube.get("v1", "ConfigMap", f"{name}-{h.child_id}", namespace) is None
        else:
            assert any("sandbox time limit" in m
                       for m in _naming(kube, namespace, name, h, uid)), name
        for m in _messages(kube, namespace, name, uid):
            assert not _RUN.search(m), f"{name}: a message quotes the built value: {m[:200]}"
            assert len(m) < 4096, f"{name}: a message of {len(m)} characters"
            assert "0,1,2,3,4,5" not in m, f"{name}: a message quotes the expression"
        cond = _condition(kube.get(GATEWAY_API, "Gateway", name, namespace), "Programmed")
        assert cond is not None and cond["status"] == "False", (name, cond)

    print(json.dumps({  # the figures of the run (pytest -s shows them)
        "attack_seconds": round(window, 1), "renewals_during": len(during),
        "largest_renewal_gap": round(gap, 2), "largest_health_gap": round(health_gap, 2),
        "largest_tick_gap": round(tick_gap, 3), "sandbox_kills": kills,
        "cel_attack_seconds": round(cel_end - cel_start, 1),
        "renewals_during_cel": len(during_cel),
        "healthy_programmed_after": round(healthy_after, 1),
        "hostile_gateways": len(hostile)}))
