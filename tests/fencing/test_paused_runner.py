"""A runner paused just before its ``attach_new`` write, resumed after its successor finished
the rotation past ``detach_old``, cannot write the stale attach (devcluster, real HTTP).

A Gateway is provisioned by a running controller, which is then stopped; a rotation of its
listener's certificate is started and run by two runners sharing the store, each with its own
``KubeClient``:

1. the *old* runner runs it up to ``attach_new`` and freezes in its first child write (a
   test-only gate in the step's cluster port: the step has read the children and rendered them
   with the old and the new certificate attached);
2. its operation lease (2 s) expires; the *successor* takes the operation over and runs it to
   the end (attach, verify by TLS handshake, drain, ``detach_old``, ``delete_old``);
3. the old runner resumes and would now send the body it computed: the old certificate
   attached again.

Two placements of the pause:

- ``fence``: the pause is before the engine's check (``FencedKube``) — the check finds the lease
  lost and nothing is sent at all;
- ``precondition``: the pause is after the check passed (the remaining window) — the request is
  sent with the ``resourceVersion`` the step read, and the API server refuses it (409).

Either way the devcluster's request log shows no accepted write between the resume and the
end of the old runner's work, and the child Gateway references only the new certificate.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fencing_kit import Cluster
from rotation.rotation_kit import (
    GATEWAY_API,
    Env,
    example_blueprint,
    https_gateway,
    running_controller,
)
from support.builders import gateway_class
from support.waiting import wait_for

from bifrost.certificates.renewal import renewal_policy
from bifrost.clock import SystemClock
from bifrost.engine import Runner
from bifrost.engine.fenced_kube import FencedKube
from bifrost.kube import KubeClient
from bifrost.machines.catalog import default_registry
from bifrost.machines.rotation import ATTACH_NEW, DETACH_OLD
from bifrost.records import JournalOutcome, OperationStatus
from bifrost.steps.bindings import bind_steps
from bifrost.store import SqlStore, migrate, open_store
from bifrost.store.fence import current_fence
from devcluster.faults import WRITE_VERBS

OLD_LEASE = timedelta(seconds=2)


class GatedKube:
    """Test-only: forwards everything to ``inner``; the first write of a child made during
    ``attach_new`` waits until ``release`` is set (a frozen runner), and what it then sent on
    (or what refused it) is recorded."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reached = threading.Event()
        self.release = threading.Event()
        self.outcome: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def apply(self, obj: dict[str, Any], **kwargs: Any) -> Any:
        fence = current_fence()
        if fence is None or fence.step != ATTACH_NEW or obj.get("kind") != "Gateway" \
                or self.reached.is_set():
            return self.inner.apply(obj, **kwargs)
        self.reached.set()
        assert self.release.wait(120), "the test never released the paused runner"
        try:
            applied = self.inner.apply(obj, **kwargs)
        except Exception as exc:
            self.outcome.append(type(exc).__name__)
            raise
        self.outcome.append("sent")
        return applied


@contextmanager
def running(runner: Runner) -> Iterator[threading.Event]:
    """Run ``runner`` on a thread (its own ticks, no leadership term) until the block ends."""
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            delay = runner.tick(limit=1)
            done.wait(delay.total_seconds())

    thread = threading.Thread(target=loop, name=f"runner-{runner.owner}", daemon=True)
    thread.start()
    try:
        yield done
    finally:
        done.set()
        thread.join(timeout=130)
        assert not thread.is_alive()


def _marker(kube: KubeClient, namespace: str, name: str) -> None:
    """A GET the request log records, to delimit a stretch of it (names unique per test)."""
    kube.get("v1", "ConfigMap", name, namespace)


def _between(cluster: Cluster, start: str, end: str) -> list[tuple[Any, int]]:
    recent = cluster.server.request_log.recent()
    names = [req.name for req, _ in recent]
    first, last = names.index(start), names.index(end)
    return recent[first + 1:last]


def _runner(store: SqlStore, kube: Any, owner: str, lease: timedelta) -> Runner:
    steps = bind_steps(kube, store, renewal_time=renewal_policy)
    return Runner(store, default_registry(), steps, clock=SystemClock(), owner=owner,
                  lease_for=lease, idle_interval=timedelta(milliseconds=50))


@pytest.mark.parametrize("pause", ["fence", "precondition"])
def test_a_paused_runner_cannot_write_its_stale_attach_after_detach_old(
    fencing_cluster: Cluster, tmp_path: Path, pause: str
) -> None:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    ns = f"f-{uuid.uuid4().hex[:8]}"
    kube = KubeClient.from_kubeconfig(fencing_cluster.kubeconfig)
    old_client = KubeClient.from_kubeconfig(fencing_cluster.kubeconfig)
    new_client = KubeClient.from_kubeconfig(fencing_cluster.kubeconfig)
    try:
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        env = Env(kube, store, ns)
        with running_controller(kube, store, identity=f"ctl-{ns}"):
            kube.apply(example_blueprint(f"bp-{ns}", drainSeconds=0))
            kube.apply(gateway_class(f"gc-{ns}", f"bp-{ns}"))
            kube.apply(https_gateway(ns, "edge", f"gc-{ns}", ("a.example.com",)))
            uid = env.programmed("edge")["metadata"]["uid"]
        (old,) = env.attached(uid, "https-0")
        op = env.start_rotation(old)

        # 1. the old runner freezes in attach_new's first child write
        if pause == "fence":
            gate = GatedKube(FencedKube(old_client, store))
            old_kube: Any = gate
        else:
            gate = GatedKube(old_client)
            old_kube = FencedKube(gate, store)  # type: ignore[arg-type]
        old_runner = _runner(store, old_kube, "old-runner", OLD_LEASE)
        with running(old_runner):
            wait_for(gate.reached.is_set, timeout=60, what="the old runner to reach attach_new")
            frozen = store.get_operation(op.id)
            assert (frozen.lease_owner, frozen.step) == ("old-runner", ATTACH_NEW)

            # 2. its lease expires; the successor takes over and finishes the rotation
            successor = _runner(store, FencedKube(new_client, store), "successor",
                                timedelta(seconds=10))
            with running(successor):
                done = wait_for(
                    lambda: (lambda o: o if o.status.terminal else None)(
                        store.get_operation(op.id)),
                    timeout=90, what="the successor to finish the rotation")
            assert done.status is OperationStatus.SUCCEEDED, done.last_error
            finished = {(r.step, r.actor) for r in store.journal(operation_id=op.id)
                        if r.outcome is JournalOutcome.DONE}
            assert (DETACH_OLD, "successor") in finished
            assert not {step for step, actor in finished if actor == "old-runner"} & {
                ATTACH_NEW, DETACH_OLD}
            (new,) = env.attached(uid, "https-0")
            assert new.object_name != old.object_name

            # 3. the old runner resumes with its stale body (old + new attached)
            _marker(kube, ns, f"{ns}-resume")
            gate.release.set()
            wait_for(lambda: gate.outcome, timeout=30, what="the old runner's write attempt")
        _marker(kube, ns, f"{ns}-resumed")

        stretch = _between(fencing_cluster, f"{ns}-resume", f"{ns}-resumed")
        accepted = [(req, status) for req, status in stretch
                    if req.verb in WRITE_VERBS and status < 400]
        assert accepted == [], accepted
        child_writes = [(req.verb, req.resource, req.name, status) for req, status in stretch
                        if req.verb in WRITE_VERBS and req.namespace == ns]
        if pause == "fence":
            assert gate.outcome == ["LeaseLost"]
            assert child_writes == []  # nothing reached the API server
        else:
            assert gate.outcome == ["Conflict"]
            assert child_writes == [("apply", "gateways", "edge-child", 409)]

        # the children reference only the new certificate; the store agrees
        child = kube.get(GATEWAY_API, "Gateway", "edge-child", ns)
        assert child is not None
        refs = [r["name"] for listener in child["spec"]["listeners"]
                for r in (listener.get("tls") or {}).get("certificateRefs") or []]
        assert refs == [new.secret_name]
        assert [c.object_name for c in env.certificates(uid) if c.listener == "https-0"] == [
            new.object_name]
        assert store.get_operation(op.id).status is OperationStatus.SUCCEEDED
    finally:
        kube.delete("v1", "Namespace", ns)
        for client in (kube, old_client, new_client):
            client.close()
        store.close()
