"""Seeded, scriptable fault injection and a request log for the devcluster.

bifrost must survive what a real API server does under load — latency, 500s, 429 with
Retry-After, 409 conflicts, dropped watch streams and 410 Expired — and the tests and benchmarks
must be able to *count* what bifrost sends (e.g. "no more than N writes per reconcile"). The
server consults a :class:`FaultInjector` before answering each request and records every answer
in a :class:`RequestLog`. Both are pure (no I/O), thread-safe (the server answers on many threads)
and, for the injector, seeded: the same rules, seed and sequence of requests give the same faults.

Rule semantics (:meth:`FaultInjector.add_rule`):

- A rule *matches* a request when its ``verbs`` (``None`` = all) contain the request's verb and its
  ``resources`` (``None`` = all) contain the plural (``"leases"``), the plural with subresource
  (``"gateways/status"``) or the group-qualified plural (``"leases.coordination.k8s.io"``).
- ``latency`` delays every matching request. ``error_rate`` is the probability (drawn from the
  seeded generator) that the request is answered with ``status`` (and ``retry_after``) instead.
  ``drop_watch_after`` and ``expire_watch`` only concern ``watch`` requests; a rule with nothing
  but watch effects does not match other verbs.
- A rule *fires* when it has an effect on the request (a latency, a watch effect, or the error
  that is answered). ``times`` bounds how often a rule fires; afterwards it is inert.
- Several matching rules combine: latencies add up, the first error (in rule order) wins, the
  smallest ``drop_watch_after`` wins, ``expire_watch`` is an OR.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "WRITE_VERBS",
    "Fault",
    "FaultInjector",
    "Request",
    "RequestLog",
]

#: Verbs that change state; ``RequestLog.count(writes_only=True)`` counts these.
WRITE_VERBS = frozenset({"create", "update", "patch", "apply", "delete", "deletecollection"})

_VERBS = frozenset({"get", "list", "watch"}) | WRITE_VERBS


@dataclass(frozen=True)
class Request:
    """What the server is asked, in the terms fault rules and counts are written in."""

    verb: str  # get | list | watch | create | update | patch | apply | delete | deletecollection
    group: str  # "" for core
    version: str
    resource: str  # plural, e.g. "gateways"
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Fault:
    """What the server should do to one request instead of (or before) answering it normally."""

    latency: float = 0.0  # seconds the server waits before answering
    status: int | None = None  # answer this error instead, as a proper Status object
    retry_after: int | None = None  # Retry-After header (seconds) sent with ``status``
    drop_watch_after: int | None = None  # for watches: close the stream after N events
    expire_watch: bool = False  # for watches: answer the 410 Expired ERROR event


def _resource_keys(req: Request) -> set[str]:
    keys = {req.resource}
    if req.subresource:
        keys.add(f"{req.resource}/{req.subresource}")
    if req.group:
        keys.add(f"{req.resource}.{req.group}")
        if req.subresource:
            keys.add(f"{req.resource}.{req.group}/{req.subresource}")
    return keys


def _matches(req: Request, verbs: frozenset[str] | None, resources: frozenset[str] | None) -> bool:
    if verbs is not None and req.verb not in verbs:
        return False
    return resources is None or not resources.isdisjoint(_resource_keys(req))


@dataclass
class _Rule:
    rule_id: int
    verbs: frozenset[str] | None
    resources: frozenset[str] | None
    latency: float
    error_rate: float
    status: int
    retry_after: int | None
    drop_watch_after: int | None
    expire_watch: bool
    times: int | None
    fired: int = field(default=0)

    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            "verbs": sorted(self.verbs) if self.verbs is not None else None,
            "resources": sorted(self.resources) if self.resources is not None else None,
            "latency": self.latency,
            "errorRate": self.error_rate,
            "status": self.status,
            "retryAfter": self.retry_after,
            "dropWatchAfter": self.drop_watch_after,
            "expireWatch": self.expire_watch,
            "times": self.times,
            "fired": self.fired,
        }


# JSON body keys accepted by ``add_rule_from_json`` (camelCase as on the wire, snake_case too).
_JSON_KEYS: dict[str, str] = {
    "verbs": "verbs",
    "resources": "resources",
    "latency": "latency",
    "errorRate": "error_rate",
    "error_rate": "error_rate",
    "status": "status",
    "retryAfter": "retry_after",
    "retry_after": "retry_after",
    "dropWatchAfter": "drop_watch_after",
    "drop_watch_after": "drop_watch_after",
    "expireWatch": "expire_watch",
    "expire_watch": "expire_watch",
    "times": "times",
}


def _opt_str_set(value: object, key: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise ValueError(f"{key}: expected a list of strings, got {value!r}")


def _opt_int(value: object, key: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}: expected an integer >= {minimum}, got {value!r}")
    return value


class FaultInjector:
    """Decides, per request, which fault (if any) the devcluster injects. Thread-safe, seeded."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._random = random.Random(seed)
        self._rules: dict[int, _Rule] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    def add_rule(
        self,
        *,
        verbs: Collection[str] | None = None,
        resources: Collection[str] | None = None,
        latency: float = 0.0,
        error_rate: float = 0.0,
        status: int = 500,
        retry_after: int | None = None,
        drop_watch_after: int | None = None,
        expire_watch: bool = False,
        times: int | None = None,
    ) -> int:
        """Add a rule (see the module docstring) and return its id for :meth:`remove_rule`."""
        verb_set = _opt_str_set(list(verbs) if verbs is not None else None, "verbs")
        if verb_set is not None and not verb_set <= _VERBS:
            raise ValueError(f"verbs: unknown verb(s) {sorted(verb_set - _VERBS)}")
        resource_set = _opt_str_set(list(resources) if resources is not None else None, "resources")
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise ValueError(f"latency: expected seconds >= 0, got {latency!r}")
        if (
            isinstance(error_rate, bool)
            or not isinstance(error_rate, int | float)
            or not 0.0 <= error_rate <= 1.0
        ):
            raise ValueError(f"error_rate: expected a probability in [0, 1], got {error_rate!r}")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"status: expected an HTTP error code 400..599, got {status!r}")
        retry_after = _opt_int(retry_after, "retry_after", minimum=0)
        drop_watch_after = _opt_int(drop_watch_after, "drop_watch_after", minimum=0)
        times = _opt_int(times, "times", minimum=0)
        if not isinstance(expire_watch, bool):
            raise ValueError(f"expire_watch: expected a boolean, got {expire_watch!r}")
        with self._lock:
            rule_id = self._next_id
            self._next_id += 1
            self._rules[rule_id] = _Rule(
                rule_id=rule_id,
                verbs=verb_set,
                resources=resource_set,
                latency=float(latency),
                error_rate=float(error_rate),
                status=status,
                retry_after=retry_after,
                drop_watch_after=drop_watch_after,
                expire_watch=expire_watch,
                times=times,
            )
            return rule_id

    def add_rule_from_json(self, body: dict[str, Any]) -> int:
        """Add a rule from a JSON body (``POST /devcluster/faults``).

        Keys are those of :meth:`add_rule`, in camelCase (``errorRate``, ``retryAfter``,
        ``dropWatchAfter``, ``expireWatch``) or snake_case. Unknown keys or wrong types raise
        ``ValueError`` with a message fit for a 400 answer.
        """
        if not isinstance(body, dict):
            raise ValueError("fault rule: expected a JSON object")
        unknown = sorted(set(body) - set(_JSON_KEYS))
        if unknown:
            raise ValueError(f"fault rule: unknown key(s) {unknown}")
        kwargs: dict[str, Any] = {_JSON_KEYS[k]: v for k, v in body.items()}
        for key in ("verbs", "resources"):
            if key in kwargs:
                kwargs[key] = _opt_str_set(kwargs[key], key)
        return self.add_rule(**kwargs)

    def remove_rule(self, rule_id: int) -> None:
        """Remove a rule; removing an unknown id raises ``KeyError``."""
        with self._lock:
            if rule_id not in self._rules:
                raise KeyError(f"no fault rule {rule_id}")
            del self._rules[rule_id]

    def clear(self) -> None:
        """Remove every rule and reseed, so a cleared injector behaves like a fresh one."""
        with self._lock:
            self._rules.clear()
            self._random = random.Random(self._seed)

    def snapshot(self) -> list[dict[str, Any]]:
        """The rules as JSON-able dicts (``GET /devcluster/faults``), in evaluation order."""
        with self._lock:
            return [rule.as_json() for rule in self._rules.values()]

    def decide(self, req: Request) -> Fault | None:
        """The fault to inject into ``req``, or ``None`` to answer it normally."""
        is_watch = req.verb == "watch"
        with self._lock:
            latency = 0.0
            status: int | None = None
            retry_after: int | None = None
            drop_after: int | None = None
            expire = False
            for rule in self._rules.values():
                if rule.exhausted() or not _matches(req, rule.verbs, rule.resources):
                    continue
                # Draw for every matching rule with a rate, even if an earlier rule already chose
                # an error, so one rule's outcome does not shift the others' random sequence.
                drawn = rule.error_rate > 0 and self._random.random() < rule.error_rate
                # Only the first error is answered; a later rule's error has no effect and so
                # does not use up its ``times``.
                errs = drawn and status is None
                watch_effect = is_watch and (rule.drop_watch_after is not None or rule.expire_watch)
                if not (errs or rule.latency > 0 or watch_effect):
                    continue
                rule.fired += 1
                latency += rule.latency
                if errs:
                    status, retry_after = rule.status, rule.retry_after
                if is_watch and rule.drop_watch_after is not None:
                    drop_after = (
                        rule.drop_watch_after
                        if drop_after is None
                        else min(drop_after, rule.drop_watch_after)
                    )
                if is_watch and rule.expire_watch:
                    expire = True
            if latency == 0 and status is None and drop_after is None and not expire:
                return None
            return Fault(
                latency=latency,
                status=status,
                retry_after=retry_after,
                drop_watch_after=drop_after,
                expire_watch=expire,
            )


class RequestLog:
    """Counts of the requests the devcluster answered, by verb, resource and status.

    Counts are exact however many requests arrive; the most recent ``keep`` requests are also
    kept in order (:meth:`recent`) for debugging a test.
    """

    def __init__(self, *, keep: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[Request, int]] = Counter()
        self._recent: deque[tuple[Request, int]] = deque(maxlen=keep)

    def record(self, req: Request, status: int) -> None:
        """Record one answered request and the HTTP status it was answered with."""
        with self._lock:
            self._counts[(req, status)] += 1
            self._recent.append((req, status))

    def count(
        self,
        *,
        verbs: Collection[str] | None = None,
        resources: Collection[str] | None = None,
        writes_only: bool = False,
        statuses: Collection[int] | None = None,
    ) -> int:
        """How many recorded requests match (resources match like fault rules do)."""
        verb_set = frozenset(verbs) if verbs is not None else None
        resource_set = frozenset(resources) if resources is not None else None
        status_set = frozenset(statuses) if statuses is not None else None
        with self._lock:
            items = list(self._counts.items())
        total = 0
        for (req, status), n in items:
            if writes_only and req.verb not in WRITE_VERBS:
                continue
            if status_set is not None and status not in status_set:
                continue
            if _matches(req, verb_set, resource_set):
                total += n
        return total

    def recent(self) -> list[tuple[Request, int]]:
        """The most recent requests, oldest first."""
        with self._lock:
            return list(self._recent)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able counts: total, writes, byVerb, byResource, byStatus, byVerbResource."""
        by_verb: Counter[str] = Counter()
        by_resource: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        by_verb_resource: Counter[str] = Counter()
        total = writes = 0
        with self._lock:
            items = list(self._counts.items())
        for (req, status), n in items:
            resource = req.resource + (f"/{req.subresource}" if req.subresource else "")
            if req.group:
                resource = f"{req.resource}.{req.group}" + (
                    f"/{req.subresource}" if req.subresource else ""
                )
            total += n
            if req.verb in WRITE_VERBS:
                writes += n
            by_verb[req.verb] += n
            by_resource[resource] += n
            by_status[str(status)] += n
            by_verb_resource[f"{req.verb} {resource}"] += n
        return {
            "total": total,
            "writes": writes,
            "byVerb": dict(sorted(by_verb.items())),
            "byResource": dict(sorted(by_resource.items())),
            "byStatus": dict(sorted(by_status.items())),
            "byVerbResource": dict(sorted(by_verb_resource.items())),
        }

    def reset(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self._counts.clear()
            self._recent.clear()
