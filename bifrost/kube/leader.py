"""Lease-based leader election, so only one bifrost replica reconciles at a time.

bifrost runs as a Deployment that may have several replicas during a rollout; two active
controllers would race on the same children and operations. :class:`LeaderElector` implements
client-go's ``leaderelection`` algorithm on a ``coordination.k8s.io/v1`` Lease through
:class:`~bifrost.kube.client.KubeClient`, so it interoperates with any other client-go or
``kubernetes.leaderelection`` candidate on the same Lease:

- a candidate reads the Lease; if it is missing, it creates it (a creation race loses with 409
  AlreadyExists); if another holder's record has not changed for ``lease_duration`` as observed on
  *this* candidate's clock (clock skew between machines does not matter), the candidate takes it
  over with a PUT carrying the resourceVersion it read (a race loses with 409 Conflict);
- the leader renews every ``retry_period``; if it cannot renew for ``renew_deadline`` it steps down
  (``on_stopped_leading``) before anyone else can take over (``renew_deadline < lease_duration``);
- :meth:`LeaderElector.stop` releases the Lease (empty holder) so a successor need not wait, unless
  told not to (a crash, as tests simulate, releases nothing);
- between attempts a standby waits on a watch of the Lease (:mod:`bifrost.kube.lease_release`),
  so it tries again as soon as the leader releases it instead of at its next poll.

Expiry decisions read an injectable :class:`~bifrost.clock.Clock`; :meth:`LeaderElector.step`
performs one attempt, so tests can drive an election deterministically with a ``ManualClock``.
:meth:`LeaderElector.start` runs the loop on a thread; callbacks run on that thread and should
return quickly.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bifrost.clock import Clock, SystemClock
from bifrost.kube.client import KubeClient
from bifrost.kube.errors import AlreadyExists, Conflict, KubeError
from bifrost.kube.failure_log import FailureLog
from bifrost.kube.identity import default_identity
from bifrost.kube.lease_release import ReleaseWatch
from bifrost.kube.times import format_micro_time

__all__ = ["LEASE_API_VERSION", "LeaderElector"]

log = logging.getLogger(__name__)

LEASE_API_VERSION = "coordination.k8s.io/v1"


class LeaderElector:
    """One candidate in the election for ``namespace/lease_name``."""

    def __init__(
        self,
        client: KubeClient,
        *,
        lease_name: str,
        namespace: str,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Clock | None = None,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        release_on_stop: bool = True,
        rng: random.Random | None = None,
        watch_release: bool = True,
    ) -> None:
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")
        self._client = client
        self.lease_name = lease_name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._clock = clock or SystemClock()
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._on_new_leader = on_new_leader
        self.release_on_stop = release_on_stop
        self._rng = rng or random.Random()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # What this candidate last saw of the Lease, and when (by its own clock).
        self._observed_spec: dict[str, Any] | None = None
        self._observed_rv: str | None = None
        self._observed_time: datetime | None = None
        self._leading = False
        self._last_renew: datetime | None = None
        self._last_leader: str | None = None
        #: A Lease request failing the same way on every retry is one WARNING, not one per try.
        self._failures = FailureLog(log)
        #: A standby's wait between attempts, ended early when the Lease is released.
        self._release_watch = ReleaseWatch(
            client, api_version=LEASE_API_VERSION, namespace=namespace, name=lease_name,
        ) if watch_release else None
        #: When the loop last finished an attempt (by its clock): its liveness, for /healthz.
        self.last_step_at: datetime | None = None

    # ---- state --------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Leading, and the last successful renewal is younger than the lease duration."""
        with self._lock:
            if not self._leading or self._last_renew is None:
                return False
            return self._clock.now() - self._last_renew < timedelta(seconds=self.lease_duration)

    def holds_lease(self) -> bool:
        """``is_leader`` without waiting for the elector's lock (held during a renewal's API
        calls): what the engine asks before every step and cluster write. Reads two attributes
        the elector sets; a renewal racing the read gives the answer of just before or after."""
        leading, last_renew = self._leading, self._last_renew
        if not leading or last_renew is None:
            return False
        return self._clock.now() - last_renew < timedelta(seconds=self.lease_duration)

    def since_last_step(self) -> timedelta | None:
        """How long ago (by its clock) the loop last finished an attempt; None before the first."""
        last = self.last_step_at
        return None if last is None else self._clock.now() - last

    @property
    def leader(self) -> str | None:
        """The holder as last observed (``None`` if none)."""
        with self._lock:
            if self._observed_spec is None:
                return None
            return self._observed_spec.get("holderIdentity") or None

    # ---- one attempt ----------------------------------------------------------------------

    def _spec_duration(self, spec: dict[str, Any]) -> float:
        seconds = spec.get("leaseDurationSeconds")
        if isinstance(seconds, int) and seconds > 0:
            return float(seconds)
        return self.lease_duration

    def _observe(self, lease: dict[str, Any], now: datetime) -> dict[str, Any]:
        spec = dict(lease.get("spec") or {})
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_time = now
        self._observed_rv = str((lease.get("metadata") or {}).get("resourceVersion") or "")
        return spec

    def _next_spec(self, now: datetime, current: dict[str, Any] | None) -> dict[str, Any]:
        """The record to write: as client-go, a change of holder counts a transition."""
        mine = current is not None and current.get("holderIdentity") == self.identity
        transitions = int((current or {}).get("leaseTransitions") or 0)
        if current is not None and not mine:
            transitions += 1
        acquired = current.get("acquireTime") if mine and current is not None else None
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
            "acquireTime": acquired or format_micro_time(now),
            "renewTime": format_micro_time(now),
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One attempt to become or stay leader; True if this candidate holds the Lease now.

        Raises :class:`~bifrost.kube.errors.KubeError` for failures other than a lost race.
        """
        with self._lock:
            now = self._clock.now()
            lease = self._client.get(LEASE_API_VERSION, "Lease", self.lease_name, self.namespace)
            if lease is None:
                spec = self._next_spec(now, None)
                try:
                    created = self._client.create(
                        {
                            "apiVersion": LEASE_API_VERSION,
                            "kind": "Lease",
                            "metadata": {"name": self.lease_name, "namespace": self.namespace},
                            "spec": spec,
                        }
                    )
                except (AlreadyExists, Conflict):
                    return False
                self._observe(created, now)
                self._last_renew = now
                return True
            current = self._observe(lease, now)
            holder = current.get("holderIdentity") or ""
            if holder and holder != self.identity:
                assert self._observed_time is not None
                expires = self._observed_time + timedelta(seconds=self._spec_duration(current))
                if now < expires:
                    return False
            updated = dict(lease)
            updated["spec"] = {**current, **self._next_spec(now, current)}
            try:
                replaced = self._client.replace(updated)
            except Conflict:
                return False
            self._observe(replaced, now)
            self._last_renew = now
            return True

    def step(self) -> bool:
        """One round of the election loop (attempt + transitions + callbacks); returns is_leader."""
        with self._lock:
            try:
                held = self.try_acquire_or_renew()
                error: KubeError | None = None
            except KubeError as exc:
                held, error = False, exc
                self._failures.failed(f"lease {self.namespace}/{self.lease_name}: {exc} "
                                      f"(retrying every {self.retry_period:g}s)")
            else:
                self._failures.recovered(
                    f"lease {self.namespace}/{self.lease_name} answers again")
            now = self._clock.now()
            self.last_step_at = now
            if held:
                if not self._leading:
                    self._leading = True
                    log.info("%s became leader of %s", self.identity, self.lease_name)
                    self._call(self._on_started)
            elif self._leading:
                lost = error is None  # someone else holds it: step down at once
                if self._last_renew is None or now - self._last_renew >= timedelta(
                    seconds=self.renew_deadline
                ):
                    lost = True
                if lost:
                    self._step_down()
            leader = self.leader
            if leader and leader != self._last_leader:
                self._last_leader = leader
                if self._on_new_leader is not None:
                    try:
                        self._on_new_leader(leader)
                    except Exception:
                        log.exception("on_new_leader callback failed")
            return self.is_leader

    def _step_down(self) -> None:
        self._leading = False
        log.info("%s stopped leading %s", self.identity, self.lease_name)
        self._call(self._on_stopped)

    @staticmethod
    def _call(callback: Callable[[], None] | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("leader election callback failed")

    def release(self) -> bool:
        """Give the Lease up (empty holder) if this candidate holds it; True if released."""
        with self._lock:
            was_leading = self._leading
            released = False
            try:
                lease = self._client.get(
                    LEASE_API_VERSION, "Lease", self.lease_name, self.namespace
                )
                spec = (lease or {}).get("spec") or {}
                if lease is not None and spec.get("holderIdentity") == self.identity:
                    now = self._clock.now()
                    lease = dict(lease)
                    lease["spec"] = {
                        **spec,
                        "holderIdentity": "",
                        "leaseDurationSeconds": 1,
                        "acquireTime": format_micro_time(now),
                        "renewTime": format_micro_time(now),
                    }
                    self._observe(self._client.replace(lease), now)
                    released = True
            except KubeError as exc:
                log.warning("could not release lease %s: %s", self.lease_name, exc)
            self._last_renew = None
            if was_leading:
                self._step_down()
            return released

    # ---- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Campaign and renew until :meth:`stop` (blocking)."""
        while not self._stop.is_set():
            leading = self.step()
            wait = self.retry_period
            if not leading:
                wait *= 1.0 + 0.2 * self._rng.random()  # jitter the candidates apart
            if leading or self._release_watch is None:
                self._stop.wait(wait)
                continue
            with self._lock:
                version = self._observed_rv
            # A standby tries again as soon as the leader releases the Lease (a rollout).
            self._release_watch.wait(wait, resource_version=version)

    def start(self) -> threading.Thread:
        """Run :meth:`run` on a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("this elector was already started")
        self._thread = threading.Thread(
            target=self.run, name=f"leader-election-{self.lease_name}", daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self, *, release: bool | None = None, timeout: float = 10.0) -> None:
        """Stop campaigning; release the Lease (default ``release_on_stop``) or just walk away."""
        self._stop.set()
        if self._release_watch is not None:
            self._release_watch.interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self.release_on_stop if release is None else release:
            self.release()
        else:
            with self._lock:
                self._last_renew = None
                if self._leading:
                    self._step_down()
