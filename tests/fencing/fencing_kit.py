"""What the fencing tests share: the devcluster they run on, with its request log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devcluster.server import DevCluster


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    server: DevCluster
