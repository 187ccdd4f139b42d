"""Simulated peer controllers for the devcluster: issuer, load balancer, Crossplane-like AWS
provider and TLS data plane.

bifrost drives other controllers (cert-manager, Istio/Contour, Crossplane) and waits for them; in
the devcluster these peers stand in for them. They are ordinary API clients — they watch and write
over HTTP like any controller, through the devcluster's own :mod:`devcluster.client` (never
bifrost's client, which the devcluster exists to test) — so they can be started, stopped and
slowed independently of the API server, and the same peers could run against a real cluster.

``Peers`` bundles them::

    peers = Peers(kubeconfig_path, issuer_options=IssuerOptions(issuance_delay=0.5)).start()
    ...
    peers.stop()

On start it also publishes the devcluster CA as the ConfigMap ``kube-public/devcluster-ca``
(key ``ca.crt``), so any client can trust the data plane's certificates.
"""

from __future__ import annotations

import logging
import os

from devcluster.client import Client, ClientError
from devcluster.peers.ca import IssuedCertificate, KeyType, LocalCA
from devcluster.peers.clock import Clock, SystemClock
from devcluster.peers.crossplane import Crossplane, CrossplaneOptions, ManagedKind
from devcluster.peers.dataplane import CertRef, ChildRef, DataPlane, ServedCertificate
from devcluster.peers.issuer import IssuanceAttempt, Issuer, IssuerOptions
from devcluster.peers.loadbalancer import (
    PORT_ANNOTATION,
    ChildKind,
    LoadBalancer,
    LoadBalancerOptions,
)

__all__ = [
    "CA_CONFIGMAP",
    "PORT_ANNOTATION",
    "CertRef",
    "ChildKind",
    "ChildRef",
    "Crossplane",
    "CrossplaneOptions",
    "DataPlane",
    "IssuanceAttempt",
    "IssuedCertificate",
    "Issuer",
    "IssuerOptions",
    "KeyType",
    "LoadBalancer",
    "LoadBalancerOptions",
    "LocalCA",
    "ManagedKind",
    "Peers",
    "ServedCertificate",
]

log = logging.getLogger(__name__)

CA_CONFIGMAP = ("kube-public", "devcluster-ca")


class Peers:
    """The issuer, the load balancer, the Crossplane-like provider and (optionally) the data plane,
    started and stopped together.

    ``kube`` is a kubeconfig path (the peers then share a client of their own, closed by
    :meth:`stop`) or a :class:`~devcluster.client.Client` (not closed). ``ca``
    defaults to one loaded from / stored in ``issuer_options.state_dir``, or a fresh in-memory CA.
    ``crossplane=False`` leaves the Crossplane-like provider out (it skips the managed-resource
    kinds the cluster does not serve anyway, see :mod:`.crossplane`).
    """

    def __init__(
        self,
        kube: str | os.PathLike[str] | Client,
        *,
        issuer_options: IssuerOptions | None = None,
        lb_options: LoadBalancerOptions | None = None,
        dataplane: bool = True,
        ca: LocalCA | None = None,
        clock: Clock | None = None,
        publish_ca: bool = True,
        crossplane: bool = True,
        crossplane_options: CrossplaneOptions | None = None,
    ) -> None:
        # One client serves every peer: each watch has a connection of its own, and requests
        # take one from an unbounded pool, so one peer's streams cannot crowd out another's.
        self._owns_client = not isinstance(kube, Client)
        self.client = kube if isinstance(kube, Client) else Client.from_kubeconfig(kube)
        self.clock: Clock = clock or SystemClock()
        self.issuer_options = issuer_options or IssuerOptions()
        if ca is None:
            state_dir = self.issuer_options.state_dir
            ca = (
                LocalCA.load_or_create(state_dir, clock=self.clock)
                if state_dir
                else LocalCA.generate(clock=self.clock)
            )
        self.ca = ca
        self.issuer = Issuer(self.client, ca=ca, options=self.issuer_options, clock=self.clock)
        self.dataplane: DataPlane | None = DataPlane() if dataplane else None
        self.loadbalancer = LoadBalancer(
            self.client, options=lb_options, dataplane=self.dataplane, clock=self.clock
        )
        self.crossplane: Crossplane | None = (
            Crossplane(self.client, options=crossplane_options, clock=self.clock)
            if crossplane
            else None
        )
        self._publish_ca = publish_ca
        self._started = False

    def start(self) -> Peers:
        if self._publish_ca:
            self._publish()
        self.issuer.start()
        self.loadbalancer.start()
        if self.crossplane is not None:
            self.crossplane.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            if self.crossplane is not None:
                self.crossplane.stop()
            self.loadbalancer.stop()
            self.issuer.stop()
            self._started = False
        if self.dataplane is not None:
            self.dataplane.stop()
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Peers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def port(self, api_version: str, kind: str, namespace: str, name: str) -> int | None:
        """The loopback port of a child's TLS server (see :mod:`.loadbalancer`)."""
        return self.loadbalancer.port(api_version, kind, namespace, name)

    def _publish(self) -> None:
        namespace, name = CA_CONFIGMAP
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"ca.crt": self.ca.cert_pem.decode("ascii")},
        }
        try:
            self.client.apply(body, field_manager="bifrost-devcluster-peers")
        except ClientError as exc:
            log.warning("could not publish the devcluster CA as %s/%s: %s", namespace, name, exc)
