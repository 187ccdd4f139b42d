"""Error mapping: what the API server answers becomes an error that says how to react."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from kube_helpers import configmap
from support.builders import gateway, namespace_object
from support.waiting import wait_for

from bifrost.kube.client import KubeClient
from bifrost.kube.errors import (
    DEFAULT_CONFLICT_DELAY,
    DEFAULT_RETRY_DELAY,
    AlreadyExists,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    Retryable,
    ServerError,
    TooManyRequests,
    map_error,
)
from devcluster.faults import FaultInjector
from devcluster.server import DevCluster

GW = "gateway.networking.k8s.io/v1"


def test_not_found_carries_the_server_message_kind_and_name(
    kube: KubeClient, namespace: str
) -> None:
    with pytest.raises(NotFound) as caught:
        kube.patch("v1", "ConfigMap", "ghost", namespace, {"data": {"a": "1"}})
    err = caught.value
    assert err.status == 404 and err.reason == "NotFound"
    assert err.message == 'configmaps "ghost" not found'
    assert (err.kind, err.name, err.namespace) == ("ConfigMap", "ghost", namespace)
    assert not isinstance(err, Retryable)


def test_creating_in_a_missing_namespace_is_not_found(kube: KubeClient) -> None:
    with pytest.raises(NotFound, match='namespaces "no-such-namespace" not found'):
        kube.create(configmap("cm", "no-such-namespace"))


def test_stale_resource_version_is_a_retryable_conflict(kube: KubeClient, namespace: str) -> None:
    stale = kube.create(configmap("cm", namespace, a="1"))
    kube.patch("v1", "ConfigMap", "cm", namespace, {"data": {"a": "2"}})
    stale["data"]["a"] = "3"
    with pytest.raises(Conflict) as caught:
        kube.replace(stale)
    err = caught.value
    assert isinstance(err, Retryable) and err.delay == DEFAULT_CONFLICT_DELAY
    assert err.status == 409 and err.reason == "Conflict"
    assert "the object has been modified" in err.message
    assert err.name == "cm"


def test_creating_twice_is_already_exists_not_a_retryable_conflict(
    kube: KubeClient, namespace: str
) -> None:
    kube.create(configmap("twice", namespace))
    with pytest.raises(AlreadyExists) as caught:
        kube.create(configmap("twice", namespace))
    assert not isinstance(caught.value, Retryable)
    assert "already exists" in caught.value.message


def test_invalid_object_is_422_with_the_server_message_and_field_causes(
    kube: KubeClient, namespace: str
) -> None:
    bad = gateway(namespace, "bad", "bifrost", listeners=[{"port": 80, "protocol": "HTTP"}])
    with pytest.raises(Invalid) as caught:
        kube.create(bad)
    err = caught.value
    assert err.status == 422 and err.reason == "Invalid"
    assert err.kind == "Gateway" and err.name == "bad"
    assert "name" in err.message
    assert err.causes and any("listeners" in c.field for c in err.causes)
    assert not isinstance(err, Retryable)


def test_creating_in_a_terminating_namespace_is_forbidden(kube: KubeClient) -> None:
    ns = "terminating-ns-errors"
    kube.create(namespace_object(ns))
    held = configmap("held", ns)
    held["metadata"]["finalizers"] = ["gateway.bifrost.dev/hold"]
    kube.create(held)
    kube.delete("v1", "Namespace", ns)
    wait_for(
        lambda: (
            (kube.get("v1", "Namespace", ns) or {}).get("status", {}).get("phase") == "Terminating"
        ),
        what="namespace Terminating",
    )
    with pytest.raises(Forbidden) as caught:
        kube.create(configmap("late", ns))
    assert caught.value.status == 403
    assert ns in caught.value.message
    # Let the namespace go.
    kube.patch("v1", "ConfigMap", "held", ns, {"metadata": {"finalizers": None}})
    wait_for(lambda: kube.get("v1", "Namespace", ns) is None, what="namespace removed")


def test_injected_429_honours_retry_after(
    kube: KubeClient, namespace: str, faults: FaultInjector
) -> None:
    kube.create(configmap("cm", namespace))
    faults.add_rule(
        verbs=["get"], resources=["configmaps"], error_rate=1.0, status=429, retry_after=7, times=1
    )
    with pytest.raises(TooManyRequests) as caught:
        kube.get("v1", "ConfigMap", "cm", namespace)
    assert caught.value.delay == 7.0
    assert caught.value.status == 429
    # The rule fired once; the retry succeeds.
    assert kube.get("v1", "ConfigMap", "cm", namespace) is not None


@pytest.mark.parametrize("status", [500, 503, 504])
def test_injected_5xx_is_retryable(
    kube: KubeClient, namespace: str, faults: FaultInjector, status: int
) -> None:
    faults.add_rule(verbs=["create"], resources=["configmaps"], error_rate=1.0, status=status)
    with pytest.raises(ServerError) as caught:
        kube.create(configmap("cm", namespace))
    assert caught.value.status == status
    assert caught.value.delay == DEFAULT_RETRY_DELAY


def test_injected_503_with_retry_after_uses_it(
    kube: KubeClient, namespace: str, faults: FaultInjector
) -> None:
    faults.add_rule(verbs=["list"], error_rate=1.0, status=503, retry_after=3)
    with pytest.raises(ServerError) as caught:
        kube.list("v1", "ConfigMap", namespace)
    assert caught.value.delay == 3.0


def test_injected_409_is_a_conflict(
    kube: KubeClient, namespace: str, faults: FaultInjector
) -> None:
    kube.create(configmap("cm", namespace))
    faults.add_rule(verbs=["patch"], error_rate=1.0, status=409, times=1)
    with pytest.raises(Conflict):
        kube.patch("v1", "ConfigMap", "cm", namespace, {"data": {"x": "1"}})
    assert kube.patch("v1", "ConfigMap", "cm", namespace, {"data": {"x": "1"}})["data"] == {
        "x": "1"
    }


def test_a_retry_loop_driven_by_delay_converges_through_transient_faults(
    kube: KubeClient, namespace: str, faults: FaultInjector, cluster: DevCluster
) -> None:
    faults.add_rule(verbs=["apply"], error_rate=1.0, status=409, times=2)
    faults.add_rule(verbs=["apply"], error_rate=1.0, status=503, retry_after=2, times=1)
    slept: list[float] = []
    for _ in range(10):
        try:
            result = kube.apply(configmap("converge", namespace, a="1"))
            break
        except Retryable as exc:
            slept.append(exc.delay)  # a real caller sleeps here
    else:
        pytest.fail("never converged")
    assert result["data"] == {"a": "1"}
    assert sorted(slept) == sorted([DEFAULT_CONFLICT_DELAY, DEFAULT_CONFLICT_DELAY, 2.0])
    assert cluster.request_log.count(verbs=["apply"]) == 4


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from kubernetes import client as k8s

    cfg = k8s.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    cfg.retries = 0
    with KubeClient(k8s.ApiClient(cfg)) as kube, pytest.raises(ConnectionFailed) as caught:
        kube.get("v1", "ConfigMap", "x", "default")
    assert caught.value.delay == DEFAULT_RETRY_DELAY
    assert caught.value.status is None


class _FakeHTTPError(Exception):
    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.reason = "Reason"
        self.body = body
        self.headers = headers or {}


def test_retry_after_may_be_an_http_date_or_details_seconds() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    err = map_error(_FakeHTTPError(429, "{}", {"Retry-After": format_datetime(when, usegmt=True)}))
    assert isinstance(err, TooManyRequests) and 25 <= err.delay <= 30
    body = {"kind": "Status", "code": 503, "details": {"retryAfterSeconds": 4}}
    err = map_error(_FakeHTTPError(503, json.dumps(body)))
    assert isinstance(err, ServerError) and err.delay == 4.0


def test_non_api_exceptions_are_not_mapped() -> None:
    assert map_error(ValueError("nope")) is None
    err = map_error(_FakeHTTPError(418, "I'm a teapot"))
    assert isinstance(err, KubeError) and not isinstance(err, Retryable)
    assert err.message == "I'm a teapot"
