"""bifrost: a Gateway API controller of controllers with durable day-2 operations."""

__version__ = "0.1.0"
