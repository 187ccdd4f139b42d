"""The devcluster fixtures of the in-process controller scenarios (``fixtures.inprocess``)."""

from fixtures.inprocess import cluster, kube, kubeconfig, namespace  # noqa: F401
