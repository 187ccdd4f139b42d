"""Spec sections "Leases and Events" and "Errors", including leader election with the
official ``kubernetes.leaderelection`` package (two candidates, failover)."""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from dc_support import admin_headers, body_of
from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock
from support.waiting import wait_for

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_lease_micro_time_and_creation_race(api_client, namespace) -> None:
    coord = client.CoordinationV1Api(api_client)
    now = datetime.datetime.now(datetime.UTC)
    lease = coord.create_namespaced_lease(
        namespace,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="l"),
            spec=client.V1LeaseSpec(
                holder_identity="a", acquire_time=now, renew_time=now, lease_duration_seconds=5
            ),
        ),
    )
    resp = coord.read_namespaced_lease("l", namespace, _preload_content=False)
    raw = json.loads(resp.data)
    assert MICRO.match(raw["spec"]["renewTime"]), raw["spec"]["renewTime"]
    assert MICRO.match(raw["spec"]["acquireTime"])
    assert lease.spec.renew_time == now.replace(microsecond=now.microsecond)
    with pytest.raises(client.ApiException) as ei:
        coord.create_namespaced_lease(namespace, {"metadata": {"name": "l"}})
    assert ei.value.status == 409
    assert body_of(ei.value)["reason"] == "AlreadyExists"


def _run_candidate(
    name: str, identity: str, namespace: str, stop: threading.Event, leading: dict[str, bool]
) -> threading.Thread:
    lock = LeaseLock(name, namespace, identity)

    def on_started() -> None:
        leading[identity] = True
        stop.wait()
        raise RuntimeError("stopped")  # the elector stops renewing when the callback raises

    def on_stopped() -> None:
        leading[identity] = False

    config = electionconfig.Config(
        lock,
        lease_duration=2,
        renew_deadline=1.5,
        retry_period=1,
        onstarted_leading=on_started,
        onstopped_leading=on_stopped,
    )
    t = threading.Thread(target=leaderelection.LeaderElection(config).run, daemon=True)
    t.start()
    return t


def test_leader_election_one_leader_and_failover(kube_configuration, api_client, namespace) -> None:
    name = f"le-{uuid.uuid4().hex[:6]}"
    leading: dict[str, bool] = {}
    stop_a, stop_b = threading.Event(), threading.Event()
    _run_candidate(name, "a", namespace, stop_a, leading)
    _run_candidate(name, "b", namespace, stop_b, leading)
    first = wait_for(lambda: [k for k, v in leading.items() if v], timeout=10)
    assert len(first) == 1
    coord = client.CoordinationV1Api(api_client)
    assert coord.read_namespaced_lease(name, namespace).spec.holder_identity == first[0]
    # observe for a while: never two leaders
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert sum(leading.values()) <= 1
        time.sleep(0.05)
    # stop the leader: its on_started returns, the elector stops renewing
    leader = first[0]
    other = "b" if leader == "a" else "a"
    stopped_at = time.monotonic()
    (stop_a if leader == "a" else stop_b).set()
    wait_for(lambda: leading.get(other) is True, timeout=10)
    # the other candidate takes over once the lease expires: the leader notices the stop within
    # one retry period (1 s), the lease lasts 2 s, the follower retries every 1 s
    assert time.monotonic() - stopped_at < 1 + 2 + 1 + 0.5
    assert coord.read_namespaced_lease(name, namespace).spec.holder_identity == other
    stop_a.set()
    stop_b.set()


def test_leader_election_needs_404_code_before_create(api_client, namespace) -> None:
    coord = client.CoordinationV1Api(api_client)
    with pytest.raises(client.ApiException) as ei:
        coord.read_namespaced_lease("absent", namespace)
    assert body_of(ei.value)["code"] == 404


def _event(ns: str, inv: dict, **extra: object) -> dict:
    body = {
        "metadata": {"generateName": "e-"},
        "involvedObject": inv,
        "reason": "R",
        "message": "m",
        "type": "Normal",
    }
    body.update(extra)
    return body


def test_core_event_namespace_rules(api_client, namespace) -> None:
    core = client.CoreV1Api(api_client)
    gwc = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "name": "gc"}
    core.create_namespaced_event(
        namespace,
        _event(
            namespace,
            {"kind": "ConfigMap", "apiVersion": "v1", "name": "x", "namespace": namespace},
        ),
    )
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_event(
            namespace,
            _event(
                namespace,
                {"kind": "ConfigMap", "apiVersion": "v1", "name": "x", "namespace": "other"},
            ),
        )
    assert ei.value.status == 422
    assert body_of(ei.value)["details"]["causes"][0]["field"] == "involvedObject.namespace"
    # cluster-scoped subject: only in default (without eventTime)
    core.create_namespaced_event("default", _event("default", gwc))
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_event(namespace, _event(namespace, gwc))
    assert ei.value.status == 422
    assert (
        'involvedObject.namespace: Invalid value: "": does not match event.namespace'
        in body_of(ei.value)["message"]
    )
    # with eventTime, reportingComponent is required and kube-system is allowed
    when = datetime.datetime.now(datetime.UTC).isoformat()
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_event("kube-system", _event("kube-system", gwc, eventTime=when))
    assert ei.value.status == 422
    ev = core.create_namespaced_event(
        "kube-system",
        _event(
            "kube-system",
            gwc,
            eventTime=when,
            reportingComponent="bifrost",
            reportingInstance="bifrost-0",
            action="Reconcile",
        ),
    )
    assert ev.metadata.name.startswith("e-")


def test_events_k8s_io_v1_rules(devcluster, api_client, namespace) -> None:
    ev_api = client.EventsV1Api(api_client)
    good = {
        "metadata": {"generateName": "e-"},
        "eventTime": datetime.datetime.now(datetime.UTC).isoformat(),
        "reportingController": "bifrost.io/controller",
        "reportingInstance": "bifrost-0",
        "action": "Reconcile",
        "reason": "Ready",
        "type": "Normal",
        "note": "ok",
        "regarding": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x", "namespace": namespace},
    }
    out = ev_api.create_namespaced_event(namespace, good)
    assert out.reporting_controller == "bifrost.io/controller"
    url = f"{devcluster.url}/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    for missing in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
        bad = {k: v for k, v in good.items() if k != missing}
        # (the client's own model insists on eventTime, so post the raw JSON)
        req = urllib.request.Request(
            url,
            json.dumps(bad).encode(),
            method="POST",
            headers={"Content-Type": "application/json", **admin_headers(devcluster)},
        )
        with pytest.raises(urllib.error.HTTPError) as hi:
            urllib.request.urlopen(req, timeout=5)
        assert hi.value.code == 422, missing
        assert json.loads(hi.value.read())["details"]["causes"][0]["field"] == missing
    with pytest.raises(client.ApiException) as ei:
        ev_api.create_namespaced_event(namespace, good | {"type": "Info"})
    assert ei.value.status == 422
    with pytest.raises(client.ApiException) as ei:
        ev_api.create_namespaced_event(namespace, good | {"note": "x" * 1025})
    assert ei.value.status == 422


@pytest.mark.parametrize(
    ("method", "path", "body", "ctype", "code", "reason"),
    [
        ("GET", "/api/v1/namespaces/default/configmaps/nope", None, None, 404, "NotFound"),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b"{not json",
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps/x/status",
            b"{}",
            "application/json",
            404,
            "NotFound",
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/configmaps",
            b"{}",
            "application/json",
            405,
            "MethodNotAllowed",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/x",
            b"{}",
            "text/plain",
            415,
            "UnsupportedMediaType",
        ),
        (
            "POST",
            "/api/v1/namespaces/kube-system/configmaps",
            b'{"metadata":{"name":"A"}}',
            "application/json",
            422,
            "Invalid",
        ),
    ],
)
def test_error_statuses(devcluster, method, path, body, ctype, code, reason) -> None:
    import http.client
    import urllib.parse

    u = urllib.parse.urlsplit(devcluster.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    if method == "PATCH":
        conn.request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            b'{"metadata":{"name":"x"}}',
            {"Content-Type": "application/json", **admin_headers(devcluster)},
        )
        conn.getresponse().read()
    headers = {"Content-Type": ctype} if ctype else {}
    conn.request(method, path, body, {**headers, **admin_headers(devcluster)})
    r = conn.getresponse()
    st = json.loads(r.read())
    assert r.status == code
    assert r.getheader("Content-Type") == "application/json"
    assert st["kind"] == "Status" and st["status"] == "Failure"
    assert st["code"] == code and st["reason"] == reason
    assert st["apiVersion"] == "v1" and st["metadata"] == {}


def test_both_event_apis_share_storage(api_client, namespace) -> None:
    ev_api = client.EventsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    created = ev_api.create_namespaced_event(
        namespace,
        {
            "metadata": {"name": "shared"},
            "eventTime": datetime.datetime.now(datetime.UTC).isoformat(),
            "reportingController": "bifrost.io/controller",
            "reportingInstance": "bifrost-0",
            "action": "Reconcile",
            "reason": "Programmed",
            "type": "Normal",
            "note": "all good",
            "regarding": {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "name": "cm",
                "namespace": namespace,
            },
        },
    )
    as_core = core.read_namespaced_event("shared", namespace)
    assert as_core.message == "all good"
    assert as_core.involved_object.name == "cm"
    assert as_core.reporting_component == "bifrost.io/controller"
    assert as_core.metadata.resource_version == created.metadata.resource_version
    # kubectl describe finds events like this
    found = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name=cm,involvedObject.namespace={namespace}"
    )
    assert [e.metadata.name for e in found.items] == ["shared"]
    # and core events are visible through events.k8s.io/v1
    core.create_namespaced_event(
        namespace,
        _event(
            namespace,
            {"kind": "ConfigMap", "apiVersion": "v1", "name": "other", "namespace": namespace},
            metadata={"name": "legacy"},
        ),
    )
    legacy = ev_api.read_namespaced_event("legacy", namespace, _preload_content=False)
    raw = json.loads(legacy.data)
    assert raw["apiVersion"] == "events.k8s.io/v1"
    assert raw["note"] == "m" and raw["regarding"]["name"] == "other"
