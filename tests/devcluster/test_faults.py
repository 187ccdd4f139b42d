"""FaultInjector and RequestLog: the pure decision logic behind the devcluster's fault injection."""

from __future__ import annotations

import json
import threading

import pytest

from devcluster.faults import Fault, FaultInjector, Request, RequestLog

GATEWAY_GET = Request("get", "gateway.networking.k8s.io", "v1", "gateways", None, "default", "gw")
GATEWAY_STATUS_PATCH = Request(
    "patch", "gateway.networking.k8s.io", "v1", "gateways", "status", "default", "gw"
)
LEASE_UPDATE = Request("update", "coordination.k8s.io", "v1", "leases", None, "default", "lock")
SECRET_WATCH = Request("watch", "", "v1", "secrets", None, "default", None)


def _decisions(injector: FaultInjector, n: int, req: Request = GATEWAY_GET) -> list[Fault | None]:
    return [injector.decide(req) for _ in range(n)]


def test_no_rules_means_no_faults() -> None:
    assert _decisions(FaultInjector(), 20) == [None] * 20


def test_same_seed_and_requests_give_the_same_faults() -> None:
    def run(seed: int) -> list[Fault | None]:
        injector = FaultInjector(seed=seed)
        injector.add_rule(error_rate=0.3, status=503)
        injector.add_rule(verbs=["get"], error_rate=0.2, status=429, retry_after=2)
        return _decisions(injector, 200)

    first, again = run(7), run(7)
    assert first == again
    assert first != run(8)
    statuses = {f.status for f in first if f is not None}
    assert statuses == {503, 429}


def test_error_rate_is_roughly_honoured() -> None:
    injector = FaultInjector(seed=1)
    injector.add_rule(error_rate=0.25)
    errors = sum(1 for f in _decisions(injector, 4000) if f is not None and f.status == 500)
    assert 850 <= errors <= 1150


def test_error_rate_one_always_fails_with_the_rule_status_and_retry_after() -> None:
    injector = FaultInjector()
    injector.add_rule(error_rate=1.0, status=429, retry_after=3)
    assert _decisions(injector, 3) == [Fault(status=429, retry_after=3)] * 3


def test_rules_match_by_verb() -> None:
    injector = FaultInjector()
    injector.add_rule(verbs=["update", "patch"], error_rate=1.0, status=409)
    assert injector.decide(GATEWAY_GET) is None
    decided = injector.decide(LEASE_UPDATE)
    assert decided is not None and decided.status == 409


@pytest.mark.parametrize(
    ("resources", "req", "matches"),
    [
        (["gateways"], GATEWAY_GET, True),
        (["gateways"], GATEWAY_STATUS_PATCH, True),
        (["gateways/status"], GATEWAY_STATUS_PATCH, True),
        (["gateways/status"], GATEWAY_GET, False),
        (["gateways.gateway.networking.k8s.io"], GATEWAY_GET, True),
        (["leases"], GATEWAY_GET, False),
        (["secrets"], SECRET_WATCH, True),
    ],
)
def test_rules_match_by_plural_subresource_or_group_qualified_plural(
    resources: list[str], req: Request, matches: bool
) -> None:
    injector = FaultInjector()
    injector.add_rule(resources=resources, error_rate=1.0)
    assert (injector.decide(req) is not None) is matches


def test_times_bounds_how_often_a_rule_fires() -> None:
    injector = FaultInjector()
    injector.add_rule(error_rate=1.0, status=500, times=2)
    decisions = _decisions(injector, 5)
    assert [d.status if d else None for d in decisions] == [500, 500, None, None, None]


def test_times_counts_only_firings_not_matches() -> None:
    injector = FaultInjector(seed=3)
    injector.add_rule(error_rate=0.5, times=3)
    fired = [d for d in _decisions(injector, 100) if d is not None]
    assert len(fired) == 3


def test_latency_applies_to_every_match_and_adds_up_across_rules() -> None:
    injector = FaultInjector()
    injector.add_rule(latency=0.25)
    injector.add_rule(verbs=["get"], latency=0.5)
    assert injector.decide(GATEWAY_GET) == Fault(latency=0.75)
    assert injector.decide(LEASE_UPDATE) == Fault(latency=0.25)


def test_first_matching_error_wins() -> None:
    injector = FaultInjector()
    injector.add_rule(error_rate=1.0, status=503, retry_after=1)
    injector.add_rule(error_rate=1.0, status=429, retry_after=9)
    assert injector.decide(GATEWAY_GET) == Fault(status=503, retry_after=1)


def test_a_losing_error_does_not_use_up_its_rule() -> None:
    injector = FaultInjector()
    injector.add_rule(error_rate=1.0, status=409, times=2)
    injector.add_rule(error_rate=1.0, status=503, retry_after=2, times=1)
    statuses = [d.status if d else None for d in _decisions(injector, 4)]
    assert statuses == [409, 409, 503, None]


def test_watch_effects_only_concern_watches() -> None:
    injector = FaultInjector()
    injector.add_rule(drop_watch_after=3, times=1)
    injector.add_rule(expire_watch=True, times=1)
    # A get is unaffected and does not use up the rules.
    assert injector.decide(Request("get", "", "v1", "secrets", None, "default", "s")) is None
    assert injector.decide(SECRET_WATCH) == Fault(drop_watch_after=3, expire_watch=True)
    assert injector.decide(SECRET_WATCH) is None


def test_smallest_drop_watch_after_wins() -> None:
    injector = FaultInjector()
    injector.add_rule(drop_watch_after=10)
    injector.add_rule(drop_watch_after=2)
    decided = injector.decide(SECRET_WATCH)
    assert decided is not None and decided.drop_watch_after == 2


def test_remove_rule_and_clear() -> None:
    injector = FaultInjector()
    first = injector.add_rule(error_rate=1.0, status=500)
    second = injector.add_rule(error_rate=1.0, status=503)
    injector.remove_rule(first)
    decided = injector.decide(GATEWAY_GET)
    assert decided is not None and decided.status == 503
    with pytest.raises(KeyError):
        injector.remove_rule(first)
    injector.clear()
    assert injector.decide(GATEWAY_GET) is None
    with pytest.raises(KeyError):
        injector.remove_rule(second)


def test_clear_reseeds_so_a_cleared_injector_repeats_its_decisions() -> None:
    injector = FaultInjector(seed=11)
    injector.add_rule(error_rate=0.5)
    first = _decisions(injector, 50)
    injector.clear()
    injector.add_rule(error_rate=0.5)
    assert _decisions(injector, 50) == first


def test_rule_from_json_accepts_camel_case_and_reports_bad_input() -> None:
    injector = FaultInjector()
    rule_id = injector.add_rule_from_json(
        json.loads(
            '{"verbs": ["watch"], "resources": ["secrets"], "dropWatchAfter": 1,'
            ' "expireWatch": false, "times": 1, "latency": 0}'
        )
    )
    assert injector.decide(SECRET_WATCH) == Fault(drop_watch_after=1)
    assert injector.snapshot()[0]["id"] == rule_id
    assert injector.snapshot()[0]["fired"] == 1
    injector.add_rule_from_json({"errorRate": 1, "status": 429, "retryAfter": 2})
    assert injector.decide(GATEWAY_GET) == Fault(status=429, retry_after=2)
    for bad in (
        {"errorRate": 2},
        {"status": 200},
        {"verbs": ["fly"]},
        {"retryAfter": -1},
        {"resources": "gateways", "unknown": 1},
        {"times": "3"},
    ):
        with pytest.raises(ValueError):
            injector.add_rule_from_json(bad)


def test_decide_is_thread_safe_and_times_is_exact_under_contention() -> None:
    injector = FaultInjector()
    injector.add_rule(error_rate=1.0, times=100)
    fired: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        n = sum(1 for d in _decisions(injector, 200) if d is not None)
        with lock:
            fired.append(n)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(fired) == 100


def test_request_log_counts_by_verb_resource_and_writes() -> None:
    log = RequestLog()
    log.record(GATEWAY_GET, 200)
    log.record(GATEWAY_GET, 404)
    log.record(GATEWAY_STATUS_PATCH, 200)
    log.record(LEASE_UPDATE, 409)
    log.record(SECRET_WATCH, 200)
    assert log.count() == 5
    assert log.count(verbs=["get"]) == 2
    assert log.count(resources=["gateways"]) == 3
    assert log.count(resources=["gateways/status"]) == 1
    assert log.count(writes_only=True) == 2
    assert log.count(writes_only=True, resources=["leases"]) == 1
    assert log.count(statuses=[404, 409]) == 2
    snap = log.snapshot()
    json.dumps(snap)
    assert snap["total"] == 5 and snap["writes"] == 2
    assert snap["byVerb"] == {"get": 2, "patch": 1, "update": 1, "watch": 1}
    assert snap["byStatus"] == {"200": 3, "404": 1, "409": 1}
    assert snap["byResource"]["gateways.gateway.networking.k8s.io/status"] == 1
    assert snap["byResource"]["secrets"] == 1
    assert [status for _, status in log.recent()] == [200, 404, 200, 409, 200]
    log.reset()
    assert log.count() == 0 and log.snapshot()["total"] == 0


def test_request_log_keeps_exact_counts_beyond_its_recent_window() -> None:
    log = RequestLog(keep=10)
    for _ in range(1000):
        log.record(GATEWAY_GET, 200)
    assert log.count(verbs=["get"]) == 1000
    assert len(log.recent()) == 10
