"""Gateway API status written by the in-process controller (the real provision machine, a
one-ConfigMap blueprint whose ``addresses`` expression reads the live ConfigMap): listener
certificate refs (missing Secret, cross-namespace without/with a ReferenceGrant), unsupported
protocols, observedGeneration after a spec change, HTTPRoute ``status.parents`` (sectionName
matching no listener, allowedRoutes Same, attachedRoutes, a removed parentRef's stale entry) and
GatewayClass ``supportedFeatures``. Every wait polls with a deadline."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from controller_kit import BIFROST_API, GATEWAY_API, SYSTEM_NAMESPACE
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.builders import gateway_class
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.manager import Controller, ControllerOptions
from bifrost.controller.status_writer import GatewayApiStatusWriter
from bifrost.kube.client import KubeClient
from bifrost.store import SqlStore, migrate, open_store
from devcluster.server import DevCluster

CONTROLLER = "gateway.bifrost.dev/bifrost"
ADDRESS = "192.0.2.10"
TIMEOUT = 20.0
OPERATION = "gateway.bifrost.dev/Operation"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def running(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    url = f"sqlite:///{(tmp_path_factory.mktemp('status-db') / 'bifrost.db').as_posix()}"
    migrate.upgrade(url)
    store: SqlStore = open_store(url)
    controller = Controller(
        kube,
        store,
        options=ControllerOptions(
            identity=f"status-{uuid.uuid4().hex[:6]}",
            lease_name=f"status-{uuid.uuid4().hex[:6]}",
            lease_namespace=SYSTEM_NAMESPACE,
            controller_namespace=SYSTEM_NAMESPACE,
            lease_duration=3.0,
            renew_deadline=2.0,
            retry_period=0.3,
            workers=2,
            runner_idle=timedelta(seconds=0.05),
        ),
    )
    assert isinstance(controller.observer.status_writer, GatewayApiStatusWriter)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: controller.is_leader and controller.ready(),
            timeout=15,
            what="in-process controller leading and synced",
        )
        yield controller
    finally:
        stop.set()
        thread.join(15)
        store.close()
        assert not thread.is_alive()


@pytest.fixture
def gateway_class_name(kube: KubeClient, running: Controller) -> str:
    """A bifrost GatewayClass whose blueprint renders one ConfigMap holding the address."""
    suffix = uuid.uuid4().hex[:6]
    cls, bp = f"cls-{suffix}", f"bp-{suffix}"
    kube.create(
        {
            "apiVersion": BIFROST_API,
            "kind": "GatewayClassBlueprint",
            "metadata": {"name": bp},
            "spec": {
                "children": [
                    {
                        "id": "config",
                        "template": "apiVersion: v1\nkind: ConfigMap\n"
                        "metadata: {name: '{{ gateway.metadata.name }}-config'}\n"
                        f"data: {{address: '{ADDRESS}'}}\n",
                    }
                ],
                "addresses": '[{"type": "IPAddress", "value": children.config.data.address}]',
            },
        }
    )
    kube.create(gateway_class(cls, bp))
    return cls


# ---------------------------------------------------------------- helpers


def _cond(conditions: Any, type_: str) -> dict[str, Any] | None:
    for cond in conditions or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def _state(cond: dict[str, Any] | None) -> tuple[str, str] | None:
    return (str(cond["status"]), str(cond["reason"])) if cond else None


def _gw(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    obj = kube.get(GATEWAY_API, "Gateway", name, ns)
    assert obj is not None
    return obj


def _listener(gw: dict[str, Any], name: str) -> dict[str, Any] | None:
    for item in (gw.get("status") or {}).get("listeners") or []:
        if item.get("name") == name:
            return dict(item)
    return None


def _listener_cond(kube: KubeClient, ns: str, gw: str, listener: str, type_: str) -> Any:
    entry = _listener(_gw(kube, ns, gw), listener)
    return _state(_cond((entry or {}).get("conditions"), type_))


def _gw_cond(kube: KubeClient, ns: str, name: str, type_: str) -> Any:
    return _state(_cond((_gw(kube, ns, name).get("status") or {}).get("conditions"), type_))


def _route_parents(kube: KubeClient, ns: str, name: str) -> list[dict[str, Any]]:
    route = kube.get(GATEWAY_API, "HTTPRoute", name, ns)
    assert route is not None
    return [
        p
        for p in (route.get("status") or {}).get("parents") or []
        if p.get("controllerName") == CONTROLLER
    ]


def _route_accepted(kube: KubeClient, ns: str, name: str) -> list[tuple[str, str] | None]:
    return [_state(_cond(p.get("conditions"), "Accepted")) for p in _route_parents(kube, ns, name)]


def _tls_secret(namespace: str, name: str) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    crt = cert.public_bytes(serialization.Encoding.PEM)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {
            "tls.crt": base64.b64encode(crt).decode(),
            "tls.key": base64.b64encode(pem).decode(),
        },
    }


def _new_namespace(kube: KubeClient, labels: dict[str, str] | None = None) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}},
        }
    )
    return name


def _route(ns: str, name: str, parent_refs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "parentRefs": parent_refs,
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}],
        },
    }


# ---------------------------------------------------------------- tests


def test_gatewayclass_accepted_with_supported_features(
    kube: KubeClient, gateway_class_name: str
) -> None:
    def status() -> Any:
        obj = kube.get(GATEWAY_API, "GatewayClass", gateway_class_name, None)
        st = (obj or {}).get("status") or {}
        return (
            st if _state(_cond(st.get("conditions"), "Accepted")) == ("True", "Accepted") else None
        )

    st = wait_for(status, timeout=TIMEOUT, what="GatewayClass Accepted")
    assert [f["name"] for f in st["supportedFeatures"]] == [
        "Gateway",
        "HTTPRoute",
        "ReferenceGrant",
    ]


def test_listener_refs_protocols_and_observed_generation(
    kube: KubeClient, namespace: str, gateway_class_name: str
) -> None:
    other = _new_namespace(kube)
    kube.create(_tls_secret(other, "shared-tls"))
    listeners: list[dict[str, Any]] = [
        {"name": "http", "protocol": "HTTP", "port": 80},
        {
            "name": "missing",
            "protocol": "HTTPS",
            "port": 443,
            "hostname": "a.example",
            "tls": {"certificateRefs": [{"name": "nope-tls"}]},
        },
        {
            "name": "xns",
            "protocol": "HTTPS",
            "port": 443,
            "hostname": "b.example",
            "tls": {"certificateRefs": [{"name": "shared-tls", "namespace": other}]},
        },
        {"name": "tcp", "protocol": "TCP", "port": 9000},
    ]
    kube.create(
        {
            "apiVersion": GATEWAY_API,
            "kind": "Gateway",
            "metadata": {"name": "edge", "namespace": namespace},
            "spec": {"gatewayClassName": gateway_class_name, "listeners": listeners},
        }
    )

    def listener(name: str, type_: str) -> Any:
        return _listener_cond(kube, namespace, "edge", name, type_)

    wait_for(
        lambda: listener("missing", "ResolvedRefs") == ("False", "InvalidCertificateRef"),
        timeout=TIMEOUT,
        what="missing Secret → InvalidCertificateRef",
    )
    assert listener("xns", "ResolvedRefs") == ("False", "RefNotPermitted")
    assert listener("tcp", "Accepted") == ("False", "UnsupportedProtocol")
    assert listener("http", "Accepted") == ("True", "Accepted")
    assert listener("http", "ResolvedRefs") == ("True", "ResolvedRefs")
    # partial acceptance: the HTTP listener is served, the Gateway says which are not valid
    assert _gw_cond(kube, namespace, "edge", "Accepted") == ("True", "ListenersNotValid")
    entry = _listener(_gw(kube, namespace, "edge"), "http")
    assert entry is not None
    assert entry["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]

    # A ReferenceGrant in the Secret's namespace resolves the cross-namespace ref (watch-driven).
    kube.create(
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": {"name": "allow-gateways", "namespace": other},
            "spec": {
                "from": [
                    {
                        "group": "gateway.networking.k8s.io",
                        "kind": "Gateway",
                        "namespace": namespace,
                    }
                ],
                "to": [{"group": "", "kind": "Secret"}],
            },
        }
    )
    wait_for(
        lambda: listener("xns", "ResolvedRefs") == ("True", "ResolvedRefs"),
        timeout=TIMEOUT,
        what="ReferenceGrant resolves the cross-namespace Secret",
    )
    assert listener("xns", "Programmed") is not None

    # The missing Secret appears: resolved too.
    kube.create(_tls_secret(namespace, "nope-tls"))
    wait_for(
        lambda: listener("missing", "ResolvedRefs") == ("True", "ResolvedRefs"),
        timeout=TIMEOUT,
        what="created Secret resolves the listener",
    )

    # Spec change (drop the TCP listener): observedGeneration follows, the Gateway is accepted
    # and programmed (the address comes from the blueprint's expression over the live child).
    edit(kube, GATEWAY_API, "Gateway", "edge", namespace,
         lambda gw: gw["spec"].update(listeners=listeners[:3]))
    generation = _gw(kube, namespace, "edge")["metadata"]["generation"]
    assert generation >= 2

    def converged() -> bool:
        obj = _gw(kube, namespace, "edge")
        st = obj.get("status") or {}
        conds = [c for c in st.get("conditions") or [] if c["type"] in ("Accepted", "Programmed")]
        listener_conds = [c for x in st.get("listeners") or [] for c in x.get("conditions") or []]
        return (
            len(conds) == 2
            and all(c.get("observedGeneration") == generation for c in conds + listener_conds)
            and _state(_cond(st.get("conditions"), "Accepted")) == ("True", "Accepted")
            and _state(_cond(st.get("conditions"), "Programmed")) == ("True", "Programmed")
            and [x["name"] for x in st.get("listeners") or []] == ["http", "missing", "xns"]
        )

    wait_for(converged, timeout=TIMEOUT, what="observedGeneration and Programmed after the change")
    assert _gw(kube, namespace, "edge")["status"]["addresses"] == [
        {"type": "IPAddress", "value": ADDRESS}
    ]


def test_route_parents_attachment_and_stale_entries(
    cluster: DevCluster,
    kube: KubeClient,
    namespace: str,
    gateway_class_name: str,
    running: Controller,
) -> None:
    kube.create(
        {
            "apiVersion": GATEWAY_API,
            "kind": "Gateway",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "gatewayClassName": gateway_class_name,
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],  # from: Same
            },
        }
    )
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "app", "namespace": namespace},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    other = _new_namespace(kube)
    kube.create(_route(namespace, "good", [{"name": "web"}]))
    kube.create(_route(namespace, "wrong-section", [{"name": "web", "sectionName": "nope"}]))
    kube.create(_route(other, "foreign", [{"name": "web", "namespace": namespace}]))

    # Accepted and ResolvedRefs together: the Service and the route reach the controller's
    # cache on two watch streams, so the route may first be judged without its backend
    # (Accepted, BackendNotFound) and again once the Service arrives.
    def good_parent() -> dict[str, Any] | None:
        parents = _route_parents(kube, namespace, "good")
        return parents[0] if [
            (_state(_cond(p.get("conditions"), "Accepted")),
             _state(_cond(p.get("conditions"), "ResolvedRefs"))) for p in parents
        ] == [(("True", "Accepted"), ("True", "ResolvedRefs"))] else None

    good = wait_for(good_parent, timeout=TIMEOUT, what="route accepted, its backend resolved")
    assert good is not None
    assert good["parentRef"]["name"] == "web"
    assert all(c.get("observedGeneration") == 1 for c in good["conditions"])
    wait_for(
        lambda: (
            _route_accepted(kube, namespace, "wrong-section") == [("False", "NoMatchingParent")]
        ),
        timeout=TIMEOUT,
        what="sectionName matching no listener → NoMatchingParent",
    )
    wait_for(
        lambda: _route_accepted(kube, other, "foreign") == [("False", "NotAllowedByListeners")],
        timeout=TIMEOUT,
        what="allowedRoutes Same rejects another namespace's route",
    )
    # The foreign route's backend Service does not exist in its namespace.
    foreign = _route_parents(kube, other, "foreign")[0]
    assert _state(_cond(foreign["conditions"], "ResolvedRefs")) == ("False", "BackendNotFound")

    def attached() -> Any:
        entry = _listener(_gw(kube, namespace, "web"), "http")
        return entry.get("attachedRoutes") if entry else None

    wait_for(lambda: attached() == 1, timeout=TIMEOUT, what="attachedRoutes == 1")

    # A second accepted route raises the count; removing its parentRef drops its entry and
    # the count again.
    kube.create(_route(namespace, "second", [{"name": "web", "sectionName": "http"}]))
    wait_for(lambda: attached() == 2, timeout=TIMEOUT, what="attachedRoutes == 2")
    wait_for(
        lambda: _route_accepted(kube, namespace, "second") == [("True", "Accepted")],
        timeout=TIMEOUT,
        what="second route accepted",
    )
    edit(kube, GATEWAY_API, "HTTPRoute", "second", namespace,  # to a Gateway not ours
         lambda route: route["spec"].update(parentRefs=[{"name": "elsewhere"}]))
    wait_for(
        lambda: _route_parents(kube, namespace, "second") == [],
        timeout=TIMEOUT,
        what="stale parents entry removed",
    )
    wait_for(lambda: attached() == 1, timeout=TIMEOUT, what="attachedRoutes back to 1")

    # Steady state: once Programmed, a full resync writes nothing (leases and events aside).
    wait_for(
        lambda: _gw_cond(kube, namespace, "web", "Programmed") == ("True", "Programmed"),
        timeout=TIMEOUT,
        what="web Programmed",
    )
    wait_for(
        lambda: _gw_cond(kube, namespace, "web", OPERATION) == ("False", "Idle"),
        timeout=TIMEOUT,
        what="no operation in flight",
    )

    def api_writes() -> int:
        log = cluster.request_log
        return log.count(writes_only=True) - log.count(
            writes_only=True, resources={"leases", "events"}
        )

    before_writes = api_writes()
    before = running.stats["observed"]
    keys = running.resync()
    wait_for(
        lambda: running.stats["observed"] >= before + keys and not len(running.queue),
        timeout=TIMEOUT,
        what="resync observed",
    )
    assert api_writes() == before_writes
