"""What adoption records from the cluster, on FakeKube and a SQLite store (the devcluster
scenarios are in ``test_database_loss.py``): children by their child-id label, the certificate
the children reference as attached (its issued details read from its Secret, renewal from them),
other owned certificates retired, recorded certificates that are gone forgotten, a listener
nobody serves yet waiting for the newest one; and what the normal path costs (measured in
API calls)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from support.fake_kube import FakeKube

from bifrost.api.blueprint import BlueprintTLS
from bifrost.clock import ManualClock
from bifrost.engine import Runner, start_operation
from bifrost.machines.catalog import default_registry
from bifrost.machines.teardown import GATEWAY_FINALIZER, TeardownContext, teardown_spec
from bifrost.records import CertificateRecord
from bifrost.steps.adoption import Adoption, adopt, needs_adoption, template_kind
from bifrost.steps.bindings import bind_steps
from bifrost.steps.tls import load_tls
from bifrost.store import SqlStore, migrate, open_store

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
NS = "infra"
UID_LABEL = "gateway.bifrost.dev/gateway-uid"
CHILD_LABEL = "gateway.bifrost.dev/child-id"
LISTENER_LABEL = "gateway.bifrost.dev/listener"
HOST = "app.example.com"


def blueprint() -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "examples" / "in-cluster" / "10-blueprint.yaml").read_text())
    return dict(copy.deepcopy(doc))


def pem(days_old: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=days_old))
            .not_valid_after(NOW + dt.timedelta(days=47 - days_old))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(Encoding.PEM)).decode()


class Cluster:
    def __init__(self, kube: FakeKube, store: SqlStore) -> None:
        self.kube, self.store = kube, store
        gw = kube.create({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "edge", "namespace": NS, "finalizers": [GATEWAY_FINALIZER]},
            "spec": {"gatewayClassName": "c", "listeners": [
                {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": HOST}]}})
        self.gateway = gw
        self.uid = str(gw["metadata"]["uid"])
        store.upsert_gateway(uid=self.uid, namespace=NS, name="edge", now=NOW)

    def labels(self, **extra: str) -> dict[str, str]:
        return {UID_LABEL: self.uid, **extra}

    def children(self, serving: list[str]) -> None:
        self.kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "edge-settings", "namespace": NS,
            "labels": self.labels(**{CHILD_LABEL: "settings"})}, "data": {"replicas": "2"}})
        self.kube.create({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "edge-child", "namespace": NS,
                         "labels": self.labels(**{CHILD_LABEL: "child"})},
            "spec": {"gatewayClassName": "devcluster", "listeners": [
                {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": HOST,
                 "tls": {"certificateRefs": [{"name": f"{s}-tls"} for s in serving]}}]}})
        # another Gateway's object: never adopted
        self.kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "other-settings", "namespace": NS,
            "labels": {UID_LABEL: "someone-else", CHILD_LABEL: "settings"}}})

    def certificate(self, name: str, *, days_old: int) -> None:
        self.kube.create({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": name, "namespace": NS,
                         "labels": self.labels(**{LISTENER_LABEL: "https"})},
            "spec": {"secretName": f"{name}-tls", "dnsNames": [HOST],
                     "issuerRef": {"name": "devcluster-ca", "kind": "ClusterIssuer"}}})
        self.kube.patch_status("cert-manager.io/v1", "Certificate", name, NS, {
            "conditions": [{"type": "Ready", "status": "True"}]})
        self.kube.create({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                          "metadata": {"name": f"{name}-tls", "namespace": NS, "annotations": {
                              "cert-manager.io/certificate-name": name}},
                          "data": {"tls.crt": pem(days_old), "tls.key": "eA=="}})

    def adopt(self) -> Adoption:
        raw = blueprint()
        tls = load_tls(raw)
        assert isinstance(tls, BlueprintTLS)
        result = adopt(self.kube, self.store, gateway_uid=self.uid, namespace=NS,
                       gateway=self.gateway, raw_blueprint=raw, tls=tls, now=NOW,
                       renewal_time=None)
        assert isinstance(result, Adoption), result
        return result

    def needs(self) -> str | None:
        raw = blueprint()
        tls = load_tls(raw)
        assert isinstance(tls, BlueprintTLS)
        why = needs_adoption(self.kube, self.store, gateway_uid=self.uid, tls=tls,
                             raw_blueprint=raw)
        assert why is None or isinstance(why, str), why
        return why

    def records(self) -> dict[str, CertificateRecord]:
        return {r.object_name: r for r in self.store.list_certificates(gateway_uid=self.uid)}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    url = f"sqlite:///{(tmp_path / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store = open_store(url)
    try:
        yield Cluster(FakeKube(clock=ManualClock(NOW), namespaces=(NS,)), store)
    finally:
        store.close()


def test_literal_template_kinds_are_read_and_templated_ones_are_not() -> None:
    assert template_kind("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n") == ("v1", "ConfigMap")
    assert template_kind('apiVersion: "cert-manager.io/v1"\nkind: Certificate  # c\n') == (
        "cert-manager.io/v1", "Certificate")
    assert template_kind("apiVersion: v1\nkind: {{ values.kind }}\n") is None
    assert template_kind("kind: ConfigMap\n") is None


def test_a_new_gateway_costs_one_list_and_adopts_nothing(cluster: Cluster) -> None:
    cluster.kube.calls.clear()
    assert cluster.needs() is None
    assert [(c.verb, c.kind) for c in cluster.kube.calls] == [("list", "Certificate")]
    # without spec.tls the probe is the blueprint's first kind
    raw = blueprint()
    del raw["spec"]["tls"]
    cluster.kube.calls.clear()
    assert needs_adoption(cluster.kube, cluster.store, gateway_uid=cluster.uid, tls=None,
                          raw_blueprint=raw) is None
    assert [(c.verb, c.kind) for c in cluster.kube.calls] == [("list", "ConfigMap")]


def test_an_empty_store_adopts_the_children_and_the_referenced_certificate(
    cluster: Cluster,
) -> None:
    cluster.certificate("edge-https-aaaa", days_old=20)  # an owned duplicate nobody serves
    cluster.certificate("edge-https-bbbb", days_old=2)
    cluster.children(serving=["edge-https-bbbb"])
    cluster.kube.calls.clear()
    why = cluster.needs()
    assert why is not None and why.startswith("the inventory is empty")
    assert [(c.verb, c.kind) for c in cluster.kube.calls] == [("list", "Certificate")]

    cluster.kube.calls.clear()
    result = cluster.adopt()
    assert result.lists == 3  # ConfigMap, Gateway (the blueprint's kinds), Certificate
    calls = sorted({(c.verb, c.kind) for c in cluster.kube.calls})
    print(f"\nfull scan: {len(cluster.kube.calls)} calls {calls}")
    assert {c.verb for c in cluster.kube.calls} == {"list", "get"}  # adoption writes nothing
    assert sorted(result.children) == ["child", "settings"]
    assert result.attached == ["edge-https-bbbb"]
    assert result.retired == ["edge-https-aaaa"]
    inventory = {r.child_id: r for r in cluster.store.list_children(cluster.uid)}
    assert sorted(inventory) == ["child", "settings", "tls:edge-https-aaaa", "tls:edge-https-bbbb"]
    assert inventory["settings"].applied_hash is None  # apply_children writes it again
    records = cluster.records()
    b = records["edge-https-bbbb"]
    assert b.attached and b.state == "attached" and b.listener == "https"
    assert b.secret_name == "edge-https-bbbb-tls" and b.fingerprint_sha256
    assert b.not_before is not None and b.renewal_at is not None and b.renewal_at > NOW
    a = records["edge-https-aaaa"]
    assert not a.attached and a.state == "retired" and a.secret_name == "edge-https-aaaa-tls"

    # adopting again changes nothing; the normal path then costs one list of the certificate
    # kind and no other call
    assert cluster.adopt().children == []
    assert cluster.records() == records
    cluster.kube.calls.clear()
    assert cluster.needs() is None
    assert [(c.verb, c.kind) for c in cluster.kube.calls] == [("list", "Certificate")]


def test_a_restored_store_forgets_a_certificate_that_is_gone_and_attaches_the_live_one(
    cluster: Cluster,
) -> None:
    cluster.certificate("edge-https-bbbb", days_old=2)
    cluster.children(serving=["edge-https-bbbb"])
    cluster.adopt()
    # the backup said: A attached (rotated away since, its object and Secret deleted)
    cluster.store.delete_certificate(cluster.uid, "edge-https-bbbb")
    cluster.store.upsert_certificate(CertificateRecord(
        gateway_uid=cluster.uid, listener="https", object_name="edge-https-old",
        secret_name="edge-https-old-tls", serial="1", fingerprint_sha256="00",
        dns_names=(HOST,), not_before=NOW - dt.timedelta(days=40),
        not_after=NOW + dt.timedelta(days=7), renewal_at=NOW - dt.timedelta(days=8),
        attached=True, state="attached", updated_at=NOW))
    why = cluster.needs()
    assert why is not None and "do not match" in why
    result = cluster.adopt()
    assert result.forgotten == ["edge-https-old"] and result.attached == ["edge-https-bbbb"]
    (record,) = cluster.store.list_certificates(gateway_uid=cluster.uid)
    assert record.object_name == "edge-https-bbbb" and record.attached
    assert record.renewal_at is not None and record.renewal_at > NOW  # scheduled from B


def test_a_store_lost_mid_rotation_keeps_the_newest_served_certificate_attached(
    cluster: Cluster,
) -> None:
    # the children reference both (the rotation had attached the new one beside the old)
    cluster.certificate("edge-https-aaaa", days_old=20)
    cluster.certificate("edge-https-bbbb", days_old=1)
    cluster.children(serving=["edge-https-aaaa", "edge-https-bbbb"])
    result = cluster.adopt()
    assert result.attached == ["edge-https-bbbb"] and result.retired == ["edge-https-aaaa"]
    records = cluster.records()
    assert records["edge-https-bbbb"].attached
    assert records["edge-https-aaaa"].state == "retired"  # prune deletes it once unreferenced


def test_a_listener_nobody_serves_yet_waits_for_the_newest_certificate_instead_of_a_new_one(
    cluster: Cluster,
) -> None:
    cluster.certificate("edge-https-aaaa", days_old=1)
    cluster.children(serving=[])
    result = cluster.adopt()
    assert result.pending == ["edge-https-aaaa"] and result.attached == []
    assert result.retired == []
    (record,) = cluster.store.list_certificates(gateway_uid=cluster.uid)
    assert not record.attached and record.state == "issued"  # ensure_certificates attaches it


def test_a_teardown_on_an_empty_store_deletes_everything_the_gateway_owns(
    cluster: Cluster,
) -> None:
    cluster.certificate("edge-https-aaaa", days_old=20)
    cluster.certificate("edge-https-bbbb", days_old=2)
    cluster.children(serving=["edge-https-bbbb"])
    kube, store = cluster.kube, cluster.store
    kube.create(blueprint())
    kube.delete("gateway.networking.k8s.io/v1", "Gateway", "edge", NS)  # held by the finalizer
    clock = ManualClock(NOW)
    start_operation(store, teardown_spec(), gateway_uid=cluster.uid, namespace=NS, name="edge",
                    context=TeardownContext(namespace=NS, gateway="edge",
                                            gateway_uid=cluster.uid, blueprint="in-cluster"),
                    clock=clock, actor="test")
    runner = Runner(store, default_registry(), bind_steps(kube, store), clock=clock,
                    owner="test")
    for _ in range(20):
        runner.run_until_idle()
        ops = store.list_operations(gateway_uid=cluster.uid)
        if ops[0].status.terminal:
            break
        clock.advance(dt.timedelta(seconds=1))
    assert ops[0].status.value == "succeeded", ops[0].last_error
    for api_version, kind in (("v1", "ConfigMap"), ("cert-manager.io/v1", "Certificate"),
                              ("gateway.networking.k8s.io/v1", "Gateway")):
        items, _ = kube.list(api_version, kind, NS, label_selector=f"{UID_LABEL}={cluster.uid}")
        assert items == [], kind
    secrets, _ = kube.list("v1", "Secret", NS)
    assert secrets == []  # both certificates' Secrets
    assert kube.get("gateway.networking.k8s.io/v1", "Gateway", "edge", NS) is None
    assert kube.get("v1", "ConfigMap", "other-settings", NS) is not None  # not ours
