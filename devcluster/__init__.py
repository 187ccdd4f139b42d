"""A local Kubernetes-compatible API server on loopback plus simulated peer controllers.

bifrost cannot run a real cluster on its development and CI machines, yet must behave exactly as
it will on one; the devcluster is the stand-in. It is a real HTTP/1.1 server that the unmodified
official ``kubernetes`` client, ``kubectl`` and bifrost itself talk to; the semantics it
implements are listed in ``devcluster-spec.md``.

Entry points:

* ``DevCluster`` (``devcluster.server``): ``start``/``stop``/context manager, ``url``,
  ``load_crds``, ``install_crd``, ``register_permissive``, ``write_kubeconfig``, ``compact``,
  ``drop_watches``, ``faults`` (:class:`~devcluster.faults.FaultInjector`) and
  ``request_log`` (:class:`~devcluster.faults.RequestLog`). It is imported lazily here
  so that importing a pure submodule (``patch``, ``schema``) does not pull in the server.
* ``python -m devcluster --port N --crds DIR --kubeconfig-out PATH [--state-file F]``.
* HTTP control surface for other processes: ``GET|DELETE /devcluster/requests``,
  ``GET|POST|DELETE /devcluster/faults`` (and ``DELETE /devcluster/faults/{id}``),
  ``POST /devcluster/compact``, ``POST /devcluster/drop-watches``.

Layout: ``server`` (HTTP, routing), ``faults`` (fault injection, request log), ``handlers``
(the verbs), ``patch`` and ``fieldmanager`` (patches, server-side apply), ``schema`` (CRD
defaulting, pruning, validation), ``watch``, ``storage`` (objects, resourceVersion, history,
persistence), ``registry`` (kinds and discovery), ``gc`` and ``namespaces`` (background
controllers), ``admission``, ``selectors``, ``conversion`` (the two Event APIs), ``openapi`` and
``protobuf`` (what kubectl needs), ``kubeconfig``, ``errors``, ``bundle`` (the CRDs shipped with
it). ``peers`` holds the
simulated controllers (issuer, load balancer, Crossplane-like provider, TLS data plane),
``client`` the plain-HTTP API client they talk through, and ``handshakes`` a loop of real TLS
handshakes against the data plane that counts failures.

The package depends on no bifrost module: it is what bifrost is tested against, so it must not
share bifrost's code (a bug in bifrost's Kubernetes client would otherwise sit on both sides of
a test and could hide itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devcluster.server import DevCluster

__all__ = ["DevCluster"]


def __getattr__(name: str) -> Any:
    if name == "DevCluster":
        from devcluster.server import DevCluster

        return DevCluster
    raise AttributeError(name)
