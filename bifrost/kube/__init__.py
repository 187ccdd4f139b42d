"""The Kubernetes edge: the only importer of the kubernetes client.

Everything else in bifrost talks to Kubernetes through these names, with plain dicts for objects
and :mod:`bifrost.kube.errors` for failures, identically against the devcluster and a real cluster.
"""

from bifrost.kube.client import KubeClient, WatchStream
from bifrost.kube.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    PathNotServed,
    Retryable,
    ServerError,
    TooManyRequests,
    UnknownKind,
)
from bifrost.kube.events import EventRecorder, ObjectRef
from bifrost.kube.leader import LeaderElector
from bifrost.kube.ports import Kube, KubeReader, KubeStatusWriter, KubeWriter
from bifrost.kube.watch import Backoff, Watcher, WatchEvent

__all__ = [
    "AlreadyExists",
    "Backoff",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "EventRecorder",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeClient",
    "Kube",
    "KubeError",
    "KubeReader",
    "KubeStatusWriter",
    "KubeWriter",
    "LeaderElector",
    "NotFound",
    "ObjectRef",
    "PathNotServed",
    "Retryable",
    "ServerError",
    "TooManyRequests",
    "UnknownKind",
    "WatchEvent",
    "WatchStream",
    "Watcher",
]
