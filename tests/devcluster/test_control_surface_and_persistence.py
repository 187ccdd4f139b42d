"""The devcluster's own surface: the ``/devcluster/`` HTTP control endpoints (request counts,
fault rules, compaction, dropping watches), fault injection on the request path, persistence to a
state file across restarts, ``python -m devcluster`` and the kubeconfig it writes."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from dc_support import body_of
from kubernetes import client, config
from support.waiting import wait_for

from devcluster import DevCluster
from devcluster.faults import FaultInjector


def _call(cluster: DevCluster, method: str, path: str, body: object | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        cluster.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


@pytest.fixture
def private_cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    with DevCluster(faults=FaultInjector(seed=1), bookmark_interval=0.2) as c:
        yield c


def _configuration(cluster: DevCluster) -> client.Configuration:
    cfg = client.Configuration()
    cfg.host = cluster.url
    cfg.api_key = {"authorization": f"Bearer {cluster.admin_token}"}
    cfg.retries = False
    return cfg


def _open(cluster: DevCluster, url: str, timeout: float):  # type: ignore[no-untyped-def]
    """``urlopen`` with the admin's bearer token (the API paths are authorized)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {cluster.admin_token}"})
    return urllib.request.urlopen(req, timeout=timeout)


def test_request_counts(private_cluster: DevCluster) -> None:
    core = client.CoreV1Api(client.ApiClient(_configuration(private_cluster)))
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.read_namespaced_config_map("a", "default")
    core.read_namespaced_config_map("a", "default")
    counts = _call(private_cluster, "GET", "/devcluster/requests")
    assert counts["byVerbResource"]["create configmaps"] == 1
    assert counts["byVerbResource"]["get configmaps"] == 2
    assert private_cluster.request_log.count(verbs=["get"], resources=["configmaps"]) == 2
    assert private_cluster.request_log.count(writes_only=True) == 1


def test_fault_rules_over_http(private_cluster: DevCluster) -> None:
    core = client.CoreV1Api(client.ApiClient(_configuration(private_cluster)))
    rule = _call(
        private_cluster,
        "POST",
        "/devcluster/faults",
        {
            "verbs": ["create"],
            "resources": ["configmaps"],
            "errorRate": 1.0,
            "status": 429,
            "retryAfter": 2,
            "times": 1,
        },
    )
    assert rule["id"] >= 1
    with pytest.raises(client.ApiException) as ei:
        core.create_namespaced_config_map("default", {"metadata": {"name": "f"}})
    assert ei.value.status == 429
    assert ei.value.headers["Retry-After"] == "2"
    assert body_of(ei.value)["reason"] == "TooManyRequests"
    core.create_namespaced_config_map("default", {"metadata": {"name": "f"}})  # times=1 spent
    _call(
        private_cluster,
        "POST",
        "/devcluster/faults",
        {"verbs": ["get"], "errorRate": 1.0, "status": 503},
    )
    with pytest.raises(client.ApiException) as ei:
        core.read_namespaced_config_map("f", "default")
    assert ei.value.status == 503
    _call(private_cluster, "DELETE", "/devcluster/faults")
    assert core.read_namespaced_config_map("f", "default").metadata.name == "f"
    with pytest.raises(urllib.error.HTTPError) as hi:
        _call(private_cluster, "POST", "/devcluster/faults", {"bogus": 1})
    assert hi.value.code == 400


def test_watch_faults_expire_and_drop(private_cluster: DevCluster) -> None:
    private_cluster.faults.add_rule(verbs=["watch"], expire_watch=True, times=1)
    with _open(
        private_cluster,
        private_cluster.url + "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1",
        timeout=5,
    ) as r:
        events = [json.loads(x) for x in r.read().splitlines() if x.strip()]
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
    private_cluster.faults.add_rule(verbs=["watch"], drop_watch_after=1, times=1)
    with _open(
        private_cluster, private_cluster.url + "/api/v1/namespaces?watch=true", timeout=5
    ) as r:
        events = [json.loads(x) for x in r.read().splitlines() if x.strip()]
    assert len(events) == 1  # four namespaces exist, the stream was cut after one


def test_compact_and_drop_watches_over_http(private_cluster: DevCluster) -> None:
    rv = private_cluster.store.resource_version
    core = client.CoreV1Api(client.ApiClient(_configuration(private_cluster)))
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    _call(private_cluster, "POST", "/devcluster/compact")
    with _open(
        private_cluster,
        private_cluster.url + "/api/v1/namespaces/default/configmaps"
        f"?watch=true&resourceVersion={rv}",
        timeout=5,
    ) as r:
        ev = json.loads(r.readline())
    assert ev["object"]["code"] == 410
    resp = _open(
        private_cluster,
        private_cluster.url + "/api/v1/namespaces/default/configmaps?watch=true",
        timeout=5,
    )
    wait_for(lambda: private_cluster.store._watchers)
    _call(private_cluster, "POST", "/devcluster/drop-watches")
    rest = [json.loads(x) for x in resp.read().splitlines() if x.strip()]  # the stream ends
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in rest] == [("ADDED", "c")]
    resp.close()


def test_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with DevCluster(state_file=state) as c:
        c.register_permissive(group="example.com", version="v1", kind="Widget", plural="widgets")
        co = client.CustomObjectsApi(client.ApiClient(_configuration(c)))
        co.create_namespaced_custom_object(
            "example.com",
            "v1",
            "default",
            "widgets",
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"size": 3},
            },
        )
        rv = c.store.resource_version
    with DevCluster(state_file=state) as c2:
        co = client.CustomObjectsApi(client.ApiClient(_configuration(c2)))
        w = co.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")
        assert w["spec"] == {"size": 3}
        assert c2.store.resource_version == rv
        created = client.CoreV1Api(
            client.ApiClient(_configuration(c2))
        ).create_namespaced_config_map("default", {"metadata": {"name": "after"}})
        assert int(created.metadata.resource_version) > rv


def test_module_entry_point_writes_a_usable_kubeconfig(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    crds = Path(__file__).resolve().parents[3] / "shared" / "gateway-api" / "v1.6.1"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devcluster",
            "--port",
            "0",
            "--crds",
            str(crds),
            "--kubeconfig-out",
            str(kc),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        doc = yaml.safe_load(kc.read_text())
        assert doc["current-context"] == "devcluster"
        api = config.new_client_from_config(str(kc))
        groups = client.ApisApi(api).get_api_versions().groups
        assert "gateway.networking.k8s.io" in {g.name for g in groups}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_drop_watch_after_zero_closes_a_quiet_stream_at_once(private_cluster: DevCluster) -> None:
    private_cluster.faults.add_rule(verbs=["watch"], drop_watch_after=0, times=1)
    with _open(
        private_cluster,
        private_cluster.url + "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=1",
        timeout=2,
    ) as r:
        assert r.read() == b""


def test_stop_hangs_up_on_idle_keep_alive_connections(tmp_path: Path) -> None:
    import http.client
    import threading

    c = DevCluster()
    c.start()
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=5)
    conn.request("GET", "/version")
    conn.getresponse().read()
    before = threading.active_count()
    c.stop()
    wait_for(lambda: threading.active_count() < before)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/version")
        conn.getresponse().read()


def test_bounded_history_expires_old_resource_versions() -> None:
    with DevCluster(history_size=5) as c:
        core = client.CoreV1Api(client.ApiClient(_configuration(c)))
        first = core.create_namespaced_config_map("default", {"metadata": {"name": "h0"}})
        for i in range(1, 8):
            core.create_namespaced_config_map("default", {"metadata": {"name": f"h{i}"}})
        old = first.metadata.resource_version
        with _open(
            c,
            f"{c.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}",
            timeout=5,
        ) as r:
            ev = json.loads(r.readline())
        assert ev["type"] == "ERROR" and ev["object"]["code"] == 410
        recent = str(c.store.resource_version - 2)
        with _open(
            c,
            f"{c.url}/api/v1/namespaces/default/configmaps"
            f"?watch=true&resourceVersion={recent}&timeoutSeconds=1",
            timeout=5,
        ) as r:
            names = [json.loads(x)["object"]["metadata"]["name"] for x in r.read().splitlines()]
        assert names == ["h6", "h7"]
