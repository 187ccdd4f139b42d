"""A 403 Forbidden from RBAC, read as what to grant: the one place the fix is worded.

The API server's message already names the request (``configmaps "x" is forbidden: User
"system:serviceaccount:bifrost-system:bifrost" cannot patch resource "configmaps" in API group ""
in the namespace "apps"``); what it does not say is what to do. :func:`forbidden_fix` reads the
verb, the resource (``group/resource``, with a subresource: ``gateways/status``), the namespace
and the identity back out of that message and words the fix: ``grant patch on configmaps to
ServiceAccount bifrost-system/bifrost, see deploy/base/rbac*.yaml``. :class:`~bifrost.kube.errors.
Forbidden` appends it to its text, so every place that shows a 403 — an operation's failure (the
Gateway's ``Programmed`` message, its Event, the runner's WARNING line), the informers' and the
status writers' log lines — carries the same fix without knowing about it.

A 403 that is not an RBAC denial (creating in a terminating namespace) has no ``User ...
cannot ...`` clause and gets no fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RBAC_FILES", "DeniedAccess", "denied_access", "forbidden_fix", "is_forbidden_text"]

#: Where deploy/ grants the controller's permissions (the children's kinds are aggregated into
#: ``bifrost-children`` from each blueprint's ClusterRole, examples/*/05-rbac.yaml).
RBAC_FILES = "deploy/base/rbac*.yaml"

_DENIAL = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)?'
)
_SERVICE_ACCOUNT = "system:serviceaccount:"


@dataclass(frozen=True)
class DeniedAccess:
    """One request RBAC refused: ``resource`` as ``group/resource[/subresource]`` (the core
    group: just ``resource``), ``namespace`` empty at the cluster scope."""

    user: str
    verb: str
    resource: str
    namespace: str

    @property
    def identity(self) -> str:
        """``ServiceAccount ns/name`` for a ServiceAccount's token, else ``user "name"``."""
        if self.user.startswith(_SERVICE_ACCOUNT):
            namespace, _, name = self.user.removeprefix(_SERVICE_ACCOUNT).partition(":")
            return f"ServiceAccount {namespace}/{name}"
        return f'user "{self.user}"'

    @property
    def where(self) -> str:
        return f'in namespace "{self.namespace}"' if self.namespace else "cluster-wide"

    def fix(self) -> str:
        return f"grant {self.verb} on {self.resource} to {self.identity}, see {RBAC_FILES}"


def denied_access(message: str) -> DeniedAccess | None:
    """The denied request in a 403's message, or ``None`` when it is not an RBAC denial."""
    match = _DENIAL.search(message)
    if match is None:
        return None
    group = match["group"] or ""
    resource = f"{group}/{match['resource']}" if group else match["resource"]
    return DeniedAccess(user=match["user"], verb=match["verb"], resource=resource,
                        namespace=match["namespace"] or "")


def forbidden_fix(message: str) -> str | None:
    """``grant <verb> on <group/resource> to <identity>, see deploy/base/rbac*.yaml`` for an
    RBAC denial's message, else ``None``."""
    access = denied_access(message)
    return access.fix() if access is not None else None


def is_forbidden_text(text: str) -> bool:
    """Whether a recorded failure (an operation's last error, a journal line) came from an RBAC
    denial: it carries a 403's fix."""
    return "403 Forbidden:" in text and f"see {RBAC_FILES}" in text
