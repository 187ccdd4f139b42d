"""The devcluster fixtures of the in-process scenarios (see tests/support/inprocess.py)."""

from support.inprocess import cluster, kube, kubeconfig, namespace  # noqa: F401
