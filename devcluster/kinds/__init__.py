"""Built-in kinds: what they are (:mod:`.catalog`) and how a served kind is described
(:mod:`.resource_type`)."""

from devcluster.kinds.catalog import builtin_types
from devcluster.kinds.resource_type import ALL_VERBS, ResourceType, Subresource

__all__ = ["ALL_VERBS", "ResourceType", "Subresource", "builtin_types"]
