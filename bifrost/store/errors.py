"""Store errors, named for what the caller should do about them."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for store errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is locked right now: back off and retry."""


class LeaseLost(StoreError):
    """Fencing: the caller no longer holds the operation's lease or version. Drop the work."""


class OperationConflict(StoreError):
    """Another active operation already holds the (gateway, lane) slot."""


class RecordNotFound(StoreError):
    """The record does not exist."""


class SchemaMismatch(StoreError):
    """The database schema is not the one this code expects (un-migrated or newer)."""
