"""Rendering cost: one Gateway of ``examples/in-cluster/`` rendered in-process and through the
sandbox workers, and one ``readyWhen`` evaluation each way.

Figures: microseconds per call (median of 5 rounds of N calls). In-process rendering includes the
value slots and the strict loader; the sandbox adds the round trip to a worker process (JSON both
ways). On a checkout without ``bifrost.sandbox`` only the in-process figures are printed.

Usage: ``python bench/bench_render.py [--calls 500]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bifrost import render

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "in-cluster"


def per_call(fn: Callable[[], Any], calls: int) -> float:
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(rounds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--calls", type=int, default=500)
    args = p.parse_args()
    blueprint = yaml.safe_load((EXAMPLE / "10-blueprint.yaml").read_text())
    gateway = yaml.safe_load((EXAMPLE / "50-gateway.yaml").read_text())
    gateway["metadata"]["uid"] = "0000"
    values = {"replicas": 3, "childClass": "devcluster", "issuer": "devcluster-ca"}
    live = {"settings": {"metadata": {"name": "edge-settings"}}}
    child = render.RenderChild(
        id="child", template="x",
        ready_when='object.status.conditions.exists(c, c.type == "Programmed" && '
                   'c.status == "True")')
    obj = {"status": {"conditions": [{"type": "Programmed", "status": "True"}]}}

    def local_render() -> Any:
        return render.render_gateway(blueprint, gateway=gateway, values=values,
                                     live_children=live)

    rows = [
        ("render_gateway, in-process", per_call(local_render, args.calls)),
        ("evaluate_ready, in-process",
         per_call(lambda: render.evaluate_ready(child, obj), args.calls)),
    ]
    try:
        from bifrost import sandbox
    except ImportError:
        sandbox = None  # type: ignore[assignment]
    if sandbox is not None:
        assert sandbox.render_gateway(blueprint, gateway=gateway, values=values,
                                      live_children=live) == local_render()
        rows += [
            ("render_gateway, sandbox worker",
             per_call(lambda: sandbox.render_gateway(blueprint, gateway=gateway, values=values,
                                                     live_children=live), args.calls)),
            ("evaluate_ready, sandbox worker",
             per_call(lambda: sandbox.evaluate_ready(child, obj), args.calls)),
        ]
    for name, micros in rows:
        print(f"  {name:<36} {micros:10.1f} µs/call")


if __name__ == "__main__":
    main()
