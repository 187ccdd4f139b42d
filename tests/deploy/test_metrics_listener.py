"""``/metrics`` is not open to the world by default: the health listener (all interfaces, for
the kubelet's probes) does not serve it; it has its own listener, ``--metrics-bind-address``,
loopback in deploy/ and off unless set."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from bifrost.cli.run import RunError, parse_bind_address
from bifrost.controller.health import Verdict
from bifrost.controller.manager import ControllerOptions, HealthServer


class FakeController:
    """What HealthServer reads of a Controller."""

    class metrics:  # noqa: N801 - mirrors Controller.metrics
        @staticmethod
        def exposition() -> bytes:
            return b"bifrost_up 1\n"

    def liveness(self) -> Verdict:
        return Verdict({"running": {"ok": True}})

    def readiness(self) -> Verdict:
        return Verdict({"running": {"ok": True}})

    def describe(self) -> dict[str, Any]:
        return {"identity": "test"}


def status_of(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


@pytest.mark.parametrize(("health", "metrics", "expected"), [
    (True, False, {"/healthz": 200, "/readyz": 200, "/metrics": 404}),
    (False, True, {"/healthz": 404, "/readyz": 404, "/metrics": 200}),
])
def test_health_and_metrics_listeners_serve_only_their_paths(
    health: bool, metrics: bool, expected: dict[str, int]
) -> None:
    server = HealthServer(FakeController(), "127.0.0.1", 0,  # type: ignore[arg-type]
                          health=health, metrics=metrics)
    server.start()
    try:
        assert {path: status_of(server.port, path) for path in expected} == expected
    finally:
        server.stop()


def test_metrics_are_off_and_loopback_by_default() -> None:
    options = ControllerOptions()
    assert options.metrics_port == 0 and options.metrics_host == "127.0.0.1"


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:8081", ("127.0.0.1", 8081)),
    (":8081", ("0.0.0.0", 8081)),
    ("[::1]:9090", ("::1", 9090)),
    ("0", ("", 0)),
    ("", ("", 0)),
])
def test_bind_address_parses(value: str, expected: tuple[str, int]) -> None:
    assert parse_bind_address(value) == expected


@pytest.mark.parametrize("value", ["8081", "localhost:", "127.0.0.1:99999", "a:b"])
def test_bad_bind_address_is_one_clear_line(value: str) -> None:
    with pytest.raises(RunError, match="--metrics-bind-address .* is not HOST:PORT"):
        parse_bind_address(value)
