"""Two ``bifrost run`` processes share the ``bifrost-controller`` Lease: exactly one leads; when
the leader is SIGKILLed (no release), the other takes over within the lease duration."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from controller_kit import SYSTEM_NAMESPACE
from support.controller_process import ControllerProcess
from support.waiting import wait_for

from bifrost.kube.client import KubeClient

LEASE_DURATION = 3.0


def _holder(kube: KubeClient) -> str | None:
    lease = kube.get("coordination.k8s.io/v1", "Lease", "bifrost-controller", SYSTEM_NAMESPACE)
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or None


def _leading(ctl: ControllerProcess) -> bool | None:
    info = ctl.describe()
    return None if info is None else bool(info.get("leader"))


def _ready_check(ctl: ControllerProcess) -> Callable[[], bool]:
    def check() -> bool:
        assert ctl.proc.poll() is None, f"{ctl.identity} exited:\n{ctl.log()}"
        return bool((ctl.describe() or {}).get("ok"))

    return check


def test_one_leader_and_takeover_after_kill(kube: KubeClient, start_controller) -> None:  # type: ignore[no-untyped-def]
    a = start_controller("ctl-a", lease_duration=LEASE_DURATION)
    b = start_controller("ctl-b", lease_duration=LEASE_DURATION)
    for ctl in (a, b):
        wait_for(_ready_check(ctl), timeout=20, what=f"{ctl.identity} ready")
    holder = wait_for(
        lambda: _holder(kube) in ("ctl-a", "ctl-b") and _holder(kube),
        timeout=10,
        what="a Lease holder",
    )
    leader, follower = (a, b) if holder == "ctl-a" else (b, a)
    wait_for(lambda: _leading(leader) is True, timeout=10, what="leader reports leading")
    # Exactly one leader, stable over several renewals.
    deadline = time.monotonic() + LEASE_DURATION
    while time.monotonic() < deadline:
        assert _holder(kube) == leader.identity
        assert _leading(follower) is False
        time.sleep(0.2)

    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(timeout=10)
    killed_at = time.monotonic()
    wait_for(
        lambda: _holder(kube) == follower.identity,
        timeout=LEASE_DURATION + 5,
        what="the follower takes the Lease",
    )
    took = time.monotonic() - killed_at
    # The follower may take over once it has seen the Lease unchanged for a lease duration,
    # observed from its last read (retry period apart): allow one retry period of slack.
    assert took <= LEASE_DURATION + 2.0, f"takeover took {took:.1f}s"
    wait_for(lambda: _leading(follower) is True, timeout=15, what="follower reports leading")


def test_sigterm_shuts_down_cleanly_and_releases_the_lease(  # type: ignore[no-untyped-def]
    kube: KubeClient, start_controller
) -> None:
    ctl = start_controller("ctl-term", lease_duration=LEASE_DURATION)
    wait_for(_ready_check(ctl), timeout=20, what="ready")
    wait_for(lambda: _holder(kube) == "ctl-term", timeout=10, what="ctl-term leads")
    ctl.proc.send_signal(signal.SIGTERM)
    assert ctl.proc.wait(timeout=15) == 0, ctl.log()
    assert _holder(kube) is None  # released: a standby need not wait for expiry
    assert "Traceback" not in ctl.log()
