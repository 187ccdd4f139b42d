"""A local Kubernetes-compatible API server on loopback plus simulated peer controllers.

bifrost cannot run a real cluster on its development and CI machines, yet must behave exactly as
it will on one; the devcluster is the stand-in. It is a real HTTP/1.1 server that the unmodified
official ``kubernetes`` client, ``kubectl`` and bifrost itself talk to; the semantics it
implements are listed in ``devcluster-spec.md``.

Entry points:

* ``DevCluster`` (``devcluster.server``): ``start``/``stop``/context manager, ``url`` (plain
  HTTP) and ``https_url`` (the same port speaks TLS: kubectl sends a token only over TLS),
  ``load_crds``, ``install_crd``, ``register_permissive``, ``write_kubeconfig`` (the admin's
  bearer token and the cluster CA), ``admin_token``, ``add_token``, ``compact``,
  ``drop_watches``, ``faults`` (:class:`~devcluster.faults.FaultInjector`) and ``request_log``
  (:class:`~devcluster.faults.RequestLog`). Options: ``authorization="RBAC"`` (default) or
  ``"AlwaysAllow"``, ``validation_rules`` (CRD CEL rules, default on), ``workloads`` and
  ``pods_ready`` (the controllers and kubelet, default on), ``state_file`` (durable, with the
  watch history). It is imported lazily here so that importing a pure submodule (``patch``,
  ``schema``) does not pull in the server.
* ``python -m devcluster --port N --crds DIR --kubeconfig-out PATH [--state-file F]
  [--authorization RBAC|AlwaysAllow] [--no-validation-rules] [--pods-not-ready]``.
* HTTP control surface for other processes (a test surface on loopback, not authenticated):
  ``GET|DELETE /devcluster/requests``, ``GET|POST|DELETE /devcluster/faults`` (and
  ``DELETE /devcluster/faults/{id}``), ``POST /devcluster/compact``,
  ``POST /devcluster/drop-watches``.

Layout:

* the API server: ``server`` (HTTP and TLS, routing), ``handlers`` (the verbs), ``deletion``
  (what DELETE answers, graceful Pod deletion), ``scale`` (the ``scale`` subresource),
  ``pod_logs`` (``pods/log``: a container's output from ``Api.pod_logs``, ``follow`` streamed;
  a simulated pod's log is empty), ``eviction`` (``pods/eviction``: a graceful delete that a
  PodDisruptionBudget may refuse with 429) and ``disruption_budget`` (what a PDB allows, for the
  eviction and the disruption controller),
  ``patch`` and ``fieldmanager`` (patches, server-side apply), ``schema`` (structural schemas:
  defaulting, pruning, validation), ``validation_rules`` (CRD ``x-kubernetes-validations`` in
  CEL), ``watch``, ``storage`` and ``journal`` (objects, resourceVersion, history, the durable
  state file), ``registry`` (served kinds and discovery), ``admission``, ``selectors``,
  ``conversion`` (the two Event APIs), ``tables`` (kubectl's server-side printing),
  ``openapi`` (OpenAPI v3 for ``kubectl explain`` and validation), ``protobuf`` and
  ``protobuf_types`` (the bodies kubectl sends as protobuf), ``kubeconfig``, ``errors``,
  ``faults``, ``bundle`` (the upstream CRDs shipped with it);
* ``kinds``: the built-in kinds (catalog, schemas derived from the official client's models,
  defaults, printer columns);
* ``auth``: bearer tokens (admin, ServiceAccount TokenRequest and token Secrets), impersonation,
  RBAC with the bootstrap roles and ClusterRole aggregation, the access and token reviews;
* in-process cluster controllers: ``gc`` and ``namespaces`` (garbage collection, namespace
  deletion) and ``controllers`` (Deployment, ReplicaSet/ReplicationController, StatefulSet,
  DaemonSet, Job, the disruption controller writing PodDisruptionBudget status, a scheduler, a
  simulated kubelet and two Nodes);
* ``peers``: the simulated third-party controllers bifrost drives (issuer, load balancer,
  Crossplane-like provider, TLS data plane), ``client`` the plain-HTTP API client they talk
  through, and ``handshakes`` a loop of real TLS handshakes against the data plane that counts
  failures.

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
