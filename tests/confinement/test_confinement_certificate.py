"""The listener certificate object (``spec.tls.certificateTemplate``) is confined like a child:
it always lands in the Gateway's namespace, a cluster-scoped or sensitive kind is refused unless
the blueprint opts in, and a refused one is never applied nor recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bifrost.api.blueprint import BlueprintTLS
from bifrost.engine import Fail
from bifrost.render.confinement import AllowRule, Confinement
from bifrost.steps.tls import request_certificate

GATEWAY = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": "edge", "namespace": "apps", "uid": "u-1"},
           "spec": {"listeners": [{"name": "https", "protocol": "HTTPS", "port": 443,
                                   "hostname": "shop.example.com"}]}}


class Touched(Exception):
    """The code under test went past the confinement check."""


class FakeKube:
    def __init__(self, namespaced: bool) -> None:
        self.namespaced = namespaced
        self.applied: list[dict[str, Any]] = []

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return self.namespaced

    def get(self, *args: Any, **kwargs: Any) -> None:
        raise Touched("get")

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(body)
        raise Touched("apply")


class UntouchableStore:
    def __getattr__(self, name: str) -> Any:
        raise Touched(f"store.{name}")


def _request(template: str, *, namespaced: bool,
             confinement: Confinement | None) -> tuple[Any, FakeKube]:
    kube = FakeKube(namespaced)
    tls = BlueprintTLS(certificate_template=template)
    try:
        outcome = request_certificate(
            kube, UntouchableStore(), tls=tls, gateway=GATEWAY,  # type: ignore[arg-type]
            values={}, listener=GATEWAY["spec"]["listeners"][0],  # type: ignore[index]
            name="edge-https-1", hostnames=["shop.example.com"],
            now=datetime(2026, 1, 1, tzinfo=UTC), confinement=confinement)
    except Touched as exc:
        return exc, kube
    return outcome, kube


CLUSTER_CERT = ("apiVersion: acm.aws.upbound.io/v1beta1\nkind: Certificate\n"
                "metadata: {name: x}\nspec: {forProvider: {domainName: shop.example.com}}\n")
TOKEN_SECRET = ("apiVersion: v1\nkind: Secret\ntype: kubernetes.io/service-account-token\n"
                "metadata: {name: x, namespace: kube-system}\n")


@pytest.mark.parametrize(
    ("template", "namespaced", "confinement", "refused"),
    [
        (CLUSTER_CERT, False, None, "child 'tls:edge-https-1' (Certificate.acm.aws.upbound.io) "
         "is cluster-scoped"),
        (CLUSTER_CERT, False, Confinement((AllowRule("acm.aws.upbound.io", "Certificate"),)),
         "is cluster-scoped"),
        (CLUSTER_CERT, False,
         Confinement((AllowRule("acm.aws.upbound.io", "Certificate", cluster_scoped=True),)),
         None),
        (TOKEN_SECRET, True, None,
         "child 'tls:edge-https-1' (Secret in the Gateway's namespace) is a Secret of type "
         "kubernetes.io/service-account-token"),
        # a plain Secret copy (a passed-through listener certificate) is fine; the namespace the
        # template wrote does not matter: it is the Gateway's
        ("apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\n"
         "metadata: {name: x, namespace: kube-system}\n", True, None, None),
    ],
)
def test_certificate_object_is_confined(template: str, namespaced: bool,
                                        confinement: Confinement | None,
                                        refused: str | None) -> None:
    outcome, kube = _request(template, namespaced=namespaced, confinement=confinement)
    if refused is None:
        assert isinstance(outcome, Touched), outcome  # went on to the store and the cluster
        return
    assert isinstance(outcome, Fail), outcome
    assert outcome.reason.startswith("spec.tls.certificateTemplate: ")
    assert refused in outcome.reason
    assert kube.applied == []
