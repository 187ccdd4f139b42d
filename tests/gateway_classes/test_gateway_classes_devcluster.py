"""What a user sees on the devcluster (bifrost's Controller in-process, the simulated issuer):

- a blueprint whose template does not compile to the sandbox (an unknown filter inside an
  ``{% if %}``, which Jinja itself only notices when rendering) is ``Valid=False`` naming the
  field, its GatewayClass ``Accepted=False/InvalidParameters`` naming the blueprint, the field
  and the fix, its Gateway is not provisioned; fixing the blueprint accepts the class;
- a GatewayClass of bifrost's carries ``gateway-exists-finalizer.gateway.networking.k8s.io``
  while a Gateway of it exists: deleting the class leaves it Terminating until its last Gateway
  is gone, then it is gone;
- without ``spec.addresses`` a Gateway gets the addresses a child reports in
  ``status.loadBalancer.ingress``; with children that report none its ``AddressNotAssigned``
  message says to set ``spec.addresses``;
- the cert-manager Certificate bifrost requests carries ``renewBeforePercentage`` (half of the
  blueprint's margin), so the issuer's ``status.renewalTime`` comes after the renewal bifrost
  scheduled; a certificate template that sets a longer ``renewBefore`` is ``Valid=False``.

Every wait polls with a deadline.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from support.builders import blueprint, gateway, gateway_class
from support.editing import edit
from support.waiting import wait_for

from bifrost.controller.class_finalizer import GATEWAY_EXISTS_FINALIZER
from bifrost.controller.manager import Controller
from bifrost.kube import KubeClient

GATEWAY_API = "gateway.networking.k8s.io/v1"
BIFROST_API = "gateway.bifrost.dev/v1alpha1"
CERT_API = "cert-manager.io/v1"
UID_LABEL = "gateway.bifrost.dev/gateway-uid"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "in-cluster" / "10-blueprint.yaml"
TIMEOUT = 30.0

CONFIG = ("apiVersion: v1\nkind: ConfigMap\n"
          "metadata: {name: '{{ gateway.metadata.name }}-config'}\ndata: {a: b}\n")
BROKEN = ("{% if values.fancy %}\napiVersion: v1\nkind: ConfigMap\n"
          "metadata: {name: '{{ gateway.metadata.name | shout }}'}\n{% endif %}\n")
SERVICE = ("apiVersion: v1\nkind: Service\nmetadata: {name: '{{ gateway.metadata.name }}-lb'}\n"
           "spec: {type: LoadBalancer, ports: [{port: 80}]}\n")


def _suffix() -> str:
    return uuid.uuid4().hex[:6]


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def _when(obj: dict[str, Any] | None, kind: str, status: str,
          reason: str | None = None) -> dict[str, Any] | None:
    c = _condition(obj, kind)
    if c and c.get("status") == status and (reason is None or c.get("reason") == reason):
        return c
    return None


def test_a_class_whose_blueprint_does_not_compile_is_not_accepted(
    kube: KubeClient, namespace: str
) -> None:
    s = _suffix()
    bp_name, cls = f"bp-{s}", f"cls-{s}"
    kube.create(blueprint(bp_name, [{"id": "config", "template": CONFIG},
                                    {"id": "fancy", "template": BROKEN}],
                          defaults={"fancy": False}))
    kube.create(gateway_class(cls, bp_name))
    kube.create(gateway(namespace, "web", cls))

    valid = wait_for(lambda: _when(kube.get(BIFROST_API, "GatewayClassBlueprint", bp_name),
                                   "Valid", "False", "InvalidTemplate"),
                     timeout=TIMEOUT, what="the blueprint Valid=False")
    assert "spec.children[fancy].template, line 4" in valid["message"]
    assert "no filter named 'shout'" in valid["message"]
    accepted = wait_for(lambda: _when(kube.get(GATEWAY_API, "GatewayClass", cls),
                                      "Accepted", "False", "InvalidParameters"),
                        timeout=TIMEOUT, what="the class Accepted=False/InvalidParameters")
    message = accepted["message"]
    assert "\n" not in message
    assert f'GatewayClassBlueprint "{bp_name}" is not valid' in message
    assert "spec.children[fancy].template" in message and "fix the blueprint" in message
    gw = wait_for(lambda: _when(kube.get(GATEWAY_API, "Gateway", "web", namespace),
                                "Accepted", "False", "InvalidParameters"),
                  timeout=TIMEOUT, what="the Gateway Accepted=False")
    assert bp_name in gw["message"]
    # not provisioned: the valid sibling child was not created either
    assert kube.get("v1", "ConfigMap", "web-config", namespace) is None

    edit(kube, BIFROST_API, "GatewayClassBlueprint", bp_name, None,
         lambda bp: bp["spec"]["children"][1].update(
             template=BROKEN.replace(" | shout", " | upper")))
    wait_for(lambda: _when(kube.get(GATEWAY_API, "GatewayClass", cls), "Accepted", "True"),
             timeout=TIMEOUT, what="the class accepted once the blueprint is fixed")
    wait_for(lambda: kube.get("v1", "ConfigMap", "web-config", namespace),
             timeout=TIMEOUT, what="the Gateway provisioned once the class is accepted")


def _finalizers(obj: dict[str, Any] | None) -> list[str]:
    return list(((obj or {}).get("metadata") or {}).get("finalizers") or [])


def test_a_class_in_use_is_terminating_until_its_last_gateway_is_gone(
    kube: KubeClient, namespace: str
) -> None:
    s = _suffix()
    bp_name, cls = f"bp-{s}", f"cls-{s}"
    kube.create(blueprint(bp_name, [{"id": "config", "template": CONFIG}]))
    kube.create(gateway_class(cls, bp_name))
    wait_for(lambda: _when(kube.get(GATEWAY_API, "GatewayClass", cls), "Accepted", "True"),
             timeout=TIMEOUT, what="the class accepted")
    assert GATEWAY_EXISTS_FINALIZER not in _finalizers(kube.get(GATEWAY_API, "GatewayClass", cls))

    kube.create(gateway(namespace, "one", cls))
    kube.create(gateway(namespace, "two", cls))
    wait_for(lambda: GATEWAY_EXISTS_FINALIZER in _finalizers(
        kube.get(GATEWAY_API, "GatewayClass", cls)), timeout=TIMEOUT,
        what="the gateway-exists finalizer on the class")

    kube.delete(GATEWAY_API, "GatewayClass", cls)
    terminating = kube.get(GATEWAY_API, "GatewayClass", cls)
    assert terminating is not None and terminating["metadata"].get("deletionTimestamp")

    kube.delete(GATEWAY_API, "Gateway", "one", namespace)
    wait_for(lambda: kube.get(GATEWAY_API, "Gateway", "one", namespace) is None,
             timeout=TIMEOUT, what="the first Gateway torn down")
    still = kube.get(GATEWAY_API, "GatewayClass", cls)
    assert still is not None and GATEWAY_EXISTS_FINALIZER in _finalizers(still), \
        "the class went while a Gateway of it still exists"

    kube.delete(GATEWAY_API, "Gateway", "two", namespace)
    wait_for(lambda: kube.get(GATEWAY_API, "GatewayClass", cls) is None,
             timeout=TIMEOUT, what="the class gone after its last Gateway")


def test_a_gateway_takes_a_childs_load_balancer_address_without_spec_addresses(
    kube: KubeClient, namespace: str
) -> None:
    s = _suffix()
    kube.create(blueprint(f"bp-{s}", [{"id": "config", "template": CONFIG},
                                      {"id": "lb", "template": SERVICE}]))
    kube.create(gateway_class(f"cls-{s}", f"bp-{s}"))
    kube.create(gateway(namespace, "edge", f"cls-{s}"))

    waiting = wait_for(lambda: _when(kube.get(GATEWAY_API, "Gateway", "edge", namespace),
                                     "Programmed", "False", "AddressNotAssigned"),
                       timeout=TIMEOUT, what="AddressNotAssigned before the LB has an address")
    assert "set spec.addresses" in waiting["message"]
    assert "status.loadBalancer.ingress" in waiting["message"]

    # the cloud provider's part: the Service gets its load balancer's address
    service = wait_for(lambda: kube.get("v1", "Service", "edge-lb", namespace),
                       timeout=TIMEOUT, what="the Service child")
    kube.patch_status("v1", "Service", "edge-lb", namespace,
                      {**(service.get("status") or {}),
                       "loadBalancer": {"ingress": [{"ip": "192.0.2.44"}]}})
    programmed = wait_for(lambda: kube.get(GATEWAY_API, "Gateway", "edge", namespace)
                          if _when(kube.get(GATEWAY_API, "Gateway", "edge", namespace),
                                   "Programmed", "True") else None,
                          timeout=TIMEOUT, what="the Gateway Programmed with the LB address")
    assert programmed["status"]["addresses"] == [{"type": "IPAddress", "value": "192.0.2.44"}]


def _example_blueprint(name: str, **tls: Any) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    doc["metadata"] = {"name": name}
    doc["spec"]["tls"].update(tls)
    return dict(doc)


def _https_gateway(namespace: str, name: str, class_name: str, host: str) -> dict[str, Any]:
    return gateway(namespace, name, class_name, listeners=[{
        "name": "https", "protocol": "HTTPS", "port": 443, "hostname": host,
        "tls": {"certificateRefs": [{"name": f"{name}-user-tls"}]}}])


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_cert_manager_renews_only_after_bifrost_rotates(
    kube: KubeClient, namespace: str, controller: Controller
) -> None:
    s = _suffix()
    kube.create(_example_blueprint(f"bp-{s}", renewBefore={"percentage": 40}))
    kube.create(gateway_class(f"cls-{s}", f"bp-{s}"))
    gw = kube.create(_https_gateway(namespace, "shop", f"cls-{s}", "shop.example.com"))
    uid = gw["metadata"]["uid"]

    def issued() -> dict[str, Any] | None:
        items, _ = kube.list(CERT_API, "Certificate", namespace)
        return next((c for c in items if (c.get("status") or {}).get("renewalTime")), None)

    certificate = wait_for(issued, timeout=60, what="the listener's Certificate issued")
    assert certificate["spec"]["renewBeforePercentage"] == 20
    assert "renewBefore" not in certificate["spec"]
    record = wait_for(lambda: next((r for r in controller.store.list_certificates(
        gateway_uid=uid) if r.renewal_at is not None), None), timeout=60,
        what="bifrost's renewal time for the certificate")
    issuer_renews = _time(certificate["status"]["renewalTime"])
    assert record.renewal_at is not None and record.renewal_at < issuer_renews, (
        record.renewal_at, issuer_renews)


def test_a_certificate_template_that_lets_cert_manager_renew_first_is_not_valid(
    kube: KubeClient, namespace: str
) -> None:
    s = _suffix()
    bp = _example_blueprint(f"bp-{s}")
    template = bp["spec"]["tls"]["certificateTemplate"]
    bp["spec"]["tls"]["certificateTemplate"] = template.replace(
        "spec:\n", "spec:\n  renewBeforePercentage: 50\n", 1)
    assert bp["spec"]["tls"]["certificateTemplate"] != template
    kube.create(bp)
    kube.create(gateway_class(f"cls-{s}", f"bp-{s}"))
    valid = wait_for(lambda: _when(kube.get(BIFROST_API, "GatewayClassBlueprint", f"bp-{s}"),
                                   "Valid", "False"),
                     timeout=TIMEOUT, what="the blueprint Valid=False")
    assert "renewBeforePercentage: 50" in valid["message"]
    assert "remove it" in valid["message"]
    accepted = wait_for(lambda: _when(kube.get(GATEWAY_API, "GatewayClass", f"cls-{s}"),
                                      "Accepted", "False", "InvalidParameters"),
                        timeout=TIMEOUT, what="the class not accepted")
    assert "spec.tls.certificateTemplate sets renewBeforePercentage" in accepted["message"]
