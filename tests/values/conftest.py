"""The devcluster fixtures of the in-process controller scenarios (``support.inprocess``)."""

from support.inprocess import cluster, kube, kubeconfig, namespace  # noqa: F401
