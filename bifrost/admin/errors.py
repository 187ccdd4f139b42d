"""Errors ``bifrost-admin`` turns into one line on stderr and an exit code, never a traceback.

The exit codes are part of the tool's contract so scripts can tell "you asked wrongly" from
"the store is not there" from "the engine said no":

- 1: the store cannot be used (missing, un-migrated, unreachable), the gateway is unknown, or
  the cluster of ``--kubeconfig`` cannot be read;
- 2: bad input (malformed NAMESPACE/NAME, unknown machine, bad option value);
- 3: an action was refused (the operation's status or the machine does not allow it).
"""

from __future__ import annotations


class AdminError(Exception):
    """An expected failure; ``str(exc)`` is the one line shown to the operator."""

    exit_code = 1


class BadInput(AdminError):
    exit_code = 2


class GatewayNotFound(AdminError):
    exit_code = 1


class Refused(AdminError):
    exit_code = 3
