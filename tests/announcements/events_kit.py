"""What the operation-Event tests share: the running controller's cluster, store and namespace."""

from __future__ import annotations

from dataclasses import dataclass

from bifrost.kube import KubeClient
from bifrost.store import SqlStore


@dataclass
class Running:
    kube: KubeClient
    store: SqlStore
    namespace: str
    url: str
