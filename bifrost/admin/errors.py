"""Errors ``bifrost-admin`` turns into one line on stderr and an exit code, never a traceback.

The exit codes are part of the tool's contract so scripts can tell "you asked wrongly" from
"the store is not there" from "the engine said no":

- 1: the store cannot be used (missing, un-migrated, unreachable), the gateway is unknown, or
  the cluster of ``--kubeconfig`` cannot be read;
- 2: bad input (malformed NAMESPACE/NAME, unknown machine, bad option value);
- 3: an action was refused (the operation's status or the machine does not allow it);
- 4: the admin API of ``--server`` refused the caller (401: the token was not accepted; 403:
  RBAC does not grant the verb on ``gateways/operations``);
- 5: ``--wait``: the operation ended without succeeding (failed or cancelled);
- 6: ``--wait``: ``--timeout`` passed before the operation ended.
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


class AccessDenied(AdminError):
    """The admin API said 401 or 403; the message names the verb and resource refused."""

    exit_code = 4


class OperationUnsuccessful(AdminError):
    exit_code = 5


class WaitTimedOut(AdminError):
    exit_code = 6


class ServerUnreachable(AdminError):
    """The admin API did not answer (connection refused, timeout): worth trying again."""

    exit_code = 1


class RemoteError(AdminError):
    """An expected failure the admin API reported, with the exit code it chose."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
