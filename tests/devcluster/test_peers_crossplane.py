"""The Crossplane-like peer over the API: managed resources become Ready/Synced with the observed
state a provider reports, references resolve (to the load-balancer peer's LB too) or hold the
object at Synced=False until they can, and kinds the cluster does not serve are skipped."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers_support import condition, crd_files
from support.waiting import wait_for

from bifrost.cli.dev import register_child_kinds
from bifrost.kube.client import KubeClient
from devcluster.client import Client
from devcluster.peers import CrossplaneOptions, Peers
from devcluster.peers.crossplane import DEFAULT_MANAGED_KINDS, FINALIZER, Crossplane
from devcluster.server import DevCluster

EC2 = "ec2.aws.upbound.io/v1beta1"
ELBV2 = "elbv2.aws.upbound.io/v1beta1"
ACM = "acm.aws.upbound.io/v1beta1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevCluster]:
    dc = DevCluster(crd_paths=crd_files())
    dc.start()
    register_child_kinds(dc)
    try:
        yield dc
    finally:
        dc.stop()
    assert dc.last_error is None, f"devcluster internal error: {dc.last_error!r}"


@pytest.fixture(scope="module")
def kubeconfig(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cluster.write_kubeconfig(tmp_path_factory.mktemp("xp") / "kubeconfig")


@pytest.fixture(scope="module")
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def peers(kubeconfig: Path) -> Iterator[Peers]:
    p = Peers(
        kubeconfig, dataplane=False, crossplane_options=CrossplaneOptions(retry_interval=0.1)
    ).start()
    yield p
    p.stop()


def status_of(obj: dict[str, Any] | None, ctype: str) -> str | None:
    cond = condition(obj, ctype)
    return str(cond["status"]) if cond else None


def managed(api_version: str, kind: str, name: str, **for_provider: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"forProvider": {"region": "eu-west-1", **for_provider}},
    }


def ready(kube: KubeClient, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
    obj = kube.get(api_version, kind, name)
    r, s = condition(obj, "Ready"), condition(obj, "Synced")
    if r and s and r["status"] == s["status"] == "True":
        return obj
    return None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_security_group_and_its_rule_become_ready_with_resolved_ids(
    kube: KubeClient, peers: Peers
) -> None:
    sg_name, rule_name = unique("sg"), unique("rule")
    kube.apply(managed(EC2, "SecurityGroup", sg_name, vpcId="vpc-1", description="edge"))
    kube.apply(
        managed(
            EC2, "SecurityGroupRule", rule_name, type="ingress", protocol="tcp", fromPort=443,
            toPort=443, cidrBlocks=["10.0.0.0/8"], securityGroupIdRef={"name": sg_name},
        )
    )
    sg = wait_for(lambda: ready(kube, EC2, "SecurityGroup", sg_name), what="SG ready")
    rule = wait_for(lambda: ready(kube, EC2, "SecurityGroupRule", rule_name), what="rule ready")

    at = sg["status"]["atProvider"]
    assert at["id"].startswith("sg-") and at["arn"].endswith(f"security-group/{at['id']}")
    assert at["arn"].startswith("arn:aws:ec2:eu-west-1:000000000000:")
    assert at["vpcId"] == "vpc-1" and at["description"] == "edge"  # observed forProvider
    ready_cond, synced_cond = condition(sg, "Ready") or {}, condition(sg, "Synced") or {}
    assert ready_cond.get("reason") == "Available"
    assert synced_cond.get("reason") == "ReconcileSuccess"
    assert ready_cond.get("observedGeneration") == sg["metadata"]["generation"]

    rat = rule["status"]["atProvider"]
    assert rat["securityGroupId"] == at["id"]  # the reference, resolved
    assert "securityGroupIdRef" not in rat
    assert rat["cidrBlocks"] == ["10.0.0.0/8"] and rat["id"].startswith("sgrule-")


def test_an_unresolvable_reference_holds_the_object_until_the_target_appears(
    kube: KubeClient, peers: Peers
) -> None:
    sg_name, rule_name = unique("late-sg"), unique("early-rule")
    kube.apply(
        managed(EC2, "SecurityGroupRule", rule_name, type="ingress", protocol="tcp",
                fromPort=443, toPort=443, cidrBlocks=["0.0.0.0/0"],
                securityGroupIdRef={"name": sg_name})
    )

    def stuck() -> dict[str, Any] | None:
        synced = condition(kube.get(EC2, "SecurityGroupRule", rule_name), "Synced")
        return synced if synced and synced["status"] == "False" else None

    synced = wait_for(stuck, what="rule Synced=False")
    assert synced["reason"] == "ReconcileError"
    assert f"SecurityGroup {sg_name} not found" in synced["message"]
    rule = kube.get(EC2, "SecurityGroupRule", rule_name)
    assert status_of(rule, "Ready") == "False"

    kube.apply(managed(EC2, "SecurityGroup", sg_name))
    rule = wait_for(lambda: ready(kube, EC2, "SecurityGroupRule", rule_name), what="rule ready")
    sg = kube.get(EC2, "SecurityGroup", sg_name)
    assert sg is not None
    assert rule["status"]["atProvider"]["securityGroupId"] == sg["status"]["atProvider"]["id"]


def test_a_listener_resolves_the_load_balancer_peer_lb_and_an_issued_acm_certificate(
    kube: KubeClient, peers: Peers
) -> None:
    lb_name, cert_name, listener_name = unique("lb"), unique("cert"), unique("listener")
    kube.apply(managed(ELBV2, "LB", lb_name, internal=True))
    kube.apply(
        managed(ACM, "Certificate", cert_name, domainName="shop.example.com",
                subjectAlternativeNames=["www.example.com"], validationMethod="DNS")
    )
    kube.apply(
        managed(ELBV2, "LBListener", listener_name, port=443, protocol="HTTPS",
                loadBalancerArnRef={"name": lb_name}, certificateArnRef={"name": cert_name})
    )
    listener = wait_for(lambda: ready(kube, ELBV2, "LBListener", listener_name), what="listener")
    lb = kube.get(ELBV2, "LB", lb_name)
    cert = kube.get(ACM, "Certificate", cert_name)
    assert lb is not None and cert is not None

    cat = cert["status"]["atProvider"]
    assert cat["status"] == "ISSUED" and cat["arn"].startswith("arn:aws:acm:eu-west-1:")
    assert [o["domainName"] for o in cat["domainValidationOptions"]] == [
        "shop.example.com", "www.example.com"
    ]
    lat = listener["status"]["atProvider"]
    assert lat["loadBalancerArn"] == lb["status"]["atProvider"]["arn"]
    assert lat["certificateArn"] == cat["arn"]
    lb_path = lb["status"]["atProvider"]["arn"].split(":loadbalancer/", 1)[1]
    assert lat["arn"].startswith(
        f"arn:aws:elasticloadbalancing:eu-west-1:000000000000:listener/{lb_path}/"
    )
    # The LB itself is the load-balancer peer's: this peer never writes its status.
    managers = {m["manager"] for m in lb["metadata"].get("managedFields") or []
                if m.get("subresource") == "status"}
    assert managers == {"bifrost-devcluster-loadbalancer"}


def status_writes(cluster: DevCluster, resource: str, name: str) -> int:
    return sum(
        1
        for req, code in cluster.request_log.recent()
        if req.verb == "patch" and req.subresource == "status" and req.resource == resource
        and req.name == name and code < 300
    )


def test_status_is_written_once_and_not_again_when_nothing_changed(
    cluster: DevCluster, kube: KubeClient, peers: Peers
) -> None:
    name, marker = unique("quiet-sg"), unique("marker-sg")
    kube.apply(managed(EC2, "SecurityGroup", name))
    first = wait_for(lambda: ready(kube, EC2, "SecurityGroup", name), what="SG ready")
    assert status_writes(cluster, "securitygroups", name) == 1
    # A label change is an event, but the status it would write is the same: no write. The
    # marker comes after it on the same watch, so once the marker is ready the label change
    # has been handled.
    kube.patch(EC2, "SecurityGroup", name, None, {"metadata": {"labels": {"touched": "yes"}}})
    kube.apply(managed(EC2, "SecurityGroup", marker))
    wait_for(lambda: ready(kube, EC2, "SecurityGroup", marker), what="marker ready")
    after = kube.get(EC2, "SecurityGroup", name)
    assert after is not None and after["status"] == first["status"]
    assert status_writes(cluster, "securitygroups", name) == 1


def test_ready_delay_shows_creating_first(tmp_path: Any) -> None:
    dc = DevCluster(crd_paths=[])
    dc.start()
    register_child_kinds(dc)
    try:
        path = dc.write_kubeconfig(tmp_path / "kubeconfig")
        with KubeClient.from_kubeconfig(path) as client, Client.from_kubeconfig(path) as own:
            xp = Crossplane(own, options=CrossplaneOptions(ready_delay=0.5)).start()
            try:
                created = client.apply(managed(EC2, "SecurityGroup", "slow"))
                obj = wait_for(lambda: ready(client, EC2, "SecurityGroup", "slow"),
                               what="ready after the delay")
                assert obj["status"]["atProvider"]["id"].startswith("sg-")
                # Creating came first, for the delay: read from the watch history (polling for
                # it could miss a state that lasts 0.5 s on a loaded machine)
                assert _ready_states(own, created, until=obj) == [
                    ("False", "Creating"), ("True", "Available")]
            finally:
                xp.stop()
    finally:
        dc.stop()


def _ready_states(own: Client, created: dict[str, Any],
                  until: dict[str, Any]) -> list[tuple[str, str]]:
    """The (status, reason) of the Ready condition each time it changed, from the version
    ``created`` to the version ``until``."""
    meta = created["metadata"]
    stream = own.watch(EC2, "SecurityGroup", resource_version=meta["resourceVersion"],
                       timeout_seconds=5)
    states: list[tuple[str, str]] = []
    try:
        for event in stream:
            got = event.get("object") or {}
            if event.get("type") == "BOOKMARK" or got["metadata"].get("uid") != meta["uid"]:
                continue
            cond = condition(got, "Ready")
            state = (str(cond["status"]), str(cond["reason"])) if cond else None
            if state is not None and (not states or states[-1] != state):
                states.append(state)
            if got["metadata"]["resourceVersion"] == until["metadata"]["resourceVersion"]:
                break
    finally:
        stream.close()
    return states


def _changes_until_deleted(own: Client, obj: dict[str, Any]) -> list[tuple[str, bool, list[str]]]:
    """(type, marked for deletion, finalizers) of each change of ``obj`` after the version read,
    up to its deletion."""
    meta = obj["metadata"]
    stream = own.watch(EC2, "SecurityGroup", resource_version=meta["resourceVersion"],
                       timeout_seconds=5)
    changes: list[tuple[str, bool, list[str]]] = []
    try:
        for event in stream:
            got = event.get("object") or {}
            if event.get("type") == "BOOKMARK" or got["metadata"].get("uid") != meta["uid"]:
                continue
            changes.append((str(event["type"]), bool(got["metadata"].get("deletionTimestamp")),
                            list(got["metadata"].get("finalizers") or [])))
            if event["type"] == "DELETED":
                break
    finally:
        stream.close()
    return changes


def test_the_finalizer_holds_a_deleted_object_until_the_provider_releases_it(
    tmp_path: Any,
) -> None:
    dc = DevCluster(crd_paths=[])
    dc.start()
    register_child_kinds(dc)
    try:
        path = dc.write_kubeconfig(tmp_path / "kubeconfig")
        with KubeClient.from_kubeconfig(path) as client, Client.from_kubeconfig(path) as own:
            opts = CrossplaneOptions(deletion_delay=0.4)
            xp = Crossplane(own, options=opts).start()
            try:
                client.apply(managed(EC2, "SecurityGroup", "held"))
                obj = wait_for(lambda: ready(client, EC2, "SecurityGroup", "held"), what="ready")
                assert obj["metadata"]["finalizers"] == [FINALIZER]
                # (timed from before the delete: the provider's delay starts when it sees the
                # deletion mark, after the delete)
                started = time.monotonic()
                client.delete(EC2, "SecurityGroup", "held")
                wait_for(lambda: client.get(EC2, "SecurityGroup", "held") is None, what="gone")
                assert time.monotonic() - started >= opts.deletion_delay
                # it lingered marked, its finalizer held, until the provider released it: read
                # from the watch history (a get after the delete may come after the release)
                assert _changes_until_deleted(own, obj) == [
                    ("MODIFIED", True, [FINALIZER]), ("DELETED", True, [])]
            finally:
                xp.stop()
    finally:
        dc.stop()


def test_kinds_the_cluster_does_not_serve_are_skipped(tmp_path: Any) -> None:
    bare = DevCluster(crd_paths=[])
    bare.start()
    try:
        path = bare.write_kubeconfig(tmp_path / "kubeconfig")
        with Client.from_kubeconfig(path) as own:
            xp = Crossplane(own).start()
            try:
                assert [k.kind for k in xp.skipped] == [k.kind for k in DEFAULT_MANAGED_KINDS]
            finally:
                xp.stop()
    finally:
        bare.stop()
